"""The fan's seat map in headless Chromium: it stays still under the pointer
while holding and releasing, shows prices, a stage and the seats left per
section, tells of a hold that ran out (and holds it again), names the seat in
every message, works on a phone, and axe-core finds nothing on it."""

import re

import pytest
from e2e_support import AXE_RESULTS, PHONE, axe_audit, enter_through_queue, log_in, wait_for

pytestmark = pytest.mark.e2e

SECTIONS = [
    {"name": "Floor", "rows": 3, "seats_per_row": 8, "price": 1500},
    {"name": "Balcony", "rows": 2, "seats_per_row": 6, "price": 800},
]
WIDE = [{"name": "Floor", "rows": 4, "seats_per_row": 20, "price": 1500}]


def box(page, selector: str) -> dict:
    return page.locator(selector).first.bounding_box()


def same_place(a: dict, b: dict) -> bool:
    return abs(a["x"] - b["x"]) <= 2 and abs(a["y"] - b["y"]) <= 2


def seat_id(page, nth: int) -> str:
    return page.locator(".seat-map button.seat").nth(nth).get_attribute("id")


def message(page) -> str:
    return page.locator("#booking-message").inner_text()


def seats_left(page, section: int) -> str:
    return page.locator(f"#left-{section}").inner_text()


def enter(stack, new_context, name: str, sections=SECTIONS, **options):
    event_id = stack.new_event(name, sections, admit_rate=50, max_active=100, **options)
    page = new_context(**({"viewport": options.pop("viewport")} if "viewport" in options else {}))
    page = page.new_page()
    log_in(page, stack.new_user("map"))
    enter_through_queue(page, event_id)
    return event_id, page


def test_the_map_stays_still_while_holding_and_releasing(stack, new_context):
    _, page = enter(stack, new_context, "Still night")
    watched = f"#{seat_id(page, 20)}"  # a seat further down, below the first holds
    start = box(page, watched)
    places = {}

    page.click(f"#{seat_id(page, 0)}")
    page.wait_for_selector(".my-holds li")
    places["first hold"] = box(page, watched)
    assert "You hold Floor A1" in message(page)
    wait_for(lambda: "You hold" not in message(page), seconds=8)
    places["its message gone"] = box(page, watched)
    page.click(f"#{seat_id(page, 1)}")
    wait_for(lambda: page.locator(".my-holds li").count() == 2)
    places["second hold"] = box(page, watched)
    page.click(".my-holds li:first-child button")
    wait_for(lambda: "You released Floor A1" in message(page))
    places["release"] = box(page, watched)
    page.wait_for_timeout(3500)  # a refresh of the panel
    places["panel refresh"] = box(page, watched)
    moved = {when: b for when, b in places.items() if not same_place(start, b)}
    assert moved == {}, (start, moved)


def test_prices_stage_and_seats_left(stack, new_context):
    _, page = enter(stack, new_context, "Price night")
    prices = page.locator(".legend.prices").inner_text()
    assert "Floor 1,500 points" in prices and "Balcony 800 points" in prices
    assert page.locator(".seat-map .stage").is_visible()
    assert page.locator(".section legend").first.inner_text().startswith("Floor")
    assert "1,500 points" in page.locator(".section legend").first.inner_text()
    assert seats_left(page, 0) == "24 seats left" and seats_left(page, 1) == "12 seats left"

    # The tooltip: on focus (and hover), the seat with its price.
    first = page.locator(".seat-map button.seat").first
    first.focus()
    tip = page.locator("#seat-tip")
    assert tip.is_visible() and tip.inner_text().startswith("Floor A1 · 1,500 points")
    balcony = page.locator(".seat-map .section").nth(1).locator("button.seat").first
    balcony.hover()
    assert tip.inner_text().startswith("Balcony A1 · 800 points")

    # A hold counts at once (the answer brings the counts along).
    page.click(f"#{seat_id(page, 2)}")
    wait_for(lambda: seats_left(page, 0) == "23 seats left")
    assert seats_left(page, 0) == "23 seats left"


def test_someone_elses_seat_is_named(stack, new_context):
    event_id, page = enter(stack, new_context, "Named night")
    taken = page.locator(".seat-map button.seat").nth(3).get_attribute("value")
    stack.buy(event_id, [int(taken)], pay=False)
    # As the map's form would send it (before the map has caught up).
    answer = page.request.post(
        f"/events/{event_id}/seats/hold",
        form={
            "seat": taken,
            "csrf_token": page.locator("form.seat-map [name=csrf_token]").input_value(),
        },
        headers={"HX-Request": "true"},
    )
    assert "Someone else is holding Floor A4." in answer.text()


