"""The htmx booking pages for an entered person, through the test client: the
live seat map and its self-refreshing panel, holds and releases with and
without htmx, checkout, the confirmation and "my bookings"."""

import re
import time
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from app import keys, mirror, seats, waiting_room
from app.extensions import redis_store
from app.models import Booking, Seat

# The test app's JWT_SECRET is short on purpose; pyjwt warns about it.

HX = {"HX-Request": "true"}
SECTIONS = [
    {"name": "Floor", "rows": 1, "seats_per_row": 5, "price": 12000},
    {"name": "Balcony", "rows": 2, "seats_per_row": 2, "price": 8000},
]


class Buttons(HTMLParser):
    """Every <button> of a page: its attributes and its text."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.buttons: list[dict] = []
        self._open: dict | None = None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        if tag == "button":
            self._open = {**dict(attrs), "_text": ""}
            self.buttons.append(self._open)

    def handle_data(self, data):
        if self._open is not None:
            self._open["_text"] += data

    def handle_endtag(self, tag):
        if tag == "button":
            self._open = None


def seat_buttons(page: str) -> dict[int, dict]:
    found = [b for b in Buttons(page).buttons if b.get("id", "").startswith("seat-")]
    by_id = {int(b["id"][len("seat-") :]): b for b in found}
    assert len(by_id) == len(found), "two seat buttons share an id"
    return by_id


def html(response) -> str:
    return response.get_data(as_text=True)


def path_of(response) -> str:
    return urlsplit(response.headers["Location"]).path


def enter_by_browser(app, client, event_id):
    """The browser's way in: the Join form, an admission tick, then the status
    fragment, which consumes the token for this session and sends htmx on."""
    response = client.post(f"/events/{event_id}/join")
    assert response.status_code == 302, html(response)[:300]
    for _ in range(50):
        with app.app_context():
            waiting_room.admit(event_id)
        response = client.get(f"/events/{event_id}/waiting/status", headers=HX)
        if "HX-Redirect" in response.headers:
            break
        time.sleep(0.02)
    assert response.headers["HX-Redirect"] == f"/events/{event_id}/seats"
    return client


@pytest.fixture
def browser(app, make_user, login, event):
    """An entered person in a browser: returns (user, client) for each call."""

    def make(points=None):
        user = make_user(points=points)
        return user, enter_by_browser(app, login(app.test_client(), user), event.id)

    return make


@pytest.fixture
def seat_rows(app, event):
    with app.app_context():
        return list(Seat.select().where(Seat.event == event.id).order_by(Seat.id))


def hold(client, event_id, seat_id, headers=HX):
    return client.post(
        f"/events/{event_id}/seats/hold", data={"seat": str(seat_id)}, headers=headers
    )


# The seat map


def test_seat_map_shows_every_seat_as_a_labelled_button(app, event, browser, seat_rows):
    me, client = browser()
    _, other = browser()
    _, buyer = browser()
    mine, theirs, sold, blocked = (s.id for s in seat_rows[:4])
    assert "You hold" in html(hold(client, event.id, mine))
    assert "You hold" in html(hold(other, event.id, theirs))
    assert "You hold" in html(hold(buyer, event.id, sold))
    assert (
        buyer.post(f"/events/{event.id}/checkout", data={"idempotency_key": "map"}).status_code
        == 302
    )
    with app.app_context():
        Seat.update(status="blocked").where(Seat.id == blocked).execute()
        mirror.reconcile(event.id, [blocked])

    response = client.get(f"/events/{event.id}/seats")
    assert response.status_code == 200
    page = html(response)
    buttons = seat_buttons(page)
    assert sorted(buttons) == [s.id for s in seat_rows]  # every seat, one button each
    expected = {
        mine: "held by you",
        theirs: "held by someone else",
        sold: "sold",
        blocked: "not for sale",
    }
    for seat in seat_rows:
        button = buttons[seat.id]
        label = button["aria-label"]
        word = expected.get(seat.id, "available")
        name = f"{seat.section} {seat.row}{seat.number}"
        assert label.startswith(f"{name}, seat {seat.number}, {seat.price:,} points, {word}"), label
        assert button["name"] == "seat" and button["value"] == str(seat.id)
        assert "disabled" not in button, label  # taken seats stay reachable by keyboard
        if word in ("available", "held by you"):
            assert "aria-disabled" not in button, label
        else:
            assert button["aria-disabled"] == "true", label
    # Prices as people read them; the person's own seat offers release.
    assert "12,000 points" in buttons[mine]["aria-label"]
    assert buttons[mine]["aria-label"].endswith("press to release")
    assert buttons[mine]["formaction"] == f"/events/{event.id}/seats/release"
    assert buttons[seat_rows[5].id]["_text"].strip() == str(seat_rows[5].number)
    # Rows are labelled groups; sections are fieldsets with their names.
    assert 'role="group" aria-label="Floor, row A"' in page
    assert '<legend><span class="section-name">Balcony</span>' in page
    assert "Total 12,000 points." in page


def test_panel_fragment_refreshes_itself(event, browser, seat_rows):
    _, client = browser()
    hold(client, event.id, seat_rows[0].id)
    response = client.get(f"/events/{event.id}/seats/panel")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    fragment = html(response)
    assert not fragment.lstrip().startswith("<!doctype") and "<html" not in fragment
    assert re.search(r'<section id="booking-panel"[^>]*hx-trigger="every 3s"', fragment)
    assert f'hx-get="/events/{event.id}/seats/panel"' in fragment
    countdowns = [int(n) for n in re.findall(r'data-countdown="(\d+)"', fragment)]
    assert len(countdowns) == 2, countdowns  # the active window and the one hold
    assert all(0 < n <= 300 for n in countdowns), countdowns


def test_panel_after_the_window_ends_stops_refreshing(app, event, browser, r):
    user, client = browser()
    r.zrem(keys.event(event.id).active, user.id)  # the active window is over
    fragment = html(client.get(f"/events/{event.id}/seats/panel"))
    assert "Your time to book is over." in fragment
    assert "hx-trigger" not in fragment


# Holding and releasing


def test_hold_with_htmx_answers_the_panel(event, browser, seat_rows):
    _, client = browser()
    seat = seat_rows[0]
    response = hold(client, event.id, seat.id)
    assert response.status_code == 200
    fragment = html(response)
    assert '<section id="booking-panel"' in fragment and "<html" not in fragment
    assert re.search(r"You hold Floor A1 for [45] min\.", fragment), fragment
    assert 'role="status"' in fragment
    label = seat_buttons(fragment)[seat.id]["aria-label"]
    assert "held by you" in label
    assert "<span>Floor A1 · 12,000 points</span>" in fragment  # in "Your seats"
    # Holding it again is harmless.
    assert "You hold" in html(hold(client, event.id, seat.id))


def test_hold_message_near_the_end_of_the_window(event, browser, seat_rows, r):
    user, client = browser()
    k = keys.event(event.id)
    until = int(r.zscore(k.active, user.id)) - 250_000  # about 50 s left
    r.zadd(k.active, {user.id: until})
    r.hset(k.entrance(user.id), "until", until)
    fragment = html(hold(client, event.id, seat_rows[0].id))
    assert "You hold Floor A1 for" in fragment, fragment
    assert "for 0 minutes" not in fragment


def test_someone_elses_hold_is_explained(event, browser, seat_rows):
    _, first = browser()
    _, second = browser()
    seat = seat_rows[0]
    hold(first, event.id, seat.id)
    response = hold(second, event.id, seat.id)
    assert response.status_code == 200
    fragment = html(response)
    assert "Someone else is holding Floor A1." in fragment
    assert 'role="alert"' in fragment
    assert "held by someone else" in seat_buttons(fragment)[seat.id]["aria-label"]


def test_hold_without_htmx_redirects_to_the_seat_page(event, browser, seat_rows):
    _, client = browser()
    response = hold(client, event.id, seat_rows[0].id, headers={})
    assert response.status_code == 302
    assert path_of(response) == f"/events/{event.id}/seats"
    page = html(client.get(f"/events/{event.id}/seats"))
    assert re.search(r"You hold Floor A1 for [45] min\.", page)
    assert "held by you" in seat_buttons(page)[seat_rows[0].id]["aria-label"]


def test_hold_refusals_on_the_page(event, browser, seat_rows):
    _, client = browser()
    for seat in seat_rows[:4]:
        hold(client, event.id, seat.id)
    fragment = html(hold(client, event.id, seat_rows[4].id))
    assert "You can have at most 4 seats of this event" in fragment
    # A missing or foreign seat number: a clear answer, never a 500.
    for data in ({}, {"seat": "abc"}, {"seat": "999999999"}):
        response = client.post(f"/events/{event.id}/seats/hold", data=data, headers=HX)
        assert response.status_code in (200, 404), response.status_code
        assert 'role="alert"' in html(response)


def test_release_with_and_without_htmx(event, browser, seat_rows):
    _, client = browser()
    first, second = seat_rows[0].id, seat_rows[1].id
    hold(client, event.id, first)
    hold(client, event.id, second)
    response = client.post(
        f"/events/{event.id}/seats/release", data={"seat": str(first)}, headers=HX
    )
    assert response.status_code == 200
    fragment = html(response)
    assert "You released Floor A1." in fragment
    assert seat_buttons(fragment)[first]["aria-label"].endswith(", available")
    again = html(
        client.post(f"/events/{event.id}/seats/release", data={"seat": str(first)}, headers=HX)
    )
    assert "You do not hold Floor A1." in again
    response = client.post(f"/events/{event.id}/seats/release", data={"seat": str(second)})
    assert response.status_code == 302 and path_of(response) == f"/events/{event.id}/seats"
    page = html(client.get(f"/events/{event.id}/seats"))
    assert "You released Floor A2." in page
    assert seat_buttons(page)[second]["aria-label"].endswith(", available")


def test_cannot_release_someone_elses_hold(event, browser, seat_rows):
    _, owner = browser()
    _, other = browser()
    seat = seat_rows[0].id
    hold(owner, event.id, seat)
    fragment = html(
        other.post(f"/events/{event.id}/seats/release", data={"seat": str(seat)}, headers=HX)
    )
    assert "You do not hold Floor A1." in fragment
    assert (
        "held by you"
        in seat_buttons(html(owner.get(f"/events/{event.id}/seats")))[seat]["aria-label"]
    )


# Checkout, confirmation, my bookings


def test_checkout_page_to_confirmation(app, event, browser, seat_rows, make_user, login):
    user, client = browser()
    floor, balcony = seat_rows[0], seat_rows[5]
    hold(client, event.id, floor.id)
    hold(client, event.id, balcony.id)
    response = client.get(f"/events/{event.id}/checkout")
    assert response.status_code == 200
    page = html(response)
    assert "Floor A1" in page and "Balcony A1" in page
    assert '<td class="num">20,000</td>' in page  # the total
    assert "Your balance: 100,000 points" in page and "after paying: 80,000" in page
    assert "Pay 20,000 points" in page
    key = re.search(
        r'<input type="hidden" name="idempotency_key" value="([0-9a-f]{32})">', page
    ).group(1)

    response = client.post(f"/events/{event.id}/checkout", data={"idempotency_key": key})
    assert response.status_code == 302
    match = re.fullmatch(r"/bookings/(\d+)", path_of(response))
    assert match, response.headers["Location"]
    booking_id = int(match.group(1))
    with app.app_context():
        booking = Booking.get_by_id(booking_id)
        assert (booking.user_id, booking.idempotency_key, booking.amount) == (user.id, key, 20000)

    confirmation = client.get(f"/bookings/{booking_id}")
    assert confirmation.status_code == 200
    text = html(confirmation)
    assert f"Booking number <strong>{booking_id}</strong>" in text
    assert "Floor A1 · 12,000 points" in text and "Balcony A1 · 8,000 points" in text
    assert "Paid 20,000 points; 80,000 points left." in text

    listing = html(client.get("/bookings"))
    assert f'href="/bookings/{booking_id}"' in listing and "Floor A1, Balcony A1" in listing

    stranger = login(app.test_client(), make_user())
    assert stranger.get(f"/bookings/{booking_id}").status_code == 404
    assert "No bookings yet." in html(stranger.get("/bookings"))
    assert stranger.get("/bookings/999999999").status_code == 404


def test_checkout_page_without_enough_points(app, event, browser, seat_rows):
    user, client = browser(points=100)
    hold(client, event.id, seat_rows[0].id)
    page = html(client.get(f"/events/{event.id}/checkout"))
    assert "not enough for these seats" in page
    response = client.post(f"/events/{event.id}/checkout", data={"idempotency_key": "poor"})
    assert response.status_code == 302
    assert path_of(response) == f"/events/{event.id}/checkout"
    page = html(client.get(f"/events/{event.id}/checkout"))
    assert "This costs 12,000 points and you have 100." in page
    with app.app_context():
        assert Booking.select().count() == 0
    # The seat is still this person's.
    assert (
        "held by you"
        in seat_buttons(html(client.get(f"/events/{event.id}/seats")))[seat_rows[0].id][
            "aria-label"
        ]
    )


def test_checkout_page_with_nothing_held(event, browser):
    _, client = browser()
    response = client.get(f"/events/{event.id}/checkout")
    assert response.status_code == 302 and path_of(response) == f"/events/{event.id}/seats"
    assert "Pick a seat first." in html(client.get(f"/events/{event.id}/seats"))


def test_double_submitted_pay_form_shows_the_booking(event, browser, seat_rows):
    _, client = browser()
    hold(client, event.id, seat_rows[0].id)
    first = client.post(f"/events/{event.id}/checkout", data={"idempotency_key": "twice"})
    assert first.status_code == 302 and path_of(first).startswith("/bookings/")
    second = client.post(f"/events/{event.id}/checkout", data={"idempotency_key": "twice"})
    assert second.status_code == 302
    assert path_of(second) == path_of(first)


# Who may see the seat map


def test_not_entered_goes_back_to_the_event_page(app, event, make_user, login):
    client = login(app.test_client(), make_user())
    response = client.get(f"/events/{event.id}/seats")
    assert response.status_code == 302 and path_of(response) == f"/events/{event.id}"
    page = html(client.get(f"/events/{event.id}"))
    assert "To pick seats, join the queue" in page and "flash error" not in page
    # The panel, holds and checkout refuse too.
    assert "Your time to book is over." in html(client.get(f"/events/{event.id}/seats/panel"))
    with app.app_context():
        seat_id = Seat.select().where(Seat.event == event.id).first().id
    refused = html(
        client.post(f"/events/{event.id}/seats/hold", data={"seat": str(seat_id)}, headers=HX)
    )
    assert "Your time to book is over." in refused and 'role="alert"' in refused
    with app.app_context():
        assert seats.live_states(event.id)[2] == {}  # nothing was held
    response = client.get(f"/events/{event.id}/checkout")
    assert response.status_code == 302 and path_of(response) == f"/events/{event.id}"


def test_anonymous_goes_to_login(client, event):
    for url in (f"/events/{event.id}/seats", f"/events/{event.id}/checkout", "/bookings"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert path_of(response) == "/auth/login", url


def test_names_are_escaped_on_the_seat_map(app, make_event, make_user, login):
    evil = "<script>alert(1)</script>"
    event = make_event(
        sections=[{"name": evil, "rows": 1, "seats_per_row": 2, "price": 5}], admit_rate=100_000
    )
    client = enter_by_browser(app, login(app.test_client(), make_user()), event.id)
    with app.app_context():
        seat_id = Seat.select().where(Seat.event == event.id).first().id
    for page in (
        html(client.get(f"/events/{event.id}/seats")),
        html(hold(client, event.id, seat_id)),
    ):
        assert evil not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert seat_buttons(page)[seat_id]["aria-label"].startswith(f"{evil} A1")


def test_seats_left_per_section_and_prices(event, browser, seat_rows):
    _, client = browser()
    page = html(client.get(f"/events/{event.id}/seats"))
    assert '<span id="left-0" class="section-left">5 seats left</span>' in page
    assert '<span id="left-1" class="section-left">4 seats left</span>' in page
    assert "<strong>Floor</strong> 12,000 points" in page  # the price legend
    assert 'class="stage"' in page
    assert 'data-tip="Floor A1 · 12,000 points · available"' in page
    fragment = html(hold(client, event.id, seat_rows[0].id))
    # The answer brings every section's count, out of band.
    assert '<span id="left-0" class="section-left" hx-swap-oob="true">4 seats left</span>' in (
        fragment
    )
    assert "3 seats left" not in fragment and "4 seats left</span>" in fragment


def test_a_hold_that_ran_out_is_told_until_held_again(app, event, browser, seat_rows):
    _, client = browser()
    seat = seat_rows[0].id
    hold(client, event.id, seat)
    with app.app_context():  # the hold ends now, as hold_ttl would have it
        k = keys.event(event.id).seats
        raw = redis_store.client.hget(k, seat)
        kind, holder, token, _until = raw.split(":")
        redis_store.client.hset(k, seat, f"{kind}:{holder}:{token}:1")
    for response in (
        client.get(f"/events/{event.id}/seats/panel", headers=HX),
        client.get(f"/events/{event.id}/seats"),
    ):
        text = html(response)
        assert "Your hold on Floor A1 ran out; it is free again." in text
        assert 'aria-label="Hold Floor A1 again"' in text
        assert "<span>Floor A1 · 12,000 points</span>" not in text  # gone from "Your seats"
    again = html(hold(client, event.id, seat))
    assert "You hold Floor A1" in again and "notice-lapsed" not in again
