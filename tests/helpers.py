"""Small helpers shared by the test files (fixtures live in conftest.py)."""

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from http.cookiejar import CookieJar

import redis
from flask.testing import FlaskClient

from app import keys, waiting_room
from app.launcher import ROOT, free_port, free_port_run  # noqa: F401 (tests import them from here)
from app.models import Seat, User


def assert_error(response, status: int | None = None, code: str | None = None) -> dict:
    """A refusal as the API documents it: JSON {error, message}, both text,
    with `status` (any 4xx when none is given; never a 500) and, when
    given, the error `code`. Returns the body."""
    assert response.status_code != 500, (response.status_code, response.data[:500])
    if status is None:
        assert 400 <= response.status_code < 500, (response.status_code, response.data[:500])
    else:
        assert response.status_code == status, (response.status_code, response.data[:500])
    body = response.get_json()
    assert isinstance(body, dict), response.data[:300]
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("message"), str) and body["message"], body
    if code is not None:
        assert body["error"] == code, body
    return body


def redis_now_ms(r) -> int:
    """Redis's clock (the one every script reads), in ms."""
    seconds, micros = r.time()
    return seconds * 1000 + micros // 1000


def seed_queue(r, event_id: int, user_ids, heartbeat_ms: int | None = None) -> None:
    """Put people in the queue in this order, scored as join.lua would
    (sequence numbers), with a heartbeat at `heartbeat_ms` (default: now);
    5,000 members per ZADD, in one pipeline."""
    k = keys.event(event_id)
    user_ids = list(user_ids)
    start = r.incrby(k.sequence, len(user_ids)) - len(user_ids)
    beat = redis_now_ms(r) if heartbeat_ms is None else heartbeat_ms
    pipe = r.pipeline(transaction=False)
    for i in range(0, len(user_ids), 5_000):
        chunk = user_ids[i : i + 5_000]
        pipe.zadd(k.queue, {uid: start + i + j + 1 for j, uid in enumerate(chunk)})
        pipe.zadd(k.heartbeat, dict.fromkeys(chunk, beat))
    pipe.execute()


def members(r, key: str) -> list[int]:
    """A sorted set's members (user ids), in order."""
    return [int(m) for m in r.zrange(key, 0, -1)]


def in_background(call):
    """Run call() in a thread; returns (thread, result dict with 'value' or 'error')."""
    result = {}

    def run():
        try:
            result["value"] = call()
        except Exception as e:  # pragma: no cover - reported by the test
            result["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def admit_and_enter(app, client, event_id) -> str:
    """Join through the API, run admission ticks until the person is in, and
    enter with the token; returns the token. The person may now hold and pay."""
    assert client.post(f"/api/events/{event_id}/queue").status_code == 200
    status = {}
    for _ in range(50):
        with app.app_context():
            waiting_room.admit(event_id)
        status = client.get(f"/api/events/{event_id}/queue").get_json()
        if status["status"] == "admitted":
            break
        time.sleep(0.02)
    assert status["status"] == "admitted", status
    response = client.post(
        f"/api/events/{event_id}/enter", headers={"Authorization": f"Bearer {status['token']}"}
    )
    assert response.status_code == 200, response.get_json()
    return status["token"]


def entered(app, make_user, login, event, points=None):
    """A new, logged-in person who came through the waiting room: (user, client)."""
    user = make_user(points=points)
    client = login(app.test_client(), user)
    admit_and_enter(app, client, event.id)
    return user, client


def seat_ids(app, event_id) -> list[int]:
    with app.app_context():
        return [s.id for s in Seat.select(Seat.id).where(Seat.event == event_id).order_by(Seat.id)]


def hold(client, event_id, seat_id) -> int:
    response = client.post(f"/api/events/{event_id}/seats/{seat_id}/hold")
    assert response.status_code == 201, response.get_json()
    return response.get_json()["token"]


def pay(client, event_id, items, key=None):
    return client.post(
        f"/api/events/{event_id}/checkout",
        json={"seats": [{"seat_id": s, "token": t} for s, t in items]},
        headers={"Idempotency-Key": key or uuid.uuid4().hex},
    )


def start_bin(script: str, env: dict) -> subprocess.Popen:
    """bin/<script> (run, cluster) as `make` starts it, in its own process
    group, its output (text) kept for the test to read."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / "bin" / script)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def server_of(r, key: str):
    """A plain client of the server that holds `key`: `r` itself, or on
    Redis Cluster the master of the key's slot (for INFO, MONITOR, ...)."""
    if isinstance(r, redis.RedisCluster):
        return r.get_redis_connection(r.get_node_from_key(key))
    return r


def connection_pools(r) -> list:
    """The connection pools of a client: one, or one per cluster node."""
    if isinstance(r, redis.RedisCluster):
        return [node.redis_connection.connection_pool for node in r.get_nodes()]
    return [r.connection_pool]


class Browser:
    """Just enough of an HTTP client with cookies, from the standard library."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def call(
        self, method: str, path: str, body: dict | None = None, headers: dict | None = None
    ) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        # The API asks it of every unsafe request, body or not (docs/API.md).
        unsafe = method not in ("GET", "HEAD", "OPTIONS")
        headers = {**({"Content-Type": "application/json"} if unsafe else {}), **(headers or {})}
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers=headers
        )
        try:
            with self.opener.open(request, timeout=5) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else {}
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def wait_ready(self, seconds: float) -> bool:
        """Poll /readyz until it answers 200 (True) or the time is up (False)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if self.call("GET", "/readyz")[0] == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.5)
        return False


@dataclass
class Person:
    """A logged-in account and its test client, with the JSON API calls the
    tests make as that person."""

    user: User
    client: FlaskClient

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def sid(self) -> str:
        """The session id the app put in this client's session cookie at login."""
        with self.client.session_transaction() as session:
            return session["sid"]

    def join(self, event_id):
        return self.client.post(f"/api/events/{event_id}/queue")

    def poll(self, event_id):
        return self.client.get(f"/api/events/{event_id}/queue")

    def enter(self, event_id, token):
        return self.client.post(
            f"/api/events/{event_id}/enter", headers={"Authorization": f"Bearer {token}"}
        )

    def hold(self, event_id, seat_id):
        return self.client.post(f"/api/events/{event_id}/seats/{seat_id}/hold")

    def release(self, event_id, seat_id, token=None):
        body = {} if token is None else {"token": token}
        return self.client.delete(f"/api/events/{event_id}/seats/{seat_id}/hold", json=body)

    def checkout(self, event_id, items, key=None):
        return self.client.post(
            f"/api/events/{event_id}/checkout",
            json={"seats": [{"seat_id": s, "token": t} for s, t in items]},
            headers={"Idempotency-Key": key or uuid.uuid4().hex},
        )

    def seat_map(self, event_id):
        return self.client.get(f"/api/events/{event_id}/seats")
