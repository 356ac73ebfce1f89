"""The virtual waiting room (docs/DESIGN.md): join, poll, leave, the poll
tiers, admission and the batched clean-up, against the real Redis and MySQL.

Queue members are user ids; the waiting-room functions never look users up,
so most tests use plain integers and seed large queues with pipelined ZADD.
"""

import logging
import math
import threading
import time
import uuid

import jwt
import pytest
import redis
from helpers import members, redis_now_ms, seed_queue, server_of

from app import capacity, events, keys, waiting_room
from app.config import DEFAULT_POLL_TIERS
from app.errors import AppError
from app.extensions import redis_store

TIER_INTERVALS = [tier["interval"] for tier in DEFAULT_POLL_TIERS]  # 1, 5, 10, 30, 60
SLOWEST = TIER_INTERVALS[-1]
HOUR_MS = 3_600_000
# Made-up people queued next to real users: far above any real user id.
OTHERS = 50_000_000

# (position, poll interval, exact position or None, band or None): docs/DESIGN.md's table.
BOUNDARIES = [
    (1, 1, 1, None),
    (1_000, 1, 1_000, None),
    (1_001, 5, 1_001, None),
    (5_000, 5, 5_000, None),
    (5_001, 10, None, {"from": 5_001, "to": 6_000}),
    (10_000, 10, None, {"from": 9_001, "to": 10_000}),
    (10_001, 30, None, {"from": 10_001, "to": 20_000}),
    (100_000, 30, None, {"from": 90_001, "to": 100_000}),
    (100_001, 60, None, {"from": 100_001, "to": None}),
]


# Helpers


def seed(r, key: str, scores: dict, chunk: int = 5_000) -> None:
    """ZADD many members in few round trips."""
    items = list(scores.items())
    pipe = r.pipeline(transaction=False)
    for start in range(0, len(items), chunk):
        pipe.zadd(key, dict(items[start : start + chunk]))
    pipe.execute()


def within_ten_percent(poll_after: float, interval: float) -> bool:
    return interval * 0.9 - 1e-9 <= poll_after <= interval * 1.1 + 1e-9


def logged_in_client(app, login, user):
    return login(app.test_client(), user)


# Joining


def test_twenty_concurrent_joins_by_one_person_queue_them_once(
    app, r, make_user, login, make_event
):
    event = make_event(admission="paused")
    seed_queue(r, event.id, range(900_001, 900_006))  # five people already ahead
    person = make_user()
    clients = [logged_in_client(app, login, person) for _ in range(20)]
    barrier = threading.Barrier(len(clients))
    answers, errors = [None] * len(clients), []

    def join(i):
        try:
            barrier.wait(10)
            response = clients[i].post(f"/api/events/{event.id}/queue")
            answers[i] = (response.status_code, response.json)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=join, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert not errors
    assert {code for code, _ in answers} == {200}
    assert {body["position"] for _, body in answers} == {6}
    assert {body["status"] for _, body in answers} == {"waiting"}
    k = keys.event(event.id)
    assert r.zcard(k.queue) == 6
    assert members(r, k.queue)[-1] == person.id
    assert r.zscore(k.queue, person.id) == 6  # one sequence number taken, not twenty
    assert r.get(k.sequence) == "6"
    assert r.zscore(k.heartbeat, person.id) is not None


def test_thousand_joins_are_served_first_in_first_out(ctx, r, make_event):
    import random

    event = make_event(admission="paused")
    order = random.Random(7).sample(range(1, 100_000), 1_000)  # ids unrelated to arrival
    positions = [waiting_room.join(event.id, uid).position for uid in order]

    k = keys.event(event.id)
    assert positions == list(range(1, 1_001))
    assert members(r, k.queue) == order
    scores = [score for _, score in r.zrange(k.queue, 0, -1, withscores=True)]
    assert scores == list(range(1, 1_001))  # the sequence: no ties, no gaps

    # Joining again (F5, double click, reconnect) never moves anyone.
    again = random.Random(8).sample(order, 300)
    assert [waiting_room.join(event.id, uid).position for uid in again] == [
        order.index(uid) + 1 for uid in again
    ]
    assert members(r, k.queue) == order
    assert [s for _, s in r.zrange(k.queue, 0, -1, withscores=True)] == scores
    assert r.get(k.sequence) == "1000"
    assert [waiting_room.poll(event.id, uid).position for uid in order[:50]] == list(range(1, 51))


