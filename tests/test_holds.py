"""Stage 2, layer 3 (docs/DESIGN.md): a hold is one Lua script that hands out a
fencing token; MySQL remembers the largest token per seat, so a stale or
stalled holder can never buy a seat somebody else holds now. Also release,
the seat map (docs/API.md, "Seats and checkout") and reconciling Redis with MySQL.

Real Redis and the real database only. Tests that need MySQL's row locks take
the `mysql` fixture, which skips them (with the reason) on SQLite.
"""

import threading
import time

import pytest
from helpers import Person, assert_error, connection_pools, in_background, redis_now_ms

from app import checkout, entrance, events, keys, mirror, seats, waiting_room
from app.errors import AppError
from app.extensions import redis_store
from app.models import Booking, BookingSeat, Payment, Seat, User

# The test app's JWT_SECRET is short on purpose; pyjwt warns about it.

SEAT_FIELDS = {"id", "label", "section", "row", "number", "price", "status", "held_by_me"}

pytestmark = pytest.mark.usefixtures("quick_passwords")


@pytest.fixture(autouse=True)
def fresh_catalogue():
    """The seat catalogue is cached per process by event id; SQLite may reuse
    ids after the tables are emptied between tests."""
    seats._load_catalogue.cache_clear()
    yield
    seats._load_catalogue.cache_clear()


# People, events, seats


@pytest.fixture
def people(app, make_user, login):
    """n new accounts, each logged in (through the real endpoint) on its own client."""

    def make(n):
        return [
            Person(user, login(app.test_client(), user)) for user in [make_user() for _ in range(n)]
        ]

    return make


@pytest.fixture
def enter_all(app, r):
    """Bring people through the waiting room quickly: join, one admission tick
    that admits them all, then each poll mints a token that the person's own
    session consumes at the entrance."""

    def enter(event_id, persons):
        k = keys.event(event_id)
        with app.app_context():
            for person in persons:
                waiting_room.join(event_id, person.id)
            r.hdel(k.tick, "last_ms", "carry")  # a fresh tick admits a whole second's rate
            waiting_room.admit(event_id)
            for person in persons:
                status = waiting_room.poll(event_id, person.id)
                assert status.status == "admitted", status
                entrance.enter(event_id, person.id, person.sid, status.token)
        return persons

    return enter


@pytest.fixture
def sale(make_event):
    """An open event (2 rows x 5 seats at 1,000 points) that admits hundreds at once."""

    def make(**settings):
        return make_event(
            admission="open", **{"admit_rate": 1_000, "max_active": 10_000, **settings}
        )

    return make


@pytest.fixture
def seat_ids(app):
    def ids(event_id):
        with app.app_context():
            return [
                s.id for s in Seat.select(Seat.id).where(Seat.event == event_id).order_by(Seat.id)
            ]

    return ids


@pytest.fixture
def row(app):
    """A seat's MySQL row, read fresh."""

    def read(seat_id):
        with app.app_context():
            return Seat.get_by_id(seat_id)

    return read


def state(r, event_id, seat_id) -> seats.SeatState:
    return seats.SeatState.parse(r.hget(keys.event(event_id).seats, seat_id), redis_now_ms(r))


def wait_until_lapsed(r, event_id, seat_id, timeout=20.0):
    """Sleep until Redis's clock passes every deadline (hold, lease) in the seat's state."""
    raw = r.hget(keys.event(event_id).seats, seat_id)
    until = max(int(field) for field in raw.split(":")[3:])
    deadline = time.monotonic() + timeout
    while redis_now_ms(r) <= until + 20:
        assert time.monotonic() < deadline, "the hold did not lapse"
        time.sleep(0.05)


def token_of(response) -> int:
    assert response.status_code == 201, (response.status_code, response.get_json())
    return response.get_json()["token"]


def snapshot(app, seat_id, *persons):
    """What the database says about one seat, the sales and some people's points."""
    with app.app_context():
        seat = Seat.get_by_id(seat_id)
        return {
            "seat": (seat.status, seat.holder_id, seat.fencing_token, seat.version),
            "bookings": Booking.select().count(),
            "booked_seats": BookingSeat.select().where(BookingSeat.seat == seat_id).count(),
            "payments": Payment.select().count(),
            "points": {p.id: User.get_by_id(p.id).points for p in persons},
        }


