"""Cancellation and refund (app/cancellations.py), on the real MySQL and Redis:
what a fan and staff see, the seat back on sale in both stores, idempotency,
the deadline, Redis repaired by reconcile, and races that must never sell a
seat twice, refund twice or lose a point."""

import threading
import time
from datetime import timedelta

import pytest
from peewee import fn

from app import checkout, keys, mirror
from app.errors import AppError
from app.models import AuditLog, Booking, BookingSeat, Payment, Refund, Seat, User, utcnow
from tests.helpers import admit_and_enter, assert_error, entered, hold, pay, seat_ids

SECTIONS = [{"name": "A", "rows": 1, "seats_per_row": 4, "price": 1000}]
START = 10_000


@pytest.fixture
def event(make_event):
    return make_event(
        sections=SECTIONS, admit_rate=100_000, cancellable_until=utcnow() + timedelta(days=1)
    )


def buy(app, make_user, login, event, seats, points=START):
    """A person who came in and bought `seats`: (user, client, booking id)."""
    user, client = entered(app, make_user, login, event, points=points)
    items = [(seat, hold(client, event.id, seat)) for seat in seats]
    response = pay(client, event.id, items)
    assert response.status_code == 201, response.get_json()
    return user, client, response.get_json()["booking_id"]


def cancel(client, booking_id, seat_ids=None, staff=False):
    path = "admin/bookings" if staff else "me/bookings"
    body = {} if seat_ids is None else {"seat_ids": seat_ids}
    return client.post(f"/api/{path}/{booking_id}/cancel", json=body)


def conserved(app) -> int:
    """sum(points) + sum(payments) - sum(refunds): constant through every sale and refund."""
    with app.app_context():
        points = User.select(fn.COALESCE(fn.SUM(User.points), 0)).scalar()
        paid = Payment.select(fn.COALESCE(fn.SUM(Payment.amount), 0)).scalar()
        back = Refund.select(fn.COALESCE(fn.SUM(Refund.amount), 0)).scalar()
        return int(points) + int(paid) - int(back)


def test_full_cancel_refunds_and_puts_the_seats_back(app, mysql, event, make_user, login, r):
    seats = seat_ids(app, event.id)
    user, client, booking_id = buy(app, make_user, login, event, seats[:2])
    k = keys.event(event.id)
    assert r.hget(k.bought, user.id) == "2"

    response = cancel(client, booking_id)

    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"booking_id": booking_id, "refunded": 2000, "points": START}
    with app.app_context():
        assert User.get_by_id(user.id).points == START
        assert Booking.get_by_id(booking_id).status == "cancelled"
        rows = Seat.select().where(Seat.id.in_(seats[:2]))
        assert {(s.status, s.holder_id) for s in rows} == {("available", None)}
        assert not BookingSeat.select().where(BookingSeat.live == 1).exists()
    assert r.hmget(k.seats, seats[:2]) == [None, None]
    assert r.hget(k.bought, user.id) is None


def test_partial_cancel_then_all_refunds_each_seat_once(app, mysql, event, make_user, login, r):
    seats = seat_ids(app, event.id)
    user, client, booking_id = buy(app, make_user, login, event, seats[:3])
    k = keys.event(event.id)

    first = cancel(client, booking_id, [seats[1]]).get_json()
    assert first == {"booking_id": booking_id, "refunded": 1000, "points": START - 2000}
    with app.app_context():
        assert Booking.get_by_id(booking_id).status == "confirmed"  # partly: still standing
    assert r.hget(k.seats, seats[1]) is None
    assert r.hget(k.seats, seats[0]).startswith(f"booked:{user.id}:")
    assert r.hget(k.bought, user.id) == "2"

    assert cancel(client, booking_id, [seats[1]]).get_json() == first  # repeated: same body
    everything = cancel(client, booking_id).get_json()
    assert everything == {"booking_id": booking_id, "refunded": 3000, "points": START}
    assert cancel(client, booking_id).get_json() == everything
    assert cancel(client, booking_id, [seats[1]]).get_json() == everything
    with app.app_context():
        assert User.get_by_id(user.id).points == START
        assert Refund.select().count() == 2
        assert Booking.get_by_id(booking_id).status == "cancelled"
    assert r.hget(k.bought, user.id) is None
    assert conserved(app) == START


def test_sold_out_flag_clears_when_a_seat_comes_back(app, mysql, event, make_user, login, r):
    seats = seat_ids(app, event.id)
    _, client, booking_id = buy(app, make_user, login, event, seats[:2])
    buy(app, make_user, login, event, seats[2:])
    config = keys.event(event.id).config
    assert r.hget(config, "sold_out") == "1"

    assert cancel(client, booking_id, [seats[0]]).status_code == 200

    assert r.hget(config, "sold_out") == "0"


