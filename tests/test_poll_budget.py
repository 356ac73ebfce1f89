"""The poll budget (docs/DESIGN.md, "The poll budget"): whatever the crowd,
the polls the queue is told to send stay within the event's budget; the
front keeps polling every second; nobody is told to wait past their turn
plus most of a window; and a window starts when the person is told.

The model's sums call capacity.interval for every place (the function the
polls use), not the model's closed form, so they check the model too.
"""

import math

import pytest
from helpers import redis_now_ms, seed_queue

from app import capacity, events, keys, waiting_room
from app.config import DEFAULT_POLL_TIERS

JITTER = 0.1
# The jitter spreads each interval uniformly over +/- 10 %: the mean of
# 1 / interval grows by ln(1.1 / 0.9) / 0.2 = 1.0034.
JITTER_LOAD = math.log((1 + JITTER) / (1 - JITTER)) / (2 * JITTER)
OTHERS = 60_000_000  # made-up people, far above any real user id


def polls_per_second(waiting: int, scale: float, rule: capacity.PollRule) -> float:
    """The sum over the queue of 1 / interval: exactly up to 200,000 people;
    beyond, over blocks of places each counted at its first place's
    interval (intervals never shrink further back, so this is never below
    the exact sum)."""
    if waiting <= 200_000:
        return math.fsum(1 / capacity.interval(p, scale, rule) for p in range(1, waiting + 1))
    total, first = 0.0, 1
    while first <= waiting:
        last = min(waiting, max(first, int(first * 1.0005)))
        total += (last - first + 1) / capacity.interval(first, scale, rule)
        first = last + 1
    return total


@pytest.mark.parametrize("budget", [1_500, 5_000, 20_000])
@pytest.mark.parametrize(
    "waiting", [10, 1_000, 5_000, 50_000, 100_000, 1_000_000, 3_000_000, 10_000_000]
)
def test_the_queue_polls_within_its_budget_from_10_to_10_million(waiting, budget):
    rule = capacity.PollRule.of(DEFAULT_POLL_TIERS, budget, 300, 700)
    scale = capacity.scale_for(waiting, rule)
    sent = polls_per_second(waiting, scale, rule)
    floor = polls_per_second(waiting, math.inf, rule)  # everyone at their latest poll
    if floor > budget:
        # This budget cannot be held at 700 admissions/s: said by the model
        # (and `flask capacity`), and nobody is stretched past their latest poll.
        assert scale == capacity.scale_for(waiting, rule) and sent <= floor * 1.001
        assert budget <= 1_500 and waiting >= 1_000_000
        return
    assert sent <= budget * 1.001, (waiting, scale, sent)
    assert sent * JITTER_LOAD <= budget * 1.005  # with the jitter
    if waiting <= 200_000:  # the exact sum: the model never underestimates it
        assert capacity.load(waiting, scale, rule) >= sent - 1e-6
    if capacity.load(waiting, 1.0, rule) > budget:
        assert sent >= budget * 0.99  # stretched no further than needed
    else:
        assert scale == 1.0  # within budget: the tier table as it is
    # The front polls every second and sees its exact place, whatever the crowd.
    assert capacity.interval(min(waiting, 1_000), scale, rule) == 1
    for place in (1, 1_001, 10_001, 100_001, waiting):
        assert capacity.interval(place, scale, rule) <= capacity.latest_poll(place, rule)


def test_intervals_stretch_as_the_crowd_grows_and_shrink_as_it_drains():
    rule = capacity.PollRule.of(DEFAULT_POLL_TIERS, 5_000, 300, 700)
    scales = [capacity.scale_for(n, rule) for n in (5_000, 100_000, 1_000_000, 10_000_000)]
    assert scales[0] == 1.0 and scales == sorted(scales) and scales[-1] > 10
    deep = [capacity.interval(500_000, s, rule) for s in scales[1:]]
    assert deep == sorted(deep) and deep[0] < deep[-1]
    # Tiers near the front stretch less than the back (tier k of K by scale^(k/K)).
    s = scales[2]
    assert capacity.interval(2_000, s, rule) / 5 < capacity.interval(500_000, s, rule) / 60


def test_a_table_of_one_tier_is_never_stretched():
    # Every place polls at the front's interval; over budget, the model says so.
    rule = capacity.PollRule.of([{"up_to": None, "interval": 3, "band": 0}], 5_000, 300, 700)
    assert capacity.scale_for(20_000, rule) == 1.0
    assert capacity.load(20_000, 1.0, rule) > 5_000 and "over budget" in capacity.report(
        20_000, rule
    )


def test_the_capacity_report_shows_intervals_and_load():
    rule = capacity.PollRule.of(DEFAULT_POLL_TIERS, 5_000, 300, 700)
    report = capacity.report(1_000_000, rule)
    assert "poll budget 5,000/s" in report and "20,300.0" in report  # the table alone
    total = float(
        next(x for x in report.splitlines() if x.startswith("total")).split()[-1].replace(",", "")
    )
    assert 4_950 <= total <= 5_000


