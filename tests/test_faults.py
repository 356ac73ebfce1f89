"""Faults against the real servers (docs/RELIABILITY.md): a failure never sells a
seat twice, never takes points without a seat, and never lets anyone skip the
waiting room.

Every test breaks something for real, then reads MySQL directly (`ledger`):
no seat has two live booking rows, points taken == sum(bookings.amount) ==
sum(payments.amount), every booking has its payment and its seats, and a seat
is booked in `seats` exactly when it has a live booking row of its holder.

The shared servers are never flushed, stopped or killed. Redis losing its data
or restarting is a private redis-server started here on its own port. Redis or
MariaDB "unreachable" or "down" is a small TCP proxy (a thread of this process,
loopback only) between the app and the server, which the test can cut, stall
or make refuse connections. A killed MySQL connection is the app's own one.
Everything a test starts (servers, proxies, processes) it stops in `finally`
or in a fixture's teardown; processes run in their own process group and the
group is killed.
"""

import contextlib
import http.cookiejar
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pymysql
import pytest
from conftest import MYSQL, MYSQL_DB
from flask.testing import FlaskClient
from helpers import Person, assert_error, free_port, in_background, redis_now_ms, seed_queue
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

import jobs
from app import checkout, events, keys, launcher, mirror, waiting_room
from app.errors import AppError
from app.extensions import redis_store
from app.models import Seat
from jobs import JSONJob
from jobs.commands import rq_connection
from jobs.schedule import PERIODIC, ensure_schedules, make_scheduler

# The test app's JWT_SECRET is short on purpose; pyjwt warns about it.

ROOT = Path(__file__).resolve().parent.parent
PRICE = 1000
QUICK = 8.0  # "answers within a few seconds": generous on a busy 2-core machine

pytestmark = pytest.mark.usefixtures("quick_passwords")


# The ledger, read straight from MySQL


def mysql_connect(autocommit: bool = True):
    return pymysql.connect(database=MYSQL_DB, autocommit=autocommit, connect_timeout=5, **MYSQL)


def ledger(app) -> dict:
    """Assert the money and seat invariants in MySQL; return what was sold."""
    start = app.config["STARTING_POINTS"]
    conn = mysql_connect()
    try:
        with conn.cursor() as cur:

            def one(sql, *args):
                cur.execute(sql, args)
                return cur.fetchone()

            cur.execute(
                "SELECT seat_id, COUNT(*) FROM booking_seats WHERE live = 1 "
                "GROUP BY seat_id HAVING COUNT(*) > 1"
            )
            doubles = cur.fetchall()
            taken, poorest = one(
                "SELECT COALESCE(SUM(%s - points), 0), MIN(points) FROM users", start
            )
            bookings, booked = one("SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM bookings")
            payments, paid = one("SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM payments")
            (unpaid,) = one(
                "SELECT COUNT(*) FROM bookings b LEFT JOIN payments p ON p.booking_id = b.id "
                "AND p.user_id = b.user_id AND p.amount = b.amount WHERE p.id IS NULL"
            )
            (mispriced,) = one(
                "SELECT COUNT(*) FROM bookings b LEFT JOIN (SELECT booking_id, SUM(price) AS "
                "total FROM booking_seats GROUP BY booking_id) s ON s.booking_id = b.id "
                "WHERE s.total IS NULL OR s.total <> b.amount"
            )
            (mismatched,) = one(
                "SELECT COUNT(*) FROM seats s "
                "LEFT JOIN booking_seats bs ON bs.seat_id = s.id AND bs.live = 1 "
                "LEFT JOIN bookings b ON b.id = bs.booking_id "
                "WHERE (s.status = 'booked') <> (bs.id IS NOT NULL) "
                "OR (bs.id IS NOT NULL AND NOT (s.holder_id <=> b.user_id))"
            )
            cur.execute("SELECT id, holder_id, fencing_token FROM seats WHERE status = 'booked'")
            sold = {row[0]: (row[1], row[2]) for row in cur.fetchall()}
    finally:
        conn.close()
    assert doubles == (), f"seats sold twice: {doubles}"
    assert int(taken) == int(booked) == int(paid), (taken, booked, paid)
    assert bookings == payments and unpaid == 0, (bookings, payments, unpaid)
    assert mispriced == 0 and mismatched == 0, (mispriced, mismatched)
    assert poorest is None or poorest >= 0
    return {"bookings": bookings, "taken": int(taken), "sold": sold}


def points_of(user_id: int) -> int:
    conn = mysql_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT points FROM users WHERE id = %s", (user_id,))
            return cur.fetchone()[0]
    finally:
        conn.close()


def seat_row(seat_id: int) -> tuple:
    conn = mysql_connect()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT status, holder_id, version, fencing_token FROM seats WHERE id = %s",
                (seat_id,),
            )
            return cur.fetchone()
    finally:
        conn.close()


# Rebinding the app's global singletons, private servers, proxies, processes


@pytest.fixture
def make_app(make_app, mysql):
    """conftest's make_app; these faults need MySQL."""
    return make_app


def _hard_close(sock: socket.socket, reset: bool = False) -> None:
    with contextlib.suppress(OSError):
        if reset:  # an RST, as from a crashed or firewalled server
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class TcpProxy:
    """A loopback TCP proxy in a thread, under the test's control.

    mode "pass" forwards; "refuse" resets every new connection; "stall" accepts
    and forwards nothing either way (a silent network), on new and existing
    connections. cut() resets every open connection (data held by a stall is
    dropped). hold_on(marker) holds the first client packet that contains the
    marker until release(): the test can stop the app exactly there.
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        self.mode = "pass"
        self.closed = False
        self.marker: bytes | None = None
        self.held, self.released = threading.Event(), threading.Event()
        self.connections = 0
        self._socks: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True, name="proxy-accept").start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.mode == "refuse" or self.closed:
                _hard_close(client, reset=True)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _hard_close(client, reset=True)
                continue
            with self._lock:
                self._socks.update((client, upstream))
                self.connections += 1
            for src, dst, outbound in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(
                    target=self._pump, args=(src, dst, outbound), daemon=True, name="proxy-pump"
                ).start()

    def _pump(self, src, dst, outbound):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                while self.mode == "stall" and not self.closed:
                    time.sleep(0.01)
                if outbound and self.marker and self.marker in data:
                    self.marker = None
                    self.held.set()
                    self.released.wait(60)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                _hard_close(sock)
            with self._lock:
                self._socks.difference_update((src, dst))

    def hold_on(self, marker: bytes):
        self.held.clear()
        self.released.clear()
        self.marker = marker

    def release(self):
        self.marker = None
        self.released.set()

    def cut(self):
        with self._lock:
            socks, self._socks = list(self._socks), set()
        for sock in socks:
            _hard_close(sock, reset=True)

    def close(self):
        self.closed = True
        self.release()
        _hard_close(self.listener)
        self.cut()


@pytest.fixture
def proxy():
    made = []

    def make(target_port: int) -> TcpProxy:
        made.append(TcpProxy(target_port))
        return made[-1]

    yield make
    for p in made:
        p.close()


def spawn(args, env, log: Path) -> subprocess.Popen:
    """A child in its own process group (so the whole group can be signalled),
    its output appended to `log`."""
    with open(log, "ab") as out:
        return launcher.start(
            args, env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


def kill_group(proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
    """Signal the child's whole process group (continued first if stopped), and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGCONT)
        os.killpg(proc.pid, sig)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else ""


