"""The staff pages (/admin) and the staff JSON API (/api/admin): who may see
them, the live seat map and numbers, the chart samples, the controls (admission,
cap and rate, seats, the queue), the what-if prediction and the audit log.

Real Redis and a real MySQL/MariaDB (SQLite when none answers), through the
test client. The shared test app has CSRF off; one test builds a second app
with CSRF on to check that the staff forms need their token.
"""

import html
import json
import math
import re
import uuid
from html.parser import HTMLParser
from itertools import product
from urllib.parse import parse_qs, urlsplit

import pytest
from helpers import admit_and_enter
from werkzeug.exceptions import MethodNotAllowed

from app import capacity, charts, i18n, keys, waiting_room
from app.models import AuditLog, Booking, Event, Seat, User

# The test app's JWT_SECRET is short on purpose; pyjwt warns about it.

SECTIONS = [{"name": "A", "rows": 2, "seats_per_row": 3, "price": 1000}]
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


# Helpers


def text(response) -> str:
    return response.get_data(as_text=True)


def flashes(page: str) -> list[tuple[str, str]]:
    """The flashed messages of a page: [(category, message)]."""
    return [
        (cat, html.unescape(msg))
        for cat, msg in re.findall(r'<p class="flash (\w+)" role="\w+">(.*?)</p>', page, re.S)
    ]


def follow(client, response, status=302) -> str:
    """Follow a redirect (asserting it is one) and return the page it leads to."""
    assert response.status_code == status, (response.status_code, text(response)[:500])
    page = client.get(response.headers["Location"])
    assert page.status_code == 200, (page.status_code, text(page)[:500])
    return text(page)


class SeatCells(HTMLParser):
    """The seat map's <a id="admin-seat-N"> elements: attributes and text."""

    def __init__(self):
        super().__init__()
        self.cells: dict[int, dict] = {}
        self._open: int | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and (attrs.get("id") or "").startswith("admin-seat-"):
            self._open = int(attrs["id"].removeprefix("admin-seat-"))
            self.cells[self._open] = {**attrs, "text": ""}

    def handle_data(self, data):
        if self._open is not None:
            self.cells[self._open]["text"] += data

    def handle_endtag(self, tag):
        if tag == "a":
            self._open = None


def seat_cells(page: str) -> dict[int, dict]:
    parser = SeatCells()
    parser.feed(page)
    return parser.cells


