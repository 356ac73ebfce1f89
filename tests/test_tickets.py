"""Tickets and entry at the door (app/tickets.py), on the real servers."""

import base64
import json
import threading

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from app.models import BookingSeat, Checkin
from tests.helpers import entered, hold, pay, seat_ids


def buy(app, make_user, login, event, count=1):
    """A fan with `count` seats bought: (client, booking's JSON from /api/me/bookings)."""
    _, client = entered(app, make_user, login, event)
    items = [(s, hold(client, event.id, s)) for s in seat_ids(app, event.id)[:count]]
    assert pay(client, event.id, items).status_code in (200, 201)
    return client, client.get("/api/me/bookings").get_json()[0]


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_in(staff_client, event_id, code):
    response = staff_client.post(f"/api/admin/events/{event_id}/check-in", json={"code": code})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_each_seat_has_a_ticket_that_verifies_with_the_published_key(
    app, make_user, login, event, client
):
    _, booking = buy(app, make_user, login, event, count=2)
    key = client.get("/api/tickets/key").get_json()
    assert key["alg"] == "Ed25519"
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key"]))
    assert [t["seat_id"] for t in booking["tickets"]] == [s["seat_id"] for s in booking["seats"]]
    for ticket in booking["tickets"]:
        assert ticket["status"] == "valid"
        payload_text, signature_text = ticket["code"].split(".")
        assert "=" not in ticket["code"]
        data = unb64url(payload_text)
        public.verify(unb64url(signature_text), data)  # raises if not signed by the app
        payload = json.loads(data)
        assert payload["ticket_id"] == ticket["ticket_id"]
        assert payload["event_id"] == event.id
        assert payload["seat_id"] == ticket["seat_id"]
        assert payload["booking_id"] == booking["booking_id"]


def test_the_key_is_kept_and_reused(app, client):
    first = client.get("/api/tickets/key").get_json()["public_key"]
    app.extensions.pop("ticket_key", None)  # as a fresh process of the same app would
    assert client.get("/api/tickets/key").get_json()["public_key"] == first


def test_the_qr_is_on_the_confirmation_bookings_and_ticket_pages(app, make_user, login, event):
    client, booking = buy(app, make_user, login, event)
    ticket = booking["tickets"][0]
    for path in (
        f"/bookings/{booking['booking_id']}",
        "/bookings",
        f"/tickets/{ticket['ticket_id']}",
    ):
        page = client.get(path)
        assert page.status_code == 200, path
        html = page.get_data(as_text=True)
        assert '<svg aria-hidden="true"' in html and 'class="qr"' in html, path
        assert ticket["code"] in html, path  # the code as text, to copy
        assert 'role="img" aria-label=' in html, path


def test_the_ticket_page_is_404_for_another_person(app, make_user, login, event, customer):
    _, booking = buy(app, make_user, login, event)
    assert customer[1].get(f"/tickets/{booking['tickets'][0]['ticket_id']}").status_code == 404
    assert customer[1].get("/tickets/999999").status_code == 404


def test_check_in_once_then_already_used(app, make_user, login, event, staff):
    _, booking = buy(app, make_user, login, event)
    code = booking["tickets"][0]["code"]
    first = check_in(staff[1], event.id, code)
    assert first["result"] == "valid"
    assert first["ticket_id"] == booking["tickets"][0]["ticket_id"]
    assert first["seat"] and first["checked_in_at"]
    again = check_in(staff[1], event.id, code)
    assert again["result"] == "already_used"
    assert again["checked_in_at"] == first["checked_in_at"]
    assert again["checked_in_by"] == staff[0].email


def test_a_checked_in_ticket_shows_so_in_my_bookings(app, make_user, login, event, staff):
    client, booking = buy(app, make_user, login, event)
    check_in(staff[1], event.id, booking["tickets"][0]["code"])
    assert client.get("/api/me/bookings").get_json()[0]["tickets"][0]["status"] == "checked_in"


def test_tampered_codes_are_forged(app, make_user, login, event, staff):
    _, booking = buy(app, make_user, login, event)
    code = booking["tickets"][0]["code"]
    payload_text, signature_text = code.split(".")
    payload = json.loads(unb64url(payload_text))
    payload["seat_id"] += 1
    other = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    flipped = signature_text[:-2] + ("AA" if signature_text[-2:] != "AA" else "BA")
    for bad in (
        f"{other}.{signature_text}",
        f"{payload_text}.{flipped}",
        payload_text,
        "garbage",
        "...",
        "x" * 5000,
    ):
        assert check_in(staff[1], event.id, bad)["result"] == "forged", bad
    assert check_in(staff[1], event.id, code)["result"] == "valid"


