"""Figures 14 and 15: the waiting room at ten million, and the fair start's
draw of a million. On a private redis-server (the machine's 7.0) and a bench
database of its own; Redis times are SLOWLOG's (every call logged, unless
said otherwise) or INFO commandstats'.

14. 10,000,000 people waiting in one event (queue and heartbeat seeded as
    join.lua would, pipelined ZADDs of 10,000 members):
    - Redis memory per waiting person (used_memory before and after, / N);
    - the poll script's Redis time per call, 1,000 polls (waiting_room.poll)
      each at the front, in the middle and at the back of the queue, back
      to back; then 200 spaced 5 ms apart, for comparison;
    - the admission tick of 1,000 (waiting_room.admit, max_active large)
      over 50 ticks, then of 500 for comparison;
    - cleanup: 1,000,000 ghosts (one in nine of the people behind the first
      million) removed out of the 10,000,000 by waiting_room.clean_up in
      CLEANUP_BATCH batches (1,000, as in production): its longest call and
      the total; then 100,000 more in batches of 500, for comparison. Not
      all 10,000,000, and a 10 ms pause between batches instead of
      production's 100 ms, to bound the run time: neither changes what one
      call costs.
15. The draw of 1,000,000 people in the pre-queue (draw.make, with MySQL):
    first the move script alone on a copy of the pre-queue, at 2,000 people
    per call and smaller, to choose the largest batch whose calls stay
    within 5 ms (p99); then the whole draw with it, in a process of its own,
    while 50 people poll over HTTP at a constant 200/s: its wall time split
    into its steps, the people/s (what DRAW_SPEED in app/draw.py should be),
    the longest single Redis call during it (every call over 0.1 ms logged),
    how often redis-server was switched out meanwhile (2 cores: the draw,
    MySQL and the web server compete with it), and the polls' p99 during the
    draw against at rest.

`scale10m.py` runs both (about 5 minutes, 2.5 GB of Redis); `scale10m.py 14`
or `scale10m.py 15` one of them.
"""

import asyncio
import contextlib
import json
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import common
from common import (
    MYSQL,
    Person,
    Stack,
    constant_rate,
    create_event,
    median,
    percentile,
    result,
)

common.BENCH_DB = "ticketdrop_bench_scale10m"  # a database of its own, dropped at the end

TEN_MILLION = 10_000_000
MILLION = 1_000_000
FIRST_ID = 10**9  # seeded user ids: FIRST_ID + place in the queue
POLLS = 1_000  # per place in the queue
IDLE_POLLS = 200  # polls spaced out, so that Redis idles between them
TICKS = 50
MOVE_BATCHES = (2_000, 1_000, 500, 250)  # tried in this order for the draw
MOVE_LIMIT_US = 5_000
POLL_RATE = 200  # polls/s from the HTTP pollers during the draw
NEEDED_GIB = 8  # free memory asked for before seeding 10,000,000 (Redis takes ~2.5 GB)


def is_ghost(index: int) -> bool:
    """One in nine of the people behind the first million: 1,000,000 of 10,000,000."""
    return index >= MILLION and index % 9 == 0


def is_late_ghost(index: int) -> bool:
    """100,000 more, between the 100,000th and the millionth, gone more recently
    (the heartbeat an hour old): cleaned up on their own, in smaller batches."""
    return 100_000 <= index < MILLION and index % 9 == 0


def log_every_call(client, keep: int = 10_000, slower_than_us: int = 0) -> None:
    """SLOWLOG from now on, every call (or those over `slower_than_us`). Redis
    7 logs the commands a script calls too, each as an entry of its own: `keep`
    has room for them, or `slower_than_us` leaves them out."""
    client.config_set("slowlog-log-slower-than", slower_than_us)
    client.config_set("slowlog-max-len", keep)
    client.slowlog_reset()


def logged(client, keep: int = 10_000) -> list[tuple[int, list[str]]]:
    """(microseconds, the command's words) of every logged call, oldest first."""
    entries = client.slowlog_get(keep)
    return [
        (e["duration"], bytes(e["command"]).decode(errors="replace").split(" ", 4))
        for e in reversed(entries)
    ]


def script_calls(client, sha: str, keep: int = 10_000) -> list[int]:
    """Microseconds of every logged EVALSHA of the script with this SHA."""
    return [
        us
        for us, words in logged(client, keep)
        if words[0].lower() == "evalsha" and len(words) > 1 and words[1] == sha
    ]


