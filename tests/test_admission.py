"""The admission tick (docs/DESIGN.md, "Admission"): FIFO from the head of the queue
into the capped active set, at `rate x elapsed time`, safe from several
worker processes at once, late, paused and reopened; and the RQ job."""

import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import members, seed_queue

from app import events, keys, waiting_room

ROOT = Path(__file__).resolve().parent.parent


# Helpers


def tick_state(r, event_id: int) -> tuple[int, int]:
    """(admitted_total, last_ms) from the tick hash the admit script keeps."""
    total, last_ms = r.hmget(keys.event(event_id).tick, "admitted_total", "last_ms")
    return int(total or 0), int(last_ms)


def close_enough(actual: int, expected: float) -> bool:
    """Within 2 %, or one person (the fractional remainder carries over)."""
    return abs(actual - expected) <= max(1.0, 0.02 * expected)


# One tick


def test_tick_moves_the_head_of_the_queue_into_the_active_set(ctx, r, make_event):
    event = make_event(admission="open", admit_rate=5, max_active=100, active_ttl=60)
    k = keys.event(event.id)
    order = [42, 7, 1_000, 3, 99, 5, 61, 8, 12, 30]
    for uid in order:
        waiting_room.join(event.id, uid)

    result = waiting_room.admit(event.id)

    assert result == {"admitted": 5, "expired": 0, "active": 5, "status": "ok"}
    assert members(r, k.active) == sorted(order[:5], key=str)  # same score: by member
    _, now_ms = tick_state(r, event.id)
    active = dict(r.zrange(k.active, 0, -1, withscores=True))
    assert set(active.values()) == {now_ms + 60_000}  # now + active_ttl
    assert members(r, k.queue) == order[5:]  # the rest keep their order
    # The admitted keep their heartbeat entries: the clean-up takes them later.
    assert sorted(members(r, k.heartbeat)) == sorted(order)
    assert r.hget(k.tick, "admitted_total") == "5"
    assert waiting_room.poll(event.id, order[0]).status == "admitted"
    assert waiting_room.poll(event.id, order[5]).position == 1

    time.sleep(1.0)
    second = waiting_room.admit(event.id)
    assert second["admitted"] == 5 and second["active"] == 10
    assert r.zcard(k.queue) == 0
    assert r.hget(k.tick, "admitted_total") == "10"


def test_a_tick_of_thousands_admits_exactly_the_head_in_order(ctx, r, make_event):
    """More people in one tick than one ZADD takes (the script adds in chunks)."""
    event = make_event(admission="open", admit_rate=5_000, max_active=100_000, active_ttl=60)
    k = keys.event(event.id)
    order = list(range(1, 6_501))
    random.Random(7).shuffle(order)  # join order is not id order
    seed_queue(r, event.id, order)

    assert waiting_room.admit(event.id)["admitted"] == 5_000  # one second's worth

    active = dict(r.zrange(k.active, 0, -1, withscores=True))
    assert sorted(int(m) for m in active) == sorted(order[:5_000])
    _, now_ms = tick_state(r, event.id)
    assert set(active.values()) == {now_ms + 60_000}
    assert members(r, k.queue) == order[5_000:]
    assert r.hget(k.tick, "admitted_total") == "5000"


def test_tick_on_an_empty_queue_admits_nobody_and_banks_nothing(ctx, r, make_event):
    event = make_event(admission="open", admit_rate=100, max_active=1_000)
    assert waiting_room.admit(event.id)["admitted"] == 0
    time.sleep(0.5)
    started = time.monotonic()
    assert waiting_room.admit(event.id)["admitted"] == 0
    seed_queue(r, event.id, range(1, 1_001))
    # An empty queue built no burst: the next tick admits only its own elapsed time.
    admitted = waiting_room.admit(event.id)["admitted"]
    assert admitted <= 100 * (time.monotonic() - started) + 1


@pytest.mark.parametrize("rate", [7, 500])
def test_admits_rate_times_elapsed_time(ctx, r, make_event, rate):
    seconds = 3.0
    event = make_event(admission="open", admit_rate=rate, max_active=1_000_000, active_ttl=3_600)
    seed_queue(r, event.id, range(1, int(rate * seconds * 3) + 100))  # never runs dry
    waiting_room.admit(event.id)  # the first tick admits one second's worth
    first_total, first_ms = tick_state(r, event.id)
    assert first_total == rate

    started = time.monotonic()
    ticks = 0
    while time.monotonic() - started < seconds:
        time.sleep(0.1)
        waiting_room.admit(event.id)
        ticks += 1
    total, last_ms = tick_state(r, event.id)

    elapsed_s = (last_ms - first_ms) / 1000
    assert elapsed_s >= seconds and ticks >= 5
    assert close_enough(total - first_total, rate * elapsed_s), (total, rate, elapsed_s)
    assert r.zcard(keys.event(event.id).active) == total


