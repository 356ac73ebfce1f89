"""The same product without JavaScript and on a phone-sized screen."""

import re

import pytest
from e2e_support import PHONE, enter_through_queue, log_in, shot, wait_for

pytestmark = pytest.mark.e2e


def test_without_javascript_the_waiting_page_refreshes_and_leads_in(
    stack, new_context, screenshots
):
    event_id = stack.new_event(
        "No script night",
        [{"name": "Hall", "rows": 2, "seats_per_row": 6, "price": 500}],
        admit_rate=1,
        max_active=50,
    )
    for _ in range(3):  # people ahead, so there is a wait to watch
        stack.api(stack.new_user("ahead")).call("POST", f"/api/events/{event_id}/queue")
    page = new_context(javascript=False).new_page()
    log_in(page, stack.new_user("noscript"))
    page.goto(f"/events/{event_id}")
    page.click(f"form[action$='/events/{event_id}/join'] button")
    page.wait_for_url(re.compile(rf"/events/{event_id}/waiting$"))

    frame = page.frame_locator("iframe.status-frame")
    refresh = frame.locator("meta[http-equiv=refresh]")
    assert int(refresh.get_attribute("content")) >= 1
    first = frame.locator(".status-text").inner_text()
    shot(page, screenshots, "09-waiting-room-no-javascript")
    assert wait_for(lambda: frame.locator(".status-text").inner_text() != first, seconds=20), (
        "the frame never refreshed itself"
    )

    # Admitted: the frame offers the way in (no script can move the page).
    go = frame.locator("a[href$='/seats']")
    go.wait_for(timeout=30_000)
    go.click()
    page.wait_for_url(re.compile(rf"/events/{event_id}/seats$"))
    seat = page.locator(".seat-map button.seat.available").first
    seat_id = seat.get_attribute("id")
    seat.click()  # a plain form post: the page comes back with the seat held
    page.wait_for_selector(f"#{seat_id}[data-state=mine]")


def test_phone_sized_screen(stack, new_context, screenshots):
    wide = [{"name": "Stalls", "rows": 6, "seats_per_row": 30, "price": 900}]
    event_id = stack.new_event("Phone night", wide, admit_rate=50, max_active=100)
    page = new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2
    ).new_page()

    def fits() -> bool:
        return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    page.goto("/auth/login")
    assert fits()
    log_in(page, stack.new_user("phone"))
    page.goto(f"/events/{event_id}/waiting")
    assert fits(), "the waiting page is wider than the phone"
    page.goto(f"/events/{event_id}")
    assert fits()
    enter_through_queue(page, event_id)
    assert fits(), "the seat page is wider than the phone"

    # The map is wider than the screen: each section pans inside its own box.
    seat_map = page.locator(".section-seats").first
    assert seat_map.evaluate("m => m.scrollWidth > m.clientWidth")
    far = page.locator(".seat-map .row").first.locator("button.seat").last
    assert not far.is_visible() or far.bounding_box()["x"] > PHONE["width"]
    seat_map.evaluate("m => { m.scrollLeft = m.scrollWidth; }")
    panned = seat_map.evaluate("m => m.scrollLeft")
    assert panned > 0
    page.wait_for_timeout(3500)  # the map refreshes every 3 s: it stays where it was panned
    assert seat_map.evaluate("m => m.scrollLeft") == panned
    far_id = far.get_attribute("id")
    far.tap()
    page.wait_for_selector(f"#{far_id}[data-state=mine]")
    assert seat_map.evaluate("m => m.scrollLeft") == panned
    assert fits()
    page.locator(".my-holds").scroll_into_view_if_needed()
    shot(page, screenshots, "10-phone-seat-map", full_page=False)
    page.click(".my-holds a[href$='/checkout']")
    page.wait_for_url(re.compile(rf"/events/{event_id}/checkout$"))
    assert fits(), "the checkout page is wider than the phone"