def child_env(**extra) -> dict:
    # Crowds log in from one address at once: roomy account limits. Plain
    # http on loopback: no Secure cookies (they would never come back).
    roomy = {"LOGIN_LIMIT": "10000/minute", "REGISTER_LIMIT": "10000/minute"}
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "WARNING",
        "PASSWORD_HASH_SLOTS": "16",
        "SESSION_COOKIE_SECURE": "0",
        **roomy,
        **extra,
    }


def wait_for(condition, timeout: float, what: str, step: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(step)


# People (in-process test clients) and the sale


@pytest.fixture
def people(make_user, login):
    """n new accounts, each logged in through the real endpoint of `on` (an app)."""

    def make(on, n):
        return [
            Person(user, login(on.test_client(), user)) for user in [make_user() for _ in range(n)]
        ]

    return make


def open_sale(on, seats_per_row=6, **settings):
    """An open event (one row, PRICE points a seat) on app `on`; returns (event, seat ids)."""
    values = {"admit_rate": 1_000, "max_active": 10_000, **settings}
    with on.app_context():
        event = events.create(
            "Fault show",
            [{"name": "A", "rows": 1, "seats_per_row": seats_per_row, "price": PRICE}],
            **values,
        )
        events.update(event.id, admission="open")
        ids = [s.id for s in Seat.select(Seat.id).where(Seat.event == event.id).order_by(Seat.id)]
    return event, ids


def admit_now(on, event_id) -> int:
    """One admission tick that admits a whole second's rate."""
    with on.app_context():
        redis_store.client.hdel(keys.event(event_id).tick, "last_ms", "carry")
        return waiting_room.admit(event_id)["admitted"]


def enter_admitted(persons, event_id):
    for person in persons:
        status = person.poll(event_id).get_json()
        assert status["status"] == "admitted", status
        response = person.enter(event_id, status["token"])
        assert response.status_code == 200, response.get_json()


def come_in(on, persons, event_id):
    """Join over HTTP, one admission tick, poll for the token and enter with it."""
    for person in persons:
        assert person.join(event_id).status_code == 200
    admit_now(on, event_id)
    enter_admitted(persons, event_id)
    return persons


def token_of(response) -> int:
    assert response.status_code == 201, (response.status_code, response.get_json())
    return response.get_json()["token"]


def finished(thread, result, timeout=30.0):
    thread.join(timeout)
    assert not thread.is_alive(), "the request never finished"
    assert "error" not in result, result
    return result["value"]


@pytest.fixture
def stall(monkeypatch):
    """Stop chosen buyers' checkouts between step 1 (Redis: seats now being paid
    for) and step 2 (the MySQL transaction) until stall.go(); or, with an
    action, run it there once and go on."""
    real = checkout._book_with_retries
    reached: dict[int, threading.Event] = {}
    actions: dict[int, object] = {}
    go = threading.Event()

    def stalled(event_id, user_id, *args, **kwargs):
        if user_id in reached and not reached[user_id].is_set():
            reached[user_id].set()
            action = actions.pop(user_id, None)
            if action:
                action()
            else:
                assert go.wait(60), "the test never let the stalled buyer go on"
        return real(event_id, user_id, *args, **kwargs)

    class Gate:
        def at(self, user_id, action=None):
            reached[user_id] = threading.Event()
            if action:
                actions[user_id] = action

        def wait(self, user_id, timeout=30.0):
            assert reached[user_id].wait(timeout), f"buyer {user_id} never reached MySQL"

        def go(self):
            go.set()

    monkeypatch.setattr(checkout, "_book_with_retries", stalled)
    yield Gate()
    go.set()  # never leave a thread waiting


# Redis loses everything mid-sale: FLUSHALL, and a real restart


def schedules_present(scheduler) -> bool:
    listed = {m.decode() for m in scheduler.connection.zrange(scheduler.scheduled_jobs_key, 0, -1)}
    return set(PERIODIC) <= listed and all(
        JSONJob.exists(job_id, connection=scheduler.connection) for job_id in PERIODIC
    )


@pytest.mark.faults
@pytest.mark.parametrize("loss", ["flushall", "restart"])
def test_redis_loses_everything_mid_sale(app, loss, private_redis, make_app, people, stall):
    """Redis forgets everything while one seat is sold, one held and two are
    being paid for. Afterwards: sold seats stay sold, a payment that raced the
    loss either books its seat or charges nothing, everyone gets a clear answer
    and can come back through the waiting room, and the event, its seat states,
    the fence counters, the Lua scripts and the job schedules come back by
    themselves."""
    papp = make_app(REDIS_URL=private_redis.url)
    event, ids = open_sale(papp)
    k = keys.event(event.id)
    a, b, c1, c2, d = come_in(papp, people(papp, 5), event.id)
    r = redis_store.client

    t_a = token_of(a.hold(event.id, ids[0]))
    assert a.checkout(event.id, [(ids[0], t_a)]).status_code == 201  # sold before the loss
    t_b = token_of(b.hold(event.id, ids[1]))  # a hold the loss will take away
    old_token = b.poll(event.id).get_json()["token"]  # B's admission token, still unexpired
    t_c1 = token_of(c1.hold(event.id, ids[2]))
    t_c2 = token_of(c2.hold(event.id, ids[3]))
    stall.at(c1.id)
    stall.at(c2.id)
    pay_c1 = in_background(lambda: c1.checkout(event.id, [(ids[2], t_c1)], key="c1"))
    pay_c2 = in_background(lambda: c2.checkout(event.id, [(ids[3], t_c2)], key="c2"))
    stall.wait(c1.id)
    stall.wait(c2.id)
    assert r.hget(k.seats, ids[2]).startswith(f"paying:{c1.id}:{t_c1}:")
    assert r.hget(k.seats, ids[3]).startswith(f"paying:{c2.id}:{t_c2}:")
    rq = rq_connection(private_redis.url)
    scheduler = make_scheduler(rq, papp.config["RQ_QUEUE"], 1, papp.config)
    scheduler.check_every = 0  # check on every pass (the default is every 5 s)
    ensure_schedules(scheduler, papp.config)
    assert schedules_present(scheduler)

    raw = private_redis.client()
    shas = [redis_store.scripts.hold.sha, redis_store.scripts.pay_begin.sha]
    if loss == "flushall":
        raw.flushall()  # our own server
    else:
        private_redis.stop()
        started = time.monotonic()
        down = b.poll(event.id)  # while it is down: a clear 503, at once
        assert time.monotonic() - started < QUICK
        assert_error(down, 503, "unavailable")
        assert down.headers["Retry-After"]
        private_redis.start()  # no persistence: it comes back empty
        raw = private_redis.client()
        assert raw.script_exists(*shas) == [False, False]  # the scripts are gone too
    assert raw.dbsize() == 0

    # Everybody's place went with it: clear answers, and nobody gets in unchecked.
    assert "join it first" in assert_error(b.poll(event.id), 404, "not_in_queue")["message"]
    assert_error(b.hold(event.id, ids[1]), 403, "not_entered")
    assert_error(b.checkout(event.id, [(ids[1], t_b)]), 403, "not_entered")
    assert_error(b.seat_map(event.id), 403, "not_entered")
    assert_error(b.enter(event.id, old_token), 401, "invalid_token")  # no way around the queue

    # The first script call finds the event gone and brings it back from MySQL,
    # with its sold seats and the fencing tokens MySQL knows.
    assert d.join(event.id).get_json()["status"] == "waiting"
    assert r.hget(k.config, "state") == "open"
    assert r.hget(k.seats, ids[0]) == f"booked:{a.id}:{t_a}"
    assert int(r.hget(k.fence, ids[1])) >= t_b and int(r.hget(k.fence, ids[3])) >= t_c2
    assert b.join(event.id).get_json()["status"] == "waiting"

    # The schedules come back by themselves, and their jobs let the people in.
    scheduler.enqueue_jobs()  # one pass of `flask scheduler`'s loop
    assert schedules_present(scheduler)
    jobs._app = papp  # the worker's jobs use this app (no rebinding)
    queue = Queue(papp.config["RQ_QUEUE"], connection=rq, serializer=JSONSerializer)
    assert set(PERIODIC) <= set(queue.job_ids)
    assert SimpleWorker([queue], connection=rq, serializer=JSONSerializer).work(
        burst=True, with_scheduler=False
    )
    for job_id in PERIODIC:
        job = JSONJob.fetch(job_id, connection=rq)
        assert job.is_finished, (job_id, job.get_status(), job.latest_result())
    admitted = JSONJob.fetch("ticketdrop-admit", connection=rq).return_value()
    assert admitted[str(event.id)]["admitted"] == 2, admitted
    enter_admitted([b, d], event.id)
    if loss == "restart":
        assert all(raw.script_exists(*shas))  # loaded again by themselves

    # D takes the seat C2 was paying for when Redis forgot it: MySQL learns
    # D's newer token, so C2's payment must fail and charge nothing.
    t_d = token_of(d.hold(event.id, ids[3]))
    assert t_d > t_c2 and seat_row(ids[3])[3] == t_d
    stall.go()
    assert finished(*pay_c1).status_code == 201  # nobody newer: C1 gets the seat it paid for
    assert_error(finished(*pay_c2), 409, "hold_stale")
    assert points_of(c2.id) == app.config["STARTING_POINTS"]
    assert r.hget(k.seats, ids[2]) == f"booked:{c1.id}:{t_c1}"
    assert r.hget(k.seats, ids[3]).startswith(f"held:{d.id}:{t_d}:")  # C2 left D's hold alone

    # No booked seat sells again; the lost hold can be taken again, with a newer token.
    assert_error(b.hold(event.id, ids[0]), 409, "seat_booked")
    assert_error(b.hold(event.id, ids[2]), 409, "seat_booked")
    t_b2 = token_of(b.hold(event.id, ids[1]))
    assert t_b2 > t_b
    assert b.checkout(event.id, [(ids[1], t_b2)]).status_code == 201
    assert d.checkout(event.id, [(ids[3], t_d)]).status_code == 201

    books = ledger(app)
    assert books["sold"] == {
        ids[0]: (a.id, t_a),
        ids[1]: (b.id, t_b2),
        ids[2]: (c1.id, t_c1),
        ids[3]: (d.id, t_d),
    }
    assert books["bookings"] == 4 and books["taken"] == 4 * PRICE
    states = r.hgetall(k.seats)
    assert {int(s) for s, v in states.items() if v.startswith("booked:")} == set(books["sold"])


# Redis unreachable: a clear 503 within seconds, and the waiting room fails closed


def clone(client: FlaskClient) -> FlaskClient:
    """Another test client with the same session cookie (one per thread)."""
    twin = client.application.test_client()
    cookie = client.get_cookie("session")
    if cookie is not None:
        twin.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)
    return twin


