"""Operators' metrics (docs/OPERATIONS.md has every name).

Two kinds. What this process counts as it answers (requests, checkout, hold
and entrance outcomes): prometheus_client counters, kept in
PROMETHEUS_MULTIPROC_DIR when the web server runs several processes, so one
scrape sums them all. And what is read from the stores at scrape time
(`exposition` calls `read_stores`): per event, one EVALSHA of figures.lua;
the admission job's timings, which a worker on another host wrote into
Redis; RQ's queue; each store's reachability and round trip. Those are the
same on every web host: dashboards take their max, never their sum.
"""

import bisect
import functools
import math
import os
import threading
import time

import peewee
from flask import current_app
from playhouse.pool import MaxConnectionsExceeded
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from redis import Redis
from redis.cluster import RedisCluster
from rq import Queue, Worker
from rq.registry import FailedJobRegistry

from app import keys
from app.errors import AppError
from app.extensions import REDIS_UNAVAILABLE, db, redis_store
from app.models import Event

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
COUNTED = CollectorRegistry(auto_describe=False)
UNAVAILABLE = (
    *REDIS_UNAVAILABLE,
    peewee.OperationalError,
    peewee.InterfaceError,
    MaxConnectionsExceeded,
)
# Request times: a poll answers in about a millisecond, a checkout in tens.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
TICK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

REQUESTS = Counter(
    "ticketdrop_http_requests", "Requests answered.", ["route", "method", "status"],
    registry=COUNTED,
)  # fmt: skip
LATENCY = Histogram(
    "ticketdrop_http_request_duration_seconds", "Time to answer a request, in the app.",
    ["route", "method"], buckets=LATENCY_BUCKETS, registry=COUNTED,
)  # fmt: skip


def counter_of(name: str, documentation: str, label: str, known: tuple) -> Counter:
    """A counter by one label, each `known` value there from the start at 0:
    a rate of a series that does not exist yet is no answer at all."""
    counter = Counter(name, documentation, [label], registry=COUNTED)
    for value in known:
        counter.labels(value)
    return counter


CHECKOUTS = counter_of(
    "ticketdrop_checkout", "Checkouts: booked, the refusal's code, or unavailable.", "outcome",
    ("booked", "replay", "seat_booked", "hold_stale", "not_enough_points", "busy", "unavailable"),
)  # fmt: skip
CHECKOUT_RETRIES = counter_of(
    "ticketdrop_checkout_retries", "Checkout transactions tried again.", "reason",
    ("deadlock", "lock_wait_timeout", "version"),
)  # fmt: skip
HOLDS = counter_of(
    "ticketdrop_hold", "Holds: held, the refusal's code, or unavailable.", "outcome",
    ("held", "seat_taken", "seat_booked", "seat_limit", "unavailable"),
)  # fmt: skip
ENTRANCES = counter_of(
    "ticketdrop_entrance", "Admission tokens presented at the entrance.", "outcome",
    ("entered", "replay", "other_session", "moved", "forged", "stale", "expired", "unavailable"),
)  # fmt: skip


class RequestTally:
    """Request counts and times, added up in this process's memory and
    handed to REQUESTS and LATENCY every second (and before each scrape).

    Why: a multiprocess value costs a lock and an mmap write, about 1.3 µs,
    and a request writes three (its count, the histogram's sum and bucket):
    4.4 µs measured, 7 % of the poll's own CPU. Here a request costs a dict
    update under a lock; the cost per second is one write per series.
    The price: another process's last second is not in a scrape yet.
    The histogram's children take whole buckets through their value
    objects (`_sum`, `_buckets`: prometheus_client has no public way to
    add n observations at once; tests/test_metrics.py counts exactly)."""

    def __init__(self, every: float = 1.0):
        self.every = every
        self.lock = threading.Lock()
        self.pending: dict[tuple, list] = {}  # (route, method, status) -> [sum, bucket counts...]
        self.flusher: threading.Thread | None = None
        self.pid = 0

    def add(self, route: str, method: str, status: int, seconds: float) -> None:
        bucket = 1 + bisect.bisect_left(LATENCY_BUCKETS, seconds)  # le: seconds <= bound
        with self.lock:
            entry = self.pending.get((route, method, status))
            if entry is None:
                entry = self.pending[(route, method, status)] = [0.0] * (len(LATENCY_BUCKETS) + 2)
            entry[0] += seconds
            entry[bucket] += 1
        if self.pid != os.getpid():  # the first request of this process (a fork's too)
            self.start()

    def start(self) -> None:
        self.pid = os.getpid()
        self.flusher = threading.Thread(target=self.run, name="metrics-tally", daemon=True)
        self.flusher.start()

    def run(self) -> None:
        while True:
            time.sleep(self.every)
            self.flush()

    def flush(self) -> None:
        with self.lock:
            pending, self.pending = self.pending, {}
        for (route, method, status), (total, *buckets) in pending.items():
            REQUESTS.labels(route, method, str(status)).inc(sum(buckets))
            timed = LATENCY.labels(route, method)
            timed._sum.inc(total)
            for value, count in zip(timed._buckets, buckets, strict=True):
                if count:
                    value.inc(count)


