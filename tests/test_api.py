"""The JSON API contract (docs/API.md): paths, fields, status codes, errors."""

import json

import pytest
from helpers import assert_error

from app import keys, waiting_room
from app.models import AuditLog, Event, Seat, User

# The test app's JWT_SECRET is short on purpose; pyjwt warns about it.


SECTIONS = [
    {"name": "Floor", "rows": 3, "seats_per_row": 4, "price": 12000},
    {"name": "Balcony", "rows": 2, "seats_per_row": 5, "price": 8000},
]


# Accounts


def test_register(client, app):
    response = client.post(
        "/api/auth/register", json={"email": "new@example.com", "password": "password123"}
    )
    assert response.status_code == 201, response.json
    body = response.json
    assert body["email"] == "new@example.com"
    assert isinstance(body["id"], int)
    assert body["points"] == app.config["STARTING_POINTS"] == 100_000
    with app.app_context():
        user = User.get_by_id(body["id"])
        assert user.points == 100_000 and not user.is_staff
        assert user.password_hash != "password123"


def test_register_with_a_name_and_login(client):
    assert (
        client.post(
            "/api/auth/register",
            json={"email": "Named@Example.com", "password": "password123", "name": "Jürgen 🎫"},
        ).status_code
        == 201
    )
    response = client.post(
        "/api/auth/login", json={"email": "named@example.com", "password": "password123"}
    )
    assert response.status_code == 200
    me = client.get("/api/me").json
    assert me["email"] == "named@example.com" and me["name"] == "Jürgen 🎫"


def test_register_cannot_make_staff(client):
    response = client.post(
        "/api/auth/register",
        json={
            "email": "sneaky@example.com",
            "password": "password123",
            "is_staff": True,
            "points": 10**9,
        },
    )
    if response.status_code == 201:
        assert response.json["points"] == 100_000
        client.post(
            "/api/auth/login", json={"email": "sneaky@example.com", "password": "password123"}
        )
        assert client.get("/api/me").json["is_staff"] is False
    else:
        assert_error(response, 422)


def test_register_duplicate_email(client, make_user):
    make_user(email="taken@example.com")
    for email in ("taken@example.com", "TAKEN@example.com", "  taken@example.com "):
        response = client.post(
            "/api/auth/register", json={"email": email, "password": "password123"}
        )
        body = assert_error(response, 409)
        assert body["error"] == "email_taken"


@pytest.mark.parametrize(
    "body",
    [
        {"email": "a@example.com", "password": "short"},
        {"email": "a@example.com", "password": "1234567"},
        {"email": "not-an-email", "password": "password123"},
        {"email": "a@b", "password": "password123"},
        {"email": "a @example.com", "password": "password123"},
        {"email": "", "password": "password123"},
        {"email": "a@example.com", "password": 12345678},
        {"email": "a@example.com", "password": None},
        {"email": "a@example.com", "password": ["password123"]},
        {"email": 42, "password": "password123"},
        {"email": {"x": 1}, "password": "password123"},
        {"email": "a@example.com", "password": "password123", "name": 5},
        {"email": "a@example.com", "password": "password123", "name": "x" * 101},
        {"email": "a@example.com", "password": "p" * 201},
        {"email": "x" * 250 + "@example.com", "password": "password123"},
        {"email": "a@example.com"},
        {"password": "password123"},
        {},
    ],
    ids=lambda b: json.dumps(b)[:40],
)
def test_register_invalid_body(client, body):
    assert_error(client.post("/api/auth/register", json=body), 422)


@pytest.mark.parametrize(
    "raw",
    [
        "[]",
        '["a@example.com", "password123"]',
        "null",
        "42",
        '"text"',
        "true",
    ],
    ids=["empty-list", "list", "null", "number", "string", "true"],
)
def test_register_body_not_an_object(client, raw):
    response = client.post("/api/auth/register", data=raw, content_type="application/json")
    assert_error(response)