@pytest.fixture
def stall(monkeypatch):
    """Make one person's checkout stop between step 1 (Redis: seats now being
    paid for) and step 2 (the MySQL transaction) until the test says go."""
    real = checkout._book_with_retries
    gate = {"user": None, "reached": threading.Event(), "go": threading.Event()}

    def stalled(event_id, user_id, *args, **kwargs):
        if user_id == gate["user"]:
            gate["reached"].set()
            assert gate["go"].wait(60), "the test never let the stalled buyer go on"
        return real(event_id, user_id, *args, **kwargs)

    monkeypatch.setattr(checkout, "_book_with_retries", stalled)
    yield gate
    gate["go"].set()  # never leave a thread waiting


# One winner per seat


@pytest.mark.slow
def test_two_hundred_people_press_one_seat_at_once_and_exactly_one_wins(
    app, r, monkeypatch, sale, people, enter_all, seat_ids, row
):
    n = 200
    event = sale()
    crowd = enter_all(event.id, people(n))
    seat = seat_ids(event.id)[3]
    k = keys.event(event.id)
    # This process stands in for many web processes (production runs 8 threads
    # per process): let all 200 requests have a Redis connection at once. The
    # database pool stays as it is: only the winner writes to MySQL.
    for pool in connection_pools(redis_store.client):
        monkeypatch.setattr(pool, "max_connections", n + 8)
    with app.app_context():
        seats.catalogue(event.id)  # loaded once per process, as after the first request
    barrier = threading.Barrier(n)
    answers, errors = [None] * n, []

    def press(i):
        try:
            barrier.wait(60)
            response = crowd[i].hold(event.id, seat)
            answers[i] = (response.status_code, response.get_json())
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=press, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)

    assert not errors, errors[:3]
    assert not any(t.is_alive() for t in threads)
    winners = [i for i, (code, _) in enumerate(answers) if code == 201]
    assert len(winners) == 1, [a for a in answers if a[0] != 409][:5]
    refusals = {(code, body["error"]) for code, body in answers if code != 201}
    assert refusals == {(409, "seat_taken")}
    winner, body = crowd[winners[0]], answers[winners[0]][1]
    assert body["seat_id"] == seat and body["token"] >= 1 and body["expires_in"] > 0

    held = state(r, event.id, seat)
    assert (held.kind, held.holder, held.token) == ("held", winner.id, body["token"])
    assert r.hkeys(k.seats) == [str(seat)]  # nobody else holds anything
    assert int(r.hget(k.fence, seat)) == body["token"] == 1  # the losers drew no token
    assert r.smembers(k.holds(winner.id)) == {str(seat)}
    stored = row(seat)
    assert stored.fencing_token == body["token"]
    assert (stored.status, stored.holder_id) == ("available", None)  # holds live in Redis


def test_holding_the_same_seat_twice_returns_the_same_hold(
    r, sale, people, enter_all, seat_ids, row
):
    event = sale()
    (a,) = enter_all(event.id, people(1))
    seat = seat_ids(event.id)[0]

    first = a.hold(event.id, seat)
    assert first.status_code == 201
    body = first.get_json()
    assert set(body) == {"seat_id", "token", "expires_in"}
    assert body["seat_id"] == seat and body["token"] >= 1
    assert 0 < body["expires_in"] <= 300

    again = a.hold(event.id, seat)  # a double click, a retry after a timeout
    assert again.status_code in (200, 201)
    assert again.get_json()["token"] == body["token"]
    assert again.get_json()["seat_id"] == seat
    assert int(r.hget(keys.event(event.id).fence, seat)) == body["token"]
    assert row(seat).fencing_token == body["token"]
    assert state(r, event.id, seat).holder == a.id


