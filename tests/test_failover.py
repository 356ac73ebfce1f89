"""A Redis Cluster master fails over in the middle of a sale
(docs/RELIABILITY.md, "Failover of a Redis Cluster master").

Each test starts its own cluster of 3 masters and 3 replicas on loopback
ports (cluster-node-timeout 1 s) and stops it in the fixture's teardown,
whatever happens. MySQL is the judge (test_faults.ledger): no seat sold
twice, points taken = bookings = payments.

- Under load: a real web server process (granian) on the cluster, threads of
  people joining, polling, holding and paying for two events on two
  different masters; the master of one event's slot is SIGKILLed.
- What asynchronous replication loses: the replica is cut off from its
  master (SIGSTOP, then the master drops the link), writes land on the
  master alone, the master is SIGKILLed and the replica promoted without
  them. Then each person who lost something is checked.
"""

import contextlib
import json
import os
import random
import signal
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field

import pytest
from helpers import Person, assert_error, free_port
from test_faults import (
    HttpClient,
    admit_now,
    child_env,
    come_in,
    kill_group,
    ledger,
    open_sale,
    points_of,
    seat_row,
    spawn,
    tail,
    token_of,
    wait_for,
)

from app import keys, launcher, mirror, waiting_room
from app.extensions import REDIS_UNAVAILABLE, redis_store
from app.models import Booking

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.faults,
    pytest.mark.slow,
    pytest.mark.usefixtures("quick_passwords", "mysql"),
]

REDIS_TIMEOUT = 3.0  # the app's default (config.py)
# The longest a request may take while a master fails over: each Redis call
# tries twice (extensions.connect_redis: one retry after refreshing the slot
# map), each try waits at most REDIS_TIMEOUT, plus the 0.1 s backoff and
# redis-py's 0.25 s pause on CLUSTERDOWN; a request stops at its first
# failing call (503). A SIGKILLed node refuses at once, so this is rarely
# reached; it is what a silent node (a host gone without RST) would cost.
BOUND = 2 * (REDIS_TIMEOUT + 0.25) + 0.1 + 1.0  # + 1 s for a busy 2-core machine
RESUME_WITHIN = 10.0  # seconds after the promotion: new holds and checkouts succeed
SEATS = 40


def replica_of(cluster, master_port: int) -> int:
    """The port of the replica that follows `master_port`."""
    for port in cluster.live_ports():
        info = cluster.node(port).info("replication")
        if info["role"] == "slave" and int(info["master_port"]) == master_port:
            return port
    raise AssertionError(f"no replica follows {master_port}")


def wait_promoted(cluster, key: str, old_master: int, timeout: float = 30) -> int:
    """Wait until another node serves `key`'s slot; returns its port."""

    def promoted():
        with contextlib.suppress(RuntimeError):
            port = cluster.master_of(key)
            if port != old_master and cluster.node(port).cluster("info")["cluster_state"] == "ok":
                return port
        return None

    return wait_for(promoted, timeout, f"a replica to take over {key}'s slot", step=0.05)


def events_on_two_masters(on, cluster, **settings):
    """Two open events whose slots live on two different masters, and the
    port of the first one's master."""
    first, first_seats = open_sale(on, seats_per_row=SEATS, **settings)
    home = cluster.master_of(keys.event(first.id).config)
    while True:
        other, other_seats = open_sale(on, seats_per_row=SEATS, **settings)
        if cluster.master_of(keys.event(other.id).config) != home:
            return (first, first_seats), (other, other_seats), home


# People over real HTTP


class Client(HttpClient):
    """test_faults' cookie-keeping JSON client, answering the headers too."""

    def call(self, method, path, body=None, headers=None, timeout=30.0):
        data = None if body is None else json.dumps(body).encode()
        headers = dict(headers or {})
        if method not in ("GET", "HEAD"):  # the API asks it of every unsafe request
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers=headers
        )
        try:
            with self.opener.open(request, timeout=timeout) as response:
                status, raw, got = response.status, response.read(), response.headers
        except urllib.error.HTTPError as e:
            status, raw, got = e.code, e.read(), e.headers
        return status, json.loads(raw) if raw else None, got


@dataclass
class Call:
    event_id: int
    method: str
    path: str
    started: float
    seconds: float
    status: int
    error: str | None
    retry_after: str | None


@dataclass
class Log:
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    lost_places: int = 0  # polls that said not_in_queue after a join

    def add(self, call: Call):
        with self.lock:
            self.calls.append(call)


