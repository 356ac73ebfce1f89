"""The fan's way through a drop without dead ends, in headless Chromium on
the real stack: logging in again (or on another device) while booking and
continuing there with the seat held; the event page that knows your place
and your tickets; a refused login that keeps what was typed; bookings that
name the event, its venue and date, in the reader's own time zone."""

import re

import pytest
from e2e_support import PASSWORD, axe_audit, enter_through_queue, log_in, shot, wait_for

pytestmark = pytest.mark.e2e

FLOOR = [{"name": "Floor", "rows": 2, "seats_per_row": 6, "price": 1500}]


def hold_first_free_seat(page) -> str:
    seat = page.locator(".seat-map button.seat.available").first
    seat_id = seat.get_attribute("id")
    seat.click()
    page.wait_for_selector(f"#{seat_id}[data-state=mine]")
    return seat_id


def log_in_here(page, email: str) -> None:
    """Log in on the login page the browser is on (keeping its `next`)."""
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.stack button[type=submit]")


def test_logged_in_again_the_fan_continues_on_this_device(stack, new_context, screenshots):
    event_id = stack.new_event("Continue night", FLOOR, admit_rate=50, max_active=50)
    email = stack.new_user("moving")
    laptop = new_context().new_page()
    log_in(laptop, email)
    enter_through_queue(laptop, event_id)
    seat_id = hold_first_free_seat(laptop)

    # The phone: the same person, another device. The event page says whose
    # turn it is and offers to continue here.
    phone = new_context(viewport={"width": 390, "height": 844}).new_page()
    log_in(phone, email)
    phone.goto(f"/events/{event_id}")
    notice = phone.locator(".notice.yours")
    assert "booking in another window or device" in notice.inner_text()
    assert phone.locator(f"form[action$='/events/{event_id}/join']").count() == 0
    shot(phone, screenshots, "12-continue-on-this-device", full_page=False)
    assert axe_audit(phone, "continue-on-this-device", screenshots) == []
    notice.locator("button", has_text="Continue on this device").click()
    phone.wait_for_url(re.compile(rf"/events/{event_id}/seats$"))
    phone.wait_for_selector(f"#{seat_id}[data-state=mine]")  # the hold came along

    # The laptop's next refresh (every 3 s) says where the booking went and
    # offers it back; nothing to press on its map any more.
    moved = laptop.locator("#booking-panel", has_text="another window or device now")
    moved.wait_for(timeout=10_000)
    assert laptop.locator(".seat-map button.seat").count() == 0

    # Log out and in again on the laptop (a new session): the waiting room
    # has the same offer, with the time left, and takes the booking back.
    laptop.click("form[action$='/logout'] button")
    log_in(laptop, email)
    laptop.goto(f"/events/{event_id}/waiting")
    status = laptop.locator("#queue-status")
    status.locator("text=Your time to book ends in").wait_for()
    status.locator("button", has_text="Continue on this device").click()
    laptop.wait_for_url(re.compile(rf"/events/{event_id}/seats$"))
    laptop.wait_for_selector(f"#{seat_id}[data-state=mine]")
    # Logging out ended the phone's session too (logout ends every copy):
    # its next refresh takes the whole page to the login, and back after it.
    phone.wait_for_url(re.compile(r"/auth/login\?next="), timeout=10_000)
    log_in_here(phone, email)
    # (to the seat map, which sends it to the waiting room: the booking is the laptop's)
    phone.wait_for_url(re.compile(rf"/events/{event_id}/waiting$"))
    phone.locator("#queue-status button", has_text="Continue on this device").wait_for()