@pytest.mark.parametrize(
    "raw",
    [
        "{",
        '{"email": "a@example.com", "password": }',
        "{'email': 'x'}",
        "\x00\xff",
        '{"email": "a@example.com", "password": "password123"',
    ],
)
def test_register_malformed_json(client, raw):
    response = client.post("/api/auth/register", data=raw, content_type="application/json")
    assert_error(response)


def test_register_invalid_utf8(client):
    response = client.post(
        "/api/auth/register", data=b'{"email": "\xff\xfe@x.com"}', content_type="application/json"
    )
    assert_error(response)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/plain",
        "text/html",
        "application/xml",
    ],
)
def test_register_not_json_is_415(client, content_type):
    response = client.post(
        "/api/auth/register",
        data="email=a%40example.com&password=password123",
        content_type=content_type,
    )
    body = assert_error(response, 415)
    assert body["error"] == "unsupported_media_type"


def test_json_with_charset_is_fine(client):
    response = client.post(
        "/api/auth/register",
        data=json.dumps({"email": "c@example.com", "password": "password123"}),
        content_type="application/json; charset=utf-8",
    )
    assert response.status_code == 201


def test_register_no_content_type(client):
    response = client.post(
        "/api/auth/register", data=json.dumps({"email": "c@example.com", "password": "password123"})
    )
    assert_error(response)


def test_login_and_me(client, make_user):
    user = make_user(email="me@example.com")
    assert_error(client.get("/api/me"), 401)
    response = client.post(
        "/api/auth/login", json={"email": "me@example.com", "password": "password123"}
    )
    assert response.status_code == 200
    assert response.json == {"id": user.id, "email": "me@example.com", "is_staff": False}
    me = client.get("/api/me")
    assert me.status_code == 200
    assert {k: me.json[k] for k in ("id", "email", "points", "is_staff")} == {
        "id": user.id,
        "email": "me@example.com",
        "points": 100_000,
        "is_staff": False,
    }


def test_staff_login_says_so(client, make_user):
    user = make_user(staff=True)
    response = client.post("/api/auth/login", json={"email": user.email, "password": "password123"})
    assert response.json["is_staff"] is True
    assert client.get("/api/me").json["is_staff"] is True


@pytest.mark.parametrize(
    "body",
    [
        {"email": "known@example.com", "password": "wrong-password"},
        {"email": "known@example.com", "password": ""},
        {"email": "known@example.com", "password": "PASSWORD123"},
        {"email": "unknown@example.com", "password": "password123"},
        {"email": "", "password": ""},
    ],
)
def test_login_refused(client, make_user, body):
    make_user(email="known@example.com")
    response = client.post("/api/auth/login", json=body)
    assert_error(response, 401)
    with client.session_transaction() as s:
        assert "uid" not in s
    assert_error(client.get("/api/me"), 401)