def test_a_fifth_seat_is_refused_until_one_is_given_back(app, r, sale, people, enter_all, seat_ids):
    event = sale()
    a, b = enter_all(event.id, people(2))
    ids = seat_ids(event.id)
    k = keys.event(event.id)
    assert app.config["MAX_SEATS_PER_PERSON"] == 4

    tokens = [token_of(a.hold(event.id, seat)) for seat in ids[:4]]
    fifth = a.hold(event.id, ids[4])
    assert_error(fifth, 422, "seat_limit")
    assert r.hget(k.seats, ids[4]) is None
    assert r.hget(k.fence, ids[4]) is None  # a refused hold draws no token

    assert token_of(a.hold(event.id, ids[0])) == tokens[0]  # holding one again is no new seat
    token_of(b.hold(event.id, ids[5]))  # the limit is per person

    assert a.release(event.id, ids[1]).status_code == 204
    token_of(a.hold(event.id, ids[4]))
    assert r.smembers(k.holds(a.id)) == {str(s) for s in (ids[0], ids[2], ids[3], ids[4])}
    assert_error(a.hold(event.id, ids[6]), 422, "seat_limit")


# Refusals


def test_a_booked_or_blocked_seat_cannot_be_held(app, r, sale, people, enter_all, seat_ids):
    event = sale()
    a, b = enter_all(event.id, people(2))
    sold, blocked = seat_ids(event.id)[:2]
    k = keys.event(event.id)
    assert b.checkout(event.id, [(sold, token_of(b.hold(event.id, sold)))]).status_code == 201
    with app.app_context():
        Seat.update(status="blocked").where(Seat.id == blocked).execute()
        mirror.reconcile(event.id)
    assert r.hget(k.seats, blocked) == "blocked"
    fence_before = r.hgetall(k.fence)

    assert_error(a.hold(event.id, sold), 409, "seat_booked")
    assert_error(a.hold(event.id, blocked), 409, "seat_blocked")
    assert r.hgetall(k.fence) == fence_before
    assert r.hget(k.seats, sold) == f"booked:{b.id}:1"
    assert not r.exists(k.holds(a.id))


def test_a_seat_of_another_event_or_an_unknown_seat_is_404(sale, people, enter_all, seat_ids):
    event, other = sale(), sale()
    (a,) = enter_all(event.id, people(1))
    assert_error(a.hold(event.id, seat_ids(other.id)[0]), 404)
    assert_error(a.hold(event.id, 987_654_321), 404)
    assert_error(a.hold(987_654_321, seat_ids(event.id)[0]), 404)


def test_holding_needs_an_entered_session(app, r, sale, people, enter_all, login, seat_ids):
    event = sale()
    (a,) = enter_all(event.id, people(1))
    (outsider,) = people(1)  # logged in, never came through the waiting room
    seat = seat_ids(event.id)[0]
    assert_error(outsider.hold(event.id, seat), 403, "not_entered")
    # The same account on another device (another session) did not enter either.
    phone = Person(a.user, login(app.test_client(), a.user))
    assert_error(phone.hold(event.id, seat), 403, "not_entered")
    assert_error(app.test_client().post(f"/api/events/{event.id}/seats/{seat}/hold"), 401)
    assert r.hlen(keys.event(event.id).seats) == 0
    token_of(a.hold(event.id, seat))


def test_holding_after_the_active_window_is_over_is_refused(r, sale, people, enter_all, seat_ids):
    event = sale()
    a, b = enter_all(event.id, people(2))
    seat = seat_ids(event.id)[0]
    k = keys.event(event.id)
    past = redis_now_ms(r) - 1_000
    r.zadd(k.active, {str(a.id): past})  # the window ended a second ago
    r.hset(k.entrance(a.id), "until", past)
    assert_error(a.hold(event.id, seat), 403, "not_entered")
    assert_error(a.seat_map(event.id), 403, "not_entered")
    assert r.hget(k.seats, seat) is None
    token_of(b.hold(event.id, seat))