def test_second_join_keeps_position_through_the_api(app, r, make_user, login, make_event):
    event = make_event(admission="paused")
    first, second = make_user(), make_user()
    a, b = logged_in_client(app, login, first), logged_in_client(app, login, second)
    assert a.post(f"/api/events/{event.id}/queue").json["position"] == 1
    assert b.post(f"/api/events/{event.id}/queue").json["position"] == 2
    assert a.post(f"/api/events/{event.id}/queue").json["position"] == 1
    assert b.post(f"/api/events/{event.id}/queue").json["waiting_total"] == 2
    assert members(r, keys.event(event.id).queue) == [first.id, second.id]


# Poll tiers, bands and intervals


@pytest.mark.parametrize(("position", "interval", "exact", "band"), BOUNDARIES)
def test_each_tier_boundary_sets_interval_and_band(position, interval, exact, band):
    # The event defaults (rate 700/s, 300 s windows), a crowd within the budget.
    rule = capacity.PollRule.of(DEFAULT_POLL_TIERS, 5_000, 300, 700)
    assert capacity.band_for(position, DEFAULT_POLL_TIERS) == band
    assert capacity.interval(position, 1.0, rule) == interval
    for _ in range(200):  # the jitter is random: stay inside +/- 10 % every time
        assert within_ten_percent(waiting_room.jittered(interval, 0.1), interval)


def test_poll_intervals_are_jittered(ctx):
    intervals = {waiting_room.jittered(30, 0.1) for _ in range(100)}
    assert len(intervals) > 5  # a crowd admitted together does not poll in lock-step


def test_poll_answers_each_tier_boundary_through_the_api(app, r, make_user, login, make_event):
    event = make_event(admission="open")
    k = keys.event(event.id)
    # 100,001 others, scored 1..100,001; the person is slotted in between them.
    seed(r, k.queue, {10_000_000 + i: i for i in range(1, 100_002)})
    person = make_user()
    client = logged_in_client(app, login, person)

    for position, interval, exact, band in BOUNDARIES:
        r.zadd(k.queue, {person.id: position - 0.5})  # exactly position - 1 ahead
        response = client.get(f"/api/events/{event.id}/queue")
        assert response.status_code == 200, position
        body = response.json
        assert body["status"] == "waiting"
        assert body["position"] == exact, position
        assert isinstance(body["position"], int) or exact is None
        assert body["position_band"] == band, position
        assert body["waiting_total"] == 100_002
        assert body["paused"] is False
        assert within_ten_percent(body["poll_after"], interval), (position, body["poll_after"])
        assert response.headers["Retry-After"] == str(math.ceil(body["poll_after"]))
        assert body["token"] is None and body["active_until"] is None


def test_poll_shows_the_exact_position_as_an_integer_and_the_band_as_from_to(ctx, r, make_event):
    event = make_event(admission="open")
    seed_queue(r, event.id, range(1, 10_002))
    exact = waiting_room.poll(event.id, 1_000).to_json()
    banded = waiting_room.poll(event.id, 10_001).to_json()
    assert exact["position"] == 1_000 and exact["position_band"] is None
    assert banded["position"] is None
    assert banded["position_band"] == {"from": 10_001, "to": 20_000}