@pytest.mark.faults
@pytest.mark.parametrize("outage", ["refused", "silent"])
def test_redis_unreachable_is_a_quick_clear_503_and_nobody_gets_in(
    app, outage, private_redis, proxy, make_app, people
):
    """Redis refuses connections (crashed) or stops answering (a silent network):
    every page and API call that needs it answers 503 with a message within a
    few seconds (3 s socket timeout in the app, redis-py's 5 s in the rate
    limiter), never a 500 or a hang; nobody reaches the booking pages or the
    entrance unchecked; and nothing is lost for when Redis is back."""
    link = proxy(private_redis.port)
    papp = make_app(REDIS_URL=f"redis://127.0.0.1:{link.port}/0", RATELIMIT_ENABLED=True)
    event, ids = open_sale(papp)
    eid = event.id
    k = keys.event(eid)
    inside, admitted, waiting, newcomer = people(papp, 4)
    come_in(papp, [inside], eid)
    t_in = token_of(inside.hold(eid, ids[0]))
    assert admitted.join(eid).status_code == 200
    admit_now(papp, eid)
    token = admitted.poll(eid).get_json()["token"]  # admitted, not yet through the entrance
    assert waiting.join(eid).get_json()["status"] == "waiting"
    raw = private_redis.client(decode_responses=True)
    before = {
        "seats": raw.hgetall(k.seats),
        "queue": raw.zrange(k.queue, 0, -1),
        "active": raw.zrange(k.active, 0, -1),
        "entry": raw.hgetall(k.entrance(admitted.id)),
    }
    assert before["queue"] == [str(waiting.id)] and "session" not in before["entry"]

    seats_form = {"data": {"seat": ids[1]}}
    hx = {"headers": {"HX-Request": "true"}}
    calls = [  # (who, method, path, kwargs, what the body must say)
        (None, "get", "/api/events", {}, "json"),
        (newcomer, "post", f"/api/events/{eid}/queue", {}, "json"),
        (waiting, "get", f"/api/events/{eid}/queue", {}, "json"),
        (waiting, "get", f"/api/events/{eid}/seats", {}, "json"),
        (
            admitted,
            "post",
            f"/api/events/{eid}/enter",
            {"headers": {"Authorization": f"Bearer {token}"}},
            "json",
        ),
        (inside, "get", f"/api/events/{eid}/seats", {}, "json"),
        (inside, "post", f"/api/events/{eid}/seats/{ids[1]}/hold", {}, "json"),
        (
            inside,
            "post",
            f"/api/events/{eid}/checkout",
            {
                "json": {"seats": [{"seat_id": ids[0], "token": t_in}]},
                "headers": {"Idempotency-Key": "during-outage"},
            },
            "json",
        ),
        (None, "get", "/", {}, "page"),
        (None, "get", f"/events/{eid}", {}, "page"),
        (admitted, "get", f"/events/{eid}/waiting/status", {}, "page"),
        (admitted, "get", f"/events/{eid}/waiting/status", hx, "fragment"),
        (waiting, "get", f"/events/{eid}/seats", {}, "page"),
        (inside, "get", f"/events/{eid}/seats", {}, "page"),
        (inside, "get", f"/events/{eid}/seats/panel", hx, "fragment"),
        (inside, "post", f"/events/{eid}/seats/hold", seats_form, "page"),
        (inside, "post", f"/events/{eid}/checkout", {"data": {"idempotency_key": "page"}}, "page"),
        (None, "get", "/readyz", {}, "ready"),
    ]
    if outage == "refused":
        link.mode = "refuse"
        link.cut()
    else:
        link.mode = "stall"
    answers = [None] * len(calls)

    def call(i):
        who, method, path, kwargs, _ = calls[i]
        client = clone(who.client) if who else papp.test_client()
        started = time.monotonic()
        response = getattr(client, method)(path, **kwargs)
        answers[i] = (response, time.monotonic() - started)

    threads = [threading.Thread(target=call, args=(i,), daemon=True) for i in range(len(calls))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads), "a request hung"
    finally:
        link.cut()  # drop whatever a stall held back: none of it may reach Redis
        link.mode = "pass"

    for (_, method, path, _, kind), (response, seconds) in zip(calls, answers, strict=True):
        what = f"{method.upper()} {path} ({kind})"
        assert seconds < QUICK, f"{what} took {seconds:.1f} s"
        assert response.status_code == 503, (what, response.status_code, response.data[:200])
        assert kind == "ready" or response.headers.get("Retry-After"), what
        assert "HX-Redirect" not in response.headers and "Location" not in response.headers, what
        text = response.get_data(as_text=True)
        if kind == "json":
            assert response.get_json()["error"] == "unavailable", what
            assert "try again in a moment" in response.get_json()["message"], what
        elif kind == "ready":
            assert response.get_json()["redis"].startswith("error"), what
        else:
            assert "unavailable right now" in text and "try again" in text, what
            assert "booking-panel" not in text and "seat-" not in text, what
            if kind == "fragment":
                assert response.headers["HX-Retarget"] == "#messages", what
    slowest = max(seconds for _, seconds in answers)
    print(f"\nRedis {outage}: {len(calls)} requests answered 503, slowest in {slowest:.1f} s")
    if outage == "silent":
        assert slowest > 2.5  # the answers did wait for the timeouts: Redis really was silent
    assert papp.test_client().get("/healthz").status_code == 200  # the process itself is alive

    # Redis saw none of it: the hold, the queue, the admission all as they were.
    after = {
        "seats": raw.hgetall(k.seats),
        "queue": raw.zrange(k.queue, 0, -1),
        "active": raw.zrange(k.active, 0, -1),
        "entry": raw.hgetall(k.entrance(admitted.id)),
    }
    assert after == before
    assert ledger(app)["bookings"] == 0

    # Back: everything carries on where it was.
    assert waiting.poll(eid).get_json()["position"] == 1
    assert admitted.enter(eid, token).status_code == 200
    paid = inside.checkout(eid, [(ids[0], t_in)], key="during-outage")
    assert paid.status_code == 201, paid.get_json()
    books = ledger(app)
    assert books["sold"] == {ids[0]: (inside.id, t_in)} and books["taken"] == PRICE