def test_a_hold_ends_no_later_than_the_holders_active_window(r, sale, people, enter_all, seat_ids):
    event = sale(active_ttl=10, hold_ttl=300)
    (a,) = enter_all(event.id, people(1))
    seat = seat_ids(event.id)[0]
    token_of(a.hold(event.id, seat))
    window_end = int(r.zscore(keys.event(event.id).active, a.id))
    assert state(r, event.id, seat).until_ms <= window_end


# Release


def test_release_by_the_holder_only_and_only_with_the_right_token(
    r, sale, people, enter_all, seat_ids
):
    event = sale()
    a, b = enter_all(event.id, people(2))
    seat = seat_ids(event.id)[0]
    k = keys.event(event.id)
    t1 = token_of(a.hold(event.id, seat))

    assert_error(b.release(event.id, seat), 404, "not_your_hold")
    assert state(r, event.id, seat).holder == a.id
    assert_error(a.release(event.id, seat, token=t1 + 1), 404, "not_your_hold")
    assert state(r, event.id, seat).holder == a.id
    assert_error(a.release(event.id, 987_654_321), 404)

    response = a.release(event.id, seat, token=t1)
    assert response.status_code == 204 and response.data == b""
    assert r.hget(k.seats, seat) is None
    assert not r.sismember(k.holds(a.id), seat)
    assert_error(a.release(event.id, seat), 404, "not_your_hold")  # nothing left to give back

    t2 = token_of(b.hold(event.id, seat))
    assert t2 > t1
    assert_error(a.release(event.id, seat), 404)  # a cannot release b's hold either
    assert b.release(event.id, seat).status_code == 204  # without a token: any hold of b's
    assert r.hget(k.seats, seat) is None


def test_fencing_tokens_only_grow_per_seat(r, sale, people, enter_all, seat_ids, row):
    event = sale()
    crowd = enter_all(event.id, people(3))
    seat, other = seat_ids(event.id)[:2]
    k = keys.event(event.id)
    tokens = []
    for person in crowd + crowd[:1]:
        tokens.append(token_of(person.hold(event.id, seat)))
        assert row(seat).fencing_token == tokens[-1]
        assert person.release(event.id, seat).status_code == 204
    assert tokens == sorted(set(tokens))  # strictly increasing
    assert r.ttl(k.fence) == -1  # the counters never expire
    assert token_of(crowd[1].hold(event.id, other)) == 1  # one counter per seat


# Redis loses data; the database remembers


def test_after_a_redis_flush_tokens_keep_growing_and_sold_seats_stay_sold(
    app, r, sale, people, enter_all, seat_ids, row
):
    event = sale()
    a, b, c, d = enter_all(event.id, people(4))
    sold, seat = seat_ids(event.id)[:2]
    k = keys.event(event.id)
    t_sold = token_of(a.hold(event.id, sold))
    assert a.checkout(event.id, [(sold, t_sold)]).status_code == 201
    for person in (b, c, d):
        token_of(person.hold(event.id, seat))
        assert person.release(event.id, seat).status_code == 204
    highest = row(seat).fencing_token
    assert highest == 3

    redis_store.client.flushdb()  # this test database only, never FLUSHALL
    assert r.dbsize() == 0
    # Everybody's entry went with it: through the waiting room again. The
    # first script call finds no config, reloads it and reconciles the seats.
    assert_error(b.hold(event.id, seat), 403, "not_entered")
    enter_all(event.id, [b, c, d])
    assert int(r.hget(k.fence, seat)) == highest
    assert r.hget(k.seats, sold) == f"booked:{a.id}:{t_sold}"

    again = token_of(b.hold(event.id, seat))
    assert again > highest
    assert row(seat).fencing_token == again

    assert_error(c.hold(event.id, sold), 409, "seat_booked")
    before = snapshot(app, sold, a, c, d)
    assert_error(c.checkout(event.id, [(sold, t_sold + 1)]), 409)  # Redis knows it is sold
    # Even when Redis is wrong (here: a forged hold), the database refuses.
    r.hset(k.seats, sold, f"held:{d.id}:{t_sold + 5}:{redis_now_ms(r) + 60_000}")
    assert_error(d.checkout(event.id, [(sold, t_sold + 5)]), 409, "seat_booked")
    assert snapshot(app, sold, a, c, d) == before
    assert before["seat"][:3] == ("booked", a.id, t_sold)
    assert before["booked_seats"] == 1