def test_paused_admission_keeps_each_place_on_its_interval(app, r, make_user, login, make_event):
    # Paused, people keep the interval of their place: the front still looks
    # every second, so it learns at once when admission opens again.
    event = make_event(admission="open", admit_rate=50)
    seed_queue(r, event.id, range(OTHERS + 1, OTHERS + 6_001))
    with app.app_context():
        waiting_room.admit(event.id)  # an observed rate, so an open event shows an ETA
        assert waiting_room.poll(event.id, OTHERS + 100).eta_seconds is not None
        events.update(event.id, admission="paused")
        for uid, interval in ((51, 1), (100, 1), (1_100, 5), (5_200, 10), (6_000, 10)):
            status = waiting_room.poll(event.id, OTHERS + uid)  # places uid - 50
            assert status.paused is True
            assert within_ten_percent(status.poll_after, interval), (uid, status.poll_after)
            assert status.eta_seconds is None and status.eta_range is None
        joined = waiting_room.join(event.id, OTHERS + 6_001)
        assert joined.paused is True and within_ten_percent(joined.poll_after, 10)

    person = make_user()
    client = logged_in_client(app, login, person)
    body = client.post(f"/api/events/{event.id}/queue").json
    response = client.get(f"/api/events/{event.id}/queue")
    assert body["paused"] is True and response.json["paused"] is True
    # 6,001 joined and 50 were admitted: this person is 5,952nd, shown as a band.
    assert response.json["position"] is None
    assert response.json["position_band"] == {"from": 5_001, "to": 6_000}
    assert within_ten_percent(response.json["poll_after"], 10)
    assert int(response.headers["Retry-After"]) in range(9, 12)
    assert response.json["eta_seconds"] is None


def test_an_event_before_its_sale_opens_counts_as_paused(ctx, make_event):
    from datetime import UTC, datetime, timedelta

    event = make_event(admission="open")
    events.update(
        event.id, sale_opens_at=datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)
    )
    status = waiting_room.join(event.id, 1)
    # In the pre-queue: no place until the draw, and a small one looks every second.
    assert status.paused is True and status.position is None and status.draw_id
    assert within_ten_percent(status.poll_after, 1)
    assert 3_590 <= status.opens_in <= 3_600
    assert waiting_room.admit(event.id)["status"] == "paused"
    assert waiting_room.poll(event.id, 1).draw_id == status.draw_id


# Refusals


def test_poll_when_not_in_the_queue_is_404_not_in_queue(app, make_user, login, make_event):
    event = make_event(admission="open")
    client = logged_in_client(app, login, make_user())
    response = client.get(f"/api/events/{event.id}/queue")
    assert response.status_code == 404
    assert response.json["error"] == "not_in_queue"
    assert "Retry-After" not in response.headers


def test_poll_and_join_on_an_unknown_event_are_404(app, r, make_user, login, make_event):
    make_event(admission="open")
    client = logged_in_client(app, login, make_user())
    for response in (
        client.get("/api/events/987654/queue"),
        client.post("/api/events/987654/queue"),
    ):
        assert response.status_code == 404
        assert response.json["error"] == "not_found"
    assert not r.keys("{evt:987654}*")  # nothing left behind for a made-up id


def test_queue_api_needs_a_login(client, make_event):
    event = make_event(admission="open")
    for response in (
        client.post(f"/api/events/{event.id}/queue"),
        client.get(f"/api/events/{event.id}/queue"),
        client.delete(f"/api/events/{event.id}/queue"),
    ):
        assert response.status_code == 401
        assert response.json["error"] == "login_required"


def test_joining_a_closed_event_is_409_event_closed(app, r, make_user, login, make_event):
    event = make_event(admission="closed")
    client = logged_in_client(app, login, make_user())
    response = client.post(f"/api/events/{event.id}/queue")
    assert response.status_code == 409
    assert response.json["error"] == "event_closed"
    assert r.zcard(keys.event(event.id).queue) == 0