def test_a_late_tick_does_not_lose_admissions(ctx, r, make_event):
    rate = 100
    event = make_event(admission="open", admit_rate=rate, max_active=100_000, active_ttl=600)
    seed_queue(r, event.id, range(1, 2_001))
    waiting_room.admit(event.id)
    _, first_ms = tick_state(r, event.id)
    before_sleep = time.monotonic()

    time.sleep(2.0)
    late = waiting_room.admit(event.id)["admitted"]
    wall = time.monotonic() - before_sleep
    _, last_ms = tick_state(r, event.id)

    assert late >= 2 * rate  # two seconds at least went by
    assert late <= rate * wall + 1  # and no more than the time that really passed
    assert close_enough(late, rate * (last_ms - first_ms) / 1000)


def test_per_call_limit_carries_the_rest_to_the_next_tick(ctx, r, make_event):
    event = make_event(admission="open", admit_rate=1_000, max_active=100_000, active_ttl=600)
    seed_queue(r, event.id, range(1, 5_001))
    first = waiting_room.admit(event.id, max_batch=300)["admitted"]
    second = waiting_room.admit(event.id, max_batch=10_000)["admitted"]
    assert first == 300
    total, _ = tick_state(r, event.id)
    assert second >= 700  # what the limit held back was not lost
    assert total == first + second


def test_paused_event_admits_nobody_and_reopening_releases_no_burst(ctx, r, make_event):
    rate = 100
    event = make_event(admission="open", admit_rate=rate, max_active=100_000, active_ttl=600)
    k = keys.event(event.id)
    seed_queue(r, event.id, range(1, 3_001))
    assert waiting_room.admit(event.id)["admitted"] == rate
    events.update(event.id, admission="paused")
    queued = r.zcard(k.queue)

    paused_until = time.monotonic() + 3.0
    while time.monotonic() < paused_until:  # the job keeps ticking a paused event
        result = waiting_room.admit(event.id)
        assert result["admitted"] == 0 and result["status"] == "paused"
        time.sleep(0.25)
    assert r.zcard(k.queue) == queued
    assert r.hget(k.tick, "admitted_total") == str(rate)

    events.update(event.id, admission="open")
    reopened = waiting_room.admit(event.id)
    assert reopened["status"] == "ok"
    assert reopened["admitted"] <= rate  # at most one second's worth, not three
    time.sleep(0.3)
    assert waiting_room.admit(event.id)["admitted"] <= rate  # then the normal pace


def test_reopening_a_closed_event_releases_no_burst(app, r, make_event, job_app):
    from jobs.admit import tick

    rate = 100
    event = make_event(admission="open", admit_rate=rate, max_active=100_000, active_ttl=600)
    seed_queue(r, event.id, range(1, 3_001))
    assert tick()[event.id]["admitted"] == rate
    with app.app_context():
        events.update(event.id, admission="closed")
    closed_until = time.monotonic() + 3.0
    while time.monotonic() < closed_until:  # the scheduler keeps running the job
        assert event.id not in tick()
        time.sleep(0.25)
    with app.app_context():
        events.update(event.id, admission="open")

    assert tick()[event.id]["admitted"] <= rate  # not the 3 s spent closed


def test_a_tick_drops_expired_actives_even_while_paused(ctx, r, make_event):
    event = make_event(admission="open", admit_rate=100, max_active=10)
    k = keys.event(event.id)
    r.hset(k.config, "active_ttl_ms", 200)
    seed_queue(r, event.id, range(1, 21))
    assert waiting_room.admit(event.id)["active"] == 10
    events.update(event.id, admission="paused")
    time.sleep(0.3)
    result = waiting_room.admit(event.id)
    assert (result["expired"], result["admitted"], result["active"]) == (10, 0, 0)
    assert r.zcard(k.queue) == 10


def test_a_lower_cap_admits_nobody_until_people_leave(ctx, r, make_event):
    event = make_event(admission="open", admit_rate=1_000, max_active=10, active_ttl=600)
    k = keys.event(event.id)
    seed_queue(r, event.id, range(1, 101))
    waiting_room.admit(event.id)
    events.update(event.id, max_active=4)  # staff lower the cap live
    time.sleep(0.05)
    assert waiting_room.admit(event.id) == {
        "admitted": 0,
        "expired": 0,
        "active": 10,
        "status": "ok",
    }
    for uid in range(1, 8):
        waiting_room.leave(event.id, uid)
    time.sleep(0.05)
    assert waiting_room.admit(event.id)["active"] == 4
    assert sorted(members(r, k.active)) == [8, 9, 10, 11]


# Several worker processes at once

WORKER = r"""
import random, sys, time
from app import create_app, waiting_room
from app.extensions import redis_store

redis_url, database_url, event_id, go_key, ready_key, seconds = sys.argv[1:7]
app = create_app({"TESTING": True, "REDIS_URL": redis_url, "DATABASE_URL": database_url})
with app.app_context():
    r = redis_store.client
    r.incr(ready_key)
    deadline = time.monotonic() + 60
    while not r.exists(go_key):
        if time.monotonic() > deadline:
            sys.exit("never told to start")
        time.sleep(0.005)
    stop = time.monotonic() + float(seconds)
    ticks = 0
    while time.monotonic() < stop:
        waiting_room.admit(int(event_id))
        ticks += 1
        time.sleep(random.uniform(0.05, 0.25))
    print(ticks)
"""


