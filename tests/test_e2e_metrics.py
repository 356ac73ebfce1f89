"""The staff page and /metrics at the same moment agree (waiting, active,
booked, held), and a picture of both side by side goes into the screenshots
(docs/screenshots/11-staff-beside-metrics.png with `make screenshots`)."""

import base64
import html
import urllib.request

import pytest
from e2e_support import METRICS_TOKEN, PASSWORD, log_in
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.e2e

SECTIONS = [{"name": "Floor", "rows": 3, "seats_per_row": 10, "price": 1500}]
NUMBERS = {"waiting": "Waiting", "active": "Active / cap", "held": "Held", "booked": "Booked"}


def scrape(base_url: str) -> str:
    request = urllib.request.Request(
        f"{base_url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.read().decode()


def event_figures(text: str, event_id: int) -> dict[str, float]:
    """{name without ticketdrop_event_: value} of one event's gauges."""
    return {
        s.name.removeprefix("ticketdrop_event_"): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("ticketdrop_event_") and s.labels.get("event") == str(event_id)
    }


def staff_numbers(page) -> dict[str, int]:
    """The first number of each row of the staff page's live numbers."""
    numbers = {}
    for name, label in NUMBERS.items():
        text = page.locator(f"#live dl.numbers div:has(dt:text-is('{label}')) dd").inner_text()
        numbers[name] = int(text.split()[0].replace(",", ""))
    return numbers


def test_the_staff_page_and_metrics_say_the_same(stack, new_context, screenshots):
    event_id = stack.new_event("Metrics night", SECTIONS, admit_rate=50, max_active=50)
    seats = stack.seat_ids(event_id)
    stack.buy(event_id, seats[:3])
    stack.buy(event_id, seats[10:12], pay=False)
    stack.set_admission(event_id, "paused")  # the waiting stay waiting
    for _ in range(4):
        fan = stack.api(stack.new_user("waiting"))
        assert fan.call("POST", f"/api/events/{event_id}/queue")[0] == 200

    page = new_context(viewport={"width": 900, "height": 1000}).new_page()
    log_in(page, stack.staff_email, PASSWORD)
    page.goto(f"/admin/events/{event_id}")
    # Nothing moves now (admission paused, windows of minutes): the page and
    # the scrape see one state.
    shown = staff_numbers(page)
    text = scrape(stack.base_url)
    staff_png = page.screenshot(clip={"x": 0, "y": 0, "width": 900, "height": 1000})

    figures = event_figures(text, event_id)
    assert shown == {name: figures[name] for name in NUMBERS}, (shown, figures)
    assert shown["waiting"] == 4 and shown["booked"] == 3 and shown["held"] == 2

    lines = [
        line
        for line in text.splitlines()
        if line.startswith("ticketdrop_event_") and f'event="{event_id}"' in line
    ]
    side = new_context(viewport={"width": 1700, "height": 1000}).new_page()
    picture = base64.b64encode(staff_png).decode()
    side.set_content(
        "<body style='margin:0;display:flex;gap:16px;font:13px monospace;background:#fff'>"
        f"<img style='width:900px' src='data:image/png;base64,{picture}'>"
        "<div><h2 style='font:bold 15px sans-serif'>GET /metrics, the same moment</h2>"
        f"<pre>{html.escape(chr(10).join(lines))}</pre></div></body>"
    )
    side.screenshot(path=str(screenshots / "11-staff-beside-metrics.png"))