def test_the_seat_can_be_bought_again_and_the_old_token_fails(
    app, mysql, event, make_user, login, r
):
    seat = seat_ids(app, event.id)[0]
    user, client = entered(app, make_user, login, event, points=START)
    old_token = hold(client, event.id, seat)
    booking_id = pay(client, event.id, [(seat, old_token)]).get_json()["booking_id"]
    assert cancel(client, booking_id).status_code == 200
    with app.app_context():
        assert Seat.get_by_id(seat).fencing_token == old_token + 1
        # Even if Redis were wrong, MySQL refuses the token that bought it.
        with pytest.raises(AppError) as refused:
            lease = time.monotonic() + 30
            checkout._book(event.id, user.id, [(seat, old_token)], "again", "h" * 64, lease)
        assert refused.value.code == "hold_stale"

    other, other_client = entered(app, make_user, login, event, points=START)
    new_token = hold(other_client, event.id, seat)
    assert new_token > old_token + 1
    assert pay(other_client, event.id, [(seat, new_token)]).status_code == 201
    # The first buyer, back through the waiting room, cannot use the old token.
    admit_and_enter(app, client, event.id)
    assert_error(pay(client, event.id, [(seat, old_token)]), 409)
    with app.app_context():
        assert Seat.get_by_id(seat).holder_id == other.id
        assert BookingSeat.select().where(BookingSeat.seat == seat).count() == 2
    assert r.hget(keys.event(event.id).seats, seat) == f"booked:{other.id}:{new_token}"
    assert conserved(app) == 2 * START


def test_past_the_deadline_the_fan_gets_409_and_staff_can_still_cancel(
    app, mysql, make_event, make_user, login, staff
):
    event = make_event(sections=SECTIONS, admit_rate=100_000)  # no deadline: fans cannot
    seats = seat_ids(app, event.id)
    _, client, booking_id = buy(app, make_user, login, event, seats[:1])

    assert_error(cancel(client, booking_id), 409, "cancellation_closed")
    _, staff_client = staff
    response = cancel(staff_client, booking_id, staff=True)
    assert response.get_json() == {"booking_id": booking_id, "refunded": 1000, "points": START}
    # Once cancelled, the fan's repeat answers as before, deadline or not.
    assert cancel(client, booking_id).get_json() == response.get_json()


def test_a_deadline_in_the_past_is_409(app, mysql, event, make_user, login, staff):
    seats = seat_ids(app, event.id)
    _, client, booking_id = buy(app, make_user, login, event, seats[:1])
    _, staff_client = staff
    earlier = (utcnow() - timedelta(minutes=1)).isoformat() + "Z"
    changed = staff_client.patch(
        f"/api/admin/events/{event.id}", json={"cancellable_until": earlier}
    )
    assert changed.status_code == 200 and changed.get_json()["cancellable_until"] == earlier

    assert_error(cancel(client, booking_id), 409, "cancellation_closed")


def test_another_persons_booking_is_404(app, mysql, event, make_user, login):
    seats = seat_ids(app, event.id)
    _, _, booking_id = buy(app, make_user, login, event, seats[:1])
    stranger = login(app.test_client(), make_user())
    assert_error(cancel(stranger, booking_id), 404)
    assert_error(cancel(stranger, 999_999_999), 404)
    assert_error(cancel(stranger, 99999999999999999999), 404)
    with app.app_context():
        assert not Refund.select().exists()


def test_seats_of_another_booking_are_422(app, mysql, event, make_user, login):
    seats = seat_ids(app, event.id)
    _, client, booking_id = buy(app, make_user, login, event, seats[:1])
    assert_error(cancel(client, booking_id, [seats[1]]), 422)
    assert_error(cancel(client, booking_id, []), 422)


def test_staff_endpoint_is_403_for_a_customer(app, mysql, event, make_user, login, customer):
    seats = seat_ids(app, event.id)
    _, _, booking_id = buy(app, make_user, login, event, seats[:1])
    _, customer_client = customer
    assert_error(cancel(customer_client, booking_id, staff=True), 403)
    assert_error(cancel(app.test_client(), booking_id, staff=True), 401)


def test_staff_cancel_is_audited(app, mysql, event, make_user, login, staff):
    seats = seat_ids(app, event.id)
    _, _, booking_id = buy(app, make_user, login, event, seats[:2])
    staff_user, staff_client = staff
    assert cancel(staff_client, booking_id, [seats[0]], staff=True).status_code == 200
    with app.app_context():
        entry = AuditLog.get(AuditLog.action == "booking.cancel")
        assert entry.actor_id == staff_user.id
        assert entry.target == f"event:{event.id}:booking:{booking_id}"
        assert '"refunded": 1000' in entry.after
        assert Refund.get().actor_id == staff_user.id


