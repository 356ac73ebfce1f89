"""Korean in the browser: a Korean browser gets Korean pages (Accept-Language),
the switcher changes the language and remembers it, and numbers and times
read the Korean way."""

import re

import pytest
from e2e_support import enter_through_queue, log_in, shot, wait_for

pytestmark = pytest.mark.e2e

HANGUL = re.compile(r"[\uac00-\ud7a3]")
SECTIONS = [{"name": "1층", "rows": 3, "seats_per_row": 10, "price": 132000}]


def test_korean_browser_and_the_switcher(stack, new_context, screenshots):
    event_id = stack.new_event("K-POP 콘서트", SECTIONS, admit_rate=1, max_active=50)
    for _ in range(4):
        stack.api(stack.new_user("ahead")).call("POST", f"/api/events/{event_id}/queue")
    page = new_context(locale="ko-KR").new_page()
    log_in(page, stack.new_user("seoul"))
    assert page.get_attribute("html", "lang") == "ko"

    page.goto(f"/events/{event_id}")
    page.click(f"form[action$='/events/{event_id}/join'] button")
    page.wait_for_selector("#queue-status [role=progressbar]")
    status = page.locator("#queue-status .status-text").inner_text()
    assert HANGUL.search(status) and "queue" not in status, status
    shot(page, screenshots, "02-waiting-room-ko")

    # Admitted: the seat map in Korean, prices in Korean number style.
    page.wait_for_url(re.compile(rf"/events/{event_id}/seats$"), timeout=30_000)
    label = page.locator(".seat-map button.seat").first.get_attribute("aria-label")
    assert "132,000" in label and HANGUL.search(label), label
    page.locator(".seat-map button.seat[data-state=available]").first.click()
    page.wait_for_selector(".my-holds [data-countdown]")
    shot(page, screenshots, "03-seat-map-hold-countdown-ko")

    # The switcher: English now, and it sticks (a cookie), whatever the browser asks for.
    page.click("nav.languages a[hreflang=en]")
    assert wait_for(lambda: page.get_attribute("html", "lang") == "en")
    assert page.url.endswith(f"/events/{event_id}/seats")  # back where the person was
    assert "Your seats" in page.locator(".my-holds h2").inner_text()
    page.goto("/bookings")
    assert page.get_attribute("html", "lang") == "en"
    page.click("nav.languages a[hreflang=ko]")
    assert wait_for(lambda: page.get_attribute("html", "lang") == "ko")
    assert HANGUL.search(page.locator("h1").inner_text())


def test_an_english_browser_gets_english_and_can_choose_korean(stack, new_context, screenshots):
    event_id = stack.new_event("Seoul night", SECTIONS, admit_rate=50, max_active=50)
    page = new_context(locale="en-US").new_page()
    log_in(page, stack.new_user("visitor"))
    enter_through_queue(page, event_id)
    assert page.get_attribute("html", "lang") == "en"
    assert not HANGUL.search(page.locator("main h1").inner_text())
    page.click("nav.languages a[hreflang=ko]")
    assert wait_for(lambda: page.get_attribute("html", "lang") == "ko")
    assert HANGUL.search(page.locator(".my-holds h2").inner_text())