def test_counters_lost_but_config_kept_the_database_makes_the_hold_redraw(
    app, r, sale, people, enter_all, seat_ids, row
):
    """Redis lost the seat states and counters but not the event config (or the
    entries): the hold draws token 1, MySQL refuses it, the seat is reconciled
    and the hold is redone with a token above the database's."""
    event = sale()
    a, b = enter_all(event.id, people(2))
    sold, seat = seat_ids(event.id)[:2]
    k = keys.event(event.id)
    assert a.checkout(event.id, [(sold, token_of(a.hold(event.id, sold)))]).status_code == 201
    for _ in range(3):
        token_of(b.hold(event.id, seat))
        assert b.release(event.id, seat).status_code == 204
    assert row(seat).fencing_token == 3

    r.delete(k.seats, k.fence)
    assert token_of(b.hold(event.id, seat)) == 4
    assert row(seat).fencing_token == 4
    assert int(r.hget(k.fence, seat)) == 4
    assert_error(b.hold(event.id, sold), 409)
    assert r.hget(k.seats, sold) == f"booked:{a.id}:1"
    assert state(r, event.id, seat).holder == b.id
    assert row(sold).status == "booked"


def test_a_staff_change_right_after_a_redis_flush_still_brings_back_sold_seats(
    app, r, sale, people, enter_all, seat_ids
):
    event = sale()
    a, b = enter_all(event.id, people(2))
    sold = seat_ids(event.id)[0]
    assert a.checkout(event.id, [(sold, token_of(a.hold(event.id, sold)))]).status_code == 201

    redis_store.client.flushdb()
    with app.app_context():
        events.update(event.id, max_active=5_000)  # e.g. staff raise the cap on the admin page
    enter_all(event.id, [b])
    listing = {s["id"]: s for s in b.seat_map(event.id).get_json()}
    assert listing[sold]["status"] == "booked"


# Stale and stalled buyers: the database has the last word


def test_a_stale_holder_cannot_buy_after_someone_else_took_the_seat(
    app, r, mysql, sale, people, enter_all, seat_ids, row
):
    event = sale(hold_ttl=1)
    a, b = enter_all(event.id, people(2))
    seat = seat_ids(event.id)[0]
    start = a.user.points
    t1 = token_of(a.hold(event.id, seat))
    wait_until_lapsed(r, event.id, seat)
    with app.app_context():  # B's own hold must not lapse on a slow machine
        events.update(event.id, hold_ttl=300)

    t2 = token_of(b.hold(event.id, seat))
    assert t2 > t1
    assert row(seat).fencing_token == t2

    assert_error(a.checkout(event.id, [(seat, t1)]), 409, "hold_taken")
    with app.app_context(), pytest.raises(AppError) as refused:
        # Step 2 alone, as if Redis had let A through: the stored token says no.
        checkout._book(
            event.id, a.id, [(seat, t1)], "stale", "0" * 64, int(time.time() * 1000) + 30_000
        )
    assert (refused.value.status, refused.value.code) == (409, "hold_stale")

    assert b.checkout(event.id, [(seat, t2)]).status_code == 201
    before = snapshot(app, seat, a, b)
    assert_error(a.checkout(event.id, [(seat, t1)]), 409)
    assert snapshot(app, seat, a, b) == before
    assert before["seat"][:3] == ("booked", b.id, t2)
    assert before["bookings"] == before["booked_seats"] == before["payments"] == 1
    assert before["points"][a.id] == start
    assert r.hget(keys.event(event.id).seats, seat) == f"booked:{b.id}:{t2}"


