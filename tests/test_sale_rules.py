"""The rules of a sale that scalpers probe from outside (issue 14): one
person's seats per event across every order, what pausing and closing mean
for the people already inside, the payment lease on Redis's clock, and holds
that end when their holder leaves. On the real Redis and MySQL."""

import time

import pymysql
import pytest
from conftest import MYSQL, MYSQL_DB
from helpers import admit_and_enter, assert_error, entered, hold, in_background, pay, seat_ids

from app import checkout, events, keys, mirror, seats, staff
from app.errors import AppError
from app.extensions import redis_store
from app.models import Seat


def owned(app, user_id: int, event_id: int) -> list[int]:
    """The seats MySQL says this person bought of this event."""
    with app.app_context():
        return [
            s.id
            for s in Seat.select(Seat.id).where(
                Seat.event == event_id, Seat.holder == user_id, Seat.status == "booked"
            )
        ]


def change(staff_client, event_id, **settings):
    response = staff_client.patch(f"/api/admin/events/{event_id}", json=settings)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def try_hold(client, event_id, seat_id):
    return client.post(f"/api/events/{event_id}/seats/{seat_id}/hold", json={})


def leave(client, event_id):
    return client.delete(f"/api/events/{event_id}/queue", json={})


def test_one_account_cannot_own_more_than_the_events_limit_by_coming_back(
    app, event, make_user, login
):
    # Buy the limit (4), leave, join again, get in again: no fifth seat.
    ids = seat_ids(app, event.id)
    user, client = entered(app, make_user, login, event)
    assert (
        pay(client, event.id, [(s, hold(client, event.id, s)) for s in ids[:4]]).status_code == 201
    )
    admit_and_enter(app, client, event.id)
    body = assert_error(try_hold(client, event.id, ids[4]), 422, "seat_limit")
    assert "at most 4 seats of this event" in body["message"]
    assert len(owned(app, user.id, event.id)) == 4


def test_the_limit_is_a_live_setting_of_each_event(app, staff, event, make_user, login):
    _, client = staff  # a staff member's client
    ids = seat_ids(app, event.id)
    assert change(client, event.id, max_seats_per_person=2)["max_seats_per_person"] == 2
    assert_error(
        client.patch(f"/api/admin/events/{event.id}", json={"max_seats_per_person": 0}), 422
    )
    user, fan = entered(app, make_user, login, event)
    assert pay(fan, event.id, [(ids[0], hold(fan, event.id, ids[0]))]).status_code == 201
    admit_and_enter(app, fan, event.id)
    hold(fan, event.id, ids[1])  # 1 bought + 1 held = 2
    assert_error(try_hold(fan, event.id, ids[2]), 422, "seat_limit")
    # Raised: one more fits.
    change(client, event.id, max_seats_per_person=3)
    hold(fan, event.id, ids[2])


def test_two_checkouts_of_one_person_at_once_cannot_both_pass_the_limit(
    app, mysql, event, make_user, login
):
    """Redis lost the count of what this person bought (a failover): Redis
    lets them hold 4 more seats, and they pay for two pairs at the same
    instant. MySQL, under the user row's lock, lets one pair through."""
    ids = seat_ids(app, event.id)
    user, client = entered(app, make_user, login, event)
    assert (
        pay(client, event.id, [(s, hold(client, event.id, s)) for s in ids[:2]]).status_code == 201
    )
    redis_store.client.hdel(keys.event(event.id).bought, user.id)  # the lost count
    admit_and_enter(app, client, event.id)
    tokens = {s: hold(client, event.id, s) for s in ids[2:6]}
    with client.session_transaction() as session:
        sid = session["sid"]

    def buy(pair):
        with app.app_context():
            items = [(s, tokens[s]) for s in pair]
            try:
                return checkout.checkout(event.id, user.id, sid, items, f"pair-{pair[0]}")[0]
            except AppError as e:
                return e.code

    # Both wait on the user row another connection holds, then go at once.
    blocker = pymysql.connect(database=MYSQL_DB, **MYSQL)
    try:
        with blocker.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", (user.id,))
            runs = [in_background(lambda p=pair: buy(p)) for pair in (ids[2:4], ids[4:6])]
            time.sleep(0.5)
        blocker.commit()
    finally:
        blocker.close()
    for thread, _ in runs:
        thread.join(20)
    outcomes = [result.get("value", result.get("error")) for _, result in runs]
    assert sorted(map(type, outcomes), key=str) == sorted([checkout.Receipt, str], key=str), (
        outcomes
    )
    assert "seat_limit" in outcomes
    assert len(owned(app, user.id, event.id)) == 4


