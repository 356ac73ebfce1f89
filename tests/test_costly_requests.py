"""Cheap requests that must not cost a lot (issue 14, item 8): a request for
an event that does not exist, and the live seat map's refresh."""

import logging
import re
import time
from contextlib import contextmanager

import pytest
from flask import before_render_template
from helpers import entered, seat_ids

from app import seats


@contextmanager
def queries_counted():
    """Every SQL statement peewee sends meanwhile (its DEBUG log, one record
    per query)."""
    sent: list[str] = []

    class Count(logging.Handler):
        def emit(self, record):
            sent.append(record.getMessage())

    logger, handler = logging.getLogger("peewee"), Count()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield sent
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_nonexistent_events_do_not_empty_the_seat_catalogue_cache(app, make_user, login, event):
    _, client = entered(app, make_user, login, event)
    assert client.get(f"/api/events/{event.id}/seats").status_code == 200  # the cache is warm
    for missing in range(event.id + 1000, event.id + 1050):
        response = client.get(f"/api/events/{missing}/seats")
        assert response.status_code == 404, response.get_json()
        assert response.get_json()["error"] == "not_found"
    with app.app_context(), queries_counted() as sent:
        seats.catalogue(event.id)
    assert sent == [], "the real event's catalogue was loaded again"


# The live seat map

HX = {"HX-Request": "true"}
BIG = [{"name": "Stalls", "rows": 100, "seats_per_row": 200, "price": 900}]  # 20,000 seats


def seat_ids_in(fragment: str) -> list[int]:
    return [int(n) for n in re.findall(r'<button[^>]* id="seat-(\d+)"', fragment)]


def states_in(fragment: str) -> dict[int, str]:
    return {
        int(sid): state
        for sid, state in re.findall(r'id="seat-(\d+)"[^>]*?data-state="(\w+)"', fragment)
    }


def version_in(page: str) -> str | None:
    found = re.search(r'id="seat-version" name="v" value="([^"]*)"', page)
    return found.group(1) if found else None


def refresh(client, event_id, version):
    params = {"v": version} if version is not None else {}
    response = client.get(f"/events/{event_id}/seats/panel", query_string=params, headers=HX)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def browser_inside(app, make_user, login, event):
    """An entered person (through the API entrance, which the pages accept)."""
    user, client = entered(app, make_user, login, event)
    return user, client


@pytest.fixture
def shared_snapshot(app, monkeypatch):
    """The production setting: fans share one read of the seats per second."""
    monkeypatch.setitem(app.config, "SEAT_MAP_SNAPSHOT_MS", 1000)


def test_a_refresh_of_a_20000_seat_map_sends_only_what_changed(
    app, make_user, login, make_event, quick_passwords
):
    event = make_event(sections=BIG, admit_rate=100_000)
    me, client = browser_inside(app, make_user, login, event)
    _, other = browser_inside(app, make_user, login, event)
    ids = seat_ids(app, event.id)
    page = client.get(f"/events/{event.id}/seats").get_data(as_text=True)
    assert len(seat_ids_in(page)) == 20_000  # the page itself still shows every seat
    version = version_in(page)

    assert other.post(f"/api/events/{event.id}/seats/{ids[12_345]}/hold").status_code == 201
    fragment = refresh(client, event.id, version)
    sent = seat_ids_in(fragment)
    assert states_in(fragment)[ids[12_345]] == "held"  # someone else's hold, seen
    assert len(sent) <= 256, f"the refresh sent {len(sent)} seats, not the changed block"

    # Nothing changed since: no seat is sent at all.
    assert seat_ids_in(refresh(client, event.id, version_in(fragment))) == []


def test_the_refresh_shows_others_holds_and_keeps_mine_right(
    app, make_user, login, event, shared_snapshot
):
    me, client = browser_inside(app, make_user, login, event)
    _, other = browser_inside(app, make_user, login, event)
    ids = seat_ids(app, event.id)
    version = version_in(client.get(f"/events/{event.id}/seats").get_data(as_text=True))

    # My hold shows as mine at once, even while the shared read is fresh.
    held = client.post(f"/events/{event.id}/seats/hold", data={"seat": ids[0]}, headers=HX)
    fragment = held.get_data(as_text=True)
    assert states_in(fragment)[ids[0]] == "mine", fragment
    version = version_in(fragment)
    assert seat_ids_in(refresh(client, event.id, version)) == []

    # Someone else's hold reaches my map within the shared read's second.
    assert other.post(f"/api/events/{event.id}/seats/{ids[1]}/hold").status_code == 201
    time.sleep(1.1)
    fragment = refresh(client, event.id, version)
    states = states_in(fragment)
    assert states[ids[1]] == "held" and states[ids[0]] == "mine", states
    assert "Your seats" in fragment and "A1 ·" in fragment

    # Released: no longer mine, on the map and in the JSON API.
    fragment = client.post(
        f"/events/{event.id}/seats/release",
        data={"seat": ids[0], "v": version_in(fragment)},
        headers=HX,
    ).get_data(as_text=True)
    assert states_in(fragment)[ids[0]] == "available", fragment
    listing = {s["id"]: s for s in client.get(f"/api/events/{event.id}/seats").get_json()}
    assert listing[ids[0]]["held_by_me"] is False and listing[ids[0]]["status"] == "available"
    assert listing[ids[1]]["status"] == "held" and listing[ids[1]]["held_by_me"] is False


