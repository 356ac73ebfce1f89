"""Accessibility in a real browser: axe-core finds no serious or critical
violation on the waiting page, the seat map, checkout and the admin map; the
seat map works by keyboard alone; the place in the queue and the countdowns
are announced politely; focus is visible; motion respects the user's wish."""

import re

import pytest
from e2e_support import axe_audit, enter_through_queue, log_in, wait_for

pytestmark = pytest.mark.e2e

HALL = [{"name": "Hall", "rows": 3, "seats_per_row": 6, "price": 700}]


def active_id(page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


def seat_ids_by_row(page) -> list[list[str]]:
    return page.evaluate("""() => [...document.querySelectorAll('.seat-map .row')].map(
        row => [...row.querySelectorAll('button.seat')].map(b => b.id))""")


@pytest.mark.parametrize("locale", ["en-US", "ko-KR"])
def test_axe_finds_no_serious_violations(stack, new_context, screenshots, locale):
    event_id = stack.new_event(
        "Audit night", HALL, admit_rate=50, max_active=100, admission="paused"
    )
    lang = locale[:2]
    fan = new_context(locale=locale).new_page()
    log_in(fan, stack.new_user("audit"))
    fan.goto(f"/events/{event_id}")
    fan.click(f"form[action$='/events/{event_id}/join'] button")
    fan.wait_for_selector("#queue-status [role=progressbar]")
    problems = {"waiting": axe_audit(fan, f"waiting-{lang}", screenshots)}

    staff = new_context(locale=locale).new_page()
    log_in(staff, stack.staff_email)
    staff.goto(f"/admin/events/{event_id}")
    staff.click("form.controls button[name=admission][value=open]")
    fan.reload()  # while paused it polls only every minute
    fan.wait_for_url(re.compile(rf"/events/{event_id}/seats$"), timeout=30_000)
    fan.locator(".seat-map button.seat[data-state=available]").first.click()
    fan.wait_for_selector(".my-holds [data-countdown]")
    problems["seat map"] = axe_audit(fan, f"seat-map-{lang}", screenshots)
    fan.click(".my-holds a[href$='/checkout']")
    problems["checkout"] = axe_audit(fan, f"checkout-{lang}", screenshots)
    staff.goto(f"/admin/events/{event_id}")
    problems["admin map"] = axe_audit(staff, f"admin-map-{lang}", screenshots)
    assert problems == {page: [] for page in problems}, problems


def test_the_seat_map_by_keyboard(stack, new_context):
    event_id = stack.new_event("Keyboard night", HALL, admit_rate=50, max_active=100)
    page = new_context().new_page()
    log_in(page, stack.new_user("keys"))
    enter_through_queue(page, event_id)
    rows = seat_ids_by_row(page)

    # One seat in the Tab order: Tab from the last control before the map lands on it.
    assert page.locator(".seat-map button.seat[tabindex='0']").count() == 1
    page.focus(".seat-map button.seat[tabindex='0']")
    assert active_id(page) == rows[0][0]
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), "focus is not visible"

    page.keyboard.press("ArrowRight")
    assert active_id(page) == rows[0][1]
    page.keyboard.press("ArrowDown")
    assert active_id(page) == rows[1][1]
    page.keyboard.press("End")
    assert active_id(page) == rows[1][-1]
    page.keyboard.press("Home")
    assert active_id(page) == rows[1][0]
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")  # already in the first row: stays
    assert active_id(page) == rows[0][0]
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    chosen = rows[1][2]
    assert active_id(page) == chosen

    page.keyboard.press("Enter")  # holds it
    page.wait_for_selector(f"#{chosen}[data-state=mine]")
    assert wait_for(lambda: active_id(page) == chosen, seconds=3), (
        "focus was lost when the map refreshed"
    )
    label = page.get_attribute(f"#{chosen}", "aria-label")
    assert label.startswith("Hall B3, seat 3"), label

    page.wait_for_timeout(3500)  # the panel refreshes every 3 s: focus stays put
    assert active_id(page) == chosen
    page.keyboard.press("Tab")  # one Tab leaves the map
    assert not page.evaluate("document.activeElement.matches('.seat-map button.seat')")


