"""The whole journey in headless Chromium against the real stack: register,
log in, wait in the queue while the page updates itself, get sent to the seat
map, hold a seat, watch its countdown, pay, and find the booking."""

import re
import uuid

import pytest
from e2e_support import PASSWORD, log_in, no_page_reloads, shot, still_same_document, wait_for
from playwright.sync_api import Error as PlaywrightError

pytestmark = pytest.mark.e2e

FLOOR = [{"name": "Floor", "rows": 3, "seats_per_row": 8, "price": 1500}]


def queue_ahead(stack, event_id: int, how_many: int) -> None:
    """People who joined first (through the JSON API), so the browser waits."""
    for _ in range(how_many):
        client = stack.api(stack.new_user("ahead"))
        status, body = client.call("POST", f"/api/events/{event_id}/queue")
        assert status == 200 and body["status"] == "waiting", body


def position_text(page) -> str | None:
    """What the page says about the place now; None while it is between
    pages (the waiting page has just sent the browser on), without waiting."""
    try:
        return page.evaluate(
            "document.querySelector('#queue-status .status-text')?.innerText ?? null"
        )
    except PlaywrightError:  # the page navigated during the call
        return None


def progress(page) -> int:
    value = page.evaluate(
        "document.querySelector('#queue-status [role=progressbar]')"
        "?.getAttribute('aria-valuenow') ?? '-1'"
    )
    return int(value)


def test_register_queue_hold_pay(stack, new_context, screenshots):
    page = new_context().new_page()

    # Register (which logs in), log out, log in again.
    email = f"journey-{uuid.uuid4().hex[:8]}@example.com"
    page.goto("/auth/register")
    page.fill("input[name=name]", "Journey Fan")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    shot(page, screenshots, "01-register")
    page.click("form.stack button[type=submit]")
    page.click("form[action$='/logout'] button")
    log_in(page, email)
    assert page.locator("header .who").inner_text() == email

    # Five people join first (admission paused while they do), one a second goes in.
    event_id = stack.new_event(
        "Journey night", FLOOR, admission="paused", admit_rate=1, max_active=50
    )
    queue_ahead(stack, event_id, 5)
    stack.set_admission(event_id, "open")

    # Join: the waiting page shows the place and updates itself.
    page.goto(f"/events/{event_id}")
    page.click(f"form[action$='/events/{event_id}/join'] button")
    page.wait_for_url(re.compile(rf"/events/{event_id}/waiting$"))
    page.wait_for_selector("#queue-status [role=progressbar]")
    no_page_reloads(page)
    first_text, first_progress = position_text(page), progress(page)
    assert re.search(r"\b[2-6]\b", first_text), first_text
    moved = wait_for(
        lambda: (
            page.url.endswith("/waiting")
            and position_text(page) not in (None, first_text)
            and progress(page) > first_progress
        ),
        seconds=20,
    )
    assert moved, "the position never changed by itself"
    assert still_same_document(page), "the waiting page reloaded instead of updating"
    shot(page, screenshots, "02-waiting-room-en")

    # Admission sends the browser to the seat map by itself.
    page.wait_for_url(re.compile(rf"/events/{event_id}/seats$"), timeout=30_000)

    # Hold a seat: it turns "yours" and its countdown runs.
    seat = page.locator(".seat-map button.seat.available").first
    seat_id = seat.get_attribute("id")
    seat.click()
    page.wait_for_selector(f"#{seat_id}[data-state=mine]")
    countdown = page.locator(".my-holds [data-countdown]").first
    before = countdown.inner_text()
    assert wait_for(lambda: countdown.inner_text() != before, seconds=5), "countdown stood still"
    assert re.fullmatch(r"\d+:\d\d", countdown.inner_text())
    shot(page, screenshots, "03-seat-map-hold-countdown")

    # Check out and pay.
    page.click(".my-holds a[href$='/checkout']")
    page.wait_for_url(re.compile(rf"/events/{event_id}/checkout$"))
    shot(page, screenshots, "04-checkout")
    page.click("form[action$='/checkout'] button[type=submit]")
    page.wait_for_url(re.compile(r"/bookings/\d+$"))
    booking_id = page.url.rsplit("/", 1)[1]
    assert booking_id in page.locator("main [role=status]").inner_text()
    shot(page, screenshots, "05-confirmation")

    page.click("a[href$='/bookings']")
    assert page.locator(f"a[href$='/bookings/{booking_id}']").count() == 1
    shot(page, screenshots, "06-my-bookings")