def test_join_when_already_admitted_answers_admitted_with_a_token(
    app, r, make_user, login, make_event
):
    event = make_event(admission="open", admit_rate=10, active_ttl=120)
    person = make_user()
    client = logged_in_client(app, login, person)
    assert client.post(f"/api/events/{event.id}/queue").json["position"] == 1
    with app.app_context():
        assert waiting_room.admit(event.id)["admitted"] == 1

    response = client.post(f"/api/events/{event.id}/queue")
    assert response.status_code == 200
    body = response.json
    assert body["status"] == "admitted"
    assert body["position"] is None and body["poll_after"] is None
    k = keys.event(event.id)
    assert body["active_until"] == int(r.zscore(k.active, person.id)) // 1000
    claims = jwt.decode(body["token"], app.config["JWT_SECRET"], algorithms=["HS256"])
    assert claims["sub"] == str(person.id) and claims["evt"] == event.id
    assert claims["exp"] == body["active_until"]
    assert claims["jti"] == r.hget(k.entrance(person.id), "jti")
    assert r.zscore(k.queue, person.id) is None  # joining again did not queue them twice
    # A poll in the same window hands out the same token id.
    assert client.get(f"/api/events/{event.id}/queue").json["token"] == body["token"]
    # Admitted people are active even when the event closes.
    with app.app_context():
        events.update(event.id, admission="closed")
    assert client.post(f"/api/events/{event.id}/queue").json["status"] == "admitted"


# Leaving


def test_leave_removes_from_queue_and_heartbeat(app, r, make_user, login, make_event):
    event = make_event(admission="paused")
    seed_queue(r, event.id, [OTHERS + 1, OTHERS + 2])
    person = make_user()
    client = logged_in_client(app, login, person)
    client.post(f"/api/events/{event.id}/queue")
    seed_queue(r, event.id, [OTHERS + 3])
    k = keys.event(event.id)
    assert r.zscore(k.heartbeat, person.id) is not None

    response = client.delete(f"/api/events/{event.id}/queue")
    assert response.status_code == 204 and response.data == b""
    assert r.zscore(k.queue, person.id) is None
    assert r.zscore(k.heartbeat, person.id) is None
    assert members(r, k.queue) == [OTHERS + 1, OTHERS + 2, OTHERS + 3]
    with app.app_context():
        assert waiting_room.poll(event.id, OTHERS + 3).position == 3  # moved up one place
    assert client.get(f"/api/events/{event.id}/queue").json["error"] == "not_in_queue"
    assert client.delete(f"/api/events/{event.id}/queue").status_code == 204  # idempotent


def test_leaving_while_active_frees_the_slot(app, r, make_user, login, make_event):
    event = make_event(admission="open", max_active=1, admit_rate=10_000, active_ttl=600)
    person = make_user()
    client = logged_in_client(app, login, person)
    client.post(f"/api/events/{event.id}/queue")
    seed_queue(r, event.id, [OTHERS + 1, OTHERS + 2])
    k = keys.event(event.id)
    with app.app_context():
        assert waiting_room.admit(event.id)["admitted"] == 1
        assert waiting_room.admit(event.id)["admitted"] == 0  # full
    assert client.get(f"/api/events/{event.id}/queue").json["status"] == "admitted"
    assert r.exists(k.entrance(person.id))

    assert client.delete(f"/api/events/{event.id}/queue").status_code == 204
    assert r.zscore(k.active, person.id) is None
    assert not r.exists(k.entrance(person.id))  # the token id is gone with the slot
    with app.app_context():
        tick = waiting_room.admit(event.id)
    assert tick["admitted"] == 1 and tick["active"] == 1
    assert members(r, k.active) == [OTHERS + 1]
    assert members(r, k.queue) == [OTHERS + 2]


# Admission, expiry, ETA


def test_expired_actives_free_their_slots(ctx, r, make_event):
    event = make_event(admission="open", max_active=2, admit_rate=100)
    k = keys.event(event.id)
    r.hset(k.config, "active_ttl_ms", 300)  # the tick reads it from here
    seed_queue(r, event.id, range(1, 7))

    first = waiting_room.admit(event.id)
    assert (first["admitted"], first["active"]) == (2, 2)
    assert members(r, k.active) == [1, 2]
    assert waiting_room.poll(event.id, 1).status == "admitted"
    assert waiting_room.admit(event.id)["admitted"] == 0  # no room until they expire

    time.sleep(0.4)
    with pytest.raises(AppError) as gone:  # their window is over and they left the queue
        waiting_room.poll(event.id, 1)
    assert gone.value.code == "not_in_queue"
    second = waiting_room.admit(event.id)
    assert (second["expired"], second["admitted"], second["active"]) == (2, 2, 2)
    assert members(r, k.active) == [3, 4]
    assert members(r, k.queue) == [5, 6]
    assert r.zcard(k.active) <= 2