class PostForms(HTMLParser):
    """Every <form method="post">: its action and the names of its inputs."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._form: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and (attrs.get("method") or "").lower() == "post":
            self._form = {"action": attrs.get("action"), "inputs": {}}
            self.forms.append(self._form)
        elif (
            tag in ("input", "button", "textarea") and self._form is not None and attrs.get("name")
        ):
            self._form["inputs"][attrs["name"]] = attrs.get("value")

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None


def post_forms(page: str) -> list[dict]:
    parser = PostForms()
    parser.feed(page)
    return parser.forms


def audit_table(page: str) -> list[dict]:
    """The audit log of an event page, as shown (newest first)."""
    section = page.split('id="audit-h"', 1)[1].split("</section>", 1)[0]
    rows = re.findall(
        r'<li><p class="audit-what">(.*?)</p>\s*<p class="muted"><time datetime="(.*?)">'
        r"(.*?) UTC</time> ·\s*(.*?)</p></li>",
        section,
        re.S,
    )
    return [
        {
            "what": html.unescape(what),
            "at": at,
            "shown_at": shown_at,
            "actor": html.unescape(by.strip()).removeprefix("by "),
        }
        for what, at, shown_at, by in rows
    ]


def audit_rows(app, **where) -> list[AuditLog]:
    with app.app_context():
        query = AuditLog.select().order_by(AuditLog.id)
        for field, value in where.items():
            query = query.where(getattr(AuditLog, field) == value)
        return list(query)


def seat_ids(app, event_id) -> list[int]:
    with app.app_context():
        return [s.id for s in Seat.select(Seat.id).where(Seat.event == event_id).order_by(Seat.id)]


def seat_status_in_db(app, seat_id) -> str:
    with app.app_context():
        return Seat.get_by_id(seat_id).status


def tick(app, event_id) -> dict:
    with app.app_context():
        return waiting_room.admit(event_id)


def first_tick(app, event):
    """One admission tick, as the job runs every second for every event not closed:
    it leaves the first chart sample (the event page fails without one, see
    test_the_event_page_renders_before_the_first_tick)."""
    tick(app, event.id)
    return event


def join_directly(app, event_id, user_ids) -> None:
    """Queue people without a browser each (the queue is Redis only)."""
    with app.app_context():
        for user_id in user_ids:
            assert waiting_room.join(event_id, user_id).status == "waiting"


def listing(client, event_id) -> dict[int, dict]:
    response = client.get(f"/api/events/{event_id}/seats")
    assert response.status_code == 200, response.get_json()
    return {s["id"]: s for s in response.get_json()}


def hold(client, event_id, seat_id):
    return client.post(f"/api/events/{event_id}/seats/{seat_id}/hold")


def pay(client, event_id, items):
    return client.post(
        f"/api/events/{event_id}/checkout",
        json={"seats": [{"seat_id": s, "token": t} for s, t in items]},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )


def seat_control(client, via, event_id, seat_id, action):
    """A seat control through the page's form (confirmed, where the page asks
    again) or through the JSON API."""
    if via == "form":
        return client.post(
            f"/admin/events/{event_id}/seats/{seat_id}/{action}", data={"confirmed": "yes"}
        )
    return client.post(f"/api/admin/events/{event_id}/seats/{seat_id}/{action}")


def assert_json_error(response, status, code=None) -> dict:
    assert response.status_code == status, (response.status_code, response.data[:500])
    body = response.get_json()
    assert isinstance(body, dict) and body.get("error") and body.get("message"), body
    if code is not None:
        assert body["error"] == code, body
    return body


@pytest.fixture
def entered(app, make_user, login):
    """Make a logged-in person who came through the waiting room: (user, client)."""

    def make(event, email=None):
        user = make_user(email=email)
        client = login(app.test_client(), user)
        admit_and_enter(app, client, event.id)
        return user, client

    return make


# Authorisation: walk the URL map so that a future route cannot forget the guard


def is_staff_rule(path: str) -> bool:
    return path in ("/admin", "/api/admin") or path.startswith(("/admin/", "/api/admin/"))


def staff_urls(app, ids: dict) -> list[tuple[str, str]]:
    """(endpoint, path) for every staff rule, path arguments filled with real ids;
    every value of an `any(...)` converter is tried."""
    from flask import url_for

    found = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if not is_staff_rule(rule.rule):
                continue
            choices = []
            for arg in sorted(rule.arguments):
                converter = rule._converters[arg]
                if getattr(converter, "items", None):
                    choices.append([(arg, item) for item in sorted(converter.items)])
                else:
                    assert arg in ids, f"teach this test a real value for <{arg}> ({rule.rule})"
                    choices.append([(arg, ids[arg])])
            for combo in product(*choices):
                found.append((rule.endpoint, url_for(rule.endpoint, **dict(combo))))
    return found


def routable(app, path: str, method: str) -> bool:
    adapter = app.url_map.bind("localhost")
    try:
        adapter.match(path, method=method)
    except MethodNotAllowed:
        return False
    return True


@pytest.fixture
def walk_setup(app, customer, make_event):
    """A paused event with a real seat, and the customer waiting in its queue."""
    user, client = customer
    event = first_tick(app, make_event(admission="paused"))
    assert client.post(f"/api/events/{event.id}/queue").status_code == 200
    ids = {
        "event_id": event.id,
        "seat_id": seat_ids(app, event.id)[0],
        "user_id": user.id,
        "booking_id": 1,
    }
    return event, ids


def assert_nothing_changed(app, r, event, ids):
    k = keys.event(event.id)
    with app.app_context():
        assert Event.select().count() == 1
        stored = Event.get_by_id(event.id)
        assert (stored.admission, stored.max_active, stored.admit_rate) == (
            "paused",
            event.max_active,
            event.admit_rate,
        )
        assert Seat.select().where(Seat.status != "available").count() == 0
        assert [e.action for e in AuditLog.select()] == ["event.create"]
    assert r.hget(k.config, "state") == "paused"
    assert r.hlen(k.seats) == 0
    assert r.zscore(k.queue, str(ids["user_id"])) is not None


def test_the_walk_sees_every_staff_route(app, walk_setup):
    _, ids = walk_setup
    walked = {endpoint for endpoint, _ in staff_urls(app, ids)}
    registered = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] in ("admin", "admin_api")
    }
    assert registered and registered <= walked
    assert {
        "admin.index",
        "admin.event",
        "admin.live",
        "admin.settings",
        "admin.seat_action",
        "admin.remove_from_queue",
        "admin.what_if",
        "admin.create_event",
        "admin_api.update_event",
        "admin_api.block_seat",
    } <= walked


def test_the_ids_of_the_walk_are_real(app, staff, walk_setup):
    """Staff get 200 from every page the walk reads: a 404 cannot hide a missing guard."""
    _, ids = walk_setup
    _, staff_client = staff
    for _, path in staff_urls(app, ids):
        if routable(app, path, "GET"):
            response = staff_client.get(path, query_string={"rate": 10, "cap": 5})
            assert response.status_code == 200, (path, response.status_code)


@pytest.mark.parametrize("who", ["anonymous", "customer"])
def test_every_staff_route_refuses_everyone_but_staff(app, r, customer, walk_setup, who):
    event, ids = walk_setup
    client = app.test_client() if who == "anonymous" else customer[1]
    form = {
        "admission": "open",
        "max_active": "1",
        "admit_rate": "1",
        "person": str(ids["user_id"]),
        "name": "Sneaky",
        "sections": "X, 1, 1, 1",
    }
    body = {
        "admission": "open",
        "max_active": 1,
        "name": "Sneaky",
        "sections": [{"name": "X", "rows": 1, "seats_per_row": 1, "price": 1}],
    }
    checked = 0
    for _, path in staff_urls(app, ids):
        is_json = path.startswith("/api/")
        for method in ALL_METHODS:
            if not routable(app, path, method):
                assert client.open(path, method=method).status_code == 405, (method, path)
                continue
            variants = [{}, {"json": body}] if is_json else [{}, {"data": form}]
            if method in ("GET", "HEAD"):
                variants = [{"query_string": {"rate": 10, "cap": 5, "seat": ids["seat_id"]}}]
            for kwargs in variants:
                response = client.open(path, method=method, **kwargs)
                where = (who, method, path, kwargs.keys(), response.status_code)
                checked += 1
                if is_json and who == "anonymous":
                    assert response.status_code == 401, where
                elif is_json:
                    assert response.status_code == 403, where
                elif who == "anonymous":
                    assert response.status_code == 302, where
                    location = urlsplit(response.headers["Location"])
                    assert location.path == "/auth/login", where
                    assert parse_qs(location.query)["next"][0].startswith(path), where
                else:
                    assert response.status_code == 403, where
                if method == "HEAD":
                    continue
                if is_json:
                    assert response.get_json()["error"] == (
                        "login_required" if who == "anonymous" else "forbidden"
                    ), where
                elif who == "customer":
                    assert "text/html" in response.content_type, where
                    assert "staff only" in text(response), where
    assert checked > 20
    assert_nothing_changed(app, r, event, ids)


@pytest.mark.parametrize("who", ["anonymous", "customer"])
def test_the_api_guard_answers_before_the_body_check(app, customer, walk_setup, who):
    _, ids = walk_setup
    client = app.test_client() if who == "anonymous" else customer[1]
    wrong = []
    for _, path in staff_urls(app, ids):
        if not path.startswith("/api/"):
            continue
        for method in ("POST", "PATCH", "DELETE"):
            if routable(app, path, method):
                response = client.open(path, method=method, data={"admission": "open"})
                if response.status_code != (401 if who == "anonymous" else 403):
                    wrong.append((method, path, response.status_code))
    assert not wrong


def test_revoking_staff_closes_the_pages_at_once(app, staff):
    user, client = staff
    assert client.get("/admin/").status_code == 200
    with app.app_context():
        User.update(is_staff=False).where(User.id == user.id).execute()
    assert client.get("/admin/").status_code == 403


def test_every_staff_form_carries_a_csrf_token(app, staff, entered, make_event):
    _, client = staff
    event = first_tick(app, make_event(admission="open"))
    free, blocked, held = seat_ids(app, event.id)[:3]
    client.post(f"/admin/events/{event.id}/seats/{blocked}/block")
    _, buyer = entered(event)
    assert hold(buyer, event.id, held).status_code == 201
    pages = [text(client.get("/admin/"))] + [
        text(client.get(f"/admin/events/{event.id}?seat={seat}")) for seat in (free, blocked, held)
    ]
    pages += [  # the confirmation pages
        text(client.post(f"/admin/events/{event.id}/settings", data={"admission": "closed"})),
        text(client.post(f"/admin/events/{event.id}/seats/{held}/release")),
        text(client.post(f"/admin/events/{event.id}/seats/bulk", data={"section": "A"})),
    ]
    forms = [form for page in pages for form in post_forms(page)]
    actions = {form["action"] for form in forms}
    assert {
        "/admin/events",
        f"/admin/events/{event.id}/settings",
        f"/admin/events/{event.id}/queue/remove",
        f"/admin/events/{event.id}/seats/bulk",
        f"/admin/events/{event.id}/seats/{free}/block",
        f"/admin/events/{event.id}/seats/{blocked}/unblock",
        f"/admin/events/{event.id}/seats/{held}/release",
        f"/admin/events/{event.id}/seats/{held}/release_and_block",
    } <= actions
    for form in forms:
        assert "csrf_token" in form["inputs"], form


@pytest.fixture
def csrf_app(app):
    from app import create_app

    shared = {
        k: app.config[k]
        for k in ("TESTING", "REDIS_URL", "DATABASE_URL", "SECRET_KEY", "JWT_SECRET")
    }
    yield create_app({**shared, "WTF_CSRF_ENABLED": True, "RATELIMIT_ENABLED": False})
    # create_app rebinds the global db proxy and Redis client: bind them back.
    create_app({**shared, "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False})


def test_staff_forms_need_the_csrf_token(app, r, csrf_app, make_user, make_event):
    user = make_user(staff=True)
    event = first_tick(app, make_event(admission="paused"))
    seat = seat_ids(app, event.id)[0]
    client = csrf_app.test_client()
    assert (
        client.post(
            "/api/auth/login", json={"email": user.email, "password": "password123"}
        ).status_code
        == 200
    )
    posts = {
        "/admin/events": {"name": "Forged", "sections": "X, 1, 1, 1"},
        f"/admin/events/{event.id}/settings": {"admission": "open"},
        f"/admin/events/{event.id}/seats/{seat}/block": {},
        f"/admin/events/{event.id}/queue/remove": {"person": str(user.id)},
    }
    for path, form in posts.items():
        assert client.post(path, data=form).status_code == 400, path
        assert client.post(path, data={**form, "csrf_token": "forged"}).status_code == 400, path
    with app.app_context():
        assert Event.select().count() == 1
        assert Event.get_by_id(event.id).admission == "paused"
        assert Seat.get_by_id(seat).status == "available"
        assert AuditLog.select().count() == 1  # event.create
    page = text(client.get(f"/admin/events/{event.id}"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post(
        f"/admin/events/{event.id}/settings", data={"admission": "open", "csrf_token": token}
    )
    assert response.status_code == 302
    assert r.hget(keys.event(event.id).config, "state") == "open"


# The events list and creating an event


def test_index_lists_events_with_live_numbers(app, staff, make_event):
    _, client = staff
    quiet = make_event(admission="paused", max_active=7)
    busy = make_event(admission="open", max_active=9)
    join_directly(app, busy.id, [9_100_001, 9_100_002, 9_100_003])
    page = text(client.get("/admin/"))
    rows = re.findall(
        r'<tr><td><a href="/admin/events/(\d+)">(.*?)</a></td>\s*<td>(\w+)</td>'
        r'<td class="num">([\d,]+)</td>\s*<td class="num">([\d,]+) / ([\d,]+)</td>',
        page,
    )
    by_id = {int(row[0]): row[1:] for row in rows}
    assert by_id[quiet.id] == ("Test event", "paused", "0", "0", "7")
    assert by_id[busy.id] == ("Test event", "open", "3", "0", "9")
    assert [int(row[0]) for row in rows] == [busy.id, quiet.id]  # newest first
    tick(app, busy.id)
    page = text(client.get("/admin/"))
    assert re.search(
        rf'href="/admin/events/{busy.id}">.*?<td class="num">0</td>\s*'
        rf'<td class="num">3 / 9</td>',
        page,
        re.S,
    )
    assert 'action="/admin/events"' in page and 'name="sections"' in page


def test_create_an_event_with_the_form(app, staff):
    user, client = staff
    response = client.post(
        "/admin/events",
        data={
            "name": "Summer show",
            "sections": "Floor, 3, 5, 100\nBalcony, 2, 4, 50",
            "max_active": "50",
            "admit_rate": "7",
            "active_ttl": "120",
            "hold_ttl": "60",
            "sale_opens_at": "2030-01-01T10:00",
            "venue": "Riverside Park",
            "starts_at": "2030-02-01T19:30",
        },
    )
    assert response.status_code == 302, text(response)[:500]
    with app.app_context():
        event = Event.get(Event.name == "Summer show")
        assert (event.venue, event.starts_at.isoformat()) == (
            "Riverside Park",
            "2030-02-01T19:30:00",
        )
        assert response.headers["Location"] == f"/admin/events/{event.id}"
        assert (
            event.admission,
            event.max_active,
            event.admit_rate,
            event.active_ttl,
            event.hold_ttl,
        ) == ("paused", 50, 7, 120, 60)
        assert event.sale_opens_at.isoformat() == "2030-01-01T10:00:00"
        seats = list(Seat.select().where(Seat.event == event.id))
        assert len(seats) == 15 + 8
        assert sorted({(s.section, s.row) for s in seats}) == [
            ("Balcony", "A"),
            ("Balcony", "B"),
            ("Floor", "A"),
            ("Floor", "B"),
            ("Floor", "C"),
        ]
        assert {s.price for s in seats if s.section == "Floor"} == {100}
        assert {s.price for s in seats if s.section == "Balcony"} == {50}
    [entry] = audit_rows(app, target=f"event:{event.id}")
    assert (entry.action, entry.actor_id) == ("event.create", user.id)
    first_tick(app, event)
    page = follow(client, response)
    assert ("info", "Created Summer show (admission paused).") in flashes(page)
    assert len(seat_cells(page)) == 23

    # The sale time is optional.
    response = client.post("/admin/events", data={"name": "No date", "sections": "Pit, 1, 2, 5"})
    assert response.status_code == 302
    with app.app_context():
        event = Event.get(Event.name == "No date")
        assert event.sale_opens_at is None and event.max_active == 10_000
        assert event.venue == "" and event.starts_at is None
        assert Seat.select().where(Seat.event == event.id).count() == 2


@pytest.mark.parametrize(
    "changes, says",
    [
        ({"sections": "Floor, 3, 5"}, "section line 1 needs: name, rows, seats per row, price"),
        ({"sections": "Floor, 3, 5, 100\nBalcony 2 4 50"}, "section line 2 needs"),
        ({"sections": "Floor, three, 5, 100"}, "section line 1: three is not a whole number"),
        ({"sections": "Floor, 0, 5, 100"}, "section line 1, rows: should be 1 or more"),
        ({"sections": "Floor, 101, 5, 100"}, "section line 1, rows: should be 100 or less"),
        ({"sections": "Floor, 3, 5, -1"}, "section line 1, price: should be 0 or more"),
        ({"sections": ", 3, 5, 100"}, "section line 1, name: should have at least 1 character"),
        ({"sections": "Floor, 1, 1, 1\nfloor, 1, 1, 1"}, "every section needs its own name"),
        ({"sections": "  \n "}, "Seat layout: should have at least 1 item"),
        ({"name": ""}, "Name: should have at least 1 character"),
        ({"max_active": "many"}, "Most people booking at once: many is not a whole number"),
        ({"hold_ttl": "0"}, "Hold time per seat (s): should be 1 or more"),
        ({"sale_opens_at": "next tuesday"}, "Sale opens (UTC): should be a date"),
    ],
    ids=lambda v: json.dumps(v)[:40] if isinstance(v, dict) else None,
)
def test_create_an_event_with_a_bad_form(app, staff, changes, says):
    _, client = staff
    form = {"name": "Bad", "sections": "Floor, 3, 5, 100", "max_active": "10", **changes}
    response = client.post("/admin/events", data=form)
    assert response.headers["Location"] == "/admin/"
    [(category, message)] = flashes(follow(client, response))
    assert category == "error" and message.startswith("The event was not created: "), message
    assert says in message, message
    with app.app_context():
        assert Event.select().count() == 0 and Seat.select().count() == 0
        assert AuditLog.select().count() == 0


# Admission: pause keeps places, open with a cap of two


def change_settings(client, via, event_id, **changes):
    if via == "form":
        response = client.post(
            f"/admin/events/{event_id}/settings", data={k: str(v) for k, v in changes.items()}
        )
        assert response.status_code == 302
        assert response.headers["Location"] == f"/admin/events/{event_id}"
        assert flashes(text(client.get(response.headers["Location"])))[0][0] == "info"
    else:
        response = client.patch(f"/api/admin/events/{event_id}", json=changes)
        assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize("via", ["form", "api"])
def test_pause_keeps_places_then_open_with_a_cap_of_two(app, r, staff, customer, make_event, via):
    staff_user, staff_client = staff
    user, client = customer
    event = first_tick(app, make_event(admission="open"))
    k = keys.event(event.id)
    join_directly(app, event.id, [9_200_001, 9_200_002])
    assert client.post(f"/api/events/{event.id}/queue").json["position"] == 3
    join_directly(app, event.id, [9_200_004, 9_200_005])
    order = r.zrange(k.queue, 0, -1)
    assert order == ["9200001", "9200002", str(user.id), "9200004", "9200005"]

    change_settings(staff_client, via, event.id, admission="paused")
    for _ in range(3):
        assert tick(app, event.id) == {"admitted": 0, "expired": 0, "active": 0, "status": "paused"}
    response = client.get(f"/api/events/{event.id}/queue")
    status = response.get_json()
    assert status["status"] == "waiting" and status["paused"] is True
    assert status["position"] == 3 and status["waiting_total"] == 5
    assert 0.9 <= status["poll_after"] <= 1.1  # the front, paused too: it sees the reopening
    assert int(response.headers["Retry-After"]) == math.ceil(status["poll_after"])
    assert status["eta_seconds"] is None
    assert r.zrange(k.queue, 0, -1) == order and r.zcard(k.active) == 0
    assert "<dt>Admission</dt><dd>paused</dd>" in text(
        staff_client.get(f"/admin/events/{event.id}/live")
    )

    change_settings(staff_client, via, event.id, admission="open", max_active=2)
    admitted = sum(tick(app, event.id)["admitted"] for _ in range(4))
    assert admitted == 2
    assert sorted(r.zrange(k.active, 0, -1)) == ["9200001", "9200002"]
    assert r.zrange(k.queue, 0, -1) == [str(user.id), "9200004", "9200005"]
    status = client.get(f"/api/events/{event.id}/queue").get_json()
    assert status["position"] == 1 and status["paused"] is False
    assert 0.9 <= status["poll_after"] <= 1.1

    opened, *updates = audit_rows(app, action="event.update", target=f"event:{event.id}")
    assert opened.actor_id is None  # make_event opened it, not a person
    assert [e.actor_id for e in updates] == [staff_user.id] * 2
    assert json.loads(updates[0].before)["admission"] == "open"
    assert json.loads(updates[0].after)["admission"] == "paused"
    last = updates[-1]
    assert (json.loads(last.before)["admission"], json.loads(last.after)["admission"]) == (
        "paused",
        "open",
    )
    assert (json.loads(last.before)["max_active"], json.loads(last.after)["max_active"]) == (
        10_000,
        2,
    )


@pytest.mark.parametrize(
    "form",
    [
        {"admission": "OPEN"},
        {"max_active": "0"},
        {"max_active": "two"},
        {"admit_rate": "1.5"},
        {"admit_rate": str(10**6)},
    ],
)
def test_bad_settings_change_nothing(app, r, staff, make_event, form):
    _, client = staff
    event = first_tick(app, make_event(admission="paused"))
    before = r.hgetall(keys.event(event.id).config)
    response = client.post(f"/admin/events/{event.id}/settings", data=form)
    [(category, message)] = flashes(follow(client, response))
    assert category == "error" and message.startswith("Nothing changed"), message
    assert r.hgetall(keys.event(event.id).config) == before
    assert [e.action for e in audit_rows(app)] == ["event.create"]


# Seats: block, unblock, release take effect for customers at once


@pytest.mark.parametrize("via", ["form", "api"])
def test_block_and_unblock_take_effect_at_once(app, staff, entered, make_event, via):
    staff_user, staff_client = staff
    event = make_event(admission="open", sections=SECTIONS)
    _, buyer = entered(event)
    seat = seat_ids(app, event.id)[1]
    assert listing(buyer, event.id)[seat]["status"] == "available"

    response = seat_control(staff_client, via, event.id, seat, "block")
    if via == "form":
        assert response.headers["Location"] == f"/admin/events/{event.id}?seat={seat}"
        assert ("info", "Seat A A2: blocked.") in flashes(follow(staff_client, response))
    else:
        assert response.status_code == 200
        assert response.get_json() == {"seat_id": seat, "status": "blocked"}
    assert listing(buyer, event.id)[seat]["status"] == "blocked"
    assert_json_error(hold(buyer, event.id, seat), 409, "seat_blocked")
    assert seat_status_in_db(app, seat) == "blocked"
    assert staff_client.get(f"/api/admin/events/{event.id}/stats").json["blocked"] == 1

    # Blocking again is fine; unblocking puts it back on sale.
    assert seat_control(staff_client, via, event.id, seat, "block").status_code in (200, 302)
    response = seat_control(staff_client, via, event.id, seat, "unblock")
    if via == "form":
        assert ("info", "Seat A A2: unblocked.") in flashes(follow(staff_client, response))
    else:
        assert response.get_json() == {"seat_id": seat, "status": "available"}
    assert listing(buyer, event.id)[seat]["status"] == "available"
    assert seat_status_in_db(app, seat) == "available"
    assert hold(buyer, event.id, seat).status_code == 201
    assert listing(buyer, event.id)[seat]["held_by_me"] is True

    # Unblocking a seat that is not blocked is refused.
    response = seat_control(staff_client, via, event.id, seat, "unblock")
    if via == "form":
        assert ("error", "This seat is not blocked.") in flashes(follow(staff_client, response))
    else:
        assert_json_error(response, 409, "not_blocked")

    entries = audit_rows(app, target=f"event:{event.id}:seat:{seat}")
    assert [(e.action, e.actor_id, json.loads(e.before), json.loads(e.after)) for e in entries] == [
        ("seat.block", staff_user.id, "available", "blocked"),
        ("seat.block", staff_user.id, "available", "blocked"),
        ("seat.unblock", staff_user.id, "blocked", "available"),
    ]


@pytest.mark.parametrize("via", ["form", "api"])
def test_blocking_a_held_seat_is_refused_and_the_hold_stays(
    app, r, staff, entered, make_event, via
):
    _, staff_client = staff
    event = make_event(admission="open", sections=SECTIONS)
    _, buyer = entered(event)
    seat = seat_ids(app, event.id)[0]
    token = hold(buyer, event.id, seat).get_json()["token"]
    response = seat_control(staff_client, via, event.id, seat, "block")
    reason = "This seat cannot be blocked: someone is holding it."
    if via == "form":
        assert ("error", reason) in flashes(follow(staff_client, response))
    else:
        assert assert_json_error(response, 409, "seat_held")["message"] == reason
    mine = listing(buyer, event.id)[seat]
    assert mine["held_by_me"] is True and mine["token"] == token
    assert r.hget(keys.event(event.id).seats, seat).startswith("held:")
    assert seat_status_in_db(app, seat) == "available"
    assert not audit_rows(app, action="seat.block")


@pytest.mark.parametrize("via", ["form", "api"])
def test_staff_release_ends_the_hold(app, staff, entered, make_event, via):
    staff_user, staff_client = staff
    event = make_event(admission="open", sections=SECTIONS)
    buyer_user, buyer = entered(event)
    seat = seat_ids(app, event.id)[2]
    token = hold(buyer, event.id, seat).get_json()["token"]
    assert staff_client.get(f"/api/admin/events/{event.id}/stats").json["held"] == 1

    response = seat_control(staff_client, via, event.id, seat, "release")
    if via == "form":
        assert ("info", "Seat A A3: hold released.") in flashes(follow(staff_client, response))
    else:
        assert response.get_json() == {"seat_id": seat, "status": "available"}
    mine = listing(buyer, event.id)[seat]
    assert mine["status"] == "available" and mine["held_by_me"] is False
    assert_json_error(pay(buyer, event.id, [(seat, token)]), 409)
    with app.app_context():
        assert Booking.select().count() == 0
    assert staff_client.get(f"/api/admin/events/{event.id}/stats").json["held"] == 0

    # Nothing left to release.
    response = seat_control(staff_client, via, event.id, seat, "release")
    if via == "form":
        assert flashes(follow(staff_client, response))[0][0] == "error"
    else:
        assert_json_error(response, 409, "not_held")
    [entry] = audit_rows(app, action="seat.release")
    assert entry.actor_id == staff_user.id and entry.target == f"event:{event.id}:seat:{seat}"
    assert json.loads(entry.before) == f"held by user {buyer_user.id} (token {token})"
    assert json.loads(entry.after) == "available"


def test_seat_controls_on_an_unknown_seat_are_404(app, staff, make_event):
    _, client = staff
    event = make_event()
    other = make_event()
    foreign = seat_ids(app, other.id)[0]  # a real seat, of another event
    for via in ("form", "api"):
        for action in ("block", "unblock", "release"):
            assert seat_control(client, via, event.id, foreign, action).status_code == 404
    assert seat_status_in_db(app, foreign) == "available"


# The queue: remove a person


def test_remove_from_the_queue(app, r, staff, make_user, make_event):
    staff_user, client = staff
    event = first_tick(app, make_event(admission="paused"))
    k = keys.event(event.id)
    by_email, by_id, by_api, stays = (make_user() for _ in range(4))
    join_directly(app, event.id, [by_email.id, by_id.id, stays.id, by_api.id])

    response = client.post(
        f"/admin/events/{event.id}/queue/remove", data={"person": f"  {by_email.email.upper()} "}
    )
    assert response.headers["Location"] == f"/admin/events/{event.id}"
    assert ("info", f"{by_email.email} was removed from the queue.") in flashes(
        follow(client, response)
    )
    response = client.post(f"/admin/events/{event.id}/queue/remove", data={"person": str(by_id.id)})
    assert ("info", f"{by_id.email} was removed from the queue.") in flashes(
        follow(client, response)
    )
    assert client.delete(f"/api/admin/events/{event.id}/queue/{by_api.id}").status_code == 204

    assert r.zrange(k.queue, 0, -1) == [str(stays.id)]
    for gone in (by_email, by_id, by_api):
        assert r.zscore(k.heartbeat, str(gone.id)) is None
    with app.app_context():
        assert waiting_room.poll(event.id, stays.id).position == 1
    entries = audit_rows(app, action="queue.remove")
    assert [(e.actor_id, e.target, json.loads(e.before), json.loads(e.after)) for e in entries] == [
        (staff_user.id, f"event:{event.id}:user:{u.id}", "in the queue or active", "removed")
        for u in (by_email, by_id, by_api)
    ]

    # Someone not in the queue, and nobody at all.
    response = client.post(
        f"/admin/events/{event.id}/queue/remove", data={"person": by_email.email}
    )
    assert ("info", f"{by_email.email} was not in the queue.") in flashes(follow(client, response))
    for person in ("nobody@example.com", "", "99999999999999999999999"):
        response = client.post(f"/admin/events/{event.id}/queue/remove", data={"person": person})
        assert ("error", "No such person (give an email or a user id).") in flashes(
            follow(client, response)
        )
    assert r.zrange(k.queue, 0, -1) == [str(stays.id)]


def test_removing_an_absurd_user_id_is_not_a_500(app, staff, make_event):
    _, client = staff
    event = make_event()
    response = client.delete(f"/api/admin/events/{event.id}/queue/{'9' * 95}")
    assert response.status_code in (204, 404), response.status_code


# The live fragment: numbers, chart, seat map


def test_the_live_fragment(app, staff, entered, make_user, make_event):
    _, staff_client = staff
    event = make_event(admission="open", sections=SECTIONS)
    ids = seat_ids(app, event.id)
    holder_user, holder = entered(event)
    buyer_user, buyer = entered(event)
    assert hold(holder, event.id, ids[0]).status_code == 201
    token = hold(buyer, event.id, ids[1]).get_json()["token"]
    assert pay(buyer, event.id, [(ids[1], token)]).status_code == 201
    assert seat_control(staff_client, "api", event.id, ids[2], "block").status_code == 200
    with app.app_context():
        sold_at = Booking.get(Booking.user == buyer_user.id).created_at

    response = staff_client.get(f"/admin/events/{event.id}/live")
    assert response.status_code == 200
    page = text(response)
    assert not page.lstrip().startswith("<!doctype")  # a fragment, not a whole page
    assert 'hx-trigger="every 2s"' in page
    assert f'hx-get="/admin/events/{event.id}/live"' in page
    assert re.search(r'<svg[^>]*viewBox="0 0 350 88"', page)
    assert len(re.findall(r'<polyline points="[^"]*"', page)) == 3

    cells = seat_cells(page)
    assert sorted(cells) == ids
    held, booked, blocked, free = (cells[i] for i in ids[:4])
    assert held["class"] == "seat held" and held["text"] == "H"
    tip = re.fullmatch(
        rf"A A1: held by {re.escape(holder_user.email)}, (\d+) s left", held["title"]
    )
    assert tip and 0 < int(tip.group(1)) <= event.hold_ttl, held["title"]
    assert held["aria-label"].startswith(f"A A1: held by {holder_user.email}, ")
    assert booked["class"] == "seat booked" and booked["text"] == "B"
    assert booked["title"] == f"A A2: booked by {buyer_user.email} at {sold_at:%H:%M:%S} UTC"
    assert booked["aria-label"].endswith(f"booked by {buyer_user.email} at {sold_at:%H:%M:%S} UTC")
    assert blocked["class"] == "seat blocked" and blocked["text"] == "X"
    assert blocked["title"] == "A A3: blocked"
    assert free["class"] == "seat available" and free["text"] == ""
    assert free["title"] == "A B1: available" and free["data-tip"] == free["title"]

    numbers = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", page))
    assert numbers["Held"] == "1" and numbers["Blocked"] == "1" and numbers["Available"] == "3"
    assert (
        numbers["Booked"].startswith("1 ") and "(1 booking in the last minute)" in numbers["Booked"]
    )
    assert numbers["Admitted in all"] == "2" and numbers["Removed by cleanup"] == "0"
    assert numbers["Active / cap"].endswith("/ 10,000")

    # The whole page includes the fragment; a selected seat gets its controls.
    page = text(staff_client.get(f"/admin/events/{event.id}?seat={ids[0]}"))
    assert 'id="live"' in page and 'hx-trigger="every 2s"' in page
    assert f'hx-get="/admin/events/{event.id}/live?seat={ids[0]}"' in page
    assert "seat held selected" in page and "Seat A A1</h3>" in page


def test_the_selected_seat_panel_keeps_its_text(app, staff, entered, make_event):
    _, staff_client = staff
    event = make_event(admission="open", sections=SECTIONS)
    seat = seat_ids(app, event.id)[0]
    _, buyer = entered(event)
    token = hold(buyer, event.id, seat).get_json()["token"]
    assert pay(buyer, event.id, [(seat, token)]).status_code == 201
    page = text(staff_client.get(f"/admin/events/{event.id}/live?seat={seat}"))
    panel = page.split('id="seat-controls"', 1)[1]
    assert re.search(r"<p>Booked by \S+ at \d\d:\d\d:\d\d UTC ·", panel), panel[:300]


def test_a_paused_queue_never_clears(app, staff, make_event):
    _, client = staff
    event = make_event(admission="open", admit_rate=2)
    join_directly(app, event.id, range(9_300_001, 9_300_007))
    assert tick(app, event.id)["admitted"] == 2
    change_settings(client, "form", event.id, admission="paused")
    assert tick(app, event.id)["status"] == "paused"
    numbers = dict(
        re.findall(
            r"<dt>(.*?)</dt><dd>(.*?)</dd>", text(client.get(f"/admin/events/{event.id}/live"))
        )
    )
    assert numbers["Waiting"] == "4"
    assert numbers["Queue clears in"] == "—", numbers["Queue clears in"]


# The chart: samples kept by the admission tick


def samples(r, event_id) -> list[tuple[int, ...]]:
    lines = r.lrange(keys.event(event_id).samples, 0, -1)
    for line in lines:
        assert re.fullmatch(r"\d+ \d+ \d+ \d+", line), line
    return [tuple(int(v) for v in line.split()) for line in lines]


def redis_ms(r) -> int:
    seconds, micros = r.time()
    return seconds * 1000 + micros // 1000


def test_admission_ticks_keep_chart_samples(app, r, make_event):
    event = make_event(admission="open", max_active=3)
    join_directly(app, event.id, range(9_400_001, 9_400_006))
    start = redis_ms(r)
    for _ in range(5):
        tick(app, event.id)
    elapsed = redis_ms(r) - start
    kept = samples(r, event.id)
    assert 1 <= len(kept) <= 1 + elapsed // waiting_room.SAMPLE_EVERY_MS
    ms, waiting, active, admitted_total = kept[0]
    assert start <= ms <= start + elapsed
    assert (waiting, active, admitted_total) == (2, 3, 3)  # sampled after the first tick
    gaps = [b[0] - a[0] for a, b in zip(kept, kept[1:], strict=False)]
    assert all(gap >= waiting_room.SAMPLE_EVERY_MS for gap in gaps)

    # Paused ticks sample too (the chart keeps moving while nobody is let in).
    k = keys.event(event.id)
    r.hset(k.tick, "sampled_ms", redis_ms(r) - waiting_room.SAMPLE_EVERY_MS)
    r.hset(k.config, "state", "paused")
    assert tick(app, event.id)["status"] == "paused"
    assert len(samples(r, event.id)) == len(kept) + 1
    assert samples(r, event.id)[-1][1:] == (2, 3, 3)


def test_chart_samples_are_capped(app, r, make_event):
    event = make_event(admission="open")
    k = keys.event(event.id)
    r.rpush(k.samples, *[f"{1000 + i * 5000} {i} 0 0" for i in range(200)])
    tick(app, event.id)
    kept = r.lrange(k.samples, 0, -1)
    assert len(kept) == waiting_room.SAMPLES_KEPT == 180
    assert kept[0] == f"{1000 + 21 * 5000} 21 0 0"  # the oldest went
    assert int(kept[-1].split()[0]) > 10**12  # the new one, in ms since the epoch


def test_chart_series_from_samples(app, ctx, r, make_event):
    event = make_event(admission="open")
    r.rpush(keys.event(event.id).samples, "1000 10 0 0", "6000 8 2 2", "11000 0 10 12")
    waiting, active, rate = charts.for_event(event.id, admit_rate=4)
    assert waiting["title"] == "Waiting" and waiting["points"] == "0.0,0.0 150.0,12.0 300.0,60.0"
    assert waiting["last"] == 0 and waiting["top"] == 10 and waiting["minutes"] == 0.2
    assert active["points"] == "0.0,60.0 150.0,48.0 300.0,0.0"
    assert rate["points"] == "0.0,60.0 150.0,54.0 300.0,30.0"  # 0, 0.4/s, 2/s against 4
    assert rate["reference"] == 4 and rate["reference_y"] == 0.0 and rate["last"] == 2.0
    empty = charts.series("Waiting", [], [])
    assert empty["points"] == "" and empty["last"] == 0


def test_the_event_page_renders_before_the_first_tick(app, staff, r, make_event):
    _, client = staff
    event = make_event(admission="closed")  # the admission job never ticks closed events
    assert r.llen(keys.event(event.id).samples) == 0
    for path in (
        f"/admin/events/{event.id}",
        f"/admin/events/{event.id}/live",
        f"/admin/events/{event.id}/what-if?rate=1&cap=1",
    ):
        assert client.get(path).status_code == 200, path


# What if


def test_time_to_admit():
    tta = capacity.time_to_admit
    # Rate-limited: the cap sustains more than the rate.
    assert tta(1000, 10, 10_000, 300) == {
        "seconds": 100.0,
        "sustained_rate": 10,
        "limited_by": "rate",
    }
    # Cap-limited: 10 free slots fill at once, then 10 per 100 s window.
    result = tta(1000, 100, 10, 100)
    assert result["limited_by"] == "cap" and result["sustained_rate"] == pytest.approx(0.1)
    assert result["seconds"] == pytest.approx(10 / 100 + 990 / 0.1)
    # People already active take slots.
    assert tta(20, 10, 10, 100, active_now=10)["seconds"] == pytest.approx(200)
    assert tta(20, 10, 10, 100, active_now=50)["seconds"] == pytest.approx(200)
    # Nobody waiting.
    assert tta(0, 10, 5, 300)["seconds"] == 0
    assert tta(0, 10, 5, 300, active_now=5)["seconds"] == 0
    # No window length: the rate alone.
    assert tta(50, 5, 10, 0) == {"seconds": 10.0, "sustained_rate": 5, "limited_by": "rate"}
    assert tta(5, 0, 10, 300)["seconds"] == math.inf
    # A higher rate or cap never makes it slower.
    for waiting in (1, 7, 500):
        assert tta(waiting, 20, 5, 60)["seconds"] <= tta(waiting, 10, 5, 60)["seconds"]
        assert tta(waiting, 10, 50, 60)["seconds"] <= tta(waiting, 10, 5, 60)["seconds"]


def prediction(page: str) -> str:
    match = re.search(r'<p role="status">(.*?)</p>', page.split('id="whatif-h"', 1)[1], re.S)
    assert match, page
    assert re.search(r"about <strong>[^<]+</strong>|Nobody", match.group(1)), match.group(1)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", match.group(1))).split())


@pytest.mark.parametrize("rate, cap, limited_by", [(10, 5, "cap"), (1, 1000, "rate")])
def test_what_if_matches_time_to_admit(app, staff, make_event, rate, cap, limited_by):
    _, client = staff
    event = first_tick(app, make_event(admission="paused", active_ttl=100))
    join_directly(app, event.id, range(9_500_001, 9_500_013))
    response = client.get(f"/admin/events/{event.id}/what-if?rate={rate}&cap={cap}")
    assert response.status_code == 200
    page = text(response)
    expected = capacity.time_to_admit(12, rate, cap, 100, 0)
    assert expected["limited_by"] == limited_by
    duration = i18n.duration(int(round(expected["seconds"])))
    said = prediction(page)
    assert said.startswith(f"Letting in all 12 people waiting takes about {duration}:"), said
    assert f"the cap sustains {expected['sustained_rate']:.3g} people/s" in said
    assert f"(limited by the {limited_by};" in said
    assert f'name="rate" min="1" value="{rate}"' in page
    assert f'name="cap" min="1" value="{cap}"' in page
    assert 'id="live"' in page and 'id="audit-h"' in page


def test_what_if_shows_the_poll_intervals_and_load_for_a_crowd_and_budget(app, staff, make_event):
    _, client = staff
    event = first_tick(app, make_event(admission="paused"))
    page = text(
        client.get(f"/admin/events/{event.id}/what-if?rate=700&cap=10000&crowd=1000000&budget=5000")
    )
    caption = re.search(r"<caption>(.*?)</caption>", page, re.S).group(1)
    total = int(re.search(r"poll ([\d,]+) times a second", caption).group(1).replace(",", ""))
    rule = capacity.PollRule.of(app.config["POLL_TIERS"], 5_000, event.active_ttl, 700)
    assert total == round(capacity.load(1_000_000, capacity.scale_for(1_000_000, rule), rule))
    assert 4_950 <= total <= 5_000 and "budget 5,000" in caption
    rows = re.findall(r"<tr><td>([\d,]+)–", page)
    assert rows == ["1", "1,001", "5,001", "10,001", "100,001"]  # one row per tier
    assert 'name="crowd" min="0" value="1000000"' in page
    assert 'name="budget" min="100" value="5000"' in page
    # The event's own budget when none is given; nobody waiting: no table.
    page = text(client.get(f"/admin/events/{event.id}/what-if?rate=700&cap=10000"))
    assert (
        f'name="budget" min="100" value="{event.poll_budget}"' in page and "<caption>" not in page
    )
    for bad in ("crowd=-1", "budget=99", "budget=x", f"crowd={10**9}"):
        response = client.get(f"/admin/events/{event.id}/what-if?rate=1&cap=1&{bad}")
        assert response.status_code == 302, bad


def test_the_poll_budget_is_a_live_setting_on_the_staff_page(app, staff, make_event):
    _, client = staff
    event = make_event(admission="paused")
    change_settings(client, "form", event.id, poll_budget=2_500)
    page = text(client.get(f"/admin/events/{event.id}"))
    assert 'name="poll_budget" min="100" value="2500"' in page
    assert client.get(f"/api/events/{event.id}").get_json()["poll_budget"] == 2_500
    response = client.post(f"/admin/events/{event.id}/settings", data={"poll_budget": "5"})
    assert flashes(follow(client, response))[0][0] == "error"


def test_what_if_with_nobody_waiting(app, staff, make_event):
    _, client = staff
    event = first_tick(app, make_event())
    page = text(client.get(f"/admin/events/{event.id}/what-if?rate=10&cap=5"))
    assert prediction(page) == "Nobody is waiting right now."


@pytest.mark.parametrize(
    "query",
    [
        "rate=0&cap=5",
        "rate=abc&cap=5",
        "rate=10",
        "cap=5",
        "",
        "rate=-1&cap=5",
        "rate=1.5&cap=5",
        "rate=10&cap=0",
        "rate=100001&cap=5",
        "rate=10&cap=1000001",
        "rate=1e3&cap=5",
        f"rate={'9' * 5000}&cap=5",
    ],
)
def test_what_if_with_bad_input(app, staff, make_event, query):
    _, client = staff
    event = first_tick(app, make_event())
    response = client.get(f"/admin/events/{event.id}/what-if?{query}")
    assert response.headers["Location"] == f"/admin/events/{event.id}"
    [(category, message)] = flashes(follow(client, response))
    assert category == "error" and message.startswith("What-if needs a rate"), message


# The audit log on the event page


def test_the_event_page_shows_the_audit_log_newest_first(
    app, staff, entered, make_user, make_event
):
    staff_user, client = staff
    event = make_event(admission="open", sections=SECTIONS)
    ids = seat_ids(app, event.id)
    buyer_user, buyer = entered(event)
    waiting = make_user()
    join_directly(app, event.id, [waiting.id])
    client.post(f"/admin/events/{event.id}/settings", data={"admit_rate": "9"})
    client.post(f"/admin/events/{event.id}/seats/{ids[4]}/block")
    client.post(f"/admin/events/{event.id}/seats/{ids[4]}/unblock")
    hold(buyer, event.id, ids[5])
    client.post(f"/admin/events/{event.id}/seats/{ids[5]}/release", data={"confirmed": "yes"})
    client.post(f"/admin/events/{event.id}/queue/remove", data={"person": waiting.email})

    shown = audit_table(text(client.get(f"/admin/events/{event.id}")))
    # Sentences, in the form's words, with seat labels and emails (no ids,
    # no JSON, no machine codes).
    assert [row["what"] for row in shown] == [
        f"Removed {waiting.email} from the queue",
        f"Released the hold of {buyer_user.email} on A B3",
        "Put A B2 back on sale",
        "Blocked A B2",
        "Let in per second: 700 → 9",  # only what changed
        "Admission: paused → open",  # make_event opened it (no actor)
        "Created the event Test event",
    ]
    assert [row["actor"] for row in shown] == [staff_user.email] * 5 + ["the system"] * 2
    page = text(client.get(f"/admin/events/{event.id}"))
    assert f"seat:{ids[4]}" not in page and "event.update" not in page and "{&#34;" not in page
    stamps = [row["at"] for row in shown]
    assert stamps == sorted(stamps, reverse=True)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", at) for at in stamps), stamps
    # Shown the locale's way (English here: "Jan 5, 2030, 3:04:05 PM"; test_i18n.py: Korean).
    assert all(
        re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d\d:\d\d\W[AP]M", row["shown_at"])
        for row in shown
    ), shown
    with app.app_context():
        assert AuditLog.select().where(AuditLog.actor == staff_user.id).count() == 5


def test_a_settings_change_reads_with_the_form_labels(app, staff, make_event):
    staff_user, client = staff
    event = first_tick(app, make_event(admission="paused"))
    client.post(
        f"/admin/events/{event.id}/settings",
        data={"max_active": "50", "max_seats_per_person": "2", "admit_rate": "700"},
    )
    client.post(f"/admin/events/{event.id}/settings", data={"bot_protection": "on"})
    client.post(f"/admin/events/{event.id}/settings", data={"admit_rate": "700"})
    latest, bots, cap, _ = audit_table(text(client.get(f"/admin/events/{event.id}")))
    assert cap["what"] == "Most people booking at once: 10,000 → 50; Seats per person: 4 → 2"
    assert cap["actor"] == staff_user.email
    assert bots["what"] == "Bot check on joins: off → on"
    assert latest["what"] == "Saved the settings; nothing changed"


def test_the_audit_log_pages_newest_first(app, staff, make_event):
    _, client = staff
    event = first_tick(app, make_event(admission="paused"))
    for cap in range(1, 46):  # 45 changes and the creation: 46 entries
        client.post(f"/admin/events/{event.id}/settings", data={"max_active": str(cap)})
    first = text(client.get(f"/admin/events/{event.id}"))
    shown = audit_table(first)
    assert len(shown) == 20 and shown[0]["what"].endswith("44 → 45")
    assert f'href="/admin/events/{event.id}?page=2#audit-h">Older →' in first
    assert "← Newer" not in first and "Page 1" in first

    second = text(client.get(f"/admin/events/{event.id}?page=2"))
    assert audit_table(second)[0]["what"].endswith("24 → 25")
    assert f'href="/admin/events/{event.id}#audit-h">← Newer' in second
    assert "?page=3#audit-h" in second

    last = text(client.get(f"/admin/events/{event.id}?page=3"))
    rows = audit_table(last)
    assert len(rows) == 6 and rows[-1]["what"] == "Created the event Test event"
    assert "Older →" not in last and "?page=2#audit-h" in last
    # Past the end or nonsense: no 500.
    assert client.get(f"/admin/events/{event.id}?page=99").status_code == 200
    assert client.get(f"/admin/events/{event.id}?page=-3").status_code == 200


def test_the_audit_log_shows_only_this_event(app, staff, make_event):
    _, client = staff
    event = first_tick(app, make_event(admission="paused"))
    with app.app_context():  # the next event's id starts with this one's digits
        Event.create(
            id=event.id * 10,
            name="placeholder",
            max_active=1,
            admit_rate=1,
            active_ttl=10,
            hold_ttl=1,
        )
    other = make_event(admission="paused")
    assert str(other.id).startswith(str(event.id)) and other.id != event.id
    seat = seat_ids(app, other.id)[0]
    assert seat_control(client, "api", other.id, seat, "block").status_code == 200
    shown = audit_table(text(client.get(f"/admin/events/{event.id}")))
    assert [row["what"] for row in shown] == ["Created the event Test event"]


# Escaping


def test_names_and_emails_are_escaped_everywhere(app, staff, make_user, login, entered, make_event):
    _, plain_staff = staff
    evil_staff = make_user(email=f"{IMG}@staff.example", staff=True)
    evil_client = login(app.test_client(), evil_staff)
    event = make_event(
        admission="open", sections=[{"name": SCRIPT, "rows": 1, "seats_per_row": 3, "price": 10}]
    )
    with app.app_context():
        Event.update(name=f"{SCRIPT} {IMG}").where(Event.id == event.id).execute()
    ids = seat_ids(app, event.id)
    holder_user, holder = entered(event, email=f"{SCRIPT}@buyer.example")
    assert hold(holder, event.id, ids[0]).status_code == 201
    join_directly(app, event.id, [evil_staff.id])
    blocked = evil_client.post(f"/admin/events/{event.id}/seats/{ids[1]}/block")
    removed = evil_client.post(
        f"/admin/events/{event.id}/queue/remove", data={"person": evil_staff.email}
    )

    pages = {
        "index": evil_client.get("/admin/"),
        "event": evil_client.get(f"/admin/events/{event.id}?seat={ids[0]}"),
        "live": plain_staff.get(f"/admin/events/{event.id}/live?seat={ids[0]}"),
        "flash": evil_client.get(blocked.headers["Location"]),
        "flash2": plain_staff.get(removed.headers["Location"]),
        "what-if": plain_staff.get(f"/admin/events/{event.id}/what-if?rate=1&cap=1"),
    }
    for name, response in pages.items():
        assert response.status_code == 200, name
        page = text(response)
        assert "<script>alert" not in page and "<img src=x" not in page, name
    index, event_page, live = (text(pages[n]) for n in ("index", "event", "live"))
    escaped_name = (
        "&lt;script&gt;alert(1)&lt;/script&gt; &#34;&gt;&lt;img src=x onerror=alert(1)&gt;"
    )
    assert escaped_name in index and escaped_name in event_page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;@buyer.example" in live  # the tooltip
    assert seat_cells(live)[ids[0]]["title"].startswith(f"{SCRIPT} A1: held by {SCRIPT}@buyer")
    shown = audit_table(event_page)
    assert shown[0]["actor"] == evil_staff.email
    assert shown[0]["what"] == f"Removed {evil_staff.email} from the queue"
    assert shown[1]["what"] == f"Blocked {SCRIPT} A2"


# Numbers (JSON)


def test_stats_count_live_holds_and_cleanup(app, r, staff, entered, make_event):
    _, client = staff
    event = make_event(admission="open", sections=SECTIONS)
    _, buyer = entered(event)
    stats = client.get(f"/api/admin/events/{event.id}/stats").get_json()
    assert stats["held"] == 0 and stats["cleanup_removed"] == 0 and stats["available"] == 6
    assert hold(buyer, event.id, seat_ids(app, event.id)[0]).status_code == 201

    k = keys.event(event.id)
    join_directly(app, event.id, [9_600_001, 9_600_002, 9_600_003])
    r.zadd(k.heartbeat, {"9600001": 0, "9600002": 0})  # they stopped polling long ago
    with app.app_context():
        assert waiting_room.clean_up(event.id, timeout_s=300, batch=1000, pause_s=0) == 2
    stats = client.get(f"/api/admin/events/{event.id}/stats").get_json()
    assert stats["held"] == 1 and stats["available"] == 5
    assert stats["cleanup_removed"] == 2 and stats["waiting"] == 1
    assert stats["admission"] == "open" and stats["active"] == 1
    numbers = dict(
        re.findall(
            r"<dt>(.*?)</dt><dd>(.*?)</dd>", text(client.get(f"/admin/events/{event.id}/live"))
        )
    )
    assert numbers["Removed by cleanup"] == "2" and numbers["Held"] == "1"


# Controls by state, confirmations, bulk block (issue 16)


def admission_buttons(page: str) -> list[tuple[str, str]]:
    """The admission buttons of the event page: [(value, class)]."""
    return re.findall(
        r'<button type="submit" name="admission" value="(\w+)"(?: class="([\w ]+)")?>', page
    )


@pytest.mark.parametrize(
    "state, buttons",
    [
        ("paused", [("open", "primary"), ("closed", "danger")]),
        ("open", [("paused", "primary"), ("closed", "danger")]),
        ("closed", [("open", "primary"), ("paused", "")]),
    ],
)
def test_the_admission_buttons_follow_the_state(app, staff, make_event, state, buttons):
    _, client = staff
    event = first_tick(app, make_event(admission=state))
    assert admission_buttons(text(client.get(f"/admin/events/{event.id}"))) == buttons


def test_closing_asks_first(app, r, staff, make_event):
    _, client = staff
    event = first_tick(app, make_event(admission="open"))
    response = client.post(f"/admin/events/{event.id}/settings", data={"admission": "closed"})
    assert response.status_code == 200  # the confirmation page: nothing changed yet
    page = text(response)
    assert "Close admission for Test event?" in page and "Yes, close admission" in page
    [form] = [f for f in post_forms(page) if f["action"].endswith("/settings")]
    assert form["inputs"]["admission"] == "closed" and form["inputs"]["confirmed"] == "yes"
    with app.app_context():
        assert Event.get_by_id(event.id).admission == "open"
    assert [e.action for e in audit_rows(app)] == ["event.create", "event.update"]

    response = client.post(f"/admin/events/{event.id}/settings", data=form["inputs"])
    assert ("info", "Saved: Admission = closed") in flashes(follow(client, response))
    with app.app_context():
        assert Event.get_by_id(event.id).admission == "closed"


def test_the_seat_box_offers_what_the_seat_state_allows(app, staff, entered, make_event):
    _, client = staff
    event = make_event(admission="open", sections=SECTIONS)
    free, blocked, held, paying, sold = seat_ids(app, event.id)[:5]
    client.post(f"/admin/events/{event.id}/seats/{blocked}/block")
    _, buyer = entered(event)
    _, other = entered(event)  # (paying ends one's other holds)
    token = hold(other, event.id, sold).get_json()["token"]
    assert pay(other, event.id, [(sold, token)]).status_code == 201
    assert hold(buyer, event.id, held).status_code == 201

    def actions(seat):
        page = text(client.get(f"/admin/events/{event.id}/live?seat={seat}"))
        box = page.split('id="seat-controls"', 1)[1]
        return [
            f["action"].rsplit("/", 1)[1]
            for f in post_forms(box)
            if f"/seats/{seat}/" in f["action"]
        ]

    assert actions(free) == ["block"]
    assert actions(blocked) == ["unblock"]
    assert actions(held) == ["release", "release_and_block"]
    assert actions(sold) == []
    page = text(client.get(f"/admin/events/{event.id}/live?seat={sold}"))
    assert "Sold: staff cannot change a sold seat here." in page
    assert 'name="row" value="B"' in page.split('id="seat-controls"', 1)[1]  # the row's bulk form


def test_releasing_a_hold_asks_first_then_release_and_block(app, r, staff, entered, make_event):
    staff_user, client = staff
    event = make_event(admission="open", sections=SECTIONS)
    seat = seat_ids(app, event.id)[0]
    _, buyer = entered(event)
    assert hold(buyer, event.id, seat).status_code == 201
    for action in ("release", "release_and_block"):
        response = client.post(f"/admin/events/{event.id}/seats/{seat}/{action}")
        assert response.status_code == 200 and "Release the hold on A A1" in text(response)
    assert r.hget(keys.event(event.id).seats, seat).startswith("held:")
    assert not audit_rows(app, action="seat.release")

    response = client.post(
        f"/admin/events/{event.id}/seats/{seat}/release_and_block", data={"confirmed": "yes"}
    )
    assert ("info", "Seat A A1: hold released and blocked.") in flashes(follow(client, response))
    assert seat_status_in_db(app, seat) == "blocked"
    assert listing(buyer, event.id)[seat]["status"] == "blocked"
    assert [e.action for e in audit_rows(app, target=f"event:{event.id}:seat:{seat}")] == [
        "seat.release",
        "seat.block",
    ]


def test_bulk_block_of_a_row_skips_taken_seats_and_unblock_puts_them_back(
    app, r, staff, entered, make_event
):
    staff_user, client = staff
    sections = [{"name": "Floor", "rows": 2, "seats_per_row": 5, "price": 10}]
    event = make_event(admission="open", sections=sections)
    ids = seat_ids(app, event.id)  # row A: ids[:5], row B: ids[5:]
    _, buyer = entered(event)
    _, other = entered(event)  # (paying ends one's other holds)
    token = hold(other, event.id, ids[1]).get_json()["token"]
    assert pay(other, event.id, [(ids[1], token)]).status_code == 201
    assert hold(buyer, event.id, ids[0]).status_code == 201
    client.post(f"/admin/events/{event.id}/seats/{ids[2]}/block")

    form = {"section": "Floor", "row": "A", "blocked": "on"}
    response = client.post(f"/admin/events/{event.id}/seats/bulk", data=form)
    assert response.status_code == 200  # asks first, with the numbers
    page = html.unescape(text(response))
    assert "Block the 2 free seats of Floor, row A?" in page
    assert "2 seats held, being paid for or sold are skipped." in page
    assert not audit_rows(app, action="seats.block")

    response = client.post(f"/admin/events/{event.id}/seats/bulk", data=form | {"confirmed": "yes"})
    message = (
        "Floor, row A: 2 seats blocked; 2 skipped (held, being paid for or sold); "
        "1 already blocked."
    )
    assert ("info", message) in flashes(follow(client, response))
    states = {s: seat_status_in_db(app, s) for s in ids}
    assert [states[s] for s in ids[:5]] == ["available", "booked", "blocked", "blocked", "blocked"]
    assert set(states[s] for s in ids[5:]) == {"available"}  # the other row is untouched
    assert r.hget(keys.event(event.id).seats, ids[0]).startswith("held:")  # the hold stays
    assert r.hget(keys.event(event.id).seats, ids[3]) == "blocked"
    assert_json_error(hold(buyer, event.id, ids[4]), 409, "seat_blocked")
    [entry] = audit_rows(app, action="seats.block")
    assert entry.actor_id == staff_user.id and entry.target == f"event:{event.id}:seats"
    assert json.loads(entry.before) == {"section": "Floor", "row": "A"}
    assert json.loads(entry.after) == {"changed": 2, "already": 1, "skipped": 2}

    # Unblocking the whole section asks nothing and frees the three.
    response = client.post(
        f"/admin/events/{event.id}/seats/bulk", data={"section": "Floor", "blocked": "off"}
    )
    assert ("info", "Floor (every row): 3 seats back on sale.") in flashes(follow(client, response))
    assert [seat_status_in_db(app, s) for s in ids[2:5]] == ["available"] * 3
    assert r.hget(keys.event(event.id).seats, ids[3]) is None
    assert hold(buyer, event.id, ids[3]).status_code == 201
    shown = audit_table(text(client.get(f"/admin/events/{event.id}")))
    assert shown[0]["what"] == "Put 3 seats of Floor (every row) back on sale"
    assert shown[1]["what"] == (
        "Blocked 2 seats of Floor, row A; 2 skipped (held, being paid for or sold)"
    )


def test_bulk_block_of_a_row_that_does_not_exist(app, staff, make_event):
    _, client = staff
    event = first_tick(app, make_event(admission="paused"))
    response = client.post(
        f"/admin/events/{event.id}/seats/bulk",
        data={"section": "A", "row": "Z", "blocked": "on", "confirmed": "yes"},
    )
    assert ("error", "A, row Z has no seats.") in flashes(follow(client, response))
    assert [e.action for e in audit_rows(app)] == ["event.create"]


@pytest.mark.parametrize(
    "form, says",
    [
        ({"max_active": "0"}, "Most people booking at once: should be 1 or more"),
        ({"admit_rate": "x"}, "Let in per second: x is not a whole number"),
        ({"poll_budget": "5"}, "Poll budget per second: should be 100 or more"),
        ({"max_seats_per_person": "99"}, "Seats per person: should be 20 or less"),
    ],
)
def test_settings_problems_name_the_form_label(app, staff, make_event, form, says):
    _, client = staff
    event = first_tick(app, make_event(admission="paused"))
    response = client.post(f"/admin/events/{event.id}/settings", data=form)
    [(category, message)] = flashes(follow(client, response))
    assert (category, message) == ("error", f"Nothing changed: {says}")
    assert "max_active" not in message and "_" not in message


def test_the_api_keeps_its_field_names(app, staff, make_event):
    _, client = staff
    event = make_event()
    response = client.patch(f"/api/admin/events/{event.id}", json={"max_active": 0})
    assert assert_json_error(response, 422, "invalid")["message"].startswith("max_active: ")


def test_the_charts_have_axes_and_end_at_the_cards(app, r, staff, make_event):
    _, client = staff
    event = first_tick(app, make_event(admission="paused"))
    join_directly(app, event.id, [9_300_001, 9_300_002, 9_300_003])  # after the only sample
    page = text(client.get(f"/admin/events/{event.id}/live"))
    numbers = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", page))
    assert numbers["Waiting"] == "3"
    assert "<strong>Waiting</strong>: 3 now" in page  # the chart agrees with the card
    assert page.count(">now</text>") == 3 and ">0</text>" in page
    assert "dashed line: the set rate, 700 per second" in page
    assert "top " not in page and " min)" not in page  # no cryptic "(top 21; 2.6 min)"