@pytest.mark.parametrize(
    "b_pays_first", [False, True], ids=["a_resumes_before_b_pays", "a_resumes_after_b_pays"]
)
def test_a_stalled_buyer_is_refused_once_its_lease_lapsed(
    app, r, mysql, monkeypatch, stall, sale, people, enter_all, seat_ids, row, b_pays_first
):
    event = sale(hold_ttl=1)
    a, b = enter_all(event.id, people(2))
    seat = seat_ids(event.id)[0]
    k = keys.event(event.id)
    start, price = a.user.points, row(seat).price
    monkeypatch.setitem(app.config, "CHECKOUT_LEASE", 1)
    stall["user"] = a.id

    t1 = token_of(a.hold(event.id, seat))
    thread, result = in_background(lambda: a.checkout(event.id, [(seat, t1)]))
    assert stall["reached"].wait(30)
    assert r.hget(k.seats, seat).startswith(f"paying:{a.id}:{t1}:")

    wait_until_lapsed(r, event.id, seat)  # both A's lease and A's hold ran out
    monkeypatch.setitem(app.config, "CHECKOUT_LEASE", 30)  # B pays at a normal pace
    with app.app_context():
        events.update(event.id, hold_ttl=300)
    t2 = token_of(b.hold(event.id, seat))
    assert t2 > t1
    assert row(seat).fencing_token == t2
    if b_pays_first:
        assert b.checkout(event.id, [(seat, t2)]).status_code == 201

    stall["go"].set()
    thread.join(30)
    assert not thread.is_alive() and "error" not in result, result
    body = assert_error(result["value"], 409)
    assert body["error"] in {"lease_expired", "hold_stale"}, body

    if not b_pays_first:
        held = state(r, event.id, seat)  # A's refusal left B's hold alone
        assert (held.kind, held.holder, held.token) == ("held", b.id, t2)
        assert b.checkout(event.id, [(seat, t2)]).status_code == 201

    after = snapshot(app, seat, a, b)
    assert after["seat"][:3] == ("booked", b.id, t2)
    assert after["bookings"] == after["booked_seats"] == after["payments"] == 1
    assert after["points"] == {a.id: start, b.id: start - price}
    with app.app_context():
        assert not Booking.select().where(Booking.user == a.id).exists()
    assert r.hget(k.seats, seat) == f"booked:{b.id}:{t2}"


def test_a_paused_buyer_is_refused_by_the_database_when_redis_lost_the_payment(
    app, r, mysql, stall, sale, people, enter_all, seat_ids, row
):
    """The lease is still running, but Redis lost everything while A was paused:
    B comes back, holds the seat with a newer token, and only MySQL's fencing
    token can tell that A is stale."""
    event = sale()
    a, b = enter_all(event.id, people(2))
    seat = seat_ids(event.id)[0]
    start = a.user.points
    stall["user"] = a.id

    t1 = token_of(a.hold(event.id, seat))
    thread, result = in_background(lambda: a.checkout(event.id, [(seat, t1)]))
    assert stall["reached"].wait(30)
    assert_error(b.hold(event.id, seat), 409, "seat_taken")  # nobody takes a seat being paid for
    listing = {s["id"]: s for s in b.seat_map(event.id).get_json()}
    assert (listing[seat]["status"], listing[seat]["held_by_me"]) == ("held", False)

    redis_store.client.flushdb()
    enter_all(event.id, [b])
    t2 = token_of(b.hold(event.id, seat))
    assert t2 > t1
    assert row(seat).fencing_token == t2

    stall["go"].set()
    thread.join(30)
    assert not thread.is_alive() and "error" not in result, result
    assert_error(result["value"], 409, "hold_stale")
    held = state(r, event.id, seat)
    assert (held.kind, held.holder, held.token) == ("held", b.id, t2)

    assert b.checkout(event.id, [(seat, t2)]).status_code == 201
    after = snapshot(app, seat, a)
    assert after["seat"][:3] == ("booked", b.id, t2)
    assert after["bookings"] == 1 and after["points"] == {a.id: start}


def test_after_buying_some_of_my_holds_the_rest_go_back_on_sale(
    r, sale, people, enter_all, seat_ids
):
    event = sale()
    a, b = enter_all(event.id, people(2))
    ids = seat_ids(event.id)
    tokens = [token_of(a.hold(event.id, seat)) for seat in ids[:3]]
    assert a.checkout(event.id, [(ids[0], tokens[0])]).status_code == 201
    # A's active slot is freed at once (SPEC), so A cannot pay for the other two ...
    assert_error(a.checkout(event.id, [(ids[1], tokens[1])]), 403, "not_entered")
    # ... and nobody should have to wait out A's holds on them.
    token_of(b.hold(event.id, ids[1]))
    token_of(b.hold(event.id, ids[2]))


