"""Figures 3, 4 and 5: the waiting room at a million people.

3. Redis time per admission tick of 1,000 people with 1,000,000 queued
   (SLOWLOG, every call logged); then 60 s of the real worker and scheduler
   at 700/s with max_active 10,000: the cap is never exceeded and the
   observed rate is within 2 % of the set rate;
4. 1,000,000 ghosts removed in batches: the longest single Redis call, and
   the p99 of polls sent at a constant rate meanwhile against their p99 at rest;
5. Redis bytes per waiting person (queue + heartbeat) at 1,000,000.
"""

import asyncio
import sys
import threading
import time

from common import (
    Person,
    Stack,
    constant_rate,
    create_event,
    median,
    percentile,
    result,
    slowlog_durations,
)

MILLION = 1_000_000
TICKS = 50  # admission ticks timed for figure 3


def seed(stack: Stack, event_id: int, count: int, heartbeat_ms: int, first_id: int = 10**9):
    """Put `count` people in the queue and heartbeat set, as join.lua would
    (integer member ids, sequence scores), in chunks of 10,000 per command."""
    from app import keys

    k = keys.event(event_id)
    pipe = stack.redis.pipeline(transaction=False)
    for start in range(0, count, 10_000):
        members = range(first_id + start, first_id + min(start + 10_000, count))
        pipe.zadd(k.queue, {str(m): m for m in members})
        pipe.zadd(k.heartbeat, {str(m): heartbeat_ms for m in members})
        if len(pipe) >= 20:
            pipe.execute()
    pipe.execute()


def log_every_call(stack: Stack) -> None:
    stack.redis.config_set("slowlog-log-slower-than", 0)
    stack.redis.config_set("slowlog-max-len", 10_000)
    stack.redis.slowlog_reset()


def memory_per_person(stack: Stack) -> None:
    event_id = create_event(stack, admission="paused")
    before = stack.redis.info("memory")["used_memory"]
    seed(stack, event_id, MILLION, int(time.time() * 1000))
    per_person = (stack.redis.info("memory")["used_memory"] - before) / MILLION
    result(
        5,
        "Redis memory per waiting person",
        f"{per_person:.0f} bytes at 1,000,000 (queue + heartbeat)",
        "<= 250 bytes",
        per_person <= 250,
    )
    stack.redis.flushall()


def admission_at_scale(stack: Stack) -> None:
    from app import keys, waiting_room

    event_id = create_event(stack, admit_rate=100_000, max_active=10_000_000, active_ttl=3600)
    seed(stack, event_id, MILLION, int(time.time() * 1000))
    with stack.app.app_context():
        waiting_room.admit(event_id, max_batch=1)  # loads the script: not a tick to time
        log_every_call(stack)
        for _ in range(TICKS):
            assert waiting_room.admit(event_id, max_batch=1000)["admitted"] == 1000
            time.sleep(0.02)
    ticks = slowlog_durations(stack.redis)[:TICKS]
    assert len(ticks) == TICKS
    # The machine is shared: the median says what a tick costs, the spread and
    # the max how much the neighbours added. The target holds only if the max meets it.
    result(
        3,
        "admission tick of 1,000 with 1,000,000 queued",
        f"median {median(ticks) / 1000:.2f} ms (p10 {percentile(ticks, 10) / 1000:.2f}, "
        f"p90 {percentile(ticks, 90) / 1000:.2f}), max {max(ticks) / 1000:.2f} ms of Redis "
        f"time ({len(ticks)} ticks)",
        "<= 2 ms",
        max(ticks) <= 2000,
        durations_us=ticks,
    )

    # 60 s of the real jobs at the design's numbers; windows of 10 s, so that
    # the rate (not the cap) is what limits admission and the rate can be checked.
    from app import events

    with stack.app.app_context():
        events.update(event_id, admit_rate=700, max_active=10_000)
        stack.redis.hset(keys.event(event_id).config, "active_ttl_ms", 10_000)
    k = keys.event(event_id)
    stack.redis.delete(k.active)
    stack.start_jobs()
    time.sleep(12)  # jobs registered, and one full window passed: a steady state
    first = stack.redis.hmget(k.tick, "admitted_total", "last_ms")
    deadline, peak = time.monotonic() + 60, 0
    while time.monotonic() < deadline:
        peak = max(peak, stack.redis.zcard(k.active))
        time.sleep(0.05)
    last = stack.redis.hmget(k.tick, "admitted_total", "last_ms")
    admitted = int(last[0]) - int(first[0])
    seconds = (int(last[1]) - int(first[1])) / 1000
    observed = admitted / seconds
    off = abs(observed - 700) / 700
    result(
        3,
        "60 s at 700/s, max_active 10,000 (active window 10 s)",
        f"observed {observed:.1f}/s ({off:.2%} off), active peaked at {peak:,}",
        "within 2 %, never above the cap",
        off <= 0.02 and peak <= 10_000,
        admitted=admitted,
        seconds=seconds,
    )
    stack.stop_jobs()
    stack.redis.flushall()


def cleanup_at_scale(stack: Stack) -> None:
    from app import waiting_room

    with stack.app.app_context():
        from app.extensions import db
        from app.models import Event, User

        for model in (Event, User):
            model.delete().execute()
        db.close()
    event_id = create_event(stack, admission="paused")
    base = stack.start_web()
    pollers = [Person(base, f"poller{i}@example.com") for i in range(50)]
    for person in pollers:
        assert person.call("POST", f"/api/events/{event_id}/queue")[0] == 200
    requests = [(f"{base}/api/events/{event_id}/queue", {"Cookie": p.cookie}) for p in pollers]
    seed(stack, event_id, MILLION, heartbeat_ms=1)  # a million ghosts, long gone

    rate = 200
    at_rest = asyncio.run(constant_rate(requests, rate, 15))
    with stack.app.app_context():
        waiting_room.clean_up(event_id, 10**11, 1, 0)  # loads the script, removes nobody
    log_every_call(stack)
    removed = {}

    def clean():
        with stack.app.app_context():
            started = time.monotonic()
            removed["count"] = waiting_room.clean_up(event_id, 300, 1000, 0.1)
            removed["seconds"] = time.monotonic() - started

    cleaner = threading.Thread(target=clean)
    cleaner.start()
    during: list[float] = []
    while cleaner.is_alive():
        during += asyncio.run(constant_rate(requests, rate, 10))
    cleaner.join()
    calls = slowlog_durations(stack.redis)
    longest = max(calls)
    p99_rest, p99_during = percentile(at_rest, 99), percentile(during, 99)
    result(
        4,
        "cleanup of 1,000,000 ghosts: longest Redis call",
        f"{longest / 1000:.2f} ms ({removed['count']:,} removed in "
        f"{removed['seconds']:.0f} s, {len(calls):,} calls)",
        "<= 5 ms",
        longest <= 5000,
    )
    result(
        4,
        "cleanup of 1,000,000 ghosts: poll p99 meanwhile",
        f"{p99_during * 1000:.1f} ms vs {p99_rest * 1000:.1f} ms at rest "
        f"({p99_during / p99_rest:.2f}x; {rate} polls/s, constant rate)",
        "<= 2x at rest",
        p99_during <= 2 * p99_rest,
    )
    assert removed["count"] == MILLION


PARTS = {"memory": memory_per_person, "admission": admission_at_scale, "cleanup": cleanup_at_scale}


def main() -> None:
    """All parts, or those named on the command line (e.g. `scale.py admission`)."""
    with Stack() as stack:
        for name in sys.argv[1:] or PARTS:
            PARTS[name](stack)


if __name__ == "__main__":
    main()