def test_a_ticket_of_another_event(app, make_user, login, event, make_event, staff):
    _, booking = buy(app, make_user, login, event)
    other = make_event()
    answer = check_in(staff[1], other.id, booking["tickets"][0]["code"])
    assert answer["result"] == "other_event"
    with app.app_context():
        assert Checkin.select().count() == 0


def test_a_cancelled_seat_is_revoked(app, make_user, login, event, staff):
    client, booking = buy(app, make_user, login, event)
    ticket = booking["tickets"][0]
    with app.app_context():
        BookingSeat.update(live=None).where(BookingSeat.id == ticket["ticket_id"]).execute()
    assert check_in(staff[1], event.id, ticket["code"])["result"] == "revoked"
    assert client.get("/api/me/bookings").get_json()[0]["tickets"][0]["status"] == "revoked"


def test_two_doors_at_once_let_one_in(app, make_user, login, event, staff, mysql):
    _, booking = buy(app, make_user, login, event)
    code = booking["tickets"][0]["code"]
    doors = [staff[1], login(app.test_client(), staff[0])]
    results, start = [], threading.Barrier(len(doors))

    def scan(door):
        start.wait()
        results.append(check_in(door, event.id, code)["result"])

    threads = [threading.Thread(target=scan, args=(door,)) for door in doors]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["already_used", "valid"]
    with app.app_context():
        assert Checkin.select().count() == 1


def test_the_check_in_endpoint_refuses_customers_and_wants_a_code(event, staff, customer):
    url = f"/api/admin/events/{event.id}/check-in"
    assert customer[1].post(url, json={"code": "x"}).status_code == 403
    for body in ({}, {"code": ""}, {"code": 5}, [1]):
        response = staff[1].post(url, json=body)
        assert response.status_code == 422, body
    assert staff[1].post("/api/admin/events/999999/check-in", json={"code": "x"}).status_code == 404


def test_the_staff_page_checks_in_without_javascript(app, make_user, login, event, staff):
    _, booking = buy(app, make_user, login, event)
    url = f"/admin/events/{event.id}/check-in"
    assert staff[1].get(url).status_code == 200
    code = booking["tickets"][0]["code"]
    page = staff[1].post(url, data={"code": code}).get_data(as_text=True)
    assert "check-in-result valid" in page
    page = staff[1].post(url, data={"code": code}).get_data(as_text=True)
    assert "check-in-result already_used" in page
    page = staff[1].post(url, data={"code": "nonsense"}).get_data(as_text=True)
    assert "check-in-result forged" in page


def test_the_signature_really_depends_on_the_key(app, make_user, login, event):
    _, booking = buy(app, make_user, login, event)
    payload_text, signature_text = booking["tickets"][0]["code"].split(".")
    stranger = Ed25519PublicKey.from_public_bytes(bytes(32))
    try:
        stranger.verify(unb64url(signature_text), unb64url(payload_text))
    except (InvalidSignature, ValueError):
        pass
    else:
        raise AssertionError("a signature verified with the wrong key")


def test_cancelling_revokes_and_a_used_ticket_is_not_cancelled(app, make_user, login, event, staff):
    """Cancelled through the staff endpoint: its ticket is revoked at the
    door. Checked in first: the cancellation is refused (409), no refund."""
    client, booking = buy(app, make_user, login, event, count=2)
    first, second = booking["tickets"]
    staff_client = staff[1]
    cancel = f"/api/admin/bookings/{booking['booking_id']}/cancel"
    assert staff_client.post(cancel, json={"seat_ids": [first["seat_id"]]}).status_code == 200
    assert check_in(staff_client, event.id, first["code"])["result"] == "revoked"
    assert check_in(staff_client, event.id, second["code"])["result"] == "valid"
    points = client.get("/api/me").get_json()["points"]
    refused = staff_client.post(cancel, json={"seat_ids": [second["seat_id"]]})
    assert refused.status_code == 409 and refused.get_json()["error"] == "checked_in"
    assert client.get("/api/me").get_json()["points"] == points
    statuses = [t["status"] for t in client.get("/api/me/bookings").get_json()[0]["tickets"]]
    assert statuses == ["revoked", "checked_in"]


def test_the_staff_page_says_why_a_used_ticket_is_not_cancelled(
    app, make_user, login, event, staff
):
    client, booking = buy(app, make_user, login, event)
    staff_client = staff[1]
    assert check_in(staff_client, event.id, booking["tickets"][0]["code"])["result"] == "valid"
    response = staff_client.post(
        f"/admin/events/{event.id}/bookings/cancel",
        data={"booking": booking["booking_id"], "confirmed": "yes"},
    )
    assert response.status_code == 302
    page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "already used at the door" in page and "flash error" in page
    assert client.get("/api/me/bookings").get_json()[0]["tickets"][0]["status"] == "checked_in"