def test_a_closed_event_sells_nothing_more_to_the_people_inside(
    app, staff, event, make_user, login
):
    _, client = staff  # a staff member's client
    ids = seat_ids(app, event.id)
    user, fan = entered(app, make_user, login, event)
    token = hold(fan, event.id, ids[0])
    change(client, event.id, admission="closed")
    body = assert_error(try_hold(fan, event.id, ids[1]), 409, "event_closed")
    assert "My bookings" in body["message"]
    assert_error(pay(fan, event.id, [(ids[0], token)]), 409, "event_closed")
    assert owned(app, user.id, event.id) == []
    # The seat page says so too (the htmx panel's hold).
    page = fan.post(
        f"/events/{event.id}/seats/hold", data={"seat": ids[2]}, headers={"HX-Request": "true"}
    )
    assert "Sales for this event have closed" in page.get_data(as_text=True)


def test_a_paused_event_lets_the_people_inside_finish(app, staff, event, make_user, login):
    _, client = staff  # a staff member's client
    ids = seat_ids(app, event.id)
    user, fan = entered(app, make_user, login, event)
    first = hold(fan, event.id, ids[0])
    change(client, event.id, admission="paused")
    second = hold(fan, event.id, ids[1])
    assert pay(fan, event.id, [(ids[0], first), (ids[1], second)]).status_code == 201
    assert owned(app, user.id, event.id) == ids[:2]


def test_the_staff_page_says_what_pause_and_close_mean(app, staff, event):
    _, client = staff  # a staff member's client
    page = client.get(f"/admin/events/{event.id}").get_data(as_text=True)
    assert "people already inside may finish" in page
    assert "nobody joins, holds or checks out any more" in page


def test_a_web_host_with_a_fast_clock_judges_the_lease_as_redis_does(
    app, event, make_user, login, monkeypatch
):
    # This web host's wall clock runs 30 s ahead (the lease is 30 s).
    ids = seat_ids(app, event.id)
    user, fan = entered(app, make_user, login, event)
    token = hold(fan, event.id, ids[0])
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 30)
    response = pay(fan, event.id, [(ids[0], token)])
    assert response.status_code == 201, response.get_json()


def test_lowering_hold_ttl_mid_sale_does_not_lift_the_limit(app, staff, event, make_user, login):
    _, client = staff  # a staff member's client
    ids = seat_ids(app, event.id)
    user, fan = entered(app, make_user, login, event)
    for s in ids[:3]:
        hold(fan, event.id, s)  # held for 300 s
    change(client, event.id, hold_ttl=1)
    hold(fan, event.id, ids[3])  # the 4th, held for 1 s
    # The set that counts this person's holds outlives the longest of them
    # (it used to expire hold_ttl + 60 s after the last hold: after 61 s
    # the first three would stop counting and 4 more could be held).
    assert redis_store.client.pttl(keys.event(event.id).holds(user.id)) > 290_000
    time.sleep(1.2)  # the 4th lapses; the first three stand for minutes yet
    hold(fan, event.id, ids[4])  # 3 + 1 = 4: fine
    assert_error(try_hold(fan, event.id, ids[5]), 422, "seat_limit")
    with app.app_context():
        _, _, states = seats.live_states(event.id)
    assert sum(1 for s in states.values() if s.holder == user.id) == 4


@pytest.mark.parametrize("how", ["leaves", "removed_by_staff"])
def test_holds_go_back_on_sale_when_their_holder_leaves(app, event, make_user, login, how):
    ids = seat_ids(app, event.id)
    user, fan = entered(app, make_user, login, event)
    for s in ids[:2]:
        hold(fan, event.id, s)
    if how == "leaves":
        assert leave(fan, event.id).status_code == 204
    else:
        with app.app_context():
            staff.remove_from_queue(None, event.id, user.id)
    with app.app_context():
        _, _, states = seats.live_states(event.id)
    assert not any(s.holder == user.id for s in states.values()), states
    _, other = entered(app, make_user, login, event)
    hold(other, event.id, ids[0])


def test_a_new_event_takes_its_limit_from_the_setting(app, make_app):
    with make_app(MAX_SEATS_PER_PERSON=6).app_context():
        event = events.create("Six", [{"name": "A", "rows": 1, "seats_per_row": 8, "price": 1}])
        assert events.describe(event)["max_seats_per_person"] == 6


def test_redis_learns_again_what_each_person_bought(app, event, make_user, login):
    # Lost (a flush, a failover): the reconcile job copies the counts back from MySQL.
    ids = seat_ids(app, event.id)
    user, client = entered(app, make_user, login, event)
    assert (
        pay(client, event.id, [(s, hold(client, event.id, s)) for s in ids[:3]]).status_code == 201
    )
    bought = keys.event(event.id).bought
    assert redis_store.client.hget(bought, user.id) == "3"
    redis_store.client.delete(bought)
    redis_store.client.hset(bought, 999_999, 2)  # a count MySQL does not back
    with app.app_context():
        mirror.reconcile(event.id)
    assert redis_store.client.hgetall(bought) == {str(user.id): "3"}
