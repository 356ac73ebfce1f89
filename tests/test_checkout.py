"""Checkout (stage 3): Redis checks the holds, one database transaction makes
the sale, the same Idempotency-Key replays it, and the database alone still
refuses a second sale of one seat.

Real Redis and a real MySQL/MariaDB (SQLite when none answers); the tests that
need MySQL's row locks take the `mysql` fixture and are skipped on SQLite.
"""

import random
import secrets
import threading
import time
import uuid
from collections import Counter

import peewee
import pymysql
import pytest
from conftest import MYSQL, MYSQL_DB
from helpers import admit_and_enter, assert_error, entered, hold, pay, seat_ids

from app import checkout, create_app, keys
from app.errors import AppError
from app.extensions import db
from app.models import Booking, BookingSeat, Payment, Seat, User

# The test app's JWT_SECRET is short on purpose; pyjwt warns about it.

SECTIONS = [
    {"name": "Floor", "rows": 1, "seats_per_row": 4, "price": 1000},
    {"name": "Balcony", "rows": 1, "seats_per_row": 4, "price": 2500},
]


# Helpers


def seat_listing(client, event_id) -> dict[int, dict]:
    response = client.get(f"/api/events/{event_id}/seats")
    assert response.status_code == 200, response.get_json()
    return {s["id"]: s for s in response.get_json()}


def sale_rows(app) -> dict:
    """How many sale rows exist (all of them: every test starts empty)."""
    with app.app_context():
        return {
            "bookings": Booking.select().count(),
            "booking_seats": BookingSeat.select().count(),
            "payments": Payment.select().count(),
        }


NO_SALE = {"bookings": 0, "booking_seats": 0, "payments": 0}


def seat_rows(app, ids) -> dict[int, tuple]:
    with app.app_context():
        return {
            s.id: (s.status, s.holder_id, s.version, s.fencing_token)
            for s in Seat.select().where(Seat.id.in_(list(ids)))
        }


def points_of(app, user_id) -> int:
    with app.app_context():
        return User.get_by_id(user_id).points


def mysql_connect(autocommit=False):
    return pymysql.connect(database=MYSQL_DB, autocommit=autocommit, **MYSQL)


