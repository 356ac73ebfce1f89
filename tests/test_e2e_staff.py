"""The staff event page in a real browser (issue 16): only the controls that
apply to the event's and the seat's state, a confirmation page before
closing or taking seats (it works without JavaScript), bulk block of a row,
the audit log in sentences with paging that fits a phone, and axe-core."""

import re

import pytest
from e2e_support import AXE_RESULTS, PHONE, axe_audit, log_in

pytestmark = pytest.mark.e2e

HALL = [{"name": "Hall", "rows": 2, "seats_per_row": 6, "price": 700}]


def staff_page(new_context, stack, **options):
    page = new_context(**options).new_page()
    log_in(page, stack.staff_email)
    return page


def admission_buttons(page) -> list[tuple[str, bool]]:
    """(value, is primary) of each admission button on the page."""
    return page.evaluate("""() => [...document.querySelectorAll('button[name=admission]')]
        .map(b => [b.value, b.classList.contains('primary')])""")


def seat_links(page, row: str) -> list[dict]:
    """The staff map's seats of a row of Hall: id, class and label."""
    return page.evaluate(
        """(row) => [...document.querySelectorAll('.seat-map.admin .row')]
        .filter(r => r.querySelector('.row-label').textContent.trim() === row)
        .flatMap(r => [...r.querySelectorAll('a.seat')])
        .map(a => ({id: +a.id.replace('admin-seat-', ''), cls: a.className,
                    label: a.title.split(': ')[0]}))""",
        row,
    )


def test_the_admission_controls_follow_the_state_and_closing_asks(stack, new_context):
    event_id = stack.new_event("State night", HALL, admission="paused")
    page = staff_page(new_context, stack, javascript=False)  # the confirmation needs no script
    page.goto(f"/admin/events/{event_id}")
    assert admission_buttons(page) == [["open", True], ["closed", False]]

    page.click("button[name=admission][value=open]")
    assert admission_buttons(page) == [["paused", True], ["closed", False]]  # open: Pause is next

    page.click("button[name=admission][value=paused]")
    assert admission_buttons(page) == [["open", True], ["closed", False]]

    page.click("button[name=admission][value=closed]")  # asks first
    assert page.locator("h1").inner_text() == "Close admission for State night?"
    page.click("text=No, go back")
    assert stack.api().call("GET", f"/api/events/{event_id}")[1]["admission"] == "paused"

    page.click("button[name=admission][value=closed]")
    page.click("button:has-text('Yes, close admission')")
    assert "Saved: Admission = closed" in page.locator(".flash").inner_text()
    assert stack.api().call("GET", f"/api/events/{event_id}")[1]["admission"] == "closed"
    assert admission_buttons(page) == [["open", True], ["paused", False]]  # no Close twice


def test_the_seat_box_and_blocking_a_row(stack, new_context, screenshots):
    event_id = stack.new_event("Row night", HALL, admit_rate=50, max_active=100)
    page = staff_page(new_context, stack)
    page.goto(f"/admin/events/{event_id}")
    row_a = seat_links(page, "A")
    stack.buy(event_id, [row_a[2]["id"]], pay=False)  # someone holds the third seat

    page.click(f"#admin-seat-{row_a[0]['id']}")  # an available seat
    box = page.locator("#seat-controls")
    box.wait_for()
    seat_buttons = box.locator("form:not(.row-controls) button").all_inner_texts()
    assert seat_buttons == ["Block"]  # not Unblock, not Release

    page.goto(f"/admin/events/{event_id}?seat={row_a[2]['id']}#seat-controls")
    seat_buttons = page.locator("#seat-controls form:not(.row-controls) button").all_inner_texts()
    assert seat_buttons == ["Release the hold…", "Release and block…"]

    page.click('#seat-controls button:has-text("Block the row\'s free seats")')
    assert page.locator("h1").inner_text() == "Block the 5 free seats of Hall, row A?"
    assert "1 seat held, being paid for or sold is skipped." in page.locator("main").inner_text()
    page.click("button:has-text('Yes, block them')")
    flash = page.locator(".flash").inner_text()
    assert flash == "Hall, row A: 5 seats blocked; 1 skipped (held, being paid for or sold)."
    classes = [s["cls"] for s in seat_links(page, "A")]  # the map is made again at once
    assert sum("blocked" in c for c in classes) == 5 and sum("held" in c for c in classes) == 1
    assert not any("blocked" in s["cls"] for s in seat_links(page, "B"))  # the other row

    # Selected again, a blocked seat offers Unblock only.
    page.goto(f"/admin/events/{event_id}?seat={row_a[0]['id']}#seat-controls")
    seat_buttons = page.locator("#seat-controls form:not(.row-controls) button").all_inner_texts()
    assert seat_buttons == ["Unblock"]


