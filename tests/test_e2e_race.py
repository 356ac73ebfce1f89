"""Two browsers race for one seat while a staff browser watches the admin
seat map: one wins, the other is told clearly and sees the seat taken, and
the staff map shows the seat held, then booked, without reloading."""

import re
import time

import pytest
from e2e_support import (
    enter_through_queue,
    log_in,
    no_page_reloads,
    shot,
    still_same_document,
    wait_for,
)

pytestmark = pytest.mark.e2e

SECTIONS = [
    {"name": "Floor", "rows": 4, "seats_per_row": 12, "price": 2000},
    {"name": "Balcony", "rows": 3, "seats_per_row": 10, "price": 1200},
]

# Scheduled in each page, then left to run: both fire at the same wall-clock instant.
CLICK_AT = """([selector, at]) => { setTimeout(() => document.querySelector(selector).click(),
                                             Math.max(0, at - Date.now())); }"""


def test_two_browsers_race_for_one_seat_and_staff_watch(stack, new_context, screenshots):
    event_id = stack.new_event("Race night", SECTIONS, admit_rate=50, max_active=100)
    seat_ids = stack.seat_ids(event_id)
    # Someone else's sale in progress, so the staff map has every state.
    stack.buy(event_id, seat_ids[20:24])
    stack.buy(event_id, seat_ids[30:32], pay=False)

    staff = new_context().new_page()
    log_in(staff, stack.staff_email)
    staff.goto(f"/admin/events/{event_id}")
    no_page_reloads(staff)

    fans = []
    for _ in range(2):
        page = new_context().new_page()
        log_in(page, stack.new_user("racer"))
        enter_through_queue(page, event_id)
        fans.append(page)

    # Both press the same seat at the same instant.
    target = seat_ids[5]
    selector = f"#seat-{target}"
    at = int(time.time() * 1000) + 800
    for page in fans:
        page.evaluate(CLICK_AT, [selector, at])
    states = wait_for(
        lambda: (
            sorted(p.get_attribute(selector, "data-state") for p in fans)
            if all(p.get_attribute(selector, "data-state") != "available" for p in fans)
            else None
        ),
        seconds=10,
    )
    assert states == ["held", "mine"], states
    winner, loser = fans if fans[0].get_attribute(selector, "data-state") == "mine" else fans[::-1]

    message = loser.locator("#booking-message [role=alert], #messages [role=alert]")
    assert wait_for(lambda: message.count() == 1, seconds=5), "the loser was told nothing"
    assert message.first.is_visible()
    assert re.search(r"taken|held|someone", message.first.inner_text(), re.I), (
        message.first.inner_text()
    )
    assert (
        loser.locator(selector).is_disabled()
        or loser.get_attribute(selector, "aria-disabled") == "true"
    )
    shot(loser, screenshots, "07-race-lost")

    # Staff: held, then booked, on the live map.
    assert wait_for(
        lambda: "held" in staff.get_attribute(f"#admin-seat-{target}", "class"), seconds=10
    ), "the admin map never showed the hold"
    winner.click(".my-holds a[href$='/checkout']")
    winner.click("form[action$='/checkout'] button[type=submit]")
    winner.wait_for_url(re.compile(r"/bookings/\d+$"))
    assert wait_for(
        lambda: "booked" in staff.get_attribute(f"#admin-seat-{target}", "class"), seconds=10
    ), "the admin map never showed the sale"
    assert still_same_document(staff), "the admin page reloaded instead of updating"
    shot(staff, screenshots, "08-admin-seat-map-mid-sale")

    # The loser's own map turns the seat sold by itself.
    assert wait_for(lambda: loser.get_attribute(selector, "data-state") == "booked", seconds=10)