def test_redis_down_after_commit_is_repaired_by_reconcile(
    app, mysql, event, make_user, login, r, monkeypatch
):
    seats = seat_ids(app, event.id)
    user, client, booking_id = buy(app, make_user, login, event, seats[:2])
    buy(app, make_user, login, event, seats[2:])
    k = keys.event(event.id)

    def down(**kwargs):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(_scripts(), "cancel", down)
    monkeypatch.setattr(mirror, "update_sold_out", lambda *a, **kw: down())
    assert cancel(client, booking_id).status_code == 200  # MySQL decided
    assert r.hget(k.seats, seats[0]).startswith("booked:")  # Redis did not hear
    assert r.hget(k.config, "sold_out") == "1"
    monkeypatch.undo()

    with app.app_context():
        report = mirror.reconcile(event.id)
    assert report["changed"] == 2
    assert r.hmget(k.seats, seats[:2]) == [None, None]
    assert r.hget(k.bought, user.id) is None
    assert r.hget(k.config, "sold_out") == "0"
    other, other_client = entered(app, make_user, login, event, points=START)
    token = hold(other_client, event.id, seats[0])
    assert pay(other_client, event.id, [(seats[0], token)]).status_code == 201


def _scripts():
    from app.extensions import redis_store

    return redis_store.scripts


