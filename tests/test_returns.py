"""Returns: once an event sells out, people in the queue may stay in line
("tell me if seats come back"); when a cancellation or a staff unblock puts
seats back on sale, admission takes the people who stayed, in their order,
never more at once than the seats on sale plus RETURNS_MARGIN; those who
were told and walked away are not let in. Real Redis and the real database."""

from datetime import timedelta

import pytest
from helpers import entered, hold, pay, seat_ids

from app import keys, metrics, mirror, waiting_room
from app.models import utcnow

FOUR_SEATS = [{"name": "Floor", "rows": 1, "seats_per_row": 4, "price": 100}]


@pytest.fixture
def event(make_event):
    return make_event(
        sections=FOUR_SEATS,
        max_active=50,
        admit_rate=1000,
        cancellable_until=utcnow() + timedelta(days=1),
    )


@pytest.fixture
def margin(app):
    app.config["RETURNS_MARGIN"] = 1
    yield 1
    app.config["RETURNS_MARGIN"] = 5


def queue_then_sell_out(app, make_user, login, event, staff_client, people: int):
    """A buyer comes in, people queue behind while admission is paused, and
    the buyer buys every seat. Returns (buyer client, booking id, [(user, client)])."""
    _, buyer = entered(app, make_user, login, event)
    staff_client.patch(f"/api/admin/events/{event.id}", json={"admission": "paused"})
    line = []
    for _ in range(people):
        user = make_user()
        client = login(app.test_client(), user)
        assert client.post(f"/api/events/{event.id}/queue").get_json()["status"] == "waiting"
        line.append((user, client))
    items = [(seat, hold(buyer, event.id, seat)) for seat in seat_ids(app, event.id)]
    response = pay(buyer, event.id, items)
    assert response.status_code == 201, response.get_json()
    staff_client.patch(f"/api/admin/events/{event.id}", json={"admission": "open"})
    return buyer, response.get_json()["booking_id"], line


def poll(client, event_id) -> dict:
    return client.get(f"/api/events/{event_id}/queue").get_json()


def state(client, event_id) -> str:
    """A person's queue status, or the error code of the poll."""
    body = poll(client, event_id)
    return body.get("status") or body["error"]


def tick(app, event_id) -> dict:
    with app.app_context():
        return waiting_room.admit(event_id)


def test_people_told_sold_out_may_stay_and_keep_their_place(app, make_user, login, event, staff, r):
    _, _, line = queue_then_sell_out(app, make_user, login, event, staff[1], 3)

    told = poll(line[1][1], event.id)
    assert told["status"] == "sold_out" and told["can_stay"] and told["poll_after"] is None

    response = line[1][1].post(f"/api/events/{event.id}/queue/stay")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "sold_out" and body["staying"] and not body["can_stay"]
    assert body["position"] == 2  # behind the first, who has not polled since
    assert body["poll_after"] > 0 and response.headers["Retry-After"]
    again = poll(line[1][1], event.id)
    assert again["staying"] and again["position"] == 2  # polls keep the place
    assert r.sismember(keys.event(event.id).stay, line[1][0].id)

    # The third walks away after being told: their place is not kept in the queue.
    assert poll(line[2][1], event.id)["can_stay"]
    assert r.zscore(keys.event(event.id).queue, line[2][0].id) is None
    assert r.zscore(keys.event(event.id).told, line[2][0].id) is not None
    # Until they leave for good, they may still change their mind, and keep their place.
    assert line[2][1].post(f"/api/events/{event.id}/queue/stay").get_json()["position"] == 3


def test_stay_is_idempotent_and_only_for_people_in_line(app, make_user, login, event, staff):
    _, _, line = queue_then_sell_out(app, make_user, login, event, staff[1], 1)
    client = line[0][1]
    first = client.post(f"/api/events/{event.id}/queue/stay").get_json()
    second = client.post(f"/api/events/{event.id}/queue/stay").get_json()
    assert (first["position"], first["waiting_total"]) == (second["position"], 1)

    stranger = login(app.test_client(), make_user())
    response = stranger.post(f"/api/events/{event.id}/queue/stay")
    assert response.status_code == 404 and response.get_json()["error"] == "not_in_queue"
    assert stranger.post(f"/api/events/{event.id}/queue").status_code == 409  # sold out


