"""Sold out, seen in the browser: the people still waiting are told on their
next poll and their page stops polling; the event page says so. Someone who
stays in line is taken to the seats when a cancellation returns one."""

import pytest
from e2e_support import log_in, shot, wait_for

pytestmark = pytest.mark.e2e

TINY = [{"name": "Box", "rows": 1, "seats_per_row": 2, "price": 3000}]


def waiting_behind_a_buyer(stack, new_context, name: str):
    """A two-seat event with room for one: a buyer takes the place, and a fan
    in the browser waits behind them. Returns (event id, buyer, seat ids, page)."""
    event_id = stack.new_event(name, TINY, admit_rate=50, max_active=1)
    buyer = stack.buyer(event_id)
    ids = stack.seat_ids(event_id, buyer)
    page = new_context().new_page()
    log_in(page, stack.new_user("hopeful"))
    page.goto(f"/events/{event_id}")
    page.click(f"form[action$='/events/{event_id}/join'] button")
    page.wait_for_selector("#queue-status [role=progressbar]")
    return event_id, buyer, ids, page


def test_waiting_people_hear_it_is_sold_out(stack, new_context, screenshots):
    event_id, buyer, ids, page = waiting_behind_a_buyer(stack, new_context, "Tiny gig")

    polls = []
    page.on("request", lambda r: polls.append(r.url) if "/waiting/status" in r.url else None)
    stack.buy(event_id, ids, client=buyer)  # ...and buys every seat

    assert wait_for(lambda: page.locator("#queue-status.sold-out").count() == 1, seconds=20), (
        page.locator("#queue-status").inner_text()
    )
    assert "hx-trigger" not in page.locator("#queue-status").evaluate("e => e.outerHTML")
    shot(page, screenshots, "11-sold-out-waiting")
    seen = len(polls)
    page.wait_for_timeout(3000)  # the top tier polls every second: now nothing
    assert len(polls) == seen, "the page kept polling after the sale sold out"

    page.goto(f"/events/{event_id}")
    assert page.locator(".notice.sold-out").is_visible()
    assert page.locator(f"form[action$='/events/{event_id}/join']").count() == 0


def test_someone_who_stays_in_line_gets_a_returned_seat(stack, new_context, screenshots):
    event_id, buyer, ids, page = waiting_behind_a_buyer(stack, new_context, "Tiny encore")
    stack.buy(event_id, ids, client=buyer)  # ...and buys every seat
    assert buyer.call("DELETE", f"/api/events/{event_id}/queue")[0] == 204  # and goes

    stay = page.locator("#queue-status button", has_text="tell me if seats come back")
    assert wait_for(lambda: stay.count() == 1, seconds=20), page.locator(
        "#queue-status"
    ).inner_text()
    stay.click()
    page.wait_for_selector("#queue-status.sold-out[hx-trigger]")  # staying: it looks again
    assert "number 1 in line" in page.locator("#queue-status").inner_text()
    shot(page, screenshots, "17-sold-out-staying")

    _, bookings = buyer.call("GET", "/api/me/bookings")
    staff = stack.api(stack.staff_email)
    status, body = staff.call(
        "POST", f"/api/admin/bookings/{bookings[0]['booking_id']}/cancel", {"seat_ids": ids[:1]}
    )
    assert status == 200, body
    # The returned seat's admission takes the person who stayed to the seats.
    page.wait_for_url(f"**/events/{event_id}/seats", timeout=30_000)
    assert page.locator(f"#seat-{ids[0]}.available").is_visible()  # and it is on sale