def test_two_cancels_at_once_refund_once(app, mysql, event, make_user, login):
    seats = seat_ids(app, event.id)
    user, client, booking_id = buy(app, make_user, login, event, seats[:3])
    staff_client = login(app.test_client(), make_user(staff=True))
    start = conserved(app)
    answers, barrier = [], threading.Barrier(6)

    def go(n):
        barrier.wait()
        who = staff_client if n % 2 else client
        body = [seats[n % 3]] if n < 3 else None
        answers.append(cancel(who, booking_id, body, staff=bool(n % 2)))

    threads = [threading.Thread(target=go, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert [a.status_code for a in answers] == [200] * 6
    with app.app_context():
        assert User.get_by_id(user.id).points == START
        assert Refund.select(fn.SUM(Refund.amount)).scalar() == 3000
        refunded = [int(s) for r in Refund.select() for s in r.seat_ids.split(",")]
        assert sorted(refunded) == seats[:3]  # every seat refunded once
    assert conserved(app) == start


@pytest.mark.parametrize("round_", range(3))
def test_cancel_racing_a_new_buyer_never_sells_twice(app, mysql, event, make_user, login, round_):
    seats = seat_ids(app, event.id)
    _, client, booking_id = buy(app, make_user, login, event, seats[:2])
    rivals = [entered(app, make_user, login, event, points=START) for _ in range(3)]
    start = conserved(app)
    barrier = threading.Barrier(len(rivals) + 2)
    bought = []

    def rival(person):
        _, rival_client = person
        barrier.wait()
        for _ in range(200):  # keep trying until the seat comes back, or someone has it
            response = rival_client.post(f"/api/events/{event.id}/seats/{seats[0]}/hold")
            if response.status_code == 201:
                token = response.get_json()["token"]
                if pay(rival_client, event.id, [(seats[0], token)]).status_code == 201:
                    bought.append(person[0].id)
                return
            time.sleep(0.005)

    def canceller():
        barrier.wait()
        for _ in range(2):
            assert cancel(client, booking_id).status_code == 200

    threads = [threading.Thread(target=rival, args=(p,)) for p in rivals]
    threads += [threading.Thread(target=canceller) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(bought) <= 1
    with app.app_context():
        live = BookingSeat.select().where(BookingSeat.seat == seats[0], BookingSeat.live == 1)
        assert live.count() == len(bought)
        seat = Seat.get_by_id(seats[0])
        assert (seat.status, seat.holder_id) == (
            ("booked", bought[0]) if bought else ("available", None)
        )
        assert Refund.select(fn.SUM(Refund.amount)).scalar() == 2000
    assert conserved(app) == start


def test_the_fan_cancels_from_the_confirmation_page_after_a_second_step(
    app, mysql, event, make_user, login
):
    seats = seat_ids(app, event.id)
    user, client, booking_id = buy(app, make_user, login, event, seats[:1])
    assert "Cancel this booking" in client.get(f"/bookings/{booking_id}").get_data(as_text=True)

    asked = client.post(f"/bookings/{booking_id}/cancel")
    assert asked.status_code == 200 and "Yes, cancel it" in asked.get_data(as_text=True)
    with app.app_context():
        assert not Refund.select().exists()  # nothing yet
    done = client.post(f"/bookings/{booking_id}/cancel", data={"confirmed": "yes"})
    assert done.status_code == 302
    page = client.get(f"/bookings/{booking_id}").get_data(as_text=True)
    assert "This booking is cancelled" in page and "Cancel this booking" not in page
    with app.app_context():
        assert User.get_by_id(user.id).points == START


def test_staff_cancel_a_booking_by_its_number_after_a_second_step(
    app, mysql, event, make_user, login, staff
):
    seats = seat_ids(app, event.id)
    user, _, booking_id = buy(app, make_user, login, event, seats[:2])
    _, staff_client = staff
    path = f"/admin/events/{event.id}/bookings/cancel"
    asked = staff_client.post(path, data={"booking": str(booking_id)})
    assert asked.status_code == 200 and "Yes, cancel and refund" in asked.get_data(as_text=True)
    done = staff_client.post(path, data={"booking": str(booking_id), "confirmed": "yes"})
    assert done.status_code == 302
    with app.app_context():
        assert User.get_by_id(user.id).points == START
        assert Booking.get_by_id(booking_id).status == "cancelled"
    missing = staff_client.post(path, data={"booking": "nope"}, follow_redirects=True)
    assert "no booking with that number" in missing.get_data(as_text=True)


# What the fan sees afterwards: My bookings and the booking's page


def my_booking(client, booking_id) -> dict:
    listed = client.get("/api/me/bookings").get_json()
    return next(b for b in listed if b["booking_id"] == booking_id)


def test_a_cancelled_booking_stays_in_my_bookings_with_its_refund(
    app, mysql, event, make_user, login
):
    seats = seat_ids(app, event.id)
    _, client, booking_id = buy(app, make_user, login, event, seats[:2])
    before = my_booking(client, booking_id)
    assert (before["status"], before["refunded"]) == ("confirmed", 0)
    assert [s["cancelled"] for s in before["seats"]] == [False, False]

    assert cancel(client, booking_id).status_code == 200

    after = my_booking(client, booking_id)
    assert (after["status"], after["refunded"], after["amount"]) == ("cancelled", 2000, 2000)
    assert [(s["seat_id"], s["cancelled"]) for s in after["seats"]] == [
        (seats[0], True),
        (seats[1], True),
    ]
    assert [t["status"] for t in after["tickets"]] == ["revoked", "revoked"]
    page = client.get("/bookings").get_data(as_text=True)
    assert f'href="/bookings/{booking_id}"' in page
    assert "Booking cancelled" in page and "2,000 points refunded." in page
    assert "Show the tickets" not in page  # nothing left to show at the door


def test_a_partly_cancelled_booking_marks_exactly_the_cancelled_seats(
    app, mysql, event, make_user, login
):
    seats = seat_ids(app, event.id)
    _, client, booking_id = buy(app, make_user, login, event, seats[:3])

    assert cancel(client, booking_id, [seats[1]]).status_code == 200

    mine = my_booking(client, booking_id)
    assert (mine["status"], mine["refunded"]) == ("confirmed", 1000)
    assert [(s["seat_id"], s["cancelled"]) for s in mine["seats"]] == [
        (seats[0], False),
        (seats[1], True),
        (seats[2], False),
    ]
    assert [t["status"] for t in mine["tickets"]] == ["valid", "revoked", "valid"]
    page = client.get("/bookings").get_data(as_text=True)
    seat_line = next(line for line in page.splitlines() if "3 tickets:" in line)
    marked = [">Cancelled</span>" in name for name in seat_line.split(", ")]
    assert marked == [False, True, False]  # "A1", "A2 Cancelled", "A3"
    assert "1,000 points refunded." in page
    assert "Booking cancelled" not in page and "Show the tickets" in page


def test_the_booking_page_shows_the_cancelled_seats_and_the_refund(
    app, mysql, event, make_user, login
):
    seats = seat_ids(app, event.id)
    _, client, booking_id = buy(app, make_user, login, event, seats[:2])
    page = client.get(f"/bookings/{booking_id}").get_data(as_text=True)
    assert ">Cancelled</span>" not in page and "points refunded" not in page

    assert cancel(client, booking_id, [seats[0]]).status_code == 200
    page = client.get(f"/bookings/{booking_id}").get_data(as_text=True)
    listed = [line for line in page.splitlines() if " points" in line and "<li>" in line]
    assert [">Cancelled</span>" in line for line in listed] == [True, False]
    assert "1,000 points refunded." in page and "Cancel this booking" in page  # one seat left

    assert cancel(client, booking_id).status_code == 200
    page = client.get(f"/bookings/{booking_id}").get_data(as_text=True)
    assert "<h1>Booking cancelled</h1>" in page
    assert "This booking is cancelled" in page and "2,000 points refunded." in page
    assert "Cancel this booking" not in page and "Your tickets" not in page
    # Nothing left to cancel: the "are you sure?" step sends them back to the page.
    asked = client.post(f"/bookings/{booking_id}/cancel")
    assert asked.status_code == 302 and asked.location.endswith(f"/bookings/{booking_id}")