def test_the_event_page_knows_your_place_and_your_tickets(stack, new_context, screenshots):
    event_id = stack.new_event("Place night", FLOOR, admission="paused")
    for _ in range(2):  # two people ahead
        assert (
            stack.api(stack.new_user("ahead")).call("POST", f"/api/events/{event_id}/queue")[0]
            == 200
        )
    page = new_context().new_page()
    log_in(page, stack.new_user("placed"))
    page.goto(f"/events/{event_id}")
    page.click(f"form[action$='/events/{event_id}/join'] button")
    page.wait_for_url(re.compile(rf"/events/{event_id}/waiting$"))

    # Back on the event page: the place and the way back, not Join.
    page.goto(f"/events/{event_id}")
    notice = page.locator(".notice.yours")
    assert "You are number 3 in the queue." in notice.inner_text()
    assert page.locator(f"form[action$='/events/{event_id}/join']").count() == 0
    shot(page, screenshots, "13-event-page-your-place", full_page=False)
    notice.locator("a", has_text="Back to the waiting room").click()
    page.wait_for_url(re.compile(rf"/events/{event_id}/waiting$"))

    # Its turn: the waiting room takes it in; after paying, the event page
    # counts the tickets, and going back to the seat map is no red error.
    stack.set_admission(event_id, "open")
    page.wait_for_url(re.compile(rf"/events/{event_id}/seats$"), timeout=30_000)
    hold_first_free_seat(page)
    page.click(".my-holds a[href$='/checkout']")
    page.click("form[action$='/checkout'] button[type=submit]")
    page.wait_for_url(re.compile(r"/bookings/\d+$"))
    page.go_back()  # the checkout page
    page.go_back()  # the seat map
    page.wait_for_url(re.compile(rf"/events/{event_id}$"))
    assert "You have 1 ticket for this event." in page.locator(".notice.tickets").inner_text()
    assert page.locator(".flash.error").count() == 0
    page.locator(".notice.tickets a", has_text="See them").click()
    page.wait_for_url(re.compile(r"/bookings$"))


def test_a_refused_login_keeps_the_email_and_the_way_back(stack, new_context):
    email = stack.new_user("typo")
    event_id = stack.new_event("Typo night", FLOOR)
    page = new_context().new_page()
    page.goto(f"/events/{event_id}")
    page.click("header a:has-text('Log in')")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "not-the-password")
    page.click("form.stack button[type=submit]")
    assert "Wrong email or password." in page.locator(".flash.error").inner_text()
    assert page.input_value("input[name=email]") == email
    page.fill("input[name=password]", PASSWORD)
    page.click("form.stack button[type=submit]")
    page.wait_for_url(re.compile(rf"/events/{event_id}$"))


@pytest.mark.parametrize(
    ("locale", "zone", "shown"),
    [
        ("ko-KR", "Asia/Seoul", r"2030년 5월 4일 오후 7:30 GMT\+9"),
        ("en-US", "America/New_York", r"May 4, 2030, 6:30\W(AM|am) EDT"),
    ],
)
def test_bookings_name_the_event_in_the_readers_time(
    stack, new_context, screenshots, locale, zone, shown
):
    event_id = stack.new_event(
        f"Zone night {zone}",
        FLOOR,
        admit_rate=50,
        max_active=50,
        venue="Olympic Hall",
        starts_at="2030-05-04T10:30:00Z",
    )
    page = new_context(locale=locale, timezone_id=zone).new_page()
    log_in(page, stack.new_user("zone"))
    enter_through_queue(page, event_id)
    hold_first_free_seat(page)
    page.click(".my-holds a[href$='/checkout']")
    page.click("form[action$='/checkout'] button[type=submit]")
    page.wait_for_url(re.compile(r"/bookings/\d+$"))
    when = page.locator(".when-where time")
    assert wait_for(lambda: re.search(shown, when.inner_text())), when.inner_text()
    assert when.get_attribute("title").endswith("UTC")  # the UTC text, on hover
    assert page.locator(f"main a[href='/events/{event_id}']").count() == 1  # back to the event

    page.goto("/bookings")
    card = page.locator(".card.booking").first
    assert f"Zone night {zone}" in card.locator("h2").inner_text()
    assert "Olympic Hall" in card.inner_text()
    assert re.search(shown, card.locator(".when-where").inner_text())
    if locale == "en-US":
        shot(page, screenshots, "14-my-bookings-event-and-local-time")
