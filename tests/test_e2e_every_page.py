"""Every page, in both languages, in the browser: axe-core finds no serious or
critical violation, nothing is wider than a phone, and a Korean browser sees
no English words of ours (only data: names, emails, seat codes)."""

import re

import pytest
from e2e_support import PHONE, axe_audit, enter_through_queue, log_in

pytestmark = pytest.mark.e2e

SECTIONS = [{"name": "Floor", "rows": 2, "seats_per_row": 6, "price": 4500}]
# Data, not interface text: emails, seat codes, and codes everyone shares (event
# names, which other tests choose, are taken out as they are found).
DATA = re.compile(
    r"[\w.+-]+@example\.com|Floor(-[A-Z]\d+)?|UTC|English|"
    r"JSON|ID|AM|PM|\bA\b|\bB\b|event(\.\w+)+|seat(\.\w+)+|queue\.\w+|"
    r"event:\d+(:seat:\d+)?|\{[^}]*\}|null"
)
ENGLISH_WORD = re.compile(r"\b[A-Za-z]{3,}\b")


def pages(stack, page, event_id: int) -> list[tuple[str, str]]:
    """(name, path) of every page a customer sees, in the order of a visit."""
    enter_through_queue(page, event_id)
    page.locator(".seat-map button.seat[data-state=available]").first.click()
    page.wait_for_selector(".my-holds [data-countdown]")
    page.click(".my-holds a[href$='/checkout']")
    page.click("form[action$='/checkout'] button[type=submit]")
    page.wait_for_url(re.compile(r"/bookings/\d+$"))
    booking = page.url.rsplit("/", 1)[1]
    return [
        ("home", "/"),
        ("event", f"/events/{event_id}"),
        ("leave", f"/events/{event_id}/leave"),
        ("bookings", "/bookings"),
        ("confirmation", f"/bookings/{booking}"),
        ("not found", "/events/999999999"),
    ]


@pytest.mark.parametrize("locale", ["en-US", "ko-KR"])
def test_every_page(stack, new_context, screenshots, locale):
    event_id = stack.new_event("Every page night", SECTIONS, admit_rate=50, max_active=100)
    lang = locale[:2]
    found = {}

    def check(page, name: str) -> None:
        problems = axe_audit(page, f"{name}-{lang}", screenshots)
        if problems:
            found[f"{name}: axe"] = problems
        if not page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"):
            found[f"{name}: wider than the phone"] = page.url
        if lang == "ko":
            text = DATA.sub(" ", page.locator("body").inner_text())
            for event in stack.api().call("GET", "/api/events")[1]:
                for data in (event["name"], event["venue"]):  # the event's own words
                    text = text.replace(data, " ") if data else text
            words = sorted(set(ENGLISH_WORD.findall(text)))
            if words:
                found[f"{name}: English words"] = words

    anonymous = new_context(locale=locale, viewport=PHONE).new_page()
    for name, path in [
        ("login", "/auth/login"),
        ("register", "/auth/register"),
        ("home (anonymous)", "/"),
    ]:
        anonymous.goto(path)
        check(anonymous, name)

    fan = new_context(locale=locale, viewport=PHONE).new_page()
    log_in(fan, stack.new_user("every"))
    for name, path in pages(stack, fan, event_id):
        fan.goto(path)
        check(fan, name)

    staff = new_context(locale=locale).new_page()
    log_in(staff, stack.staff_email)
    for name, path in [("admin index", "/admin/"), ("admin event", f"/admin/events/{event_id}")]:
        staff.goto(path)
        check(staff, name)
    assert found == {}, found