@pytest.mark.faults
def test_redis_gone_right_after_the_commit_the_sale_stands_and_the_seat_stays_sold(
    app, mysql, private_redis, proxy, make_app, people, monkeypatch
):
    """Redis becomes unreachable between the MySQL commit and step 3
    (pay_finish): the buyer still gets the receipt (the database decided), and
    when Redis is back with the seat still marked "being paid for", nobody can
    hold it after the lease runs out; the reconcile job marks it sold."""
    link = proxy(private_redis.port)
    papp = make_app(REDIS_URL=f"redis://127.0.0.1:{link.port}/0")
    monkeypatch.setitem(papp.config, "CHECKOUT_LEASE", 1)
    event, ids = open_sale(papp)
    k = keys.event(event.id)
    buyer, other = come_in(papp, people(papp, 2), event.id)
    seat = ids[0]
    t = token_of(buyer.hold(event.id, seat))
    real = checkout._book_with_retries

    def book_then_lose_redis(*args, **kwargs):
        receipt = real(*args, **kwargs)  # committed
        link.mode = "refuse"
        link.cut()
        return receipt

    monkeypatch.setattr(checkout, "_book_with_retries", book_then_lose_redis)
    response = buyer.checkout(event.id, [(seat, t)], key="after-commit")
    assert response.status_code == 201, response.get_json()
    monkeypatch.setattr(checkout, "_book_with_retries", real)
    link.mode = "pass"
    raw = private_redis.client(decode_responses=True)
    state = raw.hget(k.seats, seat)
    assert state.startswith(f"paying:{buyer.id}:{t}:")  # step 3 never happened
    lease = int(state.split(":")[3])
    wait_for(lambda: redis_now_ms(raw) > lease + 50, 20, "the lease to run out")

    assert_error(other.hold(event.id, seat), 409, "seat_booked")  # MySQL says sold
    assert raw.hget(k.seats, seat) == f"booked:{buyer.id}:{t}"  # and Redis learned it
    with papp.app_context():
        assert mirror.reconcile(event.id)["changed"] == 0
    books = ledger(app)
    assert books["sold"] == {seat: (buyer.id, t)} and books["taken"] == PRICE


# MySQL: a connection killed mid-checkout, and the server going away


def probe_locked(conn, seat_ids) -> bool:
    """True if another transaction holds a row lock on any of these seats."""
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        try:
            marks = ", ".join(["%s"] * len(seat_ids))
            cur.execute(
                f"SELECT id FROM seats WHERE id IN ({marks}) FOR UPDATE NOWAIT", list(seat_ids)
            )
            return False
        except pymysql.err.OperationalError as e:
            if e.args[0] not in (1205, 3572):  # lock wait / NOWAIT refused
                raise
            return True
        finally:
            conn.rollback()