def test_an_expired_person_may_join_again_at_the_back(ctx, r, make_event):
    event = make_event(admission="open", max_active=1, admit_rate=100)
    k = keys.event(event.id)
    r.hset(k.config, "active_ttl_ms", 200)
    seed_queue(r, event.id, [1, 2])
    waiting_room.admit(event.id)
    time.sleep(0.3)
    status = waiting_room.join(event.id, 1)
    assert status.status == "waiting" and status.position == 2
    assert members(r, k.queue) == [2, 1]


def test_admission_respects_max_active(ctx, r, make_event):
    event = make_event(admission="open", max_active=2, admit_rate=1_000, active_ttl=600)
    k = keys.event(event.id)
    seed_queue(r, event.id, range(1, 11))
    for _ in range(5):
        result = waiting_room.admit(event.id)
        assert result["active"] <= 2
        time.sleep(0.02)
    assert members(r, k.active) == [1, 2]
    assert r.zcard(k.queue) == 8
    assert int(r.hget(k.tick, "admitted_total")) == 2
    assert waiting_room.poll(event.id, 3).position == 1


def test_poll_shows_an_eta_after_admission_ticks(ctx, r, make_event):
    event = make_event(admission="open", admit_rate=20, max_active=10_000, active_ttl=600)
    k = keys.event(event.id)
    seed_queue(r, event.id, range(1, 1_001))
    before = waiting_room.poll(event.id, 500)
    assert before.eta_seconds is None and before.eta_range is None  # nothing admitted yet

    for _ in range(4):
        waiting_room.admit(event.id)
        time.sleep(0.25)
    admitted = int(r.hget(k.tick, "admitted_total"))
    rate = float(r.hget(k.tick, "rate_obs"))
    assert admitted > 20 and rate > 0

    near, far = waiting_room.poll(event.id, 100), waiting_room.poll(event.id, 900)
    for status in (near, far):
        assert status.paused is False
        assert isinstance(status.eta_seconds, int) and status.eta_seconds > 0
        assert status.eta_range["from"] <= status.eta_seconds <= status.eta_range["to"]
        assert status.eta_range["from"] < status.eta_range["to"]
    assert near.eta_seconds == math.ceil(near.position / rate)
    assert far.eta_seconds == math.ceil(far.position / rate)
    assert near.eta_seconds < far.eta_seconds


def test_lost_event_config_is_reloaded_from_the_database(app, r, make_user, login, make_event):
    event = make_event(admission="open", max_active=7, admit_rate=3, active_ttl=90)
    k = keys.event(event.id)
    expected = r.hgetall(k.config)
    assert expected["state"] == "open"
    person = make_user()
    client = logged_in_client(app, login, person)

    r.delete(k.config)
    response = client.post(f"/api/events/{event.id}/queue")
    assert response.status_code == 200 and response.json["position"] == 1
    assert r.hgetall(k.config) == expected

    r.delete(k.config)
    response = client.get(f"/api/events/{event.id}/queue")
    assert response.status_code == 200 and response.json["paused"] is False
    assert r.hgetall(k.config) == expected

    r.delete(k.config)
    with app.app_context():
        assert waiting_room.admit(event.id)["status"] == "ok"
    assert r.hgetall(k.config) == expected
    assert r.zscore(k.active, person.id) is not None


# Clean-up of people who stopped polling


@pytest.fixture
def recorded_clean_up(ctx, monkeypatch):
    """Wrap the real clean-up script to record how many stale entries each call took."""
    real = redis_store.scripts.clean_up
    calls = []

    def recording(*args, **kwargs):
        stale, removed = real(*args, **kwargs)
        calls.append(stale)
        return stale, removed

    monkeypatch.setattr(redis_store.scripts, "clean_up", recording)
    return calls


