"""Cross-site requests (issue 14, item 4): every unsafe method of the JSON API
needs `Content-Type: application/json`, with a body or without, so that a
page of another origin (a sibling subdomain) cannot act for a logged-in fan
or staff member with a form or a simple fetch. The browser's own proof is
tests/test_e2e_cross_site.py; here each endpoint, through a plain client
that sends only what it is told."""

import pytest
from flask.testing import FlaskClient
from helpers import admit_and_enter, assert_error, seat_ids

from app import keys

pytestmark = pytest.mark.usefixtures("quick_passwords")

# What a page of another origin can send without a CORS preflight.
SIMPLE = {
    "no body, no type": {},
    "text/plain": {"data": '{"a": 1}', "content_type": "text/plain"},
    "a form": {"data": {"a": "1"}},
    "multipart": {"data": {"a": "1"}, "content_type": "multipart/form-data"},
}


def plain(app, client) -> FlaskClient:
    """A client with `client`'s cookies that adds no header of its own
    (the suite's ApiClient adds the JSON content type)."""
    bare = FlaskClient(app, app.response_class, use_cookies=True)
    bare.set_cookie("session", client.get_cookie("session").value)
    return bare


@pytest.mark.parametrize("how", SIMPLE)
def test_simple_cross_site_requests_change_nothing(
    app, r, event, make_user, login, staff, make_event, how
):
    fan = login(app.test_client(), make_user())
    admit_and_enter(app, fan, event.id)
    other = make_event(admit_rate=100_000)
    seat, blocked = seat_ids(app, event.id)[:2]
    _, staff_client = staff
    assert (
        staff_client.post(f"/api/admin/events/{event.id}/seats/{blocked}/block").status_code == 200
    )
    victim, staffer = plain(app, fan), plain(app, staff_client)
    attacks = [
        (victim, "POST", f"/api/events/{other.id}/queue"),
        (victim, "POST", f"/api/events/{event.id}/seats/{seat}/hold"),
        (victim, "DELETE", f"/api/events/{event.id}/queue"),
        (victim, "POST", "/api/me/password"),
        (staffer, "POST", f"/api/admin/events/{event.id}/seats/{seat}/block"),
        (staffer, "POST", f"/api/admin/events/{event.id}/seats/{blocked}/unblock"),
        (staffer, "PATCH", f"/api/admin/events/{event.id}"),
        (staffer, "DELETE", f"/api/admin/events/{event.id}/queue/1"),
        (victim, "POST", "/api/auth/logout"),
        (staffer, "POST", "/api/auth/logout"),
    ]
    for client, method, url in attacks:
        response = client.open(url, method=method, **SIMPLE[how])
        assert_error(response, 415, "unsupported_media_type")
    assert r.zscore(keys.event(other.id).queue, str(fan_id(fan))) is None
    assert r.zscore(keys.event(event.id).active, str(fan_id(fan))) is not None
    status = {s["id"]: s["status"] for s in fan.get(f"/api/events/{event.id}/seats").json}
    assert (status[seat], status[blocked]) == ("available", "blocked")
    assert fan.get("/api/me").status_code == 200
    assert staff_client.get("/api/me").status_code == 200


def fan_id(client) -> int:
    return client.get("/api/me").json["id"]


def test_a_bodiless_json_request_is_accepted(app, event, make_user, login):
    fan = plain(app, login(app.test_client(), make_user()))
    json_type = {"Content-Type": "application/json"}
    assert fan.post(f"/api/events/{event.id}/queue", headers=json_type).status_code == 200
    assert fan.delete(f"/api/events/{event.id}/queue", headers=json_type).status_code == 204
    assert fan.post("/api/auth/logout", headers=json_type).status_code == 204


def test_the_rule_is_in_the_openapi_document(client):
    document = client.get("/api/openapi.json").json
    for ops in document["paths"].values():
        for method, op in ops.items():
            if method in ("post", "put", "patch", "delete"):
                assert "415" in op["responses"], (method, op["summary"])