@pytest.mark.faults
def test_mysql_connection_killed_mid_checkout_rolls_back_and_the_retry_books_once(
    app, mysql, monkeypatch, people
):
    """The checkout's transaction has locked its seat rows and waits for the
    user row (another connection holds it) when its connection is KILLed: the
    whole transaction rolls back, the buyer gets a retryable 503 and the hold
    back, and a retry with the same Idempotency-Key books exactly once."""
    monkeypatch.setitem(app.config, "LOCK_WAIT_TIMEOUT", 30)  # the kill comes first
    event, ids = open_sale(app)
    (buyer,) = come_in(app, people(app, 1), event.id)
    k = keys.event(event.id)
    items = [
        (ids[1], token_of(buyer.hold(event.id, ids[1]))),
        (ids[4], token_of(buyer.hold(event.id, ids[4]))),
    ]
    rows_before = {s: seat_row(s) for s, _ in items}
    holds_before = {s: redis_store.client.hget(k.seats, s) for s, _ in items}

    locker, watcher, prober = mysql_connect(False), mysql_connect(), mysql_connect(False)
    try:
        with locker.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", (buyer.id,))
        pay = in_background(lambda: buyer.checkout(event.id, items, key="killed"))

        def waiting_checkout():
            # PROCESSLIST, not INNODB_TRX: InnoDB refreshes that table only after
            # 100 ms without readers, and other sessions on the server read it too.
            with watcher.cursor() as cur:
                cur.execute(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s "
                    "AND ID <> %s AND INFO LIKE %s",
                    (MYSQL_DB, locker.thread_id(), "%FROM `users`%FOR UPDATE"),
                )
                row = cur.fetchone()
                return row and row[0]

        victim = wait_for(waiting_checkout, 20, "the checkout to wait for the user row")
        assert probe_locked(prober, [s for s, _ in items])  # it holds the seat locks now
        with watcher.cursor() as cur:
            cur.execute("KILL %s", (victim,))  # the app's own connection, nobody else's
        response = finished(*pay)
        body = assert_error(response, 503, "unavailable")
        assert "try again" in body["message"] and int(response.headers["Retry-After"]) >= 1

        # Rolled back whole: no lock left, no row changed, nothing sold or charged.
        assert not probe_locked(prober, [s for s, _ in items])
        assert {s: seat_row(s) for s, _ in items} == rows_before
        assert points_of(buyer.id) == app.config["STARTING_POINTS"]
        assert ledger(app)["bookings"] == 0
        assert {s: redis_store.client.hget(k.seats, s) for s, _ in items} == holds_before
    finally:
        locker.rollback()
        for conn in (locker, watcher, prober):
            conn.close()

    first = buyer.checkout(event.id, items, key="killed")
    assert first.status_code == 201, first.get_json()
    again = buyer.checkout(event.id, items, key="killed")
    assert again.status_code == 200 and again.get_json() == first.get_json()
    books = ledger(app)
    assert books["bookings"] == 1 and books["taken"] == 2 * PRICE
    assert set(books["sold"]) == {ids[1], ids[4]}


def mysql_url_via(link: TcpProxy) -> str:
    password = f":{MYSQL['password']}" if MYSQL["password"] else ""
    return f"mysql://{MYSQL['user']}{password}@127.0.0.1:{link.port}/{MYSQL_DB}"


@pytest.mark.faults
def test_mysql_down_is_a_clear_503_nothing_half_written_and_the_hold_kept(
    app, mysql, proxy, make_app, people, stall
):
    """MariaDB goes away (connections reset, new ones refused) before a checkout
    and in the middle of one, after its Redis step: 503 with a message within
    seconds, no row written, the seats still the buyer's hold in Redis, and the
    same Idempotency-Key books exactly once when the database is back."""
    link = proxy(MYSQL["port"])
    papp = make_app(DATABASE_URL=mysql_url_via(link))
    event, ids = open_sale(papp)
    k = keys.event(event.id)
    (buyer,) = come_in(papp, people(papp, 1), event.id)
    items = [
        (ids[0], token_of(buyer.hold(event.id, ids[0]))),
        (ids[2], token_of(buyer.hold(event.id, ids[2]))),
    ]
    r = redis_store.client
    holds = {s: r.hget(k.seats, s) for s, _ in items}
    assert all(
        h.startswith(f"held:{buyer.id}:{t}:")
        for (s, t), h in zip(items, holds.values(), strict=True)
    )
    rows_before = {s: seat_row(s) for s, _ in items}

    def down():
        link.mode = "refuse"
        link.cut()

    def unchanged():
        assert {s: r.hget(k.seats, s) for s, _ in items} == holds  # held, not lost or "paying"
        assert {s: seat_row(s) for s, _ in items} == rows_before
        assert points_of(buyer.id) == app.config["STARTING_POINTS"]
        assert ledger(app)["bookings"] == 0

    # 1. Down before the checkout starts.
    down()
    started = time.monotonic()
    response = buyer.checkout(event.id, items, key="outage")
    assert time.monotonic() - started < QUICK
    assert "try again" in assert_error(response, 503, "unavailable")["message"]
    assert response.headers["Retry-After"]
    page = buyer.client.get(f"/events/{event.id}/seats")
    assert page.status_code == 503 and "unavailable right now" in page.get_data(as_text=True)
    unchanged()
    link.mode = "pass"

    # 2. Down between the Redis step (seats "being paid for") and the transaction.
    stall.at(buyer.id, action=down)
    started = time.monotonic()
    response = buyer.checkout(event.id, items, key="outage")
    assert time.monotonic() - started < QUICK
    assert_error(response, 503, "unavailable")
    unchanged()

    # Back: the same key books once, and only once.
    link.mode = "pass"
    first = buyer.checkout(event.id, items, key="outage")
    assert first.status_code == 201, first.get_json()
    assert buyer.checkout(event.id, items, key="outage").get_json() == first.get_json()
    books = ledger(app)
    assert books["bookings"] == 1 and books["taken"] == 2 * PRICE
    assert books["sold"] == {s: (buyer.id, t) for s, t in items}
    assert all(r.hget(k.seats, s) == f"booked:{buyer.id}:{t}" for s, t in items)
    assert link.connections > 1  # the app really went through the proxy, and reconnected


# Seconds to answer when MariaDB is silent: longer than a lock wait (5 s), and a
# pooled connection's ping and a reconnect may each wait out a read timeout.
MYSQL_PATIENCE = 20.0


@pytest.mark.faults
def test_mysql_silent_is_a_503_within_seconds_not_a_hang(app, mysql, proxy, make_app, people):
    """MariaDB accepts the connection but answers nothing: the checkout must
    answer 503 within MYSQL_PATIENCE seconds (not hang), having written nothing."""
    link = proxy(MYSQL["port"])
    papp = make_app(DATABASE_URL=mysql_url_via(link))
    event, ids = open_sale(papp)
    (buyer,) = come_in(papp, people(papp, 1), event.id)
    items = [(ids[0], token_of(buyer.hold(event.id, ids[0])))]
    link.mode = "stall"
    pay = in_background(lambda: buyer.checkout(event.id, items, key="silent"))
    try:
        pay[0].join(MYSQL_PATIENCE)
        assert not pay[0].is_alive(), f"no answer within {MYSQL_PATIENCE} s: the request hangs"
        assert_error(finished(*pay), 503, "unavailable")
    finally:
        link.mode = "refuse"  # let a hung request fail, so that nothing outlives the test
        link.cut()
        pay[0].join(10)
    assert ledger(app)["bookings"] == 0