class Shopper:
    """One person buying one seat of one event over HTTP, as a careful client
    does: join, poll until admitted, enter, hold a seat, pay; after a 503 wait
    (Retry-After, capped at 1 s here) and send the same request again (the
    same Idempotency-Key for a checkout); after a refusal take the step the
    message asks for (join again, come back through the waiting room, pick
    another seat)."""

    def __init__(self, base: str, email: str, event_id: int, seat_ids: list[int], log: Log):
        self.http, self.event_id, self.seat_ids, self.log = Client(base), event_id, seat_ids, log
        self.email = email
        self.booked = False

    def call(self, method, path, body=None, headers=None):
        started = time.monotonic()
        status, raw, answer_headers = self.http.call(method, path, body, headers)
        error = raw.get("error") if isinstance(raw, dict) else None
        self.log.add(
            Call(
                self.event_id,
                method,
                path,
                started,
                time.monotonic() - started,
                status,
                error,
                answer_headers.get("Retry-After"),
            )
        )
        if status in (429, 503):
            time.sleep(min(1.0, float(answer_headers.get("Retry-After") or 1)))
        return status, raw

    def run(self, stop: threading.Event):
        base = f"/api/events/{self.event_id}"
        assert (
            self.call("POST", "/api/auth/login", {"email": self.email, "password": "password123"})[
                0
            ]
            == 200
        )
        step, token, seat, hold_token, key = "join", None, None, None, None
        for _ in range(600):  # bounded in requests as well as in time
            if stop.is_set() or self.booked:
                return
            if step == "join":
                status, body = self.call("POST", f"{base}/queue")
                step = "poll" if status == 200 else step
            elif step == "poll":
                status, body = self.call("GET", f"{base}/queue")
                if status == 200 and body["status"] == "admitted":
                    step, token = "enter", body["token"]
                elif status == 200:
                    time.sleep(0.3)
                elif status == 404:  # the place is gone: join again, as the message says
                    self.log.lost_places += 1
                    step = "join"
            elif step == "enter":
                status, _ = self.call(
                    "POST", f"{base}/enter", headers={"Authorization": f"Bearer {token}"}
                )
                step = {200: "hold", 401: "poll"}.get(status, step)
            elif step == "hold":
                seat = random.choice(self.seat_ids)
                status, body = self.call("POST", f"{base}/seats/{seat}/hold")
                if status == 201:
                    step, hold_token, key = "pay", body["token"], uuid.uuid4().hex
                elif status == 403:
                    step = "poll"
            elif step == "pay":
                status, body = self.call(
                    "POST",
                    f"{base}/checkout",
                    {"seats": [{"seat_id": seat, "token": hold_token}]},
                    {"Idempotency-Key": key},
                )
                if status == 201:
                    self.booked = True
                elif status == 409:
                    step = "hold"
                elif status == 403:
                    step = "poll"


def admission(on, event_ids, stop: threading.Event, failures: list):
    """The admission tick every 0.2 s, standing in for the RQ job (every
    second in production); a tick that meets the failover just fails."""
    while not stop.is_set():
        with on.app_context():
            for event_id in event_ids:
                try:
                    waiting_room.admit(event_id)
                except REDIS_UNAVAILABLE:
                    failures.append(time.monotonic())
        stop.wait(0.2)


def bookings_of(on, event_id: int) -> int:
    with on.app_context():
        return Booking.select().where(Booking.event == event_id).count()


@contextlib.contextmanager
def web_server(env: dict, log_path):
    """The product's web server (granian) in its own process group; yields its base URL."""
    web = spawn(launcher.web_command(launcher.server_settings(env)), env, log_path)
    base = f"http://127.0.0.1:{env['PORT']}"
    try:

        def up() -> bool:
            assert web.poll() is None, tail(log_path)
            with contextlib.suppress(OSError):
                return Client(base).call("GET", "/healthz", timeout=2)[0] == 200
            return False

        wait_for(up, 30, "the web server to answer", step=0.1)
        yield base
    finally:
        kill_group(web, signal.SIGTERM)


# Documented answers during a failover: success, the refusals the API
# documents for what a person may meet (docs/API.md), or 503 + Retry-After.
EXPECTED = {
    200: None,
    201: None,
    401: {"invalid_token"},
    403: {"not_entered"},
    404: {"not_in_queue"},
    409: {"seat_taken", "seat_booked", "hold_expired", "hold_stale", "hold_taken", "lease_expired"},
    429: {"rate_limited", "too_many_requests"},
    503: {"unavailable"},
}


