"""Tickets at the door, in headless Chromium on the real stack: a fan buys
and sees the QR on the confirmation; staff on a phone paste its code into
the check-in page: valid the first time, already used the second. A fan who
cancels sees the refund, and their ticket revoked at the door."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from e2e_support import axe_audit, enter_through_queue, log_in, shot

pytestmark = pytest.mark.e2e

FLOOR = [{"name": "Floor", "rows": 1, "seats_per_row": 4, "price": 1500}]


def buy_one(fan, event_id: int) -> None:
    """From the seat map: hold the first seat on sale and pay; ends on the confirmation."""
    seat = fan.locator(".seat-map button.seat.available").first
    seat_id = seat.get_attribute("id")
    seat.click()
    fan.wait_for_selector(f"#{seat_id}[data-state=mine]")
    fan.click(".my-holds a[href$='/checkout']")
    fan.wait_for_url(re.compile(rf"/events/{event_id}/checkout$"))
    fan.click("form[action$='/checkout'] button[type=submit]")
    fan.wait_for_url(re.compile(r"/bookings/\d+$"))


def test_a_fan_cancels_sees_the_refund_and_the_ticket_is_revoked(stack, new_context):
    until = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    event_id = stack.new_event("Changed plans", FLOOR, admit_rate=50, cancellable_until=until)
    fan = new_context().new_page()
    log_in(fan, stack.new_user("plans"))
    enter_through_queue(fan, event_id)
    buy_one(fan, event_id)
    code = fan.locator("figure.ticket textarea").first.input_value()

    fan.click("form[action$='/cancel'] button[type=submit]")  # asks once more
    fan.click("form[action$='/cancel'] button.danger")
    fan.wait_for_url(re.compile(r"/bookings/\d+$"))
    assert fan.locator("h1").inner_text() == "Booking cancelled"
    assert "1,500 points refunded." in fan.locator("main").inner_text()
    assert fan.locator("figure.ticket").count() == 0  # nothing left to show at the door
    fan.goto("/bookings")
    assert "Booking cancelled" in fan.locator(".card.booking").first.inner_text()

    door = new_context(viewport={"width": 390, "height": 844}).new_page()
    log_in(door, stack.staff_email)
    door.goto(f"/admin/events/{event_id}/check-in")
    door.fill("textarea[name=code]", code)
    door.click("#check-in-form button[type=submit]")
    assert "revoked" in (door.locator(".check-in-result").get_attribute("class") or "")


def test_a_ticket_bought_is_let_in_once(stack, new_context, screenshots):
    event_id = stack.new_event("Door night", FLOOR, admit_rate=50, max_active=50)
    fan = new_context().new_page()
    log_in(fan, stack.new_user("door"))
    enter_through_queue(fan, event_id)
    buy_one(fan, event_id)
    ticket = fan.locator("figure.ticket").first
    assert ticket.locator("svg.qr").count() == 1
    assert "Floor" in ticket.locator("[role=img]").get_attribute("aria-label")
    code = ticket.locator("textarea").input_value()
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", code)

    door = new_context(viewport={"width": 390, "height": 844}).new_page()
    log_in(door, stack.staff_email)
    door.goto(f"/admin/events/{event_id}/check-in")
    assert axe_audit(door, "check-in", screenshots) == []
    door.fill("textarea[name=code]", code)
    door.click("#check-in-form button[type=submit]")
    result = door.locator(".check-in-result")
    assert "valid" in (result.get_attribute("class") or "")
    assert "Valid" in result.inner_text()
    shot(door, screenshots, "15-check-in-valid", full_page=False)
    assert axe_audit(door, "check-in-valid", screenshots) == []

    door.fill("textarea[name=code]", code)
    door.click("#check-in-form button[type=submit]")
    result = door.locator(".check-in-result")
    assert "already_used" in (result.get_attribute("class") or "")
    assert "Already used" in result.inner_text()
    shot(door, screenshots, "16-check-in-already-used", full_page=False)
    assert axe_audit(door, "check-in-used", screenshots) == []


# Linux Chromium has no BarcodeDetector (Chrome ships it on macOS, Android and
# ChromeOS): the page gets one that "sees" the ticket on its third look, and a
# camera that is a canvas. What this tests is check-in.js: the button shows
# only where both exist, the camera starts on a press, the detector is asked
# until it finds a code, and the code goes to the door's form.
FAKE_CAMERA = """
window.__looks = 0;
window.BarcodeDetector = class {
  constructor(options) { sessionStorage.setItem("formats", JSON.stringify(options.formats)); }
  detect() {
    window.__looks += 1;
    return Promise.resolve(window.__looks < 3 ? [] : [{rawValue: window.__ticket}]);
  }
};
navigator.mediaDevices.getUserMedia = () => {
  const canvas = document.createElement("canvas");
  canvas.getContext("2d").fillRect(0, 0, 8, 8);
  return Promise.resolve(canvas.captureStream(5));
};
"""


def test_the_camera_button_scans_a_code_into_the_check_in(stack, new_context):
    event_id = stack.new_event("Camera night", FLOOR, admit_rate=50)
    fan = new_context().new_page()
    log_in(fan, stack.new_user("camera"))
    enter_through_queue(fan, event_id)
    buy_one(fan, event_id)
    code = fan.locator("figure.ticket textarea").first.input_value()

    plain = new_context(viewport={"width": 390, "height": 844}).new_page()
    log_in(plain, stack.staff_email)
    plain.goto(f"/admin/events/{event_id}/check-in")
    assert plain.locator("#camera-start").is_hidden()  # no detector: paste only

    context = new_context(viewport={"width": 390, "height": 844})
    context.add_init_script(FAKE_CAMERA + f"window.__ticket = {code!r};")
    door = context.new_page()
    log_in(door, stack.staff_email)
    door.goto(f"/admin/events/{event_id}/check-in")
    door.click("#camera-start")
    result = door.locator(".check-in-result")
    result.wait_for(timeout=10_000)
    assert "valid" in (result.get_attribute("class") or "") and "Valid" in result.inner_text()
    # (the page that asked is gone: the form was sent; the tab's storage is not)
    assert door.evaluate("JSON.parse(sessionStorage.getItem('formats'))") == ["qr_code"]