@pytest.mark.faults
def test_a_hold_that_met_a_mysql_outage_still_fences_out_a_stalled_buyer(
    app, mysql, private_redis, proxy, make_app, people
):
    """X is paying (Redis step done, MySQL step not yet: a paused process, its
    lease still running) when Redis loses everything; Y comes back and holds
    the seat during a MySQL blip (503), then again once MySQL is back. MySQL
    must know Y's token by then, so that X's transaction is refused."""
    link = proxy(MYSQL["port"])
    papp = make_app(REDIS_URL=private_redis.url, DATABASE_URL=mysql_url_via(link))
    event, ids = open_sale(papp)
    seat = ids[0]
    x, y = come_in(papp, people(papp, 2), event.id)
    t_x = token_of(x.hold(event.id, seat))
    assert seat_row(seat)[3] == t_x
    with x.client.session_transaction() as session:
        x_session = session["sid"]
    with papp.app_context():  # X's step 1; X's process then pauses before step 2
        lease_ends = checkout._begin_payment(event.id, x.id, x_session, [(seat, t_x)])

    private_redis.client().flushall()  # Redis forgets X's payment
    come_in(papp, [y], event.id)
    link.mode = "refuse"  # a MySQL blip just as Y holds the seat
    link.cut()
    assert_error(y.hold(event.id, seat), 503, "unavailable")
    link.mode = "pass"
    t_y = token_of(y.hold(event.id, seat))  # Y tries again and is told the seat is Y's
    assert t_y > t_x
    assert seat_row(seat)[3] == t_y, "MySQL never learned the token of the hold Y has now"

    with papp.app_context(), pytest.raises(AppError) as refused:  # X's step 2, resumed
        checkout._book(event.id, x.id, [(seat, t_x)], "x-resumed", "0" * 64, lease_ends)
    assert (refused.value.status, refused.value.code) == (409, "hold_stale")
    assert y.checkout(event.id, [(seat, t_y)]).status_code == 201
    assert ledger(app)["sold"] == {seat: (y.id, t_y)}


# Admission: workers SIGKILLed mid-tick, the scheduler stopped


def assert_places_kept(r, event_id: int, everyone: list[int], cap: int) -> int:
    """Nobody admitted twice, nobody lost, nobody overtaken: the active set is
    exactly the head of the original queue, the queue exactly the rest in order,
    and the admission count matches. Returns how many are active."""
    k = keys.event(event_id)
    active = [int(m) for m in r.zrange(k.active, 0, -1)]
    waiting = [int(m) for m in r.zrange(k.queue, 0, -1)]
    n = len(active)
    assert n <= cap
    assert sorted(active) == sorted(everyone[:n]) and len(set(active)) == n
    assert waiting == everyone[n:]
    assert int(r.hget(k.tick, "admitted_total") or 0) == n
    # Everyone waiting kept their heartbeat (the admitted keep theirs until the clean-up).
    assert set(waiting) <= {int(m) for m in r.zrange(k.heartbeat, 0, -1)}
    return n


TICKER = r"""
import sys, time
from app import create_app, waiting_room
from app.extensions import redis_store

redis_url, database_url, event_id, go_key, started_key = sys.argv[1:6]
app = create_app({"TESTING": True, "REDIS_URL": redis_url, "DATABASE_URL": database_url})
with app.app_context():
    deadline = time.monotonic() + 60
    while not redis_store.client.exists(go_key):  # started early, runs when told
        if time.monotonic() > deadline:
            sys.exit("never told to start")
        time.sleep(0.005)
    redis_store.client.incr(started_key)
    while True:  # admission ticks back to back until SIGKILLed: a kill lands mid-tick
        waiting_room.admit(int(event_id), max_batch=25)
"""


@pytest.mark.faults
def test_admission_workers_sigkilled_mid_tick_admit_nobody_twice_and_lose_nobody(
    app, mysql, r, tmp_path
):
    """Two admission workers tick one event back to back and are SIGKILLed at
    random moments, four rounds over (in the last the room fills up): every time
    nobody is admitted twice, nobody loses their place, the active set never
    exceeds max_active, and admission carries on with the next workers."""
    rate, rounds = 300, 4
    event, _ = open_sale(app, admit_rate=rate, max_active=100_000, active_ttl=600)
    k = keys.event(event.id)
    everyone = list(range(1, 3_001))
    seed_queue(r, event.id, everyone)
    with app.app_context():
        waiting_room.admit(event.id)  # the first tick: one second's worth
    log = tmp_path / "tickers.log"
    # Every round's two workers start at once (imports are slow), each round's
    # wait for their own go key.
    procs = [
        [
            spawn(
                [
                    sys.executable,
                    "-c",
                    TICKER,
                    app.config["REDIS_URL"],
                    app.config["DATABASE_URL"],
                    str(event.id),
                    f"test:faults:go:{i}",
                    f"test:faults:started:{i}",
                ],
                child_env(),
                log,
            )
            for _ in range(2)
        ]
        for i in range(rounds)
    ]
    cap, largest, admitted_per_round, kills = 100_000, 0, [], 0
    rng = random.Random()
    try:
        for round_no, pair in enumerate(procs):
            before = assert_places_kept(r, event.id, everyone, cap)
            if round_no == rounds - 1:  # the last round fills the room
                cap = before + 30
                with app.app_context():
                    events.update(event.id, max_active=cap)
            r.set(f"test:faults:go:{round_no}", 1)
            wait_for(
                lambda n=round_no: int(r.get(f"test:faults:started:{n}") or 0) == 2,
                30,
                f"the workers of round {round_no + 1}\n{tail(log)}",
            )
            kill_at = time.monotonic() + rng.uniform(0.2, 0.5)
            while time.monotonic() < kill_at:
                largest = max(largest, r.zcard(k.active))
                time.sleep(0.005)
            assert all(p.poll() is None for p in pair), tail(log)
            for p in pair:
                kill_group(p)
            kills += len(pair)
            largest = max(largest, r.zcard(k.active))
            admitted_per_round.append(assert_places_kept(r, event.id, everyone, cap) - before)
    finally:
        for p in (p for pair in procs for p in pair):
            kill_group(p)
    print(
        f"\n{kills} admission workers SIGKILLed mid-tick; admitted per round "
        f"{admitted_per_round}; largest active set {largest}, cap {cap} in the last round"
    )
    assert all(n > 0 for n in admitted_per_round)  # they were admitting when killed
    assert largest <= cap and r.zcard(k.active) == cap  # the room filled, and not one more
    ledger(app)