def test_clean_up_removes_100k_ghosts_in_batches_and_keeps_pollers(
    r, make_event, recorded_clean_up
):
    event = make_event(admission="open")
    k = keys.event(event.id)
    everyone = list(range(1, 100_051))
    pollers = everyone[1_999::2_000]  # 2,000, 4,000, ... 100,000: spread through the queue
    seed_queue(r, event.id, everyone, heartbeat_ms=redis_now_ms(r) - HOUR_MS)
    for uid in pollers:
        waiting_room.poll(event.id, uid)
    assert len(pollers) == 50 and r.zcard(k.queue) == 100_050

    before = r.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    removed = waiting_room.clean_up(event.id, timeout_s=300, batch=1_000, pause_s=0)
    after = r.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)

    assert removed == 100_000
    assert max(recorded_clean_up) <= 1_000
    assert sum(recorded_clean_up) == 100_000
    assert recorded_clean_up == [1_000] * 100 + [0]  # stops on the first short batch
    assert after - before >= len(recorded_clean_up)  # one EVALSHA per batch
    assert members(r, k.queue) == pollers
    assert sorted(members(r, k.heartbeat)) == pollers
    for position, uid in enumerate(pollers, start=1):
        status = waiting_room.poll(event.id, uid)
        assert (status.status, status.position) == ("waiting", position)


def test_clean_up_stops_when_a_batch_comes_back_short(r, make_event, recorded_clean_up):
    event = make_event(admission="open")
    seed_queue(r, event.id, range(1, 2_501), heartbeat_ms=redis_now_ms(r) - HOUR_MS)
    assert waiting_room.clean_up(event.id, timeout_s=300, batch=1_000, pause_s=0) == 2_500
    assert recorded_clean_up == [1_000, 1_000, 500]
    assert r.zcard(keys.event(event.id).queue) == 0


def test_clean_up_keeps_people_who_polled_within_the_timeout(r, make_event, recorded_clean_up):
    event = make_event(admission="open")
    now = redis_now_ms(r)
    seed_queue(r, event.id, [1, 2], heartbeat_ms=now - 250_000)  # 250 s ago: still here
    seed_queue(r, event.id, [3], heartbeat_ms=now - 350_000)  # 350 s ago: a ghost
    assert waiting_room.clean_up(event.id, timeout_s=300, batch=1_000, pause_s=0) == 1
    assert members(r, keys.event(event.id).queue) == [1, 2]


def test_clean_up_takes_admitted_peoples_old_heartbeats_without_counting_them(
    r, make_event, recorded_clean_up
):
    event = make_event(admission="open", admit_rate=5, max_active=100, active_ttl=600)
    k = keys.event(event.id)
    now = redis_now_ms(r)
    seed_queue(r, event.id, [1, 2, 3, 4, 5], heartbeat_ms=now - 2 * HOUR_MS)
    assert waiting_room.admit(event.id)["admitted"] == 5  # their heartbeats stay behind
    seed_queue(r, event.id, [6, 7, 8], heartbeat_ms=now - HOUR_MS)  # ghosts
    seed_queue(r, event.id, [9])  # polling

    # Batches of two: the first two hold only admitted people, and the job goes on.
    assert waiting_room.clean_up(event.id, timeout_s=300, batch=2, pause_s=0) == 3
    assert recorded_clean_up == [2, 2, 2, 2, 0]
    assert r.hget(k.tick, "cleanup_removed") == "3"
    assert members(r, k.queue) == [9] and members(r, k.heartbeat) == [9]
    assert sorted(members(r, k.active)) == [1, 2, 3, 4, 5]  # nobody lost their window
    assert waiting_room.poll(event.id, 1).status == "admitted"
    assert waiting_room.poll(event.id, 9).position == 1