# The seat map


def test_the_seat_map_shows_every_seat_and_whose_hold_is_whose(
    app, r, sale, people, enter_all, seat_ids
):
    event = sale()
    a, b, c = enter_all(event.id, people(3))
    ids = seat_ids(event.id)
    mine, theirs, sold, blocked = ids[:4]
    t_mine = token_of(a.hold(event.id, mine))
    t_theirs = token_of(b.hold(event.id, theirs))
    assert c.checkout(event.id, [(sold, token_of(c.hold(event.id, sold)))]).status_code == 201
    with app.app_context():
        Seat.update(status="blocked").where(Seat.id == blocked).execute()
        mirror.reconcile(event.id)

    response = a.seat_map(event.id)
    assert response.status_code == 200
    listing = response.get_json()
    assert [s["id"] for s in listing] == ids  # every seat, in map order
    assert listing[0] == {
        "id": ids[0],
        "label": "A-A1",
        "section": "A",
        "row": "A",
        "number": 1,
        "price": 1000,
        "status": "held",
        "held_by_me": True,
        "token": t_mine,
        "expires_in": listing[0]["expires_in"],
    }
    assert 0 < listing[0]["expires_in"] <= 300
    assert listing[5]["label"] == "A-B1" and listing[5]["row"] == "B"
    by_id = {s["id"]: s for s in listing}
    assert by_id[theirs] == {**by_id[theirs], "status": "held", "held_by_me": False}
    assert by_id[sold]["status"] == "booked" and by_id[blocked]["status"] == "blocked"
    for seat_id in ids[1:]:
        assert set(by_id[seat_id]) == SEAT_FIELDS  # no token for seats that are not mine
        assert by_id[seat_id]["held_by_me"] is False
    assert {by_id[s]["status"] for s in ids[4:]} == {"available"}

    theirs_view = {s["id"]: s for s in b.seat_map(event.id).get_json()}
    assert theirs_view[mine]["status"] == "held" and theirs_view[mine]["held_by_me"] is False
    assert theirs_view[theirs]["held_by_me"] is True
    assert theirs_view[theirs]["token"] == t_theirs


def test_the_seat_map_needs_an_entered_session_and_a_real_event(sale, people, enter_all):
    event = sale()
    (a,) = enter_all(event.id, people(1))
    (outsider,) = people(1)
    assert_error(outsider.seat_map(event.id), 403, "not_entered")
    assert_error(a.seat_map(987_654_321), 404)
    assert a.seat_map(event.id).status_code == 200


# Reconciling Redis with MySQL