@pytest.mark.faults
def test_worker_killed_and_scheduler_stopped_admission_resumes_within_the_cap(
    app, mysql, private_redis, make_app, tmp_path
):
    """The real processes (`flask worker`, `flask scheduler`) on a private Redis:
    the RQ worker is SIGKILLed twice and started again (as bin/run does), then
    the scheduler is killed and stays away. Nobody is admitted twice or loses
    their place; nobody is admitted while no tick runs; when the scheduler
    returns, admission catches up on the time it missed but never past
    max_active; and the catch-up is capped at 60 s however long it was away."""
    papp = make_app(REDIS_URL=private_redis.url)
    rate = 10
    event, _ = open_sale(papp, admit_rate=rate, max_active=100_000, active_ttl=600)
    k = keys.event(event.id)
    r = redis_store.client
    everyone = list(range(1, 1_001))
    seed_queue(r, event.id, everyone)
    env = child_env(
        REDIS_URL=private_redis.url,
        DATABASE_URL=app.config["DATABASE_URL"],
        SECRET_KEY="faults",
        JWT_SECRET="faults-jwt-secret-that-is-32-bytes-long",
        ADMIT_INTERVAL="1",
    )
    commands = launcher.commands(launcher.server_settings(env))
    log = tmp_path / "jobs.log"
    procs: dict[str, subprocess.Popen] = {}
    rng = random.Random()
    cap, largest, kills = 100_000, 0, 0

    def start(name):
        procs[name] = spawn(commands[name], env, log)

    def total() -> int:
        return int(r.hget(k.tick, "admitted_total") or 0)

    def watch(condition, timeout, what):
        def check():
            nonlocal largest
            largest = max(largest, r.zcard(k.active))
            return condition()

        wait_for(check, timeout, f"{what}\n{tail(log)}", step=0.01)

    try:
        start("scheduler")
        start("worker")
        watch(lambda: total() > 0, 40, "the first admission by the jobs")
        for _ in range(2):  # the worker dies at a random moment; a new one takes over
            time.sleep(rng.uniform(0.1, 0.6))
            kill_group(procs["worker"])
            kills += 1
            assert_places_kept(r, event.id, everyone, cap)
            seen = total()
            start("worker")
            watch(lambda seen=seen: total() > seen, 40, "admission after the worker came back")

        # The scheduler goes away. In production think of a minute; here 4 s: the
        # same code path (admit.lua admits rate x the gap when ticks resume).
        kill_group(procs["scheduler"])
        kills += 1
        queue = Queue(
            papp.config["RQ_QUEUE"],
            connection=rq_connection(private_redis.url),
            serializer=JSONSerializer,
        )
        wait_for(lambda: queue.count == 0, 30, "the jobs it had queued to be taken", step=0.05)
        time.sleep(0.5)  # and the last one to finish (a tick takes milliseconds)
        stopped_at = time.monotonic()
        stopped_total = total()
        cap = assert_places_kept(r, event.id, everyone, cap) + 15
        with papp.app_context():  # staff lower the cap meanwhile: the catch-up must obey it
            events.update(event.id, max_active=cap)
        while time.monotonic() - stopped_at < 4:
            largest = max(largest, r.zcard(k.active))
            time.sleep(0.05)
        assert total() == stopped_total  # no ticks, no admissions
        assert_places_kept(r, event.id, everyone, cap)  # and nobody lost their place

        start("scheduler")
        watch(lambda: total() > stopped_total, 40, "admission after the scheduler came back")
        time.sleep(1.5)  # a few more ticks: the room stays full, and not one more
        largest = max(largest, r.zcard(k.active))
        assert total() - stopped_total == 15  # ~60 missed in 6 s, capped by the room left
        assert assert_places_kept(r, event.id, everyone, cap) == cap
        assert largest <= cap
    finally:
        for proc in procs.values():
            kill_group(proc)

    # However long the scheduler was away, one tick catches up on at most 60 s.
    with papp.app_context():
        events.update(event.id, max_active=100_000)
        before = assert_places_kept(r, event.id, everyone, 100_000)
        r.hset(k.tick, mapping={"last_ms": redis_now_ms(r) - 600_000, "carry": 0})  # 10 min
        assert waiting_room.admit(event.id)["admitted"] == rate * 60
        # ... and never past max_active.
        events.update(event.id, max_active=before + rate * 60 + 7)
        r.hset(k.tick, mapping={"last_ms": redis_now_ms(r) - 600_000, "carry": 0})
        assert waiting_room.admit(event.id)["admitted"] == 7
    assert assert_places_kept(r, event.id, everyone, 100_000) == before + rate * 60 + 7
    print(
        f"\nworker SIGKILLed twice, scheduler killed for 4 s ({kills} kills); "
        f"largest active set {largest} (cap {cap})"
    )
    ledger(app)


# A web process paused (SIGSTOP) between the Redis step and the MySQL transaction


class HttpClient:
    """A cookie-keeping JSON client for the app running in another process."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def call(self, method, path, body=None, headers=None, timeout=30.0):
        headers = dict(headers or {})
        data = None if body is None else json.dumps(body).encode()
        if method not in ("GET", "HEAD"):  # the API asks it of every unsafe request
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers=headers
        )
        try:
            with self.opener.open(request, timeout=timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        return status, json.loads(raw) if raw else None


def group_stopped(pgid: int) -> bool:
    """Every process of the group is stopped (Linux /proc; elsewhere: trust the signal)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    states = []
    for stat in proc.glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # state, ppid, pgrp
                states.append(fields[0])
    return bool(states) and all(state in "tT" for state in states)