def test_a_hold_that_runs_out_is_told_and_held_again(stack, new_context):
    _, page = enter(stack, new_context, "Short night", hold_ttl=4)
    first = seat_id(page, 4)
    page.click(f"#{first}")
    page.wait_for_selector(".my-holds li")
    notice = page.locator(".notice-lapsed")
    wait_for(lambda: notice.count() > 0, seconds=15)
    assert "Your hold on Floor A5 ran out; it is free again." in notice.inner_text()
    assert page.locator(".my-holds li").count() == 0
    assert page.locator(f"#{first}").get_attribute("data-state") == "available"
    # The notice stays across refreshes.
    page.wait_for_timeout(3500)
    assert notice.count() == 1
    notice.locator("button").click()
    wait_for(lambda: "You hold Floor A5" in message(page))
    assert page.locator(".my-holds li").count() == 1
    assert page.locator(f"#{first}").get_attribute("data-state") == "mine"
    assert page.locator(".notice-lapsed").count() == 0


def test_the_map_on_a_phone(stack, new_context):
    event_id = stack.new_event("Phone night", WIDE, admit_rate=50, max_active=100)
    page = new_context(viewport=PHONE).new_page()
    log_in(page, stack.new_user("phone"))
    enter_through_queue(page, event_id)

    # The header: at most two lines.
    lines = page.evaluate("""() => [...new Set([...document.querySelectorAll(
        'header.site a, header.site span, header.site button')]
        .filter(el => el.getBoundingClientRect().width > 0)
        .map(el => Math.round(el.getBoundingClientRect().top / 8)))]""")
    assert len(lines) <= 2, lines

    # Tap targets of 44 px.
    seat = box(page, ".seat-map button.seat")
    assert seat["width"] >= 44 and seat["height"] >= 44, seat
    # No sideways scrolling of the page itself: only each section pans.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # Pan the section: its name stays in view, and no seat peeks out from
    # under a row's letter.
    page.locator(".section-seats").first.evaluate("el => el.scrollBy(70, 0)")
    page.wait_for_timeout(600)  # scroll snap settles
    assert page.locator(".section-seats").first.evaluate("el => el.scrollLeft") > 0
    legend = box(page, ".section legend .section-name")
    assert legend["x"] >= 0 and legend["x"] + legend["width"] <= PHONE["width"]
    overlaps = page.evaluate("""() => {
        const bad = [];
        for (const row of document.querySelectorAll('.seat-map .row')) {
            const label = row.querySelector('.row-label').getBoundingClientRect();
            const seen = row.closest('.section-seats').getBoundingClientRect();
            for (const seat of row.querySelectorAll('button.seat')) {
                const b = seat.getBoundingClientRect();
                const visibleLeft = Math.max(b.left, seen.left);
                // Straddling the letter's right edge: partly under it, partly out.
                if (visibleLeft < label.right - 1 && b.right > label.right + 1) bad.push(seat.id);
            }
            const top = document.elementFromPoint(label.left + label.width / 2,
                                                  label.top + label.height / 2);
            if (!top || !top.closest('.row-label')) bad.push('letter covered in ' + row.ariaLabel);
        }
        return bad;
    }""")
    assert overlaps == [], overlaps

    # Holding on a phone does not move the map either (the panel is a bar
    # at the bottom), and the bar leaves most of the screen to the map.
    watched = f"#{seat_id(page, 21)}"
    start = box(page, watched)
    page.locator(f"#{seat_id(page, 1)}").click()
    page.wait_for_selector(".my-holds li")
    assert same_place(start, box(page, watched))
    assert box(page, "#booking-panel")["height"] <= PHONE["height"] * 0.45 + 1
    assert "You hold Floor A2" in message(page)


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["wide", "phone"])
def test_axe_on_the_seat_page(stack, new_context, screenshots, viewport):
    event_id = stack.new_event("Axe map night", SECTIONS, admit_rate=50, max_active=100)
    page = new_context(**({"viewport": viewport} if viewport else {})).new_page()
    log_in(page, stack.new_user("axe"))
    enter_through_queue(page, event_id)
    page.click(f"#{seat_id(page, 0)}")
    page.wait_for_selector(".my-holds li")
    name = f"seat-map-{'phone' if viewport else 'wide'}"
    axe_audit(page, name, screenshots)
    assert AXE_RESULTS[name]["violations"] == [], AXE_RESULTS[name]["violations"]


def test_no_javascript_still_holds_and_names_the_seat(stack, new_context):
    event_id = stack.new_event("Plain night", SECTIONS, admit_rate=50, max_active=100)
    page = new_context(javascript=False).new_page()
    log_in(page, stack.new_user("plain"))
    page.goto(f"/events/{event_id}")
    page.click(f"form[action$='/events/{event_id}/join'] button")
    page.wait_for_url(re.compile(rf"/events/{event_id}/waiting$"))
    go = page.frame_locator("iframe.status-frame").locator("a[href$='/seats']")
    go.wait_for(timeout=30_000)
    go.click()
    page.wait_for_url(re.compile(rf"/events/{event_id}/seats$"))
    page.locator(".seat-map button.seat").first.click()  # a plain form post
    assert "You hold Floor A1" in message(page)
    assert "Floor A1 · 1,500 points" in page.locator(".my-holds").inner_text()