def test_reconcile_brings_redis_in_line_with_the_database(
    app, r, sale, people, enter_all, seat_ids
):
    event = sale()
    (a,) = enter_all(event.id, people(1))
    ids = seat_ids(event.id)
    booked, blocked, lapsed, live, fenced, unblocked = ids[:6]
    k = keys.event(event.id)
    t_live = token_of(a.hold(event.id, live))
    r.hset(k.seats, lapsed, f"held:{a.id}:1:{redis_now_ms(r) - 1_000}")
    r.hset(k.fence, lapsed, 1)
    r.hset(k.seats, unblocked, "blocked")  # the database says it is for sale again
    with app.app_context():
        Seat.update(status="booked", holder=a.id, fencing_token=7).where(
            Seat.id == booked
        ).execute()
        Seat.update(status="blocked").where(Seat.id == blocked).execute()
        Seat.update(fencing_token=42).where(Seat.id == fenced).execute()
        result = mirror.reconcile(event.id)
        # The lapsed hold is housekeeping, not a disagreement (no WARNING for it).
        assert result == {"seats": 10, "changed": 3, "fence_raised": 2, "lapsed": 1}
        assert mirror.reconcile(event.id) == {
            "seats": 10,
            "changed": 0,
            "fence_raised": 0,
            "lapsed": 0,
        }

    assert r.hget(k.seats, booked) == f"booked:{a.id}:7"
    assert r.hget(k.seats, blocked) == "blocked"
    assert r.hget(k.seats, lapsed) is None  # pruned
    assert r.hget(k.seats, unblocked) is None
    assert r.hget(k.seats, live).startswith(f"held:{a.id}:{t_live}:")  # a live hold stays
    assert int(r.hget(k.fence, booked)) == 7
    assert int(r.hget(k.fence, fenced)) == 42
    assert int(r.hget(k.fence, live)) == t_live
    assert token_of(a.hold(event.id, fenced)) == 43
    assert_error(a.hold(event.id, booked), 409, "seat_booked")
    assert_error(a.hold(event.id, blocked), 409, "seat_blocked")

    # In small batches, and for chosen seats only, it comes to the same.
    r.delete(k.seats, k.fence)
    with app.app_context():
        assert mirror.reconcile(event.id, [blocked]) == {
            "seats": 1,
            "changed": 1,
            "fence_raised": 0,
            "lapsed": 0,
        }
        assert mirror.reconcile(event.id, batch=3) == {
            "seats": 10,
            "changed": 1,
            "fence_raised": 3,
            "lapsed": 0,
        }
    assert r.hgetall(k.seats) == {str(booked): f"booked:{a.id}:7", str(blocked): "blocked"}
    assert r.hgetall(k.fence) == {str(booked): "7", str(fenced): "43", str(live): str(t_live)}


def test_the_reconcile_job_covers_every_event_that_is_not_closed(
    app, r, sale, make_event, make_user, seat_ids, job_app
):
    from jobs.reconcile import reconcile

    buyer = make_user()
    open_event = sale()
    paused, closed = make_event(admission="paused"), make_event(admission="closed")
    for event in (open_event, paused, closed):
        first, second = seat_ids(event.id)[:2]
        with app.app_context():
            Seat.update(status="booked", holder=buyer.id, fencing_token=5).where(
                Seat.id == first
            ).execute()
            Seat.update(status="blocked").where(Seat.id == second).execute()
    lapsed = seat_ids(open_event.id)[2]
    k = keys.event(open_event.id)
    r.hset(k.seats, lapsed, f"held:{buyer.id}:1:{redis_now_ms(r) - 1_000}")

    results = reconcile()

    assert set(results) == {open_event.id, paused.id}
    restored = {"config_restored": False}  # Redis had every settings change
    counts = {"seats": 10, "changed": 2, "fence_raised": 1}
    assert results[open_event.id] == counts | {"lapsed": 1} | restored
    assert results[paused.id] == counts | {"lapsed": 0} | restored
    for event in (open_event, paused):
        first, second = seat_ids(event.id)[:2]
        assert r.hgetall(keys.event(event.id).seats) == {
            str(first): f"booked:{buyer.id}:5",
            str(second): "blocked",
        }
        assert r.hget(keys.event(event.id).fence, first) == "5"
    assert not r.exists(keys.event(closed.id).seats)  # closed events are left alone
    assert reconcile()[open_event.id] == {
        "seats": 10, "changed": 0, "fence_raised": 0, "lapsed": 0, "config_restored": False
    }  # fmt: skip


def test_the_reconcile_job_puts_back_a_settings_change_redis_lost(app, r, sale, job_app):
    """A failover can lose the write that opened a sale (or changed its cap)
    while the config hash survives: the minute's reconcile puts MySQL's
    settings back, and leaves a copy that agrees alone."""
    from jobs.reconcile import reconcile

    event = sale()
    k = keys.event(event.id)
    r.hset(k.config, mapping={"state": "paused", "max_active": 3})  # what the replica had

    assert reconcile()[event.id]["config_restored"] is True
    assert r.hget(k.config, "state") == "open"
    assert r.hget(k.config, "max_active") == str(event.max_active)
    assert reconcile()[event.id]["config_restored"] is False