def test_returned_seats_admit_those_who_stayed_in_order_within_the_margin(
    app, make_user, login, event, staff, margin
):
    buyer, booking_id, line = queue_then_sell_out(app, make_user, login, event, staff[1], 6)
    buyer.delete(f"/api/events/{event.id}/queue")  # the buyer's slot is free again
    stayers = [line[i] for i in (0, 2, 3, 5)]
    for _, client in line:  # everyone is told
        assert poll(client, event.id)["status"] == "sold_out"
    for _, client in stayers:
        assert client.post(f"/api/events/{event.id}/queue/stay").get_json()["staying"]
    assert tick(app, event.id)["status"] == "sold_out"

    # Two seats come back: at most 2 + margin 1 people may be active.
    seats = seat_ids(app, event.id)
    response = buyer.post(f"/api/me/bookings/{booking_id}/cancel", json={"seat_ids": seats[:2]})
    assert response.status_code == 200, response.get_json()
    assert tick(app, event.id)["admitted"] == 2 + margin
    seen = [state(client, event.id) for _, client in line]
    # Those who walked away are out of line (they may join again at the back).
    assert seen == ["admitted", "not_in_queue", "admitted", "admitted", "not_in_queue", "waiting"]
    assert tick(app, event.id)["admitted"] == 0  # the cap holds while they are in

    # The rest of the booking comes back: the last stayer is let in.
    assert buyer.post(f"/api/me/bookings/{booking_id}/cancel", json={}).status_code == 200
    assert tick(app, event.id)["admitted"] == 1
    assert poll(line[5][1], event.id)["status"] == "admitted"


def test_a_staff_unblock_after_a_sell_out_lets_a_stayer_in(app, make_user, login, event, staff):
    _, staff_client = staff
    staff_client.patch(f"/api/admin/events/{event.id}", json={"admission": "paused"})
    user = make_user()
    client = login(app.test_client(), user)
    client.post(f"/api/events/{event.id}/queue")
    staff_client.patch(f"/api/admin/events/{event.id}", json={"admission": "open"})
    seats = seat_ids(app, event.id)
    for seat in seats:
        assert (
            staff_client.post(f"/api/admin/events/{event.id}/seats/{seat}/block").status_code == 200
        )
    assert client.post(f"/api/events/{event.id}/queue/stay").get_json()["staying"]
    assert tick(app, event.id)["status"] == "sold_out"

    assert (
        staff_client.post(f"/api/admin/events/{event.id}/seats/{seats[0]}/unblock").status_code
        == 200
    )
    assert tick(app, event.id)["admitted"] == 1
    assert poll(client, event.id)["status"] == "admitted"


def test_someone_staying_who_stops_polling_is_removed_with_their_choice(
    app, make_user, login, event, staff, r
):
    _, _, line = queue_then_sell_out(app, make_user, login, event, staff[1], 2)
    (stayer, client), (walker, other) = line
    client.post(f"/api/events/{event.id}/queue/stay")
    poll(other, event.id)  # told; walks away
    k = keys.event(event.id)
    with app.app_context():
        assert waiting_room.clean_up(event.id, 0, 100, 0) == 0  # both are still within their time
        r.zadd(k.heartbeat, {stayer.id: 1, walker.id: 1})  # long past it
        assert waiting_room.clean_up(event.id, 0, 100, 0) == 1  # one of them was in the queue
    assert not r.sismember(k.stay, stayer.id) and r.zscore(k.told, walker.id) is None
    assert state(client, event.id) == "sold_out" and state(other, event.id) == "sold_out"


def test_the_waiting_page_offers_to_stay_and_then_keeps_looking(
    app, make_user, login, event, staff
):
    _, _, line = queue_then_sell_out(app, make_user, login, event, staff[1], 1)
    client = line[0][1]
    fragment = client.get(f"/events/{event.id}/waiting/status", headers={"HX-Request": "true"})
    html = fragment.get_data(as_text=True)
    assert "Stay in line: tell me if seats come back" in html and "hx-trigger" not in html

    response = client.post(f"/events/{event.id}/stay")  # (CSRF is tested in test_pages.py)
    assert response.status_code == 302 and response.location.endswith(f"/events/{event.id}/waiting")

    fragment = client.get(f"/events/{event.id}/waiting/status", headers={"HX-Request": "true"})
    html = fragment.get_data(as_text=True)
    assert "staying in line in case seats come back" in html and "number <strong>1</strong>" in html
    assert 'hx-trigger="every ' in html and "Leave the queue" in html


def test_staff_and_metrics_count_the_people_staying(app, make_user, login, event, staff):
    _, staff_client = staff
    _, _, line = queue_then_sell_out(app, make_user, login, event, staff_client, 3)
    for _, client in line[:2]:
        client.post(f"/api/events/{event.id}/queue/stay")
    assert staff_client.get(f"/api/admin/events/{event.id}/stats").get_json()["staying"] == 2
    page = staff_client.get(f"/admin/events/{event.id}").get_data(as_text=True)
    assert "2 people are staying in line for returned seats" in page
    with app.app_context():
        row, _ = metrics._event_row(event.id)
    assert row["staying"] == 2 and row["sold_out"] == 1


def test_the_count_on_sale_stops_at_max_active(app, make_event, r):
    """Admission's cap is min(max_active, on sale + margin): counting further
    would only slow every checkout down."""
    small = make_event(sections=FOUR_SEATS, max_active=2)
    with app.app_context():
        assert mirror.update_sold_out(small.id) is False
    assert r.hget(keys.event(small.id).config, "on_sale") == "2"