def audit_lines(page) -> list[str]:
    return [t.strip() for t in page.locator(".audit-log .audit-what").all_inner_texts()]


def test_the_audit_log_reads_as_sentences_pages_and_fits_a_phone(stack, new_context):
    event_id = stack.new_event("Log night", HALL, admission="paused")
    page = staff_page(new_context, stack, viewport=PHONE)
    page.goto(f"/admin/events/{event_id}")
    page.fill("input[name=max_active]", "50")
    page.click("button:has-text('Save (the next tick uses them)')")
    first = page.locator(".audit-log li").first
    assert audit_lines(page)[0] == "Most people booking at once: 10,000 → 50"
    assert f"by {stack.staff_email}" in first.inner_text()

    seat = seat_links(page, "B")[0]
    staff = stack.api(stack.staff_email)
    assert staff.call("POST", f"/api/admin/events/{event_id}/seats/{seat['id']}/block")[0] == 200
    page.reload()
    assert audit_lines(page)[0] == f"Blocked {seat['label']}"
    assert f"seat:{seat['id']}" not in page.locator("main").inner_text()

    # Fits 390 px: no sideways scrolling, every line within the screen.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    widths = page.evaluate("""() => [...document.querySelectorAll('.audit-log li')]
        .map(li => li.getBoundingClientRect().right)""")
    assert widths and max(widths) <= PHONE["width"], widths

    for cap in range(60, 60 + 22):  # 22 more: three entries, two pages
        status, body = staff.call("PATCH", f"/api/admin/events/{event_id}", {"max_active": cap})
        assert status == 200, body
    page.reload()
    newest = audit_lines(page)
    assert len(newest) == 20 and newest[0] == "Most people booking at once: 80 → 81"
    assert page.locator(".pager a:has-text('← Newer')").count() == 0
    page.click(".pager a:has-text('Older →')")
    older = audit_lines(page)
    assert older[-1] == "Created the event Log night" and len(older) == 5
    assert re.search(r"[?&]page=2", page.url)
    assert page.locator(".pager a:has-text('Older →')").count() == 0
    page.click(".pager a:has-text('← Newer')")
    assert audit_lines(page) == newest


@pytest.mark.parametrize("locale", ["en-US", "ko-KR"])
def test_axe_finds_nothing_on_the_staff_pages(stack, new_context, screenshots, locale):
    lang = locale[:2]
    event_id = stack.new_event("Axe night", HALL, admit_rate=50, max_active=100)
    page = staff_page(new_context, stack, locale=locale)
    page.goto(f"/admin/events/{event_id}")
    seat = seat_links(page, "A")[0]
    stack.buy(event_id, [seat["id"]], pay=False)
    page.goto(f"/admin/events/{event_id}?seat={seat['id']}#seat-controls")
    page.locator("#seat-controls").wait_for()
    found = {"event": axe_audit(page, f"staff-event-{lang}", screenshots)}
    everything = {"event": AXE_RESULTS[f"staff-event-{lang}"]["violations"]}
    page.click("#seat-controls form:not(.row-controls) button >> nth=0")  # release: asks
    page.locator("form input[name=confirmed]").wait_for(state="attached")
    found["confirm"] = axe_audit(page, f"staff-confirm-{lang}", screenshots)
    everything["confirm"] = AXE_RESULTS[f"staff-confirm-{lang}"]["violations"]
    assert found == {"event": [], "confirm": []}, found
    assert everything == {"event": [], "confirm": []}, everything