TALLY = RequestTally()


def outcome(counter: Counter, success):
    """Decorator: count each call under `success` (or success(result)), the
    AppError's code, or "unavailable" when a store did not answer."""

    def decorate(function):
        @functools.wraps(function)
        def counted(*args, **kwargs):
            try:
                result = function(*args, **kwargs)
            except AppError as e:
                counter.labels(e.code).inc()
                raise
            except UNAVAILABLE:
                counter.labels("unavailable").inc()
                raise
            counter.labels(success(result) if callable(success) else success).inc()
            return result

        return counted

    return decorate


def record_tick(seconds: float) -> None:
    """The admission job's duration, kept in Redis (the job runs on a worker,
    perhaps on another host than the one scraped): a count per bucket and
    the sum; the scrape adds the buckets up (the +Inf one is the count)."""
    bucket = next((str(le) for le in TICK_BUCKETS if seconds <= le), "+Inf")
    pipe = redis_store.client.pipeline(transaction=False)
    pipe.hincrby(keys.ADMIT_TICKS, bucket, 1)
    pipe.hincrbyfloat(keys.ADMIT_TICKS, "sum", seconds)
    pipe.execute()


def exposition() -> bytes:
    """The whole text of one scrape."""
    TALLY.flush()
    counted = COUNTED
    if MULTIPROCESS:
        counted = CollectorRegistry(auto_describe=False)
        multiprocess.MultiProcessCollector(counted)
    read = CollectorRegistry(auto_describe=False)
    read.register(Families(read_stores()))
    return generate_latest(counted) + generate_latest(read)


class Families:
    """A collector of families made already (prometheus_client asks collect())."""

    def __init__(self, families: list):
        self.families = families

    def collect(self):
        return self.families


def read_stores() -> list:
    started = time.perf_counter()
    families = []
    redis_up = _reachability(families, "redis", redis_store.client.ping)
    database_up = _reachability(families, "database", lambda: db.execute_sql("SELECT 1"))
    rq = _rq_connection()
    rq_up = rq is not None and _reachability(families, "rq_redis", rq.ping)
    if redis_up:
        families += _memory([redis_store.client] + ([rq] if rq_up else []))
        families.append(_admission_ticks())
        if database_up:
            families += _event_families()
    if rq_up:
        families += _rq_families(rq)
    families.append(
        _gauge("scrape_seconds", "Time reading the stores.", time.perf_counter() - started)
    )
    return families


def _gauge(name: str, documentation: str, value: float | None = None, labels=()):
    family = GaugeMetricFamily(f"ticketdrop_{name}", documentation, labels=list(labels) or None)
    if value is not None:
        family.add_metric([], value)
    return family


def _reachability(families: list, store: str, ping) -> bool:
    """ticketdrop_<store>_up and _ping_seconds; whether it answered."""
    started = time.perf_counter()
    try:
        ping()
        up, took = 1, time.perf_counter() - started
    except UNAVAILABLE:
        up, took = 0, math.nan
    families.append(_gauge(f"{store}_up", f"1 when {store} answered this scrape.", up))
    families.append(_gauge(f"{store}_ping_seconds", f"{store}'s round trip.", took))
    return bool(up)


def _rq_connection() -> Redis | None:
    """RQ's plain Redis (None when there is none: REDIS_URL is a cluster and
    RQ_REDIS_URL unset), one client per process, short timeouts."""
    url = current_app.config["RQ_REDIS_URL"]
    if url and url not in _RQ:
        timeout = current_app.config["REDIS_TIMEOUT"]
        _RQ[url] = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    return _RQ.get(url)


_RQ: dict[str, Redis] = {}


def _memory(clients: list) -> list:
    """Each Redis master's memory and maxmemory, by address (RQ's Redis may be the
    app's); replicas ignore maxmemory."""
    used = _gauge("redis_memory_used_bytes", "Memory a Redis node uses.", labels=["node"])
    most = _gauge("redis_memory_max_bytes", "A Redis node's maxmemory (0: none).", labels=["node"])
    seen = set()
    for client in clients:
        for node, info in _memory_info(client).items():
            if node not in seen:
                seen.add(node)
                used.add_metric([node], info["used_memory"])
                most.add_metric([node], info.get("maxmemory", 0))
    return [used, most]