@pytest.mark.faults
def test_a_paused_web_process_cannot_book_a_seat_someone_else_holds_now(
    app, mysql, r, proxy, people, tmp_path
):
    """The web server's process is SIGSTOPped in the middle of A's checkout: after the
    Redis step (the seat is A's "being paid for" under a 2 s lease; the event's
    hold time is 1 s) and before the MySQL transaction (its BEGIN is held by the
    test's proxy until the process is stopped). While it is stopped the lease
    runs out and B holds the seat. SIGCONT: A's transaction is refused, A is
    charged nothing, B's hold is untouched and B buys the seat."""
    link = proxy(MYSQL["port"])  # only to find the moment; it forwards everything
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = child_env(
        REDIS_URL=app.config["REDIS_URL"],
        DATABASE_URL=mysql_url_via(link),
        SECRET_KEY="faults",
        JWT_SECRET="faults-jwt-secret-that-is-32-bytes-long",
        CHECKOUT_LEASE="2",
        PORT=str(port),
        WEB_WORKERS="1",
        WEB_THREADS="4",
    )
    log = tmp_path / "web.log"
    web = spawn(launcher.web_command(launcher.server_settings(env)), env, log)
    try:
        event, ids = open_sale(app, hold_ttl=1)
        seat = ids[0]
        k = keys.event(event.id)
        a = HttpClient(base)

        def up() -> bool:
            assert web.poll() is None, tail(log)
            try:
                return a.call("GET", "/healthz", timeout=2)[0] == 200
            except (urllib.error.URLError, OSError):
                return False

        wait_for(up, 30, "the web server to answer", step=0.1)
        (a_user,), (b,) = [p.user for p in people(app, 1)], people(app, 1)
        assert (
            a.call("POST", "/api/auth/login", {"email": a_user.email, "password": "password123"})[0]
            == 200
        )
        assert a.call("POST", f"/api/events/{event.id}/queue")[0] == 200
        come_in(app, [b], event.id)  # admits A as well
        status, body = a.call("GET", f"/api/events/{event.id}/queue")
        assert body["status"] == "admitted", body
        assert (
            a.call(
                "POST",
                f"/api/events/{event.id}/enter",
                headers={"Authorization": f"Bearer {body['token']}"},
            )[0]
            == 200
        )
        start = points_of(a_user.id)

        for _ in range(3):  # a 1 s hold: on a very slow machine, try again
            status, held = a.call("POST", f"/api/events/{event.id}/seats/{seat}/hold")
            assert status == 201, held
            t_a = held["token"]
            link.hold_on(b"\x03BEGIN")  # the transaction's first statement
            pay = in_background(
                lambda t=t_a: a.call(
                    "POST",
                    f"/api/events/{event.id}/checkout",
                    {"seats": [{"seat_id": seat, "token": t}]},
                    {"Idempotency-Key": "paused"},
                )
            )
            while not link.held.wait(0.05) and pay[0].is_alive():
                pass
            if link.held.is_set():
                break
            link.release()
            code, refused = finished(*pay)
            assert (code, refused["error"]) == (409, "hold_expired"), refused
        else:
            pytest.fail("A's checkout never reached its transaction")

        # A's process now waits for MySQL's answer to BEGIN: stop it right there.
        assert r.hget(k.seats, seat).startswith(f"paying:{a_user.id}:{t_a}:")
        os.killpg(web.pid, signal.SIGSTOP)
        wait_for(lambda: group_stopped(web.pid), 10, "the web processes to stop")
        link.release()  # MySQL starts the transaction; the answer waits for a stopped process
        lapsed = int(r.hget(k.seats, seat).split(":")[3])
        wait_for(lambda: redis_now_ms(r) > lapsed + 50, 20, "A's lease to run out")
        with app.app_context():
            events.update(event.id, hold_ttl=300)  # B's own hold must not lapse here
        t_b = token_of(b.hold(event.id, seat))  # someone else holds the seat now
        assert t_b > t_a and seat_row(seat)[3] == t_b

        os.killpg(web.pid, signal.SIGCONT)
        code, answer = finished(*pay)
        assert code == 409 and answer["error"] in ("lease_expired", "hold_stale"), answer
        print(f"\nthe paused checkout was refused after SIGCONT: {answer['error']}")
        assert answer["message"]
        assert r.hget(k.seats, seat).startswith(f"held:{b.id}:{t_b}:")  # B's hold untouched
        assert points_of(a_user.id) == start
        assert b.checkout(event.id, [(seat, t_b)]).status_code == 201
    finally:
        link.release()
        kill_group(web, signal.SIGTERM)
    books = ledger(app)
    assert books["sold"] == {seat: (b.id, t_b)} and books["bookings"] == 1


# Clocks: countdowns are seconds left by Redis TIME, counted down in the browser

COUNTDOWN_JS = ROOT / "app" / "static" / "countdown.js"
FAKE_BROWSER = r"""
const fs = require("fs");
const element = (value) => ({
  attrs: {"data-countdown": value, "data-expired": "expired"}, textContent: "",
  getAttribute(name) { return this.attrs[name]; },
  setAttribute(name, value) { this.attrs[name] = String(value); },
  closest() { return null; },  // (no [data-ended] around these)
});
const elements = [element("125"), element("61"), element("1")];
globalThis.document = {querySelectorAll: () => elements};
let tick = null;
globalThis.setInterval = (fn, ms) => {
  if (ms !== 1000) throw new Error("every " + ms);
  tick = fn;
};
// A browser whose clock must not matter: any look at it fails the test.
const clock = () => { throw new Error("countdown.js read the browser's clock"); };
globalThis.Date = new Proxy(Date, {construct: clock, apply: clock,
                                   get: (target, name) => name === "now" ? clock : target[name]});
globalThis.performance = {now: clock};
eval(fs.readFileSync(process.argv[process.argv.length - 1], "utf8"));
for (let i = 0; i < 3; i++) tick();
console.log(JSON.stringify(elements.map((e) => [e.attrs["data-countdown"], e.textContent])));
"""


def countdowns(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'data-countdown="(-?\d+)"', html)]


@pytest.mark.faults
def test_countdowns_do_not_depend_on_the_browsers_or_the_web_servers_clock(
    app, mysql, r, monkeypatch, people
):
    """The seat panel and the checkout page carry seconds left, computed from
    Redis TIME (the web server's clock an hour fast changes nothing); the
    waiting room schedules its next poll as a delay; countdown.js only counts
    those numbers down and never looks at the browser's clock."""
    event, ids = open_sale(app, active_ttl=600, hold_ttl=300)
    k = keys.event(event.id)
    person, waiting = people(app, 2)
    come_in(app, [person], event.id)
    token_of(person.hold(event.id, ids[0]))
    assert waiting.join(event.id).get_json()["status"] == "waiting"
    hold_until = int(r.hget(k.seats, ids[0]).split(":")[3])
    window_until = int(r.zscore(k.active, person.id))

    real_time = time.time
    with monkeypatch.context() as m:
        m.setattr(time, "time", lambda: real_time() + 3_600)  # this server's clock: 1 h fast
        first = redis_now_ms(r)
        panel = person.client.get(
            f"/events/{event.id}/seats/panel", headers={"HX-Request": "true"}
        ).get_data(as_text=True)
        page = person.client.get(f"/events/{event.id}/checkout").get_data(as_text=True)
        status = waiting.client.get(
            f"/events/{event.id}/waiting/status", headers={"HX-Request": "true"}
        ).get_data(as_text=True)
        last = redis_now_ms(r)

    def seconds_left(until_ms):
        return range((until_ms - last) // 1000, (until_ms - first) // 1000 + 1)

    window_left, hold_left = countdowns(panel)
    assert window_left in seconds_left(window_until) and window_left > 500, window_left
    assert hold_left in seconds_left(hold_until) and hold_left > 200, hold_left
    on_page = countdowns(page)  # the checkout page: the hold's countdown
    assert on_page and all(c in seconds_left(hold_until) for c in on_page), on_page
    delay = re.search(r'hx-trigger="load delay:(\d+)ms', status)
    assert delay and 900 <= int(delay.group(1)) <= 1_100, status  # position 1: about 1 s
    for html in (panel, page, status):  # (form values hold random keys: not times)
        assert not re.search(r"\d{10,}", re.sub(r'value="[^"]*"', "", html)), (
            "an absolute time reached the browser"
        )

    source = COUNTDOWN_JS.read_text()
    assert "Date" not in source and "now(" not in source
    node = shutil.which("node")
    if node:  # run it in a fake browser whose clock throws
        ran = subprocess.run(
            [node, "-e", FAKE_BROWSER, "--", str(COUNTDOWN_JS)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert ran.returncode == 0, ran.stderr
        assert json.loads(ran.stdout) == [["122", "2:02"], ["58", "0:58"], ["0", "expired"]]
    assert ledger(app)["bookings"] == 0