def test_someone_admitted_who_joins_again_is_no_ghost(ctx, r, make_event):
    event = make_event(admission="open", admit_rate=1, max_active=100, active_ttl=600)
    k = keys.event(event.id)
    seed_queue(r, event.id, [1], heartbeat_ms=redis_now_ms(r) - HOUR_MS)
    assert waiting_room.admit(event.id)["admitted"] == 1  # an hour-old heartbeat stays
    r.zadd(k.active, {"1": redis_now_ms(r) - 1})  # the window ended
    seed_queue(r, event.id, [2])

    assert waiting_room.join(event.id, 1).position == 2  # back in, at the end
    assert waiting_room.clean_up(event.id, timeout_s=300, batch=1_000, pause_s=0) == 0
    assert members(r, k.queue) == [2, 1]
    assert r.zscore(k.heartbeat, "1") >= redis_now_ms(r) - 5_000  # join beat afresh
    assert r.hget(k.tick, "cleanup_removed") is None


def test_cleanup_job_returns_and_logs_the_count_per_event(app, r, make_event, job_app, caplog):
    from jobs.cleanup import clean_up

    busy, quiet = make_event(admission="open"), make_event(admission="paused")
    old = redis_now_ms(r) - HOUR_MS
    seed_queue(r, busy.id, range(1, 2_346), heartbeat_ms=old)
    seed_queue(r, busy.id, [5_000])  # polling
    seed_queue(r, quiet.id, range(1, 8), heartbeat_ms=old)

    with caplog.at_level(logging.INFO, logger="jobs.cleanup"):
        result = clean_up()

    assert result == {busy.id: 2_345, quiet.id: 7}
    assert f"event {busy.id}: removed 2345 people" in caplog.text
    assert f"event {quiet.id}: removed 7 people" in caplog.text
    assert members(r, keys.event(busy.id).queue) == [5_000]
    assert r.zcard(keys.event(quiet.id).queue) == 0
    assert clean_up() == {busy.id: 0, quiet.id: 0}  # safe to run again


# One round trip per poll


def commands_sent(key: str, action) -> list[str]:
    """The commands the app's Redis connection to `key`'s server (the one
    Redis, or the cluster's master of the key's slot) sent while `action`
    ran, read with MONITOR (commands run inside Lua are tagged 'lua' and
    left out)."""
    app_client = server_of(redis_store.client, key)
    addr = app_client.client_info()["addr"]  # the pooled connection the action reuses
    marker = f"end-of-action-{uuid.uuid4().hex}"
    watcher = redis.Redis(
        connection_pool=redis.ConnectionPool(**app_client.get_connection_kwargs())
    )
    sent = []
    with watcher.monitor() as monitor:
        action()
        app_client.echo(marker)
        for command in monitor.listen():
            if command["client_type"] == "lua":
                continue
            if command["client_type"] == "tcp" and (
                f"{command['client_address']}:{command['client_port']}" != addr
            ):
                continue
            if marker in command["command"]:
                break
            sent.append(command["command"].split(" ")[0].upper())
    watcher.close()
    return sent


def evalsha_delta(r, action) -> dict:
    """INFO commandstats before and after `action`: {command: calls added}."""
    before = r.info("commandstats")
    action()
    after = r.info("commandstats")
    delta = {
        name: stats["calls"] - before.get(name, {}).get("calls", 0) for name, stats in after.items()
    }
    return {name: calls for name, calls in delta.items() if calls}


def test_each_poll_is_one_redis_round_trip(app, ctx, r, make_event):
    event = make_event(admission="open")
    seed_queue(r, event.id, range(1, 101))
    waiting_room.poll(event.id, 50)  # the script is cached in Redis, the connection warm

    k = keys.event(event.id)
    sent = commands_sent(k.queue, lambda: waiting_room.poll(event.id, 50))
    assert sent == ["EVALSHA"]
    sent = commands_sent(k.queue, lambda: waiting_room.join(event.id, 500))
    assert sent == ["EVALSHA"]  # a join is one round trip too
    assert r.zscore(k.queue, 500) is not None

    # The server's own counters agree: one EVALSHA per poll. The server is
    # shared, so another client's EVALSHA may land in between: retry a little.
    for _ in range(5):
        delta = evalsha_delta(server_of(r, k.queue), lambda: waiting_room.poll(event.id, 50))
        if delta.get("cmdstat_evalsha") == 1:
            break
    assert delta.get("cmdstat_evalsha") == 1, delta
    assert delta.get("cmdstat_info") >= 1