def test_a_master_sigkilled_mid_sale_is_seconds_of_503_and_the_sale_goes_on(
    app, cluster, make_app, make_user, database_url, tmp_path
):
    """SIGKILL the master of event A's slot while people wait, poll, hold
    and pay. While its replica takes over, A's requests answer 503 with
    Retry-After, never 500 and never slower than BOUND; event B, on another
    master, keeps answering; afterwards A's sale goes on by itself (everyone
    books a seat) and MySQL shows no seat sold twice."""
    papp = make_app(REDIS_URL=cluster.url)
    (a, a_seats), (b, b_seats), home = events_on_two_masters(papp, cluster, admit_rate=3)
    log = Log()
    crowd = [(a.id, a_seats)] * 24 + [(b.id, b_seats)] * 8
    shoppers = []
    env = child_env(
        REDIS_URL=cluster.url,
        DATABASE_URL=database_url,
        SECRET_KEY="failover",
        JWT_SECRET="failover-jwt-secret-that-is-32-bytes-long",
        PORT=str(free_port()),
        WEB_WORKERS="2",
        WEB_THREADS="16",
    )
    stop, tick_failures = threading.Event(), []
    threads = []
    with web_server(env, tmp_path / "web.log") as base:
        try:
            for event_id, seat_ids in crowd:
                shoppers.append(Shopper(base, make_user().email, event_id, seat_ids, log))
            threads = [threading.Thread(target=s.run, args=(stop,), daemon=True) for s in shoppers]
            threads.append(
                threading.Thread(
                    target=admission, args=(papp, [a.id, b.id], stop, tick_failures), daemon=True
                )
            )
            for thread in threads:
                thread.start()
            wait_for(lambda: bookings_of(papp, a.id) >= 3, 60, "the sale to be under way", 0.1)
            killed_at = time.monotonic()
            cluster.kill(home)
            new_master = wait_promoted(cluster, keys.event(a.id).config, home)
            promoted_at = time.monotonic()
            wait_for(lambda: all(s.booked for s in shoppers), 90, "everyone to book", 0.2)
        finally:
            stop.set()
            for thread in threads:
                thread.join(40)
        assert not any(t.is_alive() for t in threads), "a shopper never finished"

    calls = log.calls
    for c in calls:
        what = f"{c.method} {c.path}: {c.status} {c.error}"
        assert c.status in EXPECTED, what
        assert EXPECTED[c.status] is None or c.error in EXPECTED[c.status], what
        assert c.status != 503 or c.retry_after, what
    slowest = max(calls, key=lambda c: c.seconds)
    assert slowest.seconds < BOUND, slowest

    during = [c for c in calls if killed_at <= c.started <= promoted_at]
    unavailable = [c for c in calls if c.status == 503]
    a_503 = [c for c in unavailable if c.event_id == a.id]
    assert a_503, "the kill never reached a request: the test tested nothing"
    first_503, last_503 = a_503[0].started, max(c.started + c.seconds for c in a_503)
    b_during = [c for c in during if c.event_id == b.id]
    b_503 = [c for c in unavailable if c.event_id == b.id]
    assert b_during and all(c.status != 503 for c in b_during), [
        (c.path, c.status) for c in b_during if c.status == 503
    ]

    def first_success(kind: str) -> float:
        return min(
            c.started + c.seconds - promoted_at
            for c in calls
            if c.event_id == a.id
            and c.started > promoted_at
            and c.path.endswith(kind)
            and c.status == 201
        )

    resumed_hold, resumed_checkout = first_success("/hold"), first_success("/checkout")
    assert resumed_hold < RESUME_WITHIN and resumed_checkout < RESUME_WITHIN

    books = ledger(app)  # no seat sold twice; points = bookings = payments
    assert books["bookings"] == len(shoppers)  # one booking each, retries included
    buyers = [holder for holder, _ in books["sold"].values()]
    assert len(buyers) == len(set(buyers)) == len(shoppers)
    print(
        f"\nfailover of {home} (-> {new_master}): promoted {promoted_at - killed_at:.1f} s "
        f"after the SIGKILL; {len(calls)} requests, {len(during)} during the failover; "
        f"{len(unavailable)} x 503 ({len(a_503)} on event A, from {first_503 - killed_at:.1f} s "
        f"to {last_503 - killed_at:.1f} s after the kill; {len(b_503)} on event B), "
        f"500s: 0; slowest {slowest.seconds:.2f} s ({slowest.method} {slowest.path}); "
        f"event B during the failover: {len(b_during)} requests, none 503; "
        f"first hold {resumed_hold:.1f} s and checkout {resumed_checkout:.1f} s after the "
        f"promotion; admission ticks failed: {len(tick_failures)}; places lost: "
        f"{log.lost_places}; bookings {books['bookings']}, double bookings 0"
    )


# What asynchronous replication loses


def settled(call, seconds: float = 15):
    """call() again while it answers 503 (the client finding the new master)."""
    deadline = time.monotonic() + seconds
    while (response := call()).status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.2)
    return response