def innodb_deadlocks() -> int:
    conn = mysql_connect(autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'")
            return int(cur.fetchone()[1])
    finally:
        conn.close()


@pytest.fixture
def buyer(app, make_user, login, event):
    """An entered person holding one Floor seat and one Balcony seat:
    (user, client, [(seat_id, token), ...])."""
    user, client = entered(app, make_user, login, event)
    ids = seat_ids(app, event.id)
    items = [(ids[0], hold(client, event.id, ids[0])), (ids[4], hold(client, event.id, ids[4]))]
    return user, client, items


# The happy path


def test_checkout_books_pays_and_frees_the_slot(app, event, buyer, r):
    user, client, items = buyer
    ids = [s for s, _ in items]
    before = seat_rows(app, ids)
    assert all(before[s][0] == "available" and before[s][3] == t for s, t in items)

    response = pay(client, event.id, items, key="happy-1")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["amount"] == 1000 + 2500
    assert body["points_left"] == app.config["STARTING_POINTS"] - 3500
    assert isinstance(body["booking_id"], int)
    assert [(s["seat_id"], s["price"]) for s in body["seats"]] == [(ids[0], 1000), (ids[1], 2500)]
    assert [s["label"] for s in body["seats"]] == ["Floor-A1", "Balcony-A1"]

    # MySQL: booked by this person under the presented token, version + 1.
    after = seat_rows(app, ids)
    for seat_id, token in items:
        status, holder, version, fence = after[seat_id]
        assert (status, holder, fence) == ("booked", user.id, token)
        assert version == before[seat_id][2] + 1
    assert sale_rows(app) == {"bookings": 1, "booking_seats": 2, "payments": 1}
    with app.app_context():
        booking = Booking.get()
        assert (booking.id, booking.user_id, booking.event_id, booking.amount) == (
            body["booking_id"],
            user.id,
            event.id,
            3500,
        )
        assert booking.idempotency_key == "happy-1"
        assert sorted((b.seat_id, b.price, b.live) for b in BookingSeat.select()) == [
            (ids[0], 1000, 1),
            (ids[1], 2500, 1),
        ]
        payment = Payment.get()
        assert (payment.booking_id, payment.user_id, payment.amount) == (booking.id, user.id, 3500)
    assert points_of(app, user.id) == app.config["STARTING_POINTS"] - 3500

    # Redis: booked (no expiry), the person's active slot freed at once.
    k = keys.event(event.id)
    for seat_id, token in items:
        assert r.hget(k.seats, seat_id) == f"booked:{user.id}:{token}"
    assert r.zscore(k.active, user.id) is None
    assert not r.exists(k.entrance(user.id))
    assert_error(client.get(f"/api/events/{event.id}/seats"), 403, "not_entered")

    # The account shows the booking and the new balance.
    listed = client.get("/api/me/bookings").get_json()
    assert [(b["booking_id"], b["event_id"], b["amount"]) for b in listed] == [
        (body["booking_id"], event.id, 3500)
    ]
    assert [s["seat_id"] for s in listed[0]["seats"]] == ids
    assert client.get("/api/me").get_json()["points"] == body["points_left"]


def test_seats_presented_in_any_order(app, event, buyer):
    _, client, items = buyer
    response = pay(client, event.id, list(reversed(items)))
    assert response.status_code == 201, response.get_json()
    assert [s["seat_id"] for s in response.get_json()["seats"]] == sorted(s for s, _ in items)


# Idempotency


def test_same_key_replays_and_charges_once(app, event, buyer):
    user, client, items = buyer
    first = pay(client, event.id, items, key="k-1")
    assert first.status_code == 201, first.get_json()
    again = pay(client, event.id, items, key="k-1")
    assert again.status_code == 200, again.get_json()
    assert again.get_json() == first.get_json()
    # The same seats in another order are the same request.
    reordered = pay(client, event.id, list(reversed(items)), key="k-1")
    assert reordered.status_code == 200 and reordered.get_json() == first.get_json()
    assert sale_rows(app) == {"bookings": 1, "booking_seats": 2, "payments": 1}
    assert points_of(app, user.id) == app.config["STARTING_POINTS"] - 3500


def test_same_key_for_a_different_checkout_is_422(app, event, buyer):
    user, client, items = buyer
    assert pay(client, event.id, items, key="k-2").status_code == 201
    for other in (items[:1], [(items[0][0], items[0][1] + 1), items[1]]):
        assert_error(pay(client, event.id, other, key="k-2"), 422, "idempotency_key_reused")
    assert sale_rows(app) == {"bookings": 1, "booking_seats": 2, "payments": 1}
    assert points_of(app, user.id) == app.config["STARTING_POINTS"] - 3500


def test_keys_are_per_person(app, event, make_user, login):
    """Two people may happen to pick the same key: each gets their own sale."""
    ids = seat_ids(app, event.id)
    _, a = entered(app, make_user, login, event)
    _, b = entered(app, make_user, login, event)
    first = pay(a, event.id, [(ids[0], hold(a, event.id, ids[0]))], key="same")
    second = pay(b, event.id, [(ids[1], hold(b, event.id, ids[1]))], key="same")
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.get_json()["booking_id"] != second.get_json()["booking_id"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Idempotency-Key": ""}, {"Idempotency-Key": "   "}, {"Idempotency-Key": "x" * 101}],
    ids=["missing", "empty", "blank", "too-long"],
)
def test_idempotency_key_is_required(app, event, buyer, r, headers):
    user, client, items = buyer
    seats_before = r.hgetall(keys.event(event.id).seats)
    response = client.post(
        f"/api/events/{event.id}/checkout",
        headers=headers,
        json={"seats": [{"seat_id": s, "token": t} for s, t in items]},
    )
    assert_error(response, 422, "invalid")
    assert sale_rows(app) == NO_SALE
    assert r.hgetall(keys.event(event.id).seats) == seats_before
    assert points_of(app, user.id) == app.config["STARTING_POINTS"]


# Not enough points


def test_not_enough_points_is_402_and_changes_nothing(app, event, make_user, login, r):
    user, client = entered(app, make_user, login, event, points=10)
    ids = seat_ids(app, event.id)
    items = [(ids[0], hold(client, event.id, ids[0])), (ids[4], hold(client, event.id, ids[4]))]
    before = seat_rows(app, ids)
    body = assert_error(pay(client, event.id, items), 402, "not_enough_points")
    assert "3,500" in body["message"] and "10" in body["message"]

    assert sale_rows(app) == NO_SALE
    assert points_of(app, user.id) == 10
    assert seat_rows(app, ids) == before  # still available, version unchanged
    # The seats went back to this person's hold, same tokens, and the window stays.
    listing = seat_listing(client, event.id)
    for seat_id, token in items:
        assert listing[seat_id]["status"] == "held"
        assert listing[seat_id]["held_by_me"] is True
        assert listing[seat_id]["token"] == token
    assert r.zscore(keys.event(event.id).active, user.id) is not None
    # Trying again cannot pay either, and still changes nothing.
    assert_error(pay(client, event.id, items), 402, "not_enough_points")
    assert sale_rows(app) == NO_SALE
    # The person can still give the seats back, and someone else can take them.
    response = client.delete(
        f"/api/events/{event.id}/seats/{ids[0]}/hold", json={"token": items[0][1]}
    )
    assert response.status_code == 204
    _, other = entered(app, make_user, login, event)
    assert pay(other, event.id, [(ids[0], hold(other, event.id, ids[0]))]).status_code == 201


# Lost or foreign holds: 409, nothing changes


def test_wrong_token_is_409(app, event, buyer, r):
    user, client, items = buyer
    k = keys.event(event.id)
    seats_before = r.hgetall(k.seats)
    rows_before = seat_rows(app, [s for s, _ in items])
    stale = [(items[0][0], items[0][1] + 1), items[1]]
    assert_error(pay(client, event.id, stale), 409, "hold_stale")
    assert r.hgetall(k.seats) == seats_before
    assert seat_rows(app, [s for s, _ in items]) == rows_before
    assert sale_rows(app) == NO_SALE
    assert points_of(app, user.id) == app.config["STARTING_POINTS"]
    # The real tokens still work.
    assert pay(client, event.id, items).status_code == 201


def test_lapsed_hold_is_409(app, make_event, make_user, login, r):
    event = make_event(sections=SECTIONS, admit_rate=100_000, hold_ttl=1)
    user, client = entered(app, make_user, login, event)
    seat_id = seat_ids(app, event.id)[0]
    token = hold(client, event.id, seat_id)
    time.sleep(1.3)
    body = assert_error(pay(client, event.id, [(seat_id, token)]), 409, "hold_expired")
    assert "Floor-A1" in body["message"]
    assert sale_rows(app) == NO_SALE
    assert seat_rows(app, [seat_id])[seat_id][:3] == ("available", None, 0)
    assert points_of(app, user.id) == app.config["STARTING_POINTS"]
    assert seat_listing(client, event.id)[seat_id]["status"] == "available"


def test_someone_elses_hold_is_409(app, event, buyer, make_user, login, r):
    owner, owner_client, items = buyer
    thief, thief_client = entered(app, make_user, login, event)
    k = keys.event(event.id)
    seats_before = r.hgetall(k.seats)
    assert_error(pay(thief_client, event.id, items), 409, "hold_taken")
    assert_error(pay(thief_client, event.id, items[:1]), 409, "hold_taken")
    assert r.hgetall(k.seats) == seats_before
    assert sale_rows(app) == NO_SALE
    assert points_of(app, thief.id) == app.config["STARTING_POINTS"]
    # The owner is unaffected.
    assert pay(owner_client, event.id, items).status_code == 201


def test_checkout_needs_an_entered_session(app, event, buyer, login):
    user, _, items = buyer
    other_session = login(app.test_client(), user)  # same account, never entered here
    assert_error(pay(other_session, event.id, items), 403, "not_entered")
    assert_error(
        app.test_client().post(
            f"/api/events/{event.id}/checkout", json={"seats": []}, headers={"Idempotency-Key": "k"}
        ),
        401,
    )
    assert sale_rows(app) == NO_SALE


# Bad input: a documented 4xx with {error, message}, never a 500 or a half sale


def _items(items):
    return [{"seat_id": s, "token": t} for s, t in items]


BAD_BODIES = {
    "empty-list": (lambda it, ids: {"seats": []}, 422),
    "five-seats": (
        lambda it, ids: {"seats": _items(it) + [{"seat_id": s, "token": 1} for s in ids[1:4]]},
        422,
    ),
    "twenty-one-seats": (lambda it, ids: {"seats": _items(it) * 10 + _items(it[:1])}, 422),
    "duplicate-seat": (lambda it, ids: {"seats": _items([it[0], it[0]])}, 422),
    "duplicate-seat-other-token": (
        lambda it, ids: {"seats": _items([it[0], (it[0][0], it[0][1] + 1)])},
        422,
    ),
    "token-as-string": (
        lambda it, ids: {"seats": [{"seat_id": it[0][0], "token": str(it[0][1])}]},
        422,
    ),
    "seat-id-as-string": (
        lambda it, ids: {"seats": [{"seat_id": str(it[0][0]), "token": it[0][1]}]},
        422,
    ),
    "seat-id-float": (
        lambda it, ids: {"seats": [{"seat_id": float(it[0][0]), "token": it[0][1]}]},
        422,
    ),
    "token-float": (
        lambda it, ids: {"seats": [{"seat_id": it[0][0], "token": it[0][1] + 0.5}]},
        422,
    ),
    "token-bool": (lambda it, ids: {"seats": [{"seat_id": it[0][0], "token": True}]}, 422),
    "seat-id-negative": (lambda it, ids: {"seats": [{"seat_id": -it[0][0], "token": 1}]}, 422),
    "seat-id-zero": (lambda it, ids: {"seats": [{"seat_id": 0, "token": 1}]}, 422),
    "token-negative": (lambda it, ids: {"seats": [{"seat_id": it[0][0], "token": -1}]}, 422),
    "seat-id-huge": (lambda it, ids: {"seats": [{"seat_id": 10**30, "token": 1}]}, 422),
    "token-huge": (lambda it, ids: {"seats": [{"seat_id": it[0][0], "token": 10**30}]}, 422),
    "seat-id-null": (lambda it, ids: {"seats": [{"seat_id": None, "token": 1}]}, 422),
    "token-missing": (lambda it, ids: {"seats": [{"seat_id": it[0][0]}]}, 422),
    "seat-not-an-object": (lambda it, ids: {"seats": [it[0][0]]}, 422),
    "seats-an-object": (lambda it, ids: {"seats": _items(it)[0]}, 422),
    "seats-missing": (lambda it, ids: {"seat": _items(it)}, 422),
    "body-a-list": (lambda it, ids: _items(it), 422),
    "body-a-string": (lambda it, ids: "seats", 422),
    "body-a-number": (lambda it, ids: 7, 422),
    "unknown-seat": (lambda it, ids: {"seats": [{"seat_id": 2**53, "token": 1}]}, 404),
}


@pytest.mark.parametrize("name", BAD_BODIES)
def test_bad_bodies(app, event, buyer, r, name):
    user, client, items = buyer
    make_body, status = BAD_BODIES[name]
    k = keys.event(event.id)
    seats_before = r.hgetall(k.seats)
    ids = seat_ids(app, event.id)
    rows_before = seat_rows(app, ids)
    response = client.post(
        f"/api/events/{event.id}/checkout",
        json=make_body(items, ids),
        headers={"Idempotency-Key": f"bad-{name}"},
    )
    assert_error(response, status)
    assert sale_rows(app) == NO_SALE
    assert seat_rows(app, ids) == rows_before
    assert r.hgetall(k.seats) == seats_before  # still held, not stuck "being paid for"
    assert points_of(app, user.id) == app.config["STARTING_POINTS"]
    # Nothing was spoiled: the real checkout still works (and with the same key).
    assert pay(client, event.id, items, key=f"bad-{name}").status_code == 201


def test_seats_of_another_event_are_404(app, event, buyer, make_event, make_user, login, r):
    user, client, items = buyer
    other = make_event(sections=SECTIONS, admit_rate=100_000)
    _, other_client = entered(app, make_user, login, other)
    foreign = seat_ids(app, other.id)[0]
    foreign_token = hold(other_client, other.id, foreign)
    seats_before = r.hgetall(keys.event(event.id).seats)
    for body in ([(foreign, foreign_token)], [items[0], (foreign, foreign_token)]):
        assert_error(pay(client, event.id, body), 404, "not_found")
    assert sale_rows(app) == NO_SALE
    assert r.hgetall(keys.event(event.id).seats) == seats_before
    assert seat_listing(other_client, other.id)[foreign]["held_by_me"] is True
    # Unknown event: 404 too.
    assert_error(pay(client, 999_999_999, items), 404)


@pytest.mark.parametrize(
    "raw, content_type, status",
    [
        (b'{"seats": [', "application/json", 400),
        (b"{'seats': []}", "application/json", 400),
        (b"\xff\xfe", "application/json", 400),
        (b"null", "application/json", 400),
        (b"", "application/json", 422),
        (b"seats=1", "application/x-www-form-urlencoded", 415),
        (b"seats=1", "multipart/form-data; boundary=x", 415),
        (b'{"seats": []}', "text/plain", 415),
    ],
    ids=["truncated", "single-quotes", "not-utf8", "null", "empty", "form", "multipart", "text"],
)
def test_malformed_requests(app, event, buyer, r, raw, content_type, status):
    user, client, items = buyer
    seats_before = r.hgetall(keys.event(event.id).seats)
    response = client.post(
        f"/api/events/{event.id}/checkout",
        data=raw,
        content_type=content_type,
        headers={"Idempotency-Key": "m"},
    )
    assert_error(response, status)
    assert sale_rows(app) == NO_SALE
    assert r.hgetall(keys.event(event.id).seats) == seats_before


def test_body_too_large_is_413(app, event, buyer):
    _, client, items = buyer
    body = b'{"seats": [], "pad": "' + b"x" * (1024 * 1024) + b'"}'
    response = client.post(
        f"/api/events/{event.id}/checkout",
        data=body,
        content_type="application/json",
        headers={"Idempotency-Key": "big"},
    )
    assert_error(response, 413)
    assert sale_rows(app) == NO_SALE


def test_deeply_nested_json_is_400_not_500(app, event, buyer):
    _, client, _ = buyer
    depth = 100_000
    raw = b'{"seats": ' + b"[" * depth + b"]" * depth + b"}"
    response = client.post(
        f"/api/events/{event.id}/checkout",
        data=raw,
        content_type="application/json",
        headers={"Idempotency-Key": "deep"},
    )
    assert_error(response, 400)


# Layer 5: one lock order, no deadlocks (MySQL)


@pytest.mark.slow
def test_fifty_buyers_and_point_writers_never_deadlock(app, mysql, make_event, monkeypatch):
    """50 buyers pay at once, each presenting its 1-4 seats in random order,
    while 10 other transactions keep locking the same people's user rows.
    Seats first (ascending), then the user: no cycle, so no client ever sees
    a deadlock (no 503, no 500), nothing is sold twice and the money adds up."""
    buyers, updaters = 50, 10
    rng = random.Random(20240607)
    event = make_event(
        sections=[
            {"name": n, "rows": 4, "seats_per_row": 25, "price": p}
            for n, p in (("A", 100), ("B", 250), ("C", 400))
        ],
        admit_rate=100_000,
        max_active=1_000,
    )
    deck = seat_ids(app, event.id)
    rng.shuffle(deck)
    with app.app_context():
        prices = {s.id: s.price for s in Seat.select().where(Seat.event == event.id)}
        users = [
            User.create(
                email=f"lock{i}-{uuid.uuid4().hex[:8]}@example.com",
                password_hash="!",
                points=100_000,
            )
            for i in range(buyers)
        ]

    people = []  # (user id, client, [(seat id, token)] in the order they will be presented)
    for user in users:
        client = app.test_client()
        with client.session_transaction() as s:  # what login() puts in the session
            s["uid"], s["sid"], s["email"] = user.id, secrets.token_urlsafe(16), user.email
        admit_and_enter(app, client, event.id)
        mine = [deck.pop() for _ in range(rng.randint(1, 4))]
        items = [(seat_id, hold(client, event.id, seat_id)) for seat_id in mine]
        rng.shuffle(items)
        people.append((user.id, client, items))
    user_ids = [u.id for u in users]

    # The test process stands in for many web processes (production runs 8
    # threads per process, which the 32-connection pool covers): let all 50
    # buyers have a connection at once.
    monkeypatch.setattr(db.obj, "_max_connections", buyers + 8)

    stop = threading.Event()
    updater_errors, updater_rounds = [], Counter()

    def keep_locking_users(n):
        conn = mysql_connect()
        local = random.Random(n)
        try:
            while not stop.is_set():
                uid = local.choice(user_ids)
                with conn.cursor() as cur:
                    cur.execute("SELECT points FROM users WHERE id = %s FOR UPDATE", (uid,))
                    cur.execute("UPDATE users SET points = points + 0 WHERE id = %s", (uid,))
                time.sleep(local.uniform(0, 0.003))  # hold the user row a moment
                conn.commit()
                updater_rounds[n] += 1
        except Exception as e:  # reported below, not swallowed
            updater_errors.append(repr(e))
        finally:
            conn.close()

    start = threading.Barrier(buyers)
    results: dict[int, tuple] = {}

    def buy(uid, client, items):
        try:
            start.wait(30)
            response = pay(client, event.id, items, key=f"lock-order-{uid}")
            results[uid] = (response.status_code, response.get_json())
        except Exception as e:
            results[uid] = ("exception", repr(e))

    deadlocks_before = innodb_deadlocks()
    lockers = [threading.Thread(target=keep_locking_users, args=(n,)) for n in range(updaters)]
    for t in lockers:
        t.start()
    threads = [threading.Thread(target=buy, args=person) for person in people]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        stop.set()
        for t in lockers:
            t.join(30)
        db.close_idle()  # give the extra pooled connections back to the server
    deadlocks = innodb_deadlocks() - deadlocks_before
    print(
        f"\nInnodb_deadlocks during the run: {deadlocks} (server-wide counter); "
        f"user-row lock rounds by the writers: {sum(updater_rounds.values())}"
    )

    statuses = Counter(result[0] for result in results.values())
    note = f"statuses {dict(statuses)}, server deadlocks counted meanwhile: {deadlocks}"
    assert len(results) == buyers, note
    assert statuses == {201: buyers}, (note, [r for r in results.values() if r[0] != 201][:3])
    assert not updater_errors, updater_errors[:3]
    assert all(n > 0 for n in updater_rounds.values()) and len(updater_rounds) == updaters

    for uid, _, items in people:
        body = results[uid][1]
        assert [s["seat_id"] for s in body["seats"]] == sorted(s for s, _ in items)
        assert body["amount"] == sum(prices[s] for s, _ in items)

    conn = mysql_connect(autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT seat_id, COUNT(*) FROM booking_seats WHERE live = 1 "
                "GROUP BY seat_id HAVING COUNT(*) > 1"
            )
            assert cur.fetchall() == ()
            held = [s for _, _, items in people for s, _ in items]
            cur.execute("SELECT COUNT(*), COUNT(DISTINCT seat_id) FROM booking_seats")
            assert cur.fetchone() == (len(held), len(held))
            marks = ",".join(["%s"] * len(user_ids))
            cur.execute(
                f"SELECT COALESCE(SUM(100000 - points), 0) FROM users WHERE id IN ({marks})",
                user_ids,
            )
            deducted = int(cur.fetchone()[0])
            cur.execute("SELECT COALESCE(SUM(amount), 0), COUNT(*) FROM bookings")
            booked, n_bookings = cur.fetchone()
            cur.execute("SELECT COALESCE(SUM(amount), 0), COUNT(*) FROM payments")
            paid, n_payments = cur.fetchone()
            cur.execute(
                f"SELECT COUNT(*) FROM seats WHERE status = 'booked' "
                f"AND id IN ({','.join(['%s'] * len(held))})",
                held,
            )
            assert cur.fetchone()[0] == len(held)
    finally:
        conn.close()
    expected = sum(prices[s] for s in held)
    assert (n_bookings, n_payments) == (buyers, buyers)
    assert deducted == int(booked) == int(paid) == expected, note
    assert sum(results[uid][1]["amount"] for uid in user_ids) == expected


# The database's last line of defence, called directly


def test_database_refuses_a_second_sale_of_a_seat(app, ctx, event, make_user):
    first, second = make_user(), make_user()
    seat_id = seat_ids(app, event.id)[0]
    lease = time.monotonic() + 30
    receipt = checkout._book(event.id, first.id, [(seat_id, 1)], "d-1", "h" * 64, lease)
    assert receipt.amount == 1000 and receipt.seats[0]["seat_id"] == seat_id
    with pytest.raises(AppError) as refused:
        checkout._book(event.id, second.id, [(seat_id, 2)], "d-2", "h" * 64, lease)
    assert refused.value.status == 409 and refused.value.code == "seat_booked"
    live = BookingSeat.select().where(BookingSeat.seat == seat_id, BookingSeat.live == 1)
    assert [b.booking.user_id for b in live] == [first.id]
    assert Payment.select().count() == 1
    assert User.get_by_id(second.id).points == app.config["STARTING_POINTS"]
    seat = Seat.get_by_id(seat_id)
    assert (seat.status, seat.holder_id, seat.fencing_token, seat.version) == (
        "booked",
        first.id,
        1,
        1,
    )


def test_unique_index_refuses_a_second_live_booking_row(app, ctx, event, make_user):
    first, second = make_user(), make_user()
    seat_id = seat_ids(app, event.id)[0]
    lease = time.monotonic() + 30
    checkout._book(event.id, first.id, [(seat_id, 1)], "u-1", "h" * 64, lease)
    with pytest.raises(peewee.IntegrityError), db.atomic():
        other = Booking.create(
            user=second.id,
            event=event.id,
            amount=1000,
            points_left=0,
            idempotency_key="by-hand",
            request_hash="h" * 64,
        )
        BookingSeat.insert(booking=other.id, seat=seat_id, price=1000, live=1).execute()
    assert BookingSeat.select().where(BookingSeat.seat == seat_id).count() == 1
    assert Booking.select().count() == 1
    # A cancelled booking (live NULL) does not count against the seat.
    with db.atomic():
        other = Booking.create(
            user=second.id,
            event=event.id,
            amount=1000,
            points_left=0,
            idempotency_key="cancelled",
            request_hash="h" * 64,
            status="cancelled",
        )
        BookingSeat.insert(booking=other.id, seat=seat_id, price=1000, live=None).execute()
    assert BookingSeat.select().where(BookingSeat.seat == seat_id).count() == 2


def test_database_refuses_a_stale_fencing_token(app, ctx, event, make_user):
    """A paused buyer whose hold was replaced (a newer token reached MySQL)
    cannot pay, even if Redis were wrong."""
    user = make_user()
    seat_id = seat_ids(app, event.id)[0]
    Seat.update(fencing_token=7).where(Seat.id == seat_id).execute()
    lease = time.monotonic() + 30
    with pytest.raises(AppError) as refused:
        checkout._book(event.id, user.id, [(seat_id, 6)], "f-1", "h" * 64, lease)
    assert (refused.value.status, refused.value.code) == (409, "hold_stale")
    assert Booking.select().count() == 0
    # The current token pays.
    assert checkout._book(event.id, user.id, [(seat_id, 7)], "f-2", "h" * 64, lease).amount


def test_database_refuses_after_the_lease(app, ctx, event, make_user):
    user = make_user()
    seat_id = seat_ids(app, event.id)[0]
    with pytest.raises(AppError) as refused:
        checkout._book(event.id, user.id, [(seat_id, 1)], "l-1", "h" * 64, time.monotonic())
    assert (refused.value.status, refused.value.code) == (409, "lease_expired")
    assert Booking.select().count() == 0
    assert Seat.get_by_id(seat_id).status == "available"


def test_a_seat_version_that_moved_is_a_retry_and_nothing_changes(
    app, ctx, event, make_user, monkeypatch
):
    """The seats are marked booked by one UPDATE guarded by each seat's version
    as read under the lock: if one of them moved, the whole sale rolls back."""
    user = make_user()
    first, second = seat_ids(app, event.id)[:2]
    before = seat_rows(app, [first, second])
    locked = checkout._lock_seats

    def one_seat_read_stale(seat_ids, wait):
        rows = locked(seat_ids, wait)
        return [rows[0], rows[1]._replace(version=rows[1].version - 1)]

    monkeypatch.setattr(checkout, "_lock_seats", one_seat_read_stale)
    lease = time.monotonic() + 30
    with pytest.raises(checkout.Retry):
        checkout._book(event.id, user.id, [(second, 4), (first, 3)], "v-1", "h" * 64, lease)
    assert seat_rows(app, [first, second]) == before
    assert sale_rows(app) == NO_SALE
    assert points_of(app, user.id) == app.config["STARTING_POINTS"]

    monkeypatch.setattr(checkout, "_lock_seats", locked)
    receipt = checkout._book(event.id, user.id, [(second, 4), (first, 3)], "v-2", "h" * 64, lease)
    assert [s["seat_id"] for s in receipt.seats] == [first, second]
    after = seat_rows(app, [first, second])  # each seat got its own token
    assert after[first] == ("booked", user.id, before[first][2] + 1, 3)
    assert after[second] == ("booked", user.id, before[second][2] + 1, 4)


def test_database_refuses_a_blocked_seat(app, ctx, event, make_user):
    user = make_user()
    seat_id = seat_ids(app, event.id)[0]
    Seat.update(status="blocked").where(Seat.id == seat_id).execute()
    with pytest.raises(AppError) as refused:
        checkout._book(
            event.id, user.id, [(seat_id, 1)], "b-1", "h" * 64, int(time.time() * 1000) + 30_000
        )
    assert (refused.value.status, refused.value.code) == (409, "seat_blocked")
    assert Booking.select().count() == 0
    assert User.get_by_id(user.id).points == app.config["STARTING_POINTS"]


# Retries: a real lock wait and a real deadlock (MySQL)


@pytest.fixture
def impatient(app, monkeypatch):
    """MySQL gives up on a lock after 1 s; two attempts per checkout."""
    monkeypatch.setitem(app.config, "LOCK_WAIT_TIMEOUT", 1)
    monkeypatch.setitem(app.config, "CHECKOUT_ATTEMPTS", 2)


@pytest.fixture
def seat_locker():
    """Another MySQL connection that can take row locks and keep them."""
    conn = mysql_connect()
    yield conn
    conn.rollback()
    conn.close()


def lock_seat(conn, seat_id):
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute("SELECT id FROM seats WHERE id = %s FOR UPDATE", (seat_id,))


def test_lock_wait_gives_503_and_the_holds_back(
    app, mysql, event, buyer, impatient, seat_locker, r
):
    user, client, items = buyer
    k = keys.event(event.id)
    seats_before = r.hgetall(k.seats)
    lock_seat(seat_locker, items[1][0])
    response = pay(client, event.id, items, key="waited")
    body = assert_error(response, 503, "busy")
    assert int(response.headers["Retry-After"]) >= 1, body
    # Nothing sold, nothing charged, and the seats are the buyer's hold again.
    assert sale_rows(app) == NO_SALE
    assert points_of(app, user.id) == app.config["STARTING_POINTS"]
    assert r.hgetall(k.seats) == seats_before
    listing = seat_listing(client, event.id)
    assert all(listing[s]["held_by_me"] and listing[s]["token"] == t for s, t in items)

    seat_locker.rollback()  # the lock goes away: the same request now succeeds
    again = pay(client, event.id, items, key="waited")
    assert again.status_code == 201, again.get_json()
    assert sale_rows(app) == {"bookings": 1, "booking_seats": 2, "payments": 1}


def test_lock_wait_is_retried_then_503_busy(
    app, mysql, event, buyer, impatient, seat_locker, caplog
):
    _, client, items = buyer
    lock_seat(seat_locker, items[0][0])
    caplog.set_level("INFO", logger="app.checkout")
    response = pay(client, event.id, items)
    body = assert_error(response, 503)
    retried = [rec for rec in caplog.records if "retrying" in rec.getMessage()]
    assert (body["error"], len(retried), response.headers.get("Retry-After")) == ("busy", 1, "1"), (
        body
    )


def test_a_real_deadlock_is_retried_and_the_sale_goes_through(
    app, mysql, event, buyer, seat_locker, monkeypatch
):
    """Another transaction (heavier, so InnoDB picks the checkout as the victim)
    locks the buyer's user row, then the seat the checkout has locked."""
    user, client, items = buyer
    monkeypatch.setitem(app.config, "LOCK_WAIT_TIMEOUT", 20)
    with seat_locker.cursor() as cur:
        cur.execute("BEGIN")
        for i in range(50):  # weight: undo records make this the costlier victim
            cur.execute(
                "INSERT INTO audit_log (action, target, created_at) "
                "VALUES ('test.weight', %s, NOW())",
                (str(i),),
            )
        cur.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", (user.id,))
    result = {}

    def buy():
        response = pay(client, event.id, items, key="deadlocked")
        result["response"] = (response.status_code, response.get_json())

    thread = threading.Thread(target=buy)
    deadlocks_before = innodb_deadlocks()
    thread.start()
    watcher = mysql_connect(autocommit=True)
    try:
        for _ in range(200):  # until the checkout waits for the user row
            with watcher.cursor() as cur:
                cur.execute(
                    "SELECT COUNT(*) FROM information_schema.INNODB_LOCK_WAITS w "
                    "JOIN information_schema.INNODB_LOCKS l "
                    "ON l.lock_id = w.requested_lock_id WHERE l.lock_table = %s",
                    (f"`{MYSQL_DB}`.`users`",),
                )
                if cur.fetchone()[0]:
                    break
            time.sleep(0.05)
        else:
            pytest.fail("the checkout never waited for the user row")
    finally:
        watcher.close()
    try:
        with seat_locker.cursor() as cur:  # closes the cycle: one side is the victim
            cur.execute("SELECT id FROM seats WHERE id = %s FOR UPDATE", (items[0][0],))
    except pymysql.err.OperationalError as e:
        thread.join(30)
        pytest.skip(f"InnoDB chose the other transaction as the victim ({e})")
    time.sleep(0.2)
    seat_locker.rollback()
    thread.join(60)
    print(f"\nInnodb_deadlocks: +{innodb_deadlocks() - deadlocks_before}")
    assert result["response"][0] == 201, result["response"]
    assert sale_rows(app) == {"bookings": 1, "booking_seats": 2, "payments": 1}


# SQLite fallback: the same checkout, one writer at a time (BEGIN IMMEDIATE)


@pytest.fixture
def sqlite_app(app, database_url, tmp_path, rebind):
    if database_url.startswith("sqlite"):
        return app  # the session app already runs on SQLite
    from app.cli import create_tables

    settings = dict(app.test_settings)
    lite = create_app({**settings, "DATABASE_URL": f"sqlite:///{tmp_path / 'lite.sqlite3'}"})
    with lite.app_context():
        create_tables()
    return lite


def test_sqlite_checkout_happy_path(sqlite_app, r):
    from app import accounts, events
    from app.extensions import is_mysql

    lite = sqlite_app
    with lite.app_context():
        assert not is_mysql()
        event = events.create("On SQLite", SECTIONS, admit_rate=100_000)
        events.update(event.id, admission="open")
        user = accounts.register(f"lite-{uuid.uuid4().hex[:8]}@example.com", "password123")
        poor = accounts.register(
            f"poor-{uuid.uuid4().hex[:8]}@example.com", "password123", points=5
        )
        ids = [s.id for s in Seat.select().where(Seat.event == event.id).order_by(Seat.id)]
    clients = []
    for person in (user, poor):
        client = lite.test_client()
        response = client.post(
            "/api/auth/login", json={"email": person.email, "password": "password123"}
        )
        assert response.status_code == 200
        admit_and_enter(lite, client, event.id)
        clients.append(client)
    client, poor_client = clients

    items = [(ids[0], hold(client, event.id, ids[0])), (ids[4], hold(client, event.id, ids[4]))]
    response = pay(client, event.id, items, key="lite")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["amount"] == 3500 and body["points_left"] == lite.config["STARTING_POINTS"] - 3500
    again = pay(client, event.id, items, key="lite")
    assert again.status_code == 200 and again.get_json() == body

    poor_items = [(ids[1], hold(poor_client, event.id, ids[1]))]
    assert_error(pay(poor_client, event.id, poor_items), 402, "not_enough_points")
    assert seat_listing(poor_client, event.id)[ids[1]]["held_by_me"] is True

    with lite.app_context():
        assert [
            (s.status, s.holder_id)
            for s in Seat.select().where(Seat.id.in_(ids[:2])).order_by(Seat.id)
        ] == [("booked", user.id), ("available", None)]
        assert (Booking.select().count(), BookingSeat.select().count()) == (1, 2)
        assert Payment.select().count() == 1
        assert User.get_by_id(user.id).points == body["points_left"]
        assert User.get_by_id(poor.id).points == 5
    assert r.hget(keys.event(event.id).seats, ids[0]) == f"booked:{user.id}:{items[0][1]}"