def run_workers(app, r, event_id: int, seconds: float, before_go=None, workers: int = 4):
    """Start worker processes ticking one event, sample ZCARD of the active set
    while they run; returns (largest active count seen, ticks per worker)."""
    go_key, ready_key = f"test:go:{event_id}", f"test:ready:{event_id}"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                app.config["REDIS_URL"],
                app.config["DATABASE_URL"],
                str(event_id),
                go_key,
                ready_key,
                str(seconds),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    try:
        deadline = time.monotonic() + 60
        while int(r.get(ready_key) or 0) < workers:
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.02)
        if before_go:
            before_go()
        r.set(go_key, 1)
        active = keys.event(event_id).active
        largest = 0
        while any(p.poll() is None for p in procs):
            largest = max(largest, r.zcard(active))
            time.sleep(0.002)
        largest = max(largest, r.zcard(active))
        outputs = [p.communicate(timeout=30) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0] * workers, outputs
    return largest, [int(out.split()[-1]) for out, _ in outputs]


@pytest.mark.slow
def test_four_workers_admit_rate_times_elapsed_time(app, ctx, r, make_event):
    rate = 1_000
    event = make_event(admission="open", admit_rate=rate, max_active=1_000_000, active_ttl=3_600)
    k = keys.event(event.id)
    queued = 20_000
    seed_queue(r, event.id, range(1, queued + 1))  # far more than 4 s worth
    start = {}

    def first_tick():
        waiting_room.admit(event.id)
        start["total"], start["ms"] = tick_state(r, event.id)

    largest, ticks = run_workers(app, r, event.id, 4.0, before_go=first_tick)

    total, last_ms = tick_state(r, event.id)
    elapsed_s = (last_ms - start["ms"]) / 1000
    assert min(ticks) >= 5 and elapsed_s > 3.5
    assert close_enough(total - start["total"], rate * elapsed_s), (total, elapsed_s)
    # Nobody admitted twice, nobody lost: every popped person is active, once.
    active, waiting = members(r, k.active), members(r, k.queue)
    assert len(active) == total == largest
    assert len(set(active) | set(waiting)) == len(active) + len(waiting) == queued
    assert waiting[:3] == [total + 1, total + 2, total + 3]  # FIFO across workers


@pytest.mark.slow
def test_four_workers_never_exceed_max_active(app, ctx, r, make_event):
    cap = 50
    event = make_event(admission="open", admit_rate=1_000, max_active=cap, active_ttl=3_600)
    k = keys.event(event.id)
    seed_queue(r, event.id, range(1, 5_001))

    largest, ticks = run_workers(app, r, event.id, 4.0)

    assert min(ticks) >= 5
    assert largest <= cap
    assert sorted(members(r, k.active)) == list(range(1, cap + 1))
    assert r.hget(k.tick, "admitted_total") == str(cap)
    assert r.zcard(k.queue) == 5_000 - cap


@pytest.mark.slow
def test_four_workers_never_exceed_max_active_while_slots_expire(app, ctx, r, make_event):
    cap = 50
    event = make_event(admission="open", admit_rate=2_000, max_active=cap)
    k = keys.event(event.id)
    r.hset(k.config, "active_ttl_ms", 150)  # slots free up all the time: the workers race
    seed_queue(r, event.id, range(1, 20_001))

    largest, _ = run_workers(app, r, event.id, 3.0)

    admitted = int(r.hget(k.tick, "admitted_total"))
    assert largest <= cap
    assert admitted > 3 * cap  # slots really were refilled
    assert r.zcard(k.queue) == 20_000 - admitted  # each person popped once
    assert members(r, k.queue)[0] == admitted + 1


# The RQ job


def test_admission_job_ticks_every_event_that_is_not_closed(app, r, make_event, job_app):
    from jobs.admit import tick

    open_event = make_event(admission="open", admit_rate=3, max_active=100)
    paused_event = make_event(admission="paused", admit_rate=3, max_active=100)
    closed_event = make_event(admission="closed", admit_rate=3, max_active=100)
    for event in (open_event, paused_event, closed_event):
        seed_queue(r, event.id, range(1, 11))

    results = tick()

    assert set(results) == {open_event.id, paused_event.id}
    assert results[open_event.id] == {"admitted": 3, "expired": 0, "active": 3, "status": "ok"}
    assert results[paused_event.id] == {
        "admitted": 0,
        "expired": 0,
        "active": 0,
        "status": "paused",
    }
    assert members(r, keys.event(open_event.id).active) == [1, 2, 3]
    assert r.zcard(keys.event(paused_event.id).active) == 0
    assert r.zcard(keys.event(closed_event.id).active) == 0
    assert r.zcard(keys.event(closed_event.id).queue) == 10

    r.delete(keys.event(open_event.id).config)  # Redis lost a config: the job reloads it
    time.sleep(0.4)
    again = tick()
    assert again[open_event.id]["status"] == "ok"
    assert again[open_event.id]["admitted"] >= 1