# Live: the polls the queue is actually told to send.


def test_a_live_queue_is_told_to_poll_within_the_budget(app, r, make_event):
    # 12,000 waiting at a budget of 1,500/s: the tier table alone would be 2,700.
    event = make_event(admission="paused", poll_budget=1_500)
    k = keys.event(event.id)
    seed_queue(r, event.id, range(OTHERS + 1, OTHERS + 12_001))
    with app.app_context():
        waiting_room.admit(event.id)  # the tick rescales to the crowd
        scale = float(r.hget(k.config, "poll_scale"))
        assert scale > 1
        told = [waiting_room.poll(event.id, OTHERS + i).poll_after for i in range(1, 12_001)]
    sent = math.fsum(1 / t for t in told)
    assert 1_500 * 0.95 <= sent <= 1_500 * 1.02, sent
    assert max(told[:1_000]) <= 1.1  # the front still every second

    # Most of the crowd leaves: the next tick shrinks the intervals back.
    r.zremrangebyrank(k.queue, 3_000, -1)
    with app.app_context():
        waiting_room.admit(event.id)
        assert float(r.hget(k.config, "poll_scale")) == 1.0
        assert waiting_room.poll(event.id, OTHERS + 2_000).poll_after <= 5.5


def test_a_budget_change_applies_at_the_next_tick(app, r, make_event):
    event = make_event(admission="paused")
    seed_queue(r, event.id, range(OTHERS + 1, OTHERS + 8_001))
    k = keys.event(event.id)
    with app.app_context():
        waiting_room.admit(event.id)
        assert r.hget(k.config, "poll_scale") == "1"  # 8,000 fit in 5,000/s
        events.update(event.id, poll_budget=1_200)
        waiting_room.admit(event.id)
        assert float(r.hget(k.config, "poll_scale")) > 1
    assert app.test_client().get(f"/api/events/{event.id}").json["poll_budget"] == 1_200


def test_a_small_paused_queue_polls_every_second(ctx, make_event):
    event = make_event(admission="paused")
    for uid in range(1, 6):
        assert waiting_room.join(event.id, uid).poll_after <= 1.1
    assert all(waiting_room.poll(event.id, uid).poll_after <= 1.1 for uid in range(1, 6))


def test_the_heartbeat_allows_until_the_latest_poll(ctx, r, make_event):
    # Ghosts are those long past the latest time they were due: someone far
    # back with a long interval is not one.
    event = make_event(admission="paused", admit_rate=100, active_ttl=300)
    seed_queue(r, event.id, range(OTHERS + 1, OTHERS + 50_001))
    k = keys.event(event.id)
    before = redis_now_ms(r)
    waiting_room.poll(event.id, OTHERS + 50_000)  # rank 49,999
    due = r.zscore(k.heartbeat, OTHERS + 50_000)
    rule = capacity.PollRule.of(DEFAULT_POLL_TIERS, 5_000, 300, 100)
    latest_ms = capacity.latest_poll(50_000, rule) * 1000
    assert before + latest_ms - 5 <= due <= redis_now_ms(r) + latest_ms + 5


# A window starts when the person is told.


def test_someone_admitted_while_polling_slowly_still_gets_a_full_window(ctx, r, make_event):
    event = make_event(admission="open", admit_rate=1_000, active_ttl=60)
    k = keys.event(event.id)
    waiting_room.join(event.id, 1)
    waiting_room.join(event.id, 2)
    assert waiting_room.admit(event.id)["admitted"] == 2
    # Admitted 50 s ago (as if the tick ran then): 10 s of the slot left.
    now = redis_now_ms(r)
    r.zadd(k.active, {1: now + 10_000, 2: now + 10_000})
    told = waiting_room.poll(event.id, 1)
    assert told.status == "admitted"
    assert now / 1000 + 59 <= told.active_until <= now / 1000 + 61  # a full minute from now
    assert r.zscore(k.active, 1) // 1000 == told.active_until  # the slot, extended
    # Told once: polling again does not extend it further.
    assert waiting_room.poll(event.id, 1).active_until == told.active_until
    # Person 2 has not looked: still leaves at the tick's time, so the cap holds.
    assert r.zscore(k.active, 2) == now + 10_000
    assert r.zcard(k.active) <= event.max_active


def test_a_config_hash_from_before_the_budget_is_written_again(ctx, r, make_event):
    # Redis kept an event's config from an earlier version (no poll budget,
    # no window): the first script to meet it has it copied from MySQL.
    event = make_event(admission="open")
    k = keys.event(event.id)
    r.hdel(k.config, "poll_budget", "window_ms", "active_ttl_ms", "prequeue_ms", "drawn")
    assert waiting_room.admit(event.id)["status"] == "ok"
    assert r.hget(k.config, "poll_budget") == "5000"
    r.hdel(k.config, "window_ms", "active_ttl_ms")
    assert waiting_room.join(event.id, 1).position == 1
    assert r.hget(k.config, "window_ms") == "240000"