def spread(us: list[int], unit: str = "ms") -> str:
    if not us:
        return "none logged"
    scale = 1000 if unit == "ms" else 1
    digits = 2 if unit == "ms" else 0

    def f(v):
        return f"{v / scale:.{digits}f}"

    return (
        f"median {f(median(us))} {unit} (p10 {f(percentile(us, 10))}, p90 "
        f"{f(percentile(us, 90))}, p99 {f(percentile(us, 99))}, max {f(max(us))})"
    )


def preempted(pid: int) -> int:
    """How often the process was switched out while it wanted to run."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("nonvoluntary_ctxt_switches:"):
            return int(line.split()[1])
    return 0


def memory_available_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20
    return 0.0


def zadd_chunks(client, key: str, count: int, score, first_id: int = FIRST_ID) -> None:
    """ZADD `count` members (first_id + index, scored score(index)), 10,000 a command."""
    pipe = client.pipeline(transaction=False)
    for start in range(0, count, 10_000):
        flat = []
        for index in range(start, min(start + 10_000, count)):
            flat += (score(index), first_id + index)
        pipe.execute_command("ZADD", key, *flat)
        if len(pipe) >= 20:
            pipe.execute()
    pipe.execute()


# --- figure 14 ------------------------------------------------------------------


def figure_14(stack: Stack) -> None:
    from app import keys, waiting_room
    from app.extensions import redis_store

    free = memory_available_gib()
    if free < NEEDED_GIB:
        raise SystemExit(f"figure 14 needs {NEEDED_GIB} GiB free, the machine has {free:.1f}")
    event_id = create_event(stack, admit_rate=100_000, max_active=TEN_MILLION, active_ttl=3600)
    k = keys.event(event_id)
    r = stack.redis

    # Memory: the queue scored by join sequence, the heartbeat by the latest
    # time the next poll is due (a day ahead; the ghosts' long past).
    ahead = int(time.time() * 1000) + 86_400_000
    hour_ago = int(time.time() * 1000) - 3_600_000
    before = r.info("memory")["used_memory"]
    started = time.monotonic()
    zadd_chunks(r, k.queue, TEN_MILLION, lambda i: i + 1)
    zadd_chunks(
        r,
        k.heartbeat,
        TEN_MILLION,
        lambda i: 1 if is_ghost(i) else hour_ago if is_late_ghost(i) else ahead,
    )
    seeded_s = time.monotonic() - started
    after = r.info("memory")
    assert r.zcard(k.queue) == r.zcard(k.heartbeat) == TEN_MILLION
    per_person = (after["used_memory"] - before) / TEN_MILLION
    result(
        14,
        "Redis memory per waiting person at 10,000,000",
        f"{per_person:.0f} bytes (queue + heartbeat; used_memory "
        f"{after['used_memory'] / 2**30:.2f} GiB, rss {after['used_memory_rss'] / 2**30:.2f} GiB;"
        f" seeded in {seeded_s:.0f} s)",
        "measured",
        None,
        bytes_per_person=per_person,
    )

    # The poll script at the front, the middle and the back (people who are
    # not ghosts, so that cleanup later finds exactly the million).
    def not_ghosts(start: int, step: int) -> list[int]:
        found, index = [], start
        while len(found) < POLLS:
            if not is_ghost(index):
                found.append(FIRST_ID + index)
            index += step
        return found

    places = {
        "front": not_ghosts(0, 1),
        "middle": not_ghosts(TEN_MILLION // 2, 1),
        "back": not_ghosts(TEN_MILLION - 1, -1),
    }
    # Each person polls twice: once with the SLOWLOG off, for the mean
    # (INFO commandstats), and once with every call logged, for the spread
    # (logging the script's own commands adds a little to each call).
    sha = redis_store.scripts.poll.sha
    by_place, means = {}, {}
    with stack.app.app_context():
        waiting_room.poll(event_id, places["front"][0])  # loads the script: not timed
        for place, users in places.items():
            r.config_set("slowlog-log-slower-than", -1)
            r.config_resetstat()
            for user_id in users:
                status = waiting_room.poll(event_id, user_id)
                assert status.status == "waiting", status
            stats = r.info("commandstats")["cmdstat_evalsha"]
            assert stats["calls"] == POLLS, stats
            means[place] = stats["usec"] / stats["calls"]
            log_every_call(r, 20_000)
            for user_id in users:
                waiting_room.poll(event_id, user_id)
            by_place[place] = script_calls(r, sha, 20_000)
            assert len(by_place[place]) == POLLS, (place, len(by_place[place]))
    for place, us in by_place.items():
        result(
            14,
            f"poll script at 10,000,000 waiting: {place}",
            f"mean {means[place]:.1f} µs (commandstats); every call logged: "
            f"{spread(us, 'µs')} of Redis time ({len(us):,} polls each)",
            "<= 50 µs per call (mean)",
            means[place] <= 50,
            durations_us=us,
        )
    # The polls above come back to back, as they do when Redis is busy. One
    # that finds Redis idle (here 5 ms after the last) costs several times
    # more on this machine, whatever the queue's size: caches gone cold.
    with stack.app.app_context():
        log_every_call(r, 20_000)
        for user_id in places["middle"][:IDLE_POLLS]:
            waiting_room.poll(event_id, user_id)
            time.sleep(0.005)
        idle = script_calls(r, sha, 20_000)
    result(
        14,
        "poll script at 10,000,000 waiting: middle, one every 5 ms (Redis idle between)",
        f"{spread(idle, 'µs')} of Redis time ({len(idle)} polls)",
        "none (for comparison)",
        None,
        durations_us=idle,
    )

    # The admission tick: of 1,000 (the figure), then of 500 (for comparison).
    with stack.app.app_context():
        waiting_room.admit(event_id, max_batch=1)  # loads the script: not a tick to time
        admitted = 1
        for size in (1000, 500):
            log_every_call(r)
            for _ in range(TICKS):
                assert waiting_room.admit(event_id, max_batch=size)["admitted"] == size
                time.sleep(0.02)
            admitted += TICKS * size
            ticks = script_calls(r, redis_store.scripts.admit.sha)
            assert len(ticks) == TICKS, len(ticks)
            result(
                14,
                f"admission tick of {size:,} with 10,000,000 queued",
                f"{spread(ticks)} of Redis time ({len(ticks)} ticks)",
                "<= 5 ms (max)" if size == 1000 else "none (for comparison)",
                max(ticks) <= 5000 if size == 1000 else None,
                durations_us=ticks,
            )

    # Cleanup: a million ghosts out of the ten million in CLEANUP_BATCH
    # batches (a cutoff two hours back: only they), then the 100,000 late
    # ones (HEARTBEAT_TIMEOUT) in batches of half that, for comparison.
    with stack.app.app_context():
        waiting_room.clean_up(event_id, 10**11, 1, 0)  # loads the script, removes nobody
        batch = stack.app.config["CLEANUP_BATCH"]
        for ghosts, timeout, size in (
            (MILLION, 7200, batch),
            (100_000, stack.app.config["HEARTBEAT_TIMEOUT"], batch // 2),
        ):
            log_every_call(r, 50_000)
            started = time.monotonic()
            removed = waiting_room.clean_up(event_id, timeout, size, 0.01)
            wall = time.monotonic() - started
            calls = script_calls(r, redis_store.scripts.clean_up.sha, 50_000)
            assert removed == ghosts, removed
            main_figure = size == batch
            result(
                14,
                f"cleanup of {ghosts:,} ghosts out of 10,000,000 in batches of {size:,}: "
                "longest call",
                f"{max(calls) / 1000:.2f} ms; per call {spread(calls)}; {len(calls):,} calls, "
                f"{sum(calls) / 1e6:.2f} s of Redis time in total, {wall:.0f} s wall with "
                f"10 ms pauses",
                "<= 5 ms (longest call)" if main_figure else "none (for comparison)",
                max(calls) <= 5000 if main_figure else None,
                durations_us=calls,
            )
    assert r.zcard(k.queue) == TEN_MILLION - admitted - MILLION - 100_000
    flush(r)


def flush(client) -> None:
    """Empty the bench's own server, freeing in the background (a FLUSHALL of
    10,000,000 takes longer than a client waits), and wait until it is done."""
    client.flushall(asynchronous=True)
    while int(client.info("memory").get("lazyfree_pending_objects", 0)):
        time.sleep(0.2)


# --- figure 15 ------------------------------------------------------------------


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def probe_moves(stack: Stack, batch: int) -> list[int]:
    """draw_move.lua alone over a pre-queue of a million, in a random order
    (what the draw's hash order is), `batch` people per call: the Redis
    microseconds of each call."""
    from app import keys
    from app.extensions import redis_store

    k = keys.event(10**9)  # an event that does not exist: keys of its own
    r = stack.redis
    zadd_chunks(r, k.prequeue, MILLION, lambda i: i + 1)
    drawn = [FIRST_ID + i for i in range(MILLION)]
    random.Random(batch).shuffle(drawn)
    with stack.app.app_context():
        redis_store.scripts.draw_move(keys=[k.prequeue, k.queue], args=[])  # loads it
        log_every_call(r, 10_000, slower_than_us=100)  # not the script's own commands
        for start in range(0, MILLION, batch):
            args = []
            for place, user_id in enumerate(drawn[start : start + batch], start=start):
                args += [place - MILLION, user_id]
            redis_store.scripts.draw_move(keys=[k.prequeue, k.queue], args=args)
        calls = script_calls(r, redis_store.scripts.draw_move.sha, 10_000)
    assert r.zcard(k.queue) == MILLION and r.zcard(k.prequeue) == 0
    r.unlink(k.queue, k.prequeue)
    return calls


def choose_move_batch(stack: Stack) -> int:
    """The largest batch whose p99 call is within MOVE_LIMIT_US (the max is
    reported too: on a shared machine it says more about the neighbours)."""
    chosen = None
    for batch in MOVE_BATCHES:
        calls = probe_moves(stack, batch)
        fits = percentile(calls, 99) <= MOVE_LIMIT_US
        result(
            15,
            f"draw: one move call of {batch:,} (draw_move.lua, 1,000,000 pre-queued)",
            f"{spread(calls)} of Redis time ({len(calls)} calls)",
            "<= 5 ms (p99): the batch the draw uses",
            fits,
            durations_us=calls,
        )
        if fits:
            chosen = batch
            break
    return chosen or MOVE_BATCHES[-1]


def figure_15(stack: Stack) -> None:
    from app import events, keys, waiting_room
    from app.extensions import redis_store

    r = stack.redis
    move_batch = choose_move_batch(stack)

    event_id = create_event(
        stack,
        admit_rate=1000,
        max_active=10_000,
        sale_opens_at=now() + timedelta(hours=1),
        prequeue_opens_at=now() - timedelta(minutes=1),
    )
    k = keys.event(event_id)
    base = stack.start_web()
    pollers = [Person(base, f"drawpoller{i}@example.com") for i in range(50)]
    for person in pollers:
        assert person.call("POST", f"/api/events/{event_id}/queue")[0] == 200
    requests = [(f"{base}/api/events/{event_id}/queue", {"Cookie": p.cookie}) for p in pollers]
    assert r.zcard(k.prequeue) == len(pollers)
    zadd_chunks(r, k.prequeue, MILLION, lambda i: i + 1000)
    participants = MILLION + len(pollers)

    redis_pid = stack.redis_server.proc.pid
    switched, started = preempted(redis_pid), time.monotonic()
    at_rest = asyncio.run(constant_rate(requests, POLL_RATE, 15))
    rest_switches = (preempted(redis_pid) - switched) / (time.monotonic() - started)
    with stack.app.app_context():
        events.update(event_id, sale_opens_at=now() - timedelta(seconds=1))
        assert waiting_room.admit(event_id)["status"] == "draw"

    # Every call over 0.1 ms (the longest is far above; a script's own
    # commands, a few µs each and a million of them, are left out).
    log_every_call(r, 100_000, slower_than_us=100)
    switched, started = preempted(redis_pid), time.monotonic()
    child = subprocess.Popen(
        [sys.executable, __file__, "_draw", str(event_id), str(move_batch)],
        cwd=Path(__file__).parent,
        env=stack.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    during: list[float] = []
    try:
        while child.poll() is None:
            during += asyncio.run(constant_rate(requests, POLL_RATE, 2))
        out, _ = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    if child.returncode:
        raise RuntimeError(f"the draw failed ({child.returncode})")
    draw_switches = (preempted(redis_pid) - switched) / (time.monotonic() - started)
    timing = json.loads(out.strip().splitlines()[-1])
    # Not the bench's own SLOWLOG RESET (freeing the last log is logged first).
    calls = [c for c in logged(r, 100_000) if c[1][0].lower() not in ("slowlog", "config")]
    scripts = redis_store.scripts
    moves = [us for us, w in calls if len(w) > 1 and w[1] == scripts.draw_move.sha]
    polls = [us for us, w in calls if len(w) > 1 and w[1] == scripts.poll.sha]
    reads = [us for us, w in calls if w[0].lower() == "zrange"]
    longest_us, longest = max(calls, key=lambda c: c[0])
    longest_name = {scripts.draw_move.sha: "draw_move", scripts.poll.sha: "poll"}.get(
        longest[1] if len(longest) > 1 else "", longest[0]
    )
    assert timing["participants"] == timing["moved"] == participants, timing
    assert r.zcard(k.queue) == participants and r.zcard(k.prequeue) == 0
    speed = participants / timing["total"]
    steps = ", ".join(f"{name} {timing[name]:.1f}" for name in STEPS)
    result(
        15,
        "draw of 1,000,000 (draw.make, MySQL + Redis): wall time",
        f"{timing['total']:.1f} s, {speed:,.0f} people/s (steps, s: {steps}; "
        f"move batch {move_batch:,})",
        "measured: DRAW_SPEED",
        None,
        timing=timing,
        people_per_s=speed,
    )
    result(
        15,
        "draw of 1,000,000: longest single Redis call during it",
        f"{longest_us / 1000:.2f} ms ({longest_name}); moves {spread(moves)} ({len(moves)}); "
        f"reads of {READ_BATCH:,} {spread(reads)} ({len(reads)}); polls over 0.1 ms: "
        f"{len(polls):,}, the longest {max(polls, default=0) / 1000:.2f} ms; redis-server "
        f"switched out {draw_switches:.0f}/s meanwhile, {rest_switches:.0f}/s at rest",
        "<= 10 ms",
        longest_us <= 10_000,
        moves_us=moves,
        reads_us=reads,
    )
    p99_rest, p99_during = percentile(at_rest, 99), percentile(during, 99)
    result(
        15,
        "draw of 1,000,000: poll p99 meanwhile (HTTP)",
        f"{p99_during * 1000:.1f} ms vs {p99_rest * 1000:.1f} ms at rest "
        f"({p99_during / p99_rest:.2f}x; median {median(during) * 1000:.1f} vs "
        f"{median(at_rest) * 1000:.1f} ms; {POLL_RATE} polls/s constant rate, "
        f"{len(during):,} answered during)",
        "none (the draw's process shares the 2 cores)",
        None,
    )
    stack.stop(stack.web)
    flush(r)


# The draw's steps, as the child process times them.
STEPS = ("read", "ids", "insert", "check", "order", "moves", "finish")
READ_BATCH = 50_000  # draw.make's default


def draw_child(event_id: int, move_batch: int) -> None:
    """`scale10m.py _draw EVENT MOVE_BATCH`: draw.make in a process of its own
    (its hashing would otherwise hold the pollers' GIL), timing its steps:
    read the pre-queue, make the public ids, insert into MySQL, read them
    back and check, order, move in Redis, and record it as made."""
    from app import create_app, draw
    from app.extensions import db

    app = create_app({"RATELIMIT_ENABLED": False})
    marks: dict[str, float] = {}

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            marks[name + "_start"] = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                marks[name + "_end"] = time.perf_counter()

        return wrapper

    class TimedDb:
        """draw.py's `db`, noting when each transaction starts and ends."""

        def __init__(self):
            self.spans: list[tuple[float, float]] = []

        def atomic(self):
            @contextlib.contextmanager
            def span():
                started = time.perf_counter()
                with db.atomic():
                    yield
                self.spans.append((started, time.perf_counter()))

            return span()

        def __getattr__(self, name):
            return getattr(db, name)

    with app.app_context():
        timed_db = TimedDb()
        draw._members = timed("read", draw._members)
        draw.order = timed("order", draw.order)
        draw.db = timed_db
        started = time.perf_counter()
        made = draw.make(event_id, app.config["SECRET_KEY"], move_batch=move_batch)
        ended = time.perf_counter()
        db.close()
    (insert_start, insert_end), (finish_start, _) = timed_db.spans
    timing = {
        **made,
        "total": ended - started,
        "read": marks["read_end"] - marks["read_start"],
        "ids": insert_start - marks["read_end"],
        "insert": insert_end - insert_start,
        "check": marks["order_start"] - insert_end,
        "order": marks["order_end"] - marks["order_start"],
        "moves": finish_start - marks["order_end"],
        "finish": ended - finish_start,
    }
    print(json.dumps(timing), flush=True)


# --- running --------------------------------------------------------------------


PARTS = {"14": figure_14, "15": figure_15}


def drop_database() -> None:
    import pymysql

    with contextlib.suppress(pymysql.MySQLError), pymysql.connect(connect_timeout=2, **MYSQL) as c:
        c.cursor().execute(f"DROP DATABASE IF EXISTS {common.BENCH_DB}")


def main() -> None:
    """Both figures, or those named on the command line (e.g. `scale10m.py 15`)."""
    if sys.argv[1:2] == ["_draw"]:
        draw_child(int(sys.argv[2]), int(sys.argv[3]))
        return
    started = time.monotonic()
    stack = Stack()
    try:
        with stack:
            for name in sys.argv[1:] or PARTS:
                PARTS[name](stack)
    finally:
        if hasattr(stack, "redis_server"):  # also when starting the stack failed halfway
            stack.redis_server.stop()
        drop_database()
    print(f"scale10m.py: {time.monotonic() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