def _memory_info(client) -> dict[str, dict]:
    if isinstance(client, RedisCluster):
        return client.info("memory", target_nodes=RedisCluster.PRIMARIES)
    kwargs = client.connection_pool.connection_kwargs
    node = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
    return {node: client.info("memory")}


def _admission_ticks() -> HistogramMetricFamily:
    stored = redis_store.client.hgetall(keys.ADMIT_TICKS)
    buckets, total = [], 0
    for le in (*map(str, TICK_BUCKETS), "+Inf"):
        total += int(stored.get(le, 0))
        buckets.append((le, total))
    return HistogramMetricFamily(
        "ticketdrop_admission_tick_seconds",
        "How long one admission job took (every event).",
        buckets=buckets,
        sum_value=float(stored.get("sum", 0)),
    )


def _rq_families(rq) -> list:
    name = current_app.config["RQ_QUEUE"]
    return [
        _gauge("rq_queued_jobs", "Jobs waiting in RQ's queue.", Queue(name, connection=rq).count),
        _gauge(
            "rq_failed_jobs",
            "Jobs in RQ's failed registry.",
            FailedJobRegistry(name, connection=rq).count,
        ),  # fmt: skip
        _gauge("rq_workers", "RQ workers alive.", Worker.count(connection=rq)),
    ]


# family name -> (help, kind); each event's figures fill them (see _event_row)
EVENT_FAMILIES = {
    "waiting": ("People in the queue (with the pre-queue).", "gauge"),
    "active": ("People in the active set.", "gauge"),
    "cap": ("The active set's cap (max_active).", "gauge"),
    "admit_rate": ("The set admission rate, people/s.", "gauge"),
    "admit_rate_observed": ("People/s let in lately (about 10 s).", "gauge"),
    "admitting": ("1 while admission lets people in.", "gauge"),
    "admitted": ("People let in.", "counter"),
    "expired": ("Active people whose window ran out.", "counter"),
    "cleanup_removed": ("People removed from the queue for not polling.", "counter"),
    "reconcile_repairs": ("Seats and settings the reconcile job put right.", "counter"),
    "held": ("Seats held.", "gauge"),
    "paying": ("Seats being paid for.", "gauge"),
    "booked": ("Seats sold.", "gauge"),
    "blocked": ("Seats blocked by staff.", "gauge"),
    "sold_out": ("1 when no seat is left to sell.", "gauge"),
    "staying": ("People staying in line for returned seats after a sell-out.", "gauge"),
    "queue_clear_seconds": ("Seconds until everyone waiting is in (NaN: not admitting).", "gauge"),
}


def _event_families() -> list:
    families = {
        name: (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(
            f"ticketdrop_event_{name}", documentation, labels=["event"]
        )
        for name, (documentation, kind) in EVENT_FAMILIES.items()
    }
    since = _gauge(
        "admission_seconds_since_tick", "Seconds since the last admission tick.", labels=["event"]
    )
    open_events = Event.select(Event.id).where(Event.admission != "closed").order_by(Event.id)
    for (event_id,) in open_events.tuples():
        row, seconds = _event_row(event_id)
        if row is None:
            continue  # Redis lost the event's settings: the next request writes them again
        for name, value in row.items():
            families[name].add_metric([str(event_id)], value)
        since.add_metric([str(event_id)], seconds)
    return [*families.values(), since]


def _event_row(event_id: int) -> tuple[dict | None, float]:
    k = keys.event(event_id)
    (_, queue, prequeue, active, held, paying, booked, blocked, admitting, since_ms,
     state, cap, rate, sold_out, admitted, rate_obs, expired, removed, repaired, staying) = (
        redis_store.scripts.figures(
            keys=[k.config, k.queue, k.prequeue, k.active, k.tick, k.seats, k.seat_counts,
                  k.stay],
            args=[current_app.config["METRICS_SEAT_COUNT_MS"]],
        )
    )  # fmt: skip
    if not state:
        return None, math.nan
    waiting, rate, observed = queue + prequeue, float(rate or 0), float(rate_obs or 0)
    if not waiting:
        clear = 0.0
    elif admitting:
        clear = waiting / (observed or rate) if (observed or rate) else math.inf
    else:
        clear = math.nan
    row = {
        "waiting": waiting, "active": active, "cap": int(cap or 0), "admit_rate": rate,
        "admit_rate_observed": observed, "admitting": admitting,
        "admitted": int(admitted or 0), "expired": int(expired or 0),
        "cleanup_removed": int(removed or 0), "reconcile_repairs": int(repaired or 0),
        "held": held, "paying": paying, "booked": booked, "blocked": blocked,
        "sold_out": int(sold_out == "1"), "staying": staying, "queue_clear_seconds": clear,
    }  # fmt: skip
    return row, (since_ms / 1000 if since_ms >= 0 else math.inf)