def test_fans_refreshing_together_share_one_read_of_the_seats(
    app, make_user, login, event, shared_snapshot
):
    from app import seat_map  # (added with the shared read)

    fans = [browser_inside(app, make_user, login, event)[1] for _ in range(5)]
    before = seat_map.reads
    for _ in range(4):
        for client in fans:
            refresh(client, event.id, None)
    assert seat_map.reads - before == 1  # 20 refreshes within a second: one read


def test_the_json_seat_list_answers_304_while_nothing_changed(app, make_user, login, event):
    _, client = browser_inside(app, make_user, login, event)
    ids = seat_ids(app, event.id)
    first = client.get(f"/api/events/{event.id}/seats")
    assert first.status_code == 200 and first.headers["ETag"]
    again = client.get(
        f"/api/events/{event.id}/seats", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 304 and again.get_data() == b""
    client.post(f"/api/events/{event.id}/seats/{ids[0]}/hold")
    changed = client.get(
        f"/api/events/{event.id}/seats", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert changed.status_code == 200
    assert {s["id"]: s for s in changed.get_json()}[ids[0]]["held_by_me"] is True


def test_staff_refreshing_together_render_the_seat_map_once(
    app, make_user, login, event, monkeypatch
):
    monkeypatch.setitem(app.config, "STAFF_MAP_CACHE_MS", 1000)
    staff = [login(app.test_client(), make_user(staff=True)) for _ in range(3)]
    ids = seat_ids(app, event.id)
    renders = []

    def count(sender, template, context, **extra):
        if "layout" in context:  # a render that goes through every seat
            renders.append(template.name)

    with before_render_template.connected_to(count, app):
        for _ in range(4):
            for client in staff:
                live = client.get(f"/admin/events/{event.id}/live?seat={ids[0]}")
                assert live.status_code == 200
                assert 'class="seat available selected"' in live.get_data(as_text=True)
        assert len(renders) == 1, renders  # 12 refreshes, one render

        # A staff action shows at once; someone's hold within the second.
        assert staff[0].post(f"/admin/events/{event.id}/seats/{ids[1]}/block").status_code == 302
        page = staff[1].get(f"/admin/events/{event.id}/live").get_data(as_text=True)
        assert f'id="admin-seat-{ids[1]}" class="seat blocked"' in page
        _, fan = entered(app, make_user, login, event)
        assert fan.post(f"/api/events/{event.id}/seats/{ids[2]}/hold").status_code == 201
        time.sleep(1.1)
        page = staff[2].get(f"/admin/events/{event.id}/live").get_data(as_text=True)
        assert f'id="admin-seat-{ids[2]}" class="seat held"' in page


def test_a_refresh_asks_the_database_nothing_and_counts_what_is_left_to_buy(
    app, make_user, login, event
):
    # Thousands refresh every 3 s: the panel's seats left under the limit come
    # from Redis in the refresh's own script, not from a MySQL query.
    from helpers import admit_and_enter, hold, pay

    ids = seat_ids(app, event.id)
    _, client = entered(app, make_user, login, event)
    assert "Pick up to 4 seats on the map." in refresh(client, event.id, None)
    assert (
        pay(client, event.id, [(s, hold(client, event.id, s)) for s in ids[:3]]).status_code == 201
    )
    admit_and_enter(app, client, event.id)
    with queries_counted() as sent:
        panel = refresh(client, event.id, None)
    assert "Pick up to 1 seat on the map." in panel
    assert sent == [], sent
    pay(client, event.id, [(ids[3], hold(client, event.id, ids[3]))])
    admit_and_enter(app, client, event.id)
    assert "You have bought all the seats one person may have" in refresh(client, event.id, None)