def test_taken_seats_are_labelled_and_inert(stack, new_context):
    event_id = stack.new_event("Labels night", HALL, admit_rate=50, max_active=100)
    ids = stack.seat_ids(event_id)
    stack.buy(event_id, ids[:1])
    page = new_context().new_page()
    log_in(page, stack.new_user("labels"))
    enter_through_queue(page, event_id)

    labels = page.eval_on_selector_all(
        ".seat-map button.seat", "bs => bs.map(b => b.getAttribute('aria-label'))"
    )
    assert len(labels) == len(ids) and all(label and "seat" in label for label in labels)
    sold = page.locator(f"#seat-{ids[0]}")
    assert sold.get_attribute("aria-disabled") == "true"
    sold.focus()
    page.keyboard.press("Enter")  # does nothing: no request, no message
    page.wait_for_timeout(500)
    assert sold.get_attribute("data-state") == "booked"
    assert page.locator("#booking-message [role=alert]").count() == 0


def test_announcements_are_polite(stack, new_context):
    event_id = stack.new_event("Announce night", HALL, admit_rate=1, max_active=100, hold_ttl=13)
    for _ in range(5):
        stack.api(stack.new_user("ahead")).call("POST", f"/api/events/{event_id}/queue")
    page = new_context().new_page()
    log_in(page, stack.new_user("listen"))
    page.goto(f"/events/{event_id}")
    page.click(f"form[action$='/events/{event_id}/join'] button")

    announcer = page.locator("#announcer")
    assert announcer.get_attribute("aria-live") == "polite"
    assert wait_for(lambda: re.search(r"\d", announcer.inner_text()), seconds=10), (
        "the place in the queue was never announced"
    )
    said = announcer.inner_text()
    assert wait_for(lambda: announcer.inner_text() not in ("", said), seconds=15), (
        "a new place in the queue was not announced"
    )

    page.wait_for_url(re.compile(rf"/events/{event_id}/seats$"), timeout=30_000)
    page.locator(".seat-map button.seat[data-state=available]").first.click()
    page.wait_for_selector(".my-holds [data-countdown]")
    # The 13 s hold crosses the 10 s mark: that is announced, once.
    assert wait_for(lambda: "0:10" in page.locator("#announcer").inner_text(), seconds=8), (
        page.locator("#announcer").inner_text()
    )


def test_motion_respects_reduced_motion(stack, new_context):
    event_id = stack.new_event("Calm night", HALL, admission="paused")
    page = new_context(reduced_motion="reduce").new_page()
    log_in(page, stack.new_user("calm"))
    page.goto(f"/events/{event_id}")
    page.click(f"form[action$='/events/{event_id}/join'] button")
    page.wait_for_selector("#queue-status .progress-fill")
    duration = page.eval_on_selector(
        ".progress-fill", "e => getComputedStyle(e).transitionDuration"
    )
    assert duration == "0s"
    moving = page.evaluate("""() => [...document.querySelectorAll('*')].filter(e => {
        const s = getComputedStyle(e);
        return s.animationName !== 'none' && s.animationDuration !== '0s'; }).length""")
    assert moving == 0


CONTRAST = """() => {
  const channel = c => {
    c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
  const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const rgb = s => s.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number);
  const ratio = (a, b) => { const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
                            return (x + 0.05) / (y + 0.05); };
  return [...document.querySelectorAll('.seat')].filter(e => e.textContent.trim()).map(e => {
    const style = getComputedStyle(e);
    const stops = (style.backgroundImage.match(/rgba?\\([^)]*\\)/g) || [style.backgroundColor]);
    return {seat: e.className, worst: Math.min(...stops.map(s => ratio(rgb(style.color), rgb(s))))};
  });
}"""


def test_striped_seats_have_enough_contrast(stack, new_context):
    """axe cannot judge text on a striped background (it asks for a review):
    check every stripe colour against the text colour, WCAG's 4.5:1."""
    event_id = stack.new_event("Stripes night", HALL, admit_rate=50, max_active=100)
    ids = stack.seat_ids(event_id)
    stack.buy(event_id, ids[:2])
    stack.buy(event_id, ids[2:4], pay=False)
    stack.api(stack.staff_email).call("POST", f"/api/admin/events/{event_id}/seats/{ids[4]}/block")
    page = new_context().new_page()
    log_in(page, stack.new_user("stripes"))
    enter_through_queue(page, event_id)
    results = page.evaluate(CONTRAST)
    states = {r["seat"] for r in results}
    assert {"seat held", "seat booked", "seat blocked", "seat available"} <= states, states
    low = [r for r in results if r["worst"] < 4.5]
    assert low == [], low