def test_wrong_password_and_unknown_email_look_the_same(client, make_user):
    make_user(email="known@example.com")
    wrong = client.post(
        "/api/auth/login", json={"email": "known@example.com", "password": "wrong-password"}
    )
    unknown = client.post(
        "/api/auth/login", json={"email": "nobody@example.com", "password": "wrong-password"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json == unknown.json


@pytest.mark.parametrize(
    "body",
    [
        {"email": "known@example.com", "password": 12345678},
        {"email": None, "password": "x"},
        {"email": ["known@example.com"], "password": "password123"},
        {"email": "known@example.com"},
        [],
        "text",
    ],
    ids=lambda b: json.dumps(b)[:30],
)
def test_login_invalid_body(client, make_user, body):
    make_user(email="known@example.com")
    assert_error(client.post("/api/auth/login", json=body))


def test_logout(client, make_user, login):
    login(client, make_user())
    assert client.get("/api/me").status_code == 200
    response = client.post("/api/auth/logout")
    assert response.status_code == 204
    assert response.data == b""
    assert_error(client.get("/api/me"), 401)
    # Logging out twice is fine.
    assert client.post("/api/auth/logout").status_code == 204


def test_login_rotates_the_session(app, client, make_user, login):
    user = make_user()
    # Something an attacker planted in a session before the victim logs in.
    with client.session_transaction() as s:
        s["marker"] = "planted"
        s["uid"] = None
    before = client.get_cookie("session").value
    login(client, user)
    after = client.get_cookie("session").value
    assert after != before
    with client.session_transaction() as s:
        assert "marker" not in s
        assert s["uid"] == user.id
        first_sid = s["sid"]
    # The cookie captured before login does not give access.
    attacker = app.test_client()
    attacker.set_cookie("session", before)
    assert_error(attacker.get("/api/me"), 401)
    # Logging in again starts yet another session, with a new session id.
    login(client, user)
    with client.session_transaction() as s:
        assert s["sid"] != first_sid
    assert client.get_cookie("session").value not in (before, after)


def test_forged_session_cookie_is_ignored(app, make_user):
    user = make_user()
    attacker = app.test_client()
    attacker.set_cookie("session", json.dumps({"uid": user.id}))
    assert_error(attacker.get("/api/me"), 401)


def test_me_after_the_account_is_deleted(app, client, make_user, login):
    user = make_user()
    login(client, user)
    with app.app_context():
        User.delete_by_id(user.id)
    assert_error(client.get("/api/me"), 401)


def test_my_bookings(client, make_user, login):
    assert_error(client.get("/api/me/bookings"), 401)
    login(client, make_user())
    response = client.get("/api/me/bookings")
    assert response.status_code == 200
    assert response.json == []


# Events


def test_list_events(app, client, make_event, make_user, login):
    assert client.get("/api/events").json == []
    first = make_event(admission="open")
    second = make_event(admission="paused")
    login(client, make_user())
    client.post(f"/api/events/{first.id}/queue")
    response = client.get("/api/events")
    assert response.status_code == 200
    listed = {e["id"]: e for e in response.json}
    assert set(listed) == {first.id, second.id}
    for e in listed.values():
        assert {"id", "name", "sale_opens_at", "admission", "waiting", "active"} <= set(e)
    assert listed[first.id]["admission"] == "open"
    assert listed[second.id]["admission"] == "paused"
    assert listed[first.id]["waiting"] == 1 and listed[first.id]["active"] == 0
    assert listed[second.id]["waiting"] == 0
    with app.app_context():
        waiting_room.admit(first.id)
    listed = {e["id"]: e for e in client.get("/api/events").json}
    assert listed[first.id]["waiting"] == 0 and listed[first.id]["active"] == 1


def test_get_event(client, make_event):
    event = make_event()
    response = client.get(f"/api/events/{event.id}")
    assert response.status_code == 200
    assert response.json["id"] == event.id and response.json["name"] == "Test event"
    assert response.json["sale_opens_at"] is None
    assert_error(client.get("/api/events/999999"), 404)
    assert client.get("/api/events/abc").status_code == 404


def test_queue_endpoints_need_login(client, make_event):
    event = make_event()
    for method in ("post", "get", "delete"):
        assert_error(getattr(client, method)(f"/api/events/{event.id}/queue"), 401)


def test_queue_unknown_event(client, make_user, login):
    login(client, make_user())
    assert_error(client.post("/api/events/999999/queue"), 404)
    assert_error(client.get("/api/events/999999/queue"), 404)


def test_poll_not_in_queue(client, make_event, make_user, login):
    event = make_event()
    login(client, make_user())
    body = assert_error(client.get(f"/api/events/{event.id}/queue"), 404)
    assert body["error"] == "not_in_queue"


def test_join_closed_event(client, make_event, make_user, login):
    event = make_event(admission="closed")
    login(client, make_user())
    body = assert_error(client.post(f"/api/events/{event.id}/queue"), 409)
    assert body["error"] == "event_closed"


def test_queue_status_fields(client, make_event, make_user, login):
    event = make_event(admission="open")
    login(client, make_user())
    response = client.post(f"/api/events/{event.id}/queue")
    assert response.status_code == 200
    status = response.json
    for field in (
        "status",
        "position",
        "position_band",
        "waiting_total",
        "poll_after",
        "eta_seconds",
        "token",
        "active_until",
    ):
        assert field in status
    assert status["status"] == "waiting" and status["position"] == 1
    assert status["position_band"] is None and status["token"] is None
    assert int(response.headers["Retry-After"]) >= status["poll_after"]
    assert client.delete(f"/api/events/{event.id}/queue").status_code == 204


# Staff: create


def create(client, **body):
    body.setdefault("name", "Big show")
    body.setdefault("sections", SECTIONS)
    return client.post("/api/admin/events", json=body)


def test_create_event(app, staff):
    user, client = staff
    response = create(client)
    assert response.status_code == 201, response.json
    body = response.json
    assert body["name"] == "Big show" and body["admission"] == "paused"
    assert {k: body[k] for k in ("max_active", "admit_rate", "active_ttl", "hold_ttl")} == {
        "max_active": 10_000,
        "admit_rate": 700,
        "active_ttl": 300,
        "hold_ttl": 300,
    }
    with app.app_context():
        event = Event.get_by_id(body["id"])
        assert (event.max_active, event.admit_rate, event.active_ttl, event.hold_ttl) == (
            10_000,
            700,
            300,
            300,
        )
        seats = list(Seat.select().where(Seat.event == event.id))
        assert len(seats) == 3 * 4 + 2 * 5
        floor = [s for s in seats if s.section == "Floor"]
        assert {s.row for s in floor} == {"A", "B", "C"}
        assert {s.number for s in floor} == {1, 2, 3, 4}
        assert {s.price for s in floor} == {12000}
        assert all(s.status == "available" for s in seats)
        entries = list(AuditLog.select().where(AuditLog.target == f"event:{event.id}"))
        assert [(e.action, e.actor_id) for e in entries] == [("event.create", user.id)]
        assert json.loads(entries[0].after)["name"] == "Big show"
    assert client.get(f"/api/events/{body['id']}").status_code == 200


def test_create_event_custom_settings(app, staff, r):
    _, client = staff
    response = create(
        client,
        max_active=50,
        admit_rate=7,
        active_ttl=120,
        hold_ttl=60,
        sale_opens_at="2030-01-01T09:00:00+09:00",
    )
    assert response.status_code == 201, response.json
    body = response.json
    assert (body["max_active"], body["admit_rate"], body["active_ttl"], body["hold_ttl"]) == (
        50,
        7,
        120,
        60,
    )
    assert body["sale_opens_at"] == "2030-01-01T00:00:00Z"  # stored in UTC
    cfg = r.hgetall(keys.event(body["id"]).config)
    assert cfg["max_active"] == "50" and cfg["rate"] == "7"
    assert cfg["active_ttl_ms"] == "120000" and cfg["state"] == "paused"
    assert cfg["opens_at_ms"] == str(1893456000 * 1000)
    with app.app_context():
        event = Event.get_by_id(body["id"])
        assert (event.max_active, event.admit_rate, event.active_ttl, event.hold_ttl) == (
            50,
            7,
            120,
            60,
        )


def test_create_event_naive_sale_time_is_utc(staff):
    _, client = staff
    response = create(client, sale_opens_at="2031-05-06T07:08:09")
    assert response.status_code == 201
    assert response.json["sale_opens_at"] == "2031-05-06T07:08:09Z"


def test_create_event_as_customer_or_anonymous(app, customer):
    _, client = customer
    assert_error(create(client), 403)
    assert_error(create(app.test_client()), 401)
    with app.app_context():
        assert Event.select().count() == 0 and Seat.select().count() == 0


def section(**changes):
    return [{**SECTIONS[0], **changes}]


@pytest.mark.parametrize(
    "body",
    [
        {"sections": section(rows=0)},
        {"sections": section(seats_per_row=0)},
        {"sections": section(rows=-1)},
        {"sections": section(price=-1)},
        {"sections": section(rows=101)},
        {"sections": section(seats_per_row=201)},
        {"sections": section(rows=10**30)},
        {"sections": section(price=10**30)},
        {"sections": section(price=1.5)},
        {"sections": section(rows="3")},
        {"sections": section(rows=True)},
        {"sections": section(rows=None)},
        {"sections": section(name="")},
        {"sections": section(name="   ")},
        {"sections": section(name="x" * 51)},
        {"sections": section(name=5)},
        {"sections": [{"name": "A", "rows": 3}]},
        {"sections": []},
        {"sections": None},
        {"sections": "A"},
        {"sections": [[1, 2, 3]]},
        {
            "sections": [
                {"name": f"S{i}", "rows": 100, "seats_per_row": 200, "price": 1} for i in range(5)
            ]
            + [{"name": "X", "rows": 1, "seats_per_row": 1, "price": 1}]
        },  # 100,001 seats
        {
            "sections": [
                {"name": f"S{i}", "rows": 100, "seats_per_row": 200, "price": 1} for i in range(50)
            ]
        },  # 1,000,000 seats
        {
            "sections": [
                {"name": f"S{i}", "rows": 1, "seats_per_row": 1, "price": 1} for i in range(51)
            ]
        },  # too many sections
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 201},
        {"name": None},
        {"name": 123},
        {"max_active": 0},
        {"max_active": -5},
        {"max_active": 10**30},
        {"max_active": "100"},
        {"admit_rate": 0},
        {"admit_rate": 10**30},
        {"admit_rate": 2.5},
        {"active_ttl": 0},
        {"active_ttl": 10**30},
        {"hold_ttl": 0},
        {"hold_ttl": -1},
        {"sale_opens_at": "tomorrow"},
        {"sale_opens_at": 10**30},
        {"sale_opens_at": [2030, 1, 1]},
    ],
    ids=lambda b: json.dumps(b)[:60],
)
def test_create_event_invalid(app, staff, body):
    _, client = staff
    full = {"name": "Bad", "sections": SECTIONS, **body}
    body = assert_error(client.post("/api/admin/events", json=full), 422)
    assert body["error"] == "invalid"
    with app.app_context():
        assert Event.select().count() == 0
        assert Seat.select().count() == 0
        assert AuditLog.select().count() == 0


@pytest.mark.parametrize("raw", ["[]", "null", "{", '"x"'])
def test_create_event_body_not_an_object(app, staff, raw):
    _, client = staff
    assert_error(client.post("/api/admin/events", data=raw, content_type="application/json"))
    with app.app_context():
        assert Event.select().count() == 0


def test_create_event_missing_fields(app, staff):
    _, client = staff
    for body in ({}, {"name": "No sections"}, {"sections": SECTIONS}):
        assert_error(client.post("/api/admin/events", json=body), 422)
    with app.app_context():
        assert Event.select().count() == 0


def test_create_event_duplicate_section_names(app, staff):
    """Two sections with one name would give two seats the same place (the
    unique key on event, section, row, number): a 422, not a 500."""
    _, client = staff
    body = {"name": "Twice", "sections": [SECTIONS[0], {**SECTIONS[1], "name": "Floor"}]}
    assert_error(client.post("/api/admin/events", json=body), 422)
    with app.app_context():
        assert Event.select().count() == 0


def test_create_event_section_names_differing_in_case(app, staff):
    """MySQL's utf8mb4_unicode_ci treats "Floor" and "floor" as the same
    section name in the unique key: a clean 201 or 422, never a 500."""
    _, client = staff
    body = {"name": "Case", "sections": [SECTIONS[0], {**SECTIONS[1], "name": "floor"}]}
    response = client.post("/api/admin/events", json=body)
    if response.status_code == 201:
        with app.app_context():
            assert Seat.select().where(Seat.event == response.json["id"]).count() == 22
    else:
        assert_error(response, 422)


@pytest.mark.parametrize(
    "when",
    [
        "9999-12-31T23:00:00-05:00",
        "0001-01-01T01:00:00+05:00",
    ],
)
def test_create_event_sale_time_out_of_range(app, staff, when):
    """A sale time that is valid ISO 8601 but has no UTC equivalent in
    Python's datetime range must be a 422, never a 500."""
    _, client = staff
    response = create(client, sale_opens_at=when)
    assert_error(response, 422)


def test_event_names_round_trip(staff, client):
    _, staff_client = staff
    names = [
        "<script>alert(1)</script>",
        "Konzert 🎸 & “Quotes” 서울 — 東京",
        "a\"b'c\\d",
        "x" * 200,
    ]
    for name in names:
        response = create(staff_client, name=name)
        assert response.status_code == 201, response.json
        assert response.json["name"] == name
        assert client.get(f"/api/events/{response.json['id']}").json["name"] == name
    listed = [e["name"] for e in client.get("/api/events").json]
    assert listed == names


def test_create_event_with_the_largest_section(app, staff):
    _, client = staff
    response = create(
        client, sections=[{"name": "Stadium", "rows": 100, "seats_per_row": 200, "price": 0}]
    )
    assert response.status_code == 201
    with app.app_context():
        seats = Seat.select().where(Seat.event == response.json["id"])
        assert seats.count() == 20_000
        assert {s.row for s in seats.where(Seat.number == 1)} >= {"A", "Z", "AA", "CV"}


# Staff: update


def test_patch_event(app, staff, make_event, r):
    user, client = staff
    event = make_event(admission="paused")
    cfg_key = keys.event(event.id).config
    for state in ("open", "paused", "closed", "open"):
        response = client.patch(f"/api/admin/events/{event.id}", json={"admission": state})
        assert response.status_code == 200, response.json
        assert response.json["admission"] == state
        assert r.hget(cfg_key, "state") == state
    response = client.patch(
        f"/api/admin/events/{event.id}", json={"max_active": 42, "admit_rate": 9}
    )
    assert response.status_code == 200
    assert response.json["max_active"] == 42 and response.json["admit_rate"] == 9
    assert response.json["admission"] == "open"
    assert r.hget(cfg_key, "max_active") == "42" and r.hget(cfg_key, "rate") == "9"
    with app.app_context():
        stored = Event.get_by_id(event.id)
        assert (stored.admission, stored.max_active, stored.admit_rate) == ("open", 42, 9)
        entries = list(
            AuditLog.select()
            .where(AuditLog.action == "event.update", AuditLog.target == f"event:{event.id}")
            .order_by(AuditLog.id)
        )
        assert len(entries) == 5
        assert all(e.actor_id == user.id for e in entries)
        last = entries[-1]
        assert json.loads(last.before)["max_active"] == 10_000
        assert json.loads(last.after)["max_active"] == 42


def test_patch_takes_effect_on_the_next_tick(app, staff, make_event, make_user, login):
    _, staff_client = staff
    event = make_event(admission="paused")
    clients = [login(app.test_client(), make_user()) for _ in range(3)]
    for c in clients:
        c.post(f"/api/events/{event.id}/queue")
    with app.app_context():
        assert waiting_room.admit(event.id)["admitted"] == 0
    staff_client.patch(f"/api/admin/events/{event.id}", json={"admission": "open", "max_active": 2})
    with app.app_context():
        assert waiting_room.admit(event.id)["admitted"] == 2
        assert waiting_room.admit(event.id)["admitted"] == 0  # the cap holds
    staff_client.patch(f"/api/admin/events/{event.id}", json={"max_active": 3})
    with app.app_context():
        assert waiting_room.admit(event.id)["admitted"] == 1


def test_patch_close_refuses_joins(app, staff, make_event, make_user, login):
    _, staff_client = staff
    event = make_event(admission="open")
    staff_client.patch(f"/api/admin/events/{event.id}", json={"admission": "closed"})
    person = login(app.test_client(), make_user())
    assert_error(person.post(f"/api/events/{event.id}/queue"), 409)


@pytest.mark.parametrize(
    "body",
    [
        {"admission": "OPEN"},
        {"admission": "deleted"},
        {"admission": ""},
        {"admission": 1},
        {"admission": ["open"]},
        {"max_active": 0},
        {"max_active": "5"},
        {"max_active": 10**30},
        {"admit_rate": -1},
        {"admit_rate": 1.5},
        {"admit_rate": 10**30},
    ],
    ids=lambda b: json.dumps(b)[:40],
)
def test_patch_invalid(app, staff, make_event, r, body):
    _, client = staff
    event = make_event(admission="open")
    before = r.hgetall(keys.event(event.id).config)
    with app.app_context():
        entries = AuditLog.select().count()
    assert_error(client.patch(f"/api/admin/events/{event.id}", json=body), 422)
    assert r.hgetall(keys.event(event.id).config) == before
    with app.app_context():
        assert Event.get_by_id(event.id).admission == "open"
        assert AuditLog.select().count() == entries


def test_patch_unknown_event(staff, customer, app):
    _, client = staff
    assert_error(client.patch("/api/admin/events/999999", json={"admission": "open"}), 404)
    assert_error(customer[1].patch("/api/admin/events/999999", json={"admission": "open"}), 403)
    assert_error(
        app.test_client().patch("/api/admin/events/999999", json={"admission": "open"}), 401
    )


def test_patch_as_customer(customer, make_event, r, app):
    _, client = customer
    event = make_event(admission="paused")
    assert_error(client.patch(f"/api/admin/events/{event.id}", json={"admission": "open"}), 403)
    assert r.hget(keys.event(event.id).config, "state") == "paused"
    with app.app_context():
        assert Event.get_by_id(event.id).admission == "paused"


def test_revoking_staff_takes_effect_at_once(app, staff):
    user, client = staff
    assert create(client).status_code == 201
    with app.app_context():
        User.update(is_staff=False).where(User.id == user.id).execute()
    assert_error(create(client), 403)


# Staff: numbers and queue removal


def test_stats(app, staff, make_event, make_user, login):
    _, staff_client = staff
    event = make_event(admission="open", admit_rate=2)
    people = [login(app.test_client(), make_user()) for _ in range(3)]
    for person in people:
        assert person.post(f"/api/events/{event.id}/queue").status_code == 200
    response = staff_client.get(f"/api/admin/events/{event.id}/stats")
    assert response.status_code == 200
    stats = response.json
    assert stats["waiting"] == 3 and stats["active"] == 0 and stats["admitted_total"] == 0
    with app.app_context():
        assert waiting_room.admit(event.id)["admitted"] == 2  # one second's worth at 2/s
    stats = staff_client.get(f"/api/admin/events/{event.id}/stats").json
    for field in (
        "waiting",
        "active",
        "admitted_total",
        "admit_rate_observed",
        "held",
        "booked",
        "available",
        "blocked",
    ):
        assert field in stats
    assert stats["waiting"] == 1
    assert stats["active"] == 2
    assert stats["admitted_total"] == 2
    assert stats["admit_rate_observed"] > 0
    assert stats["held"] == 0 and stats["booked"] == 0 and stats["blocked"] == 0
    assert stats["available"] == 10  # 2 rows x 5 seats


def test_stats_access(app, customer, staff):
    assert_error(staff[1].get("/api/admin/events/999999/stats"), 404)
    assert_error(customer[1].get("/api/admin/events/1/stats"), 403)
    assert_error(app.test_client().get("/api/admin/events/1/stats"), 401)


def test_remove_from_queue(app, staff, make_event, make_user, login, r):
    _, staff_client = staff
    event = make_event(admission="open")
    user = make_user()
    person = login(app.test_client(), user)
    other = login(app.test_client(), make_user())
    person.post(f"/api/events/{event.id}/queue")
    other.post(f"/api/events/{event.id}/queue")
    k = keys.event(event.id)
    assert r.zscore(k.queue, str(user.id)) is not None
    response = staff_client.delete(f"/api/admin/events/{event.id}/queue/{user.id}")
    assert response.status_code == 204
    assert r.zscore(k.queue, str(user.id)) is None
    assert r.zscore(k.heartbeat, str(user.id)) is None
    assert_error(person.get(f"/api/events/{event.id}/queue"), 404)
    assert other.get(f"/api/events/{event.id}/queue").json["position"] == 1
    # Removing someone not there is fine; an unknown event is 404.
    assert staff_client.delete(f"/api/admin/events/{event.id}/queue/{user.id}").status_code == 204
    assert_error(staff_client.delete(f"/api/admin/events/999999/queue/{user.id}"), 404)


def test_remove_an_active_person(app, staff, make_event, make_user, login, r):
    _, staff_client = staff
    event = make_event(admission="open")
    user = make_user()
    person = login(app.test_client(), user)
    person.post(f"/api/events/{event.id}/queue")
    with app.app_context():
        waiting_room.admit(event.id)
    assert person.get(f"/api/events/{event.id}/queue").json["status"] == "admitted"
    assert staff_client.delete(f"/api/admin/events/{event.id}/queue/{user.id}").status_code == 204
    assert r.zscore(keys.event(event.id).active, str(user.id)) is None
    assert_error(person.get(f"/api/events/{event.id}/queue"), 404)


def test_remove_from_queue_access(app, customer, make_event):
    event = make_event()
    assert_error(customer[1].delete(f"/api/admin/events/{event.id}/queue/1"), 403)
    assert_error(app.test_client().delete(f"/api/admin/events/{event.id}/queue/1"), 401)


# Limits


def test_8_mib_body_is_413(client, staff):
    big = b'{"email": "' + b"a" * (8 * 1024 * 1024) + b'"}'
    body = assert_error(
        client.post("/api/auth/register", data=big, content_type="application/json"), 413
    )
    assert body["message"]
    assert_error(staff[1].post("/api/admin/events", data=big, content_type="application/json"), 413)


def test_just_under_the_limit_is_not_413(client):
    body = json.dumps(
        {"email": "a@example.com", "password": "password123", "name": "x" * (1024 * 1024 - 200)}
    )
    response = client.post("/api/auth/register", data=body, content_type="application/json")
    assert_error(response, 422)  # too long a name, but the body itself was accepted


# The URL map: every staff endpoint refuses anonymous people and customers


def admin_requests(app):
    from flask import url_for

    found = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if not rule.rule.startswith("/api/admin"):
                continue
            url = url_for(rule.endpoint, **{arg: 1 for arg in rule.arguments})
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                found.append((method, url))
    return found


def test_url_map_has_the_staff_endpoints(app):
    found = set(admin_requests(app))
    assert {
        ("POST", "/api/admin/events"),
        ("PATCH", "/api/admin/events/1"),
        ("GET", "/api/admin/events/1/stats"),
        ("DELETE", "/api/admin/events/1/queue/1"),
    } <= found


def test_every_admin_endpoint_refuses_anonymous_and_customers(app, customer, make_event):
    make_event()  # so that id 1 may exist; the guard must answer before any lookup
    requests = admin_requests(app)
    assert requests
    anonymous = app.test_client()
    for method, url in requests:
        for kwargs in ({}, {"json": {}}):
            response = anonymous.open(url, method=method, **kwargs)
            assert response.status_code == 401, (method, url, response.status_code)
            assert response.json["error"] == "login_required"
            response = customer[1].open(url, method=method, **kwargs)
            assert response.status_code == 403, (method, url, response.status_code)
            assert response.json["error"] == "forbidden"


# The published contract


def test_openapi_documents_every_api_endpoint(app, client):
    import re

    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    doc = response.json
    assert doc["openapi"].startswith("3.")
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or rule.rule == "/api/openapi.json":
            continue
        path = re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if (path, method.lower()) not in documented:
                missing.append((method, path))
    assert not missing