def test_writes_the_promoted_replica_never_got_are_repaired_or_told(
    app, cluster, make_app, make_user, login
):
    """The replica is cut off from its master (SIGSTOP, and the master drops
    the link so nothing more is even sent), then five writes land on the
    master alone: a join, a hold, an entrance, a sale, and the event's config
    (copied back from MySQL by the join). SIGKILL the master, SIGCONT the
    replica: it is promoted without any of them. Each person is then told
    clearly, or repaired from MySQL, and no seat is sold twice."""
    papp = make_app(REDIS_URL=cluster.url)
    event, ids = open_sale(papp)
    eid, k, r = event.id, keys.event(event.id), redis_store.client
    master = cluster.master_of(k.config)
    replica = replica_of(cluster, master)

    def person() -> Person:
        user = make_user()
        return Person(user, login(papp.test_client(), user))

    holder, buyer, entrant, waiter, joiner = (person() for _ in range(5))
    come_in(papp, [holder, buyer], eid)
    assert entrant.join(eid).status_code == 200
    admit_now(papp, eid)
    token = entrant.poll(eid).get_json()["token"]  # admitted, not through the entrance yet
    assert waiter.join(eid).get_json()["position"] == 1
    t_buyer = token_of(buyer.hold(eid, ids[1]))
    r.delete(k.config)  # the join below copies it back from MySQL: on the master alone
    assert cluster.node(master).execute_command("WAIT", 1, 5000) == 1  # the replica has all so far

    os.kill(cluster.procs[replica].pid, signal.SIGSTOP)
    try:
        cluster.node(master).client_kill_filter(_type="replica")
        assert joiner.join(eid).get_json()["position"] == 2
        t_hold = token_of(holder.hold(eid, ids[0]))
        assert entrant.enter(eid, token).status_code == 200
        sale = buyer.checkout(eid, [(ids[1], t_buyer)], key="buyer")
        assert sale.status_code == 201, sale.get_json()
        cluster.kill(master)
    finally:
        os.kill(cluster.procs[replica].pid, signal.SIGCONT)
    assert wait_promoted(cluster, k.config, master) == replica

    # The promoted replica really has none of the five writes.
    promoted = cluster.node(replica)
    assert not promoted.exists(k.config)
    assert promoted.zscore(k.queue, joiner.id) is None
    assert promoted.hget(k.seats, ids[0]) is None
    assert promoted.hget(k.entrance(entrant.id), "session") is None
    assert promoted.hget(k.seats, ids[1]).startswith(f"held:{buyer.id}:{t_buyer}:")

    # The lost join: told, with the way back (join again, at the back).
    lost = assert_error(settled(lambda: joiner.poll(eid)), 404, "not_in_queue")
    assert "join it first" in lost["message"]
    page = joiner.client.get(f"/events/{eid}/waiting/status", headers={"HX-Request": "true"})
    assert page.status_code == 200 and "You are not in this queue" in page.get_data(as_text=True)
    assert f'action="/events/{eid}/join"' in page.get_data(as_text=True)
    assert r.hget(k.config, "state") == "open"  # the lost config: reloaded from MySQL
    assert waiter.poll(eid).get_json()["position"] == 1  # a place replicated earlier is kept
    assert joiner.join(eid).get_json()["position"] == 2

    # The lost hold: checkout refused with the reason; nothing charged; the
    # seat is free again and its next hold outranks the lost token (MySQL's).
    refused = assert_error(holder.checkout(eid, [(ids[0], t_hold)]), 409, "hold_expired")
    assert "expired; please pick it again" in refused["message"]
    assert points_of(holder.id) == app.config["STARTING_POINTS"]
    t_again = token_of(holder.hold(eid, ids[0]))
    assert t_again > t_hold and seat_row(ids[0])[3] == t_again

    # The lost entrance: the booking pages refuse and send the person back
    # to the waiting room, whose next poll lets them in again.
    refused = assert_error(entrant.seat_map(eid), 403, "not_entered")
    assert "come through the waiting room" in refused["message"]
    assert entrant.client.get(f"/events/{eid}/seats").status_code == 302
    back = entrant.client.get(f"/events/{eid}/waiting/status", headers={"HX-Request": "true"})
    assert back.headers["HX-Redirect"] == f"/events/{eid}/seats"  # in again, to the seats
    assert entrant.seat_map(eid).status_code == 200

    # The lost sale: MySQL keeps it; the buyer's retry gets the same receipt;
    # the seat cannot be held by anyone, and the reconcile job marks it sold.
    again = buyer.checkout(eid, [(ids[1], t_buyer)], key="buyer")
    assert again.status_code == 200 and again.get_json() == sale.get_json()
    assert holder.hold(eid, ids[1]).status_code == 409
    with papp.app_context():
        mirror.reconcile(eid)
    assert r.hget(k.seats, ids[1]) == f"booked:{buyer.id}:{t_buyer}"
    assert_error(holder.hold(eid, ids[1]), 409, "seat_booked")

    books = ledger(app)
    assert books["sold"] == {ids[1]: (buyer.id, t_buyer)} and books["bookings"] == 1
    print("\nlost on failover and put right: a join, a hold, an entrance, a sale, the config")
