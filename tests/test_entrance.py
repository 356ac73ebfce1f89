"""The admission token (JWT HS256: sub, evt, jti, exp) and the booking entrance.

The poll that finds a person active mints the token; POST /api/events/{id}/enter
consumes it once, binds it to one session, and the booking page only opens for
that session while the active window lasts.
"""

import base64
import hashlib
import hmac
import json
import time
import uuid

import jwt
import pytest
from helpers import seat_ids

from app import keys, waiting_room

# The test app's JWT_SECRET is short on purpose; pyjwt warns about it.


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(obj: dict) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def hs256(header: dict, claims: dict, secret: str) -> str:
    """A JWT built by hand, so that the header says whatever the test wants."""
    signing_input = f"{segment(header)}.{segment(claims)}"
    mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


@pytest.fixture
def secret(app):
    return app.config["JWT_SECRET"]


@pytest.fixture
def admitted(app, client, make_user, login, make_event):
    """An open event and a logged-in person who was admitted: (event, user, token, client)."""
    event = make_event(admission="open")
    user = make_user()
    login(client, user)
    assert client.post(f"/api/events/{event.id}/queue").status_code == 200
    with app.app_context():
        assert waiting_room.admit(event.id)["admitted"] == 1
    status = client.get(f"/api/events/{event.id}/queue").json
    assert status["status"] == "admitted" and status["token"]
    return event, user, status["token"], client


def enter(client, event_id, token):
    return client.post(
        f"/api/events/{event_id}/enter", headers={"Authorization": f"Bearer {token}"}
    )


def assert_401(response):
    assert response.status_code == 401, (response.status_code, response.data[:300])
    body = response.get_json()
    assert body["error"] and body["message"], body
    return body


# The token itself


def test_token_claims(admitted, secret):
    event, user, token, _ = admitted
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, secret, algorithms=["HS256"])
    assert claims["sub"] == str(user.id)
    assert claims["evt"] == event.id
    assert claims["jti"]
    assert claims["exp"] > time.time()


def test_polling_again_returns_the_same_token_id(admitted, secret):
    event, _, token, client = admitted
    again = client.get(f"/api/events/{event.id}/queue").json["token"]
    first = jwt.decode(token, secret, algorithms=["HS256"])
    second = jwt.decode(again, secret, algorithms=["HS256"])
    assert first["jti"] == second["jti"] and first["exp"] == second["exp"]


# Entering: once per session


def test_same_session_enters_twice(admitted):
    event, _, token, client = admitted
    first = enter(client, event.id, token)
    assert first.status_code == 200, first.json
    assert first.json["status"] == "entered"
    assert first.json["active_until"] > time.time()
    second = enter(client, event.id, token)
    assert second.status_code == 200, second.json
    assert second.json == first.json


def test_another_session_of_the_same_user_is_refused(app, admitted, login):
    event, user, token, client = admitted
    assert enter(client, event.id, token).status_code == 200
    other = login(app.test_client(), user)  # e.g. the same account on a phone
    response = enter(other, event.id, token)
    assert response.status_code == 409
    assert response.json["error"] == "token_used" and response.json["message"]
    # The first session keeps its entry.
    assert enter(client, event.id, token).status_code == 200


def test_first_session_to_enter_wins(app, admitted, login):
    event, user, token, client = admitted
    other = login(app.test_client(), user)
    assert enter(other, event.id, token).status_code == 200
    assert enter(client, event.id, token).status_code == 409


def test_enter_needs_login(app, admitted):
    event, _, token, _ = admitted
    response = enter(app.test_client(), event.id, token)
    assert response.status_code == 401
    assert response.json["error"] == "login_required"


# Refused tokens: 401 JSON, never 500


def claims_for(event, user, **changes):
    claims = {
        "sub": str(user.id),
        "evt": event.id,
        "jti": uuid.uuid4().hex,
        "exp": int(time.time()) + 300,
    }
    claims.update(changes)
    return claims


def test_wrong_signing_key(admitted):
    event, user, token, client = admitted
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    forged = jwt.encode(claims_for(event, user, jti=jti), "not-the-secret", algorithm="HS256")
    assert_401(enter(client, event.id, forged))


def test_alg_none_by_hand(admitted):
    event, user, token, client = admitted
    claims = jwt.decode(token, options={"verify_signature": False})
    for header in (
        {"alg": "none"},
        {"alg": "none", "typ": "JWT"},
        {"alg": "None"},
        {"alg": "NONE"},
    ):
        forged = f"{segment(header)}.{segment(claims)}."
        assert_401(enter(client, event.id, forged))
    # Without the trailing dot, too.
    assert_401(enter(client, event.id, f"{segment({'alg': 'none'})}.{segment(claims)}"))


def test_alg_none_by_pyjwt(admitted):
    event, _, token, client = admitted
    claims = jwt.decode(token, options={"verify_signature": False})
    try:
        forged = jwt.encode(claims, None, algorithm="none")
    except Exception as e:  # pragma: no cover - a future pyjwt may refuse
        pytest.skip(f"pyjwt refuses alg none: {e}")
    assert jwt.get_unverified_header(forged)["alg"] == "none"
    assert_401(enter(client, event.id, forged))


def test_rs256_header_signed_with_the_hs256_secret(admitted, secret):
    event, _, token, client = admitted
    claims = jwt.decode(token, secret, algorithms=["HS256"])
    for alg in ("RS256", "ES256", "HS512", "PS256"):
        forged = hs256({"alg": alg, "typ": "JWT"}, claims, secret)
        assert_401(enter(client, event.id, forged))
    # The genuine claims re-signed by hand with HS256 still work (the test is sound).
    assert (
        enter(client, event.id, hs256({"alg": "HS256", "typ": "JWT"}, claims, secret)).status_code
        == 200
    )


def test_expired_token(admitted, secret):
    event, _, token, client = admitted
    claims = jwt.decode(token, secret, algorithms=["HS256"])
    claims["exp"] = int(time.time()) - 60
    body = assert_401(enter(client, event.id, jwt.encode(claims, secret, algorithm="HS256")))
    assert "expired" in body["message"]


def test_token_for_another_event(admitted, make_event, secret, app):
    event, user, token, client = admitted
    other = make_event(admission="open")
    # A token minted for `event` presented at `other`...
    assert_401(enter(client, other.id, token))
    # ...and a genuine admission for `other` does not let that token in either.
    client.post(f"/api/events/{other.id}/queue")
    with app.app_context():
        waiting_room.admit(other.id)
    assert client.get(f"/api/events/{other.id}/queue").json["status"] == "admitted"
    assert_401(enter(client, other.id, token))
    claims = jwt.decode(token, secret, algorithms=["HS256"])
    claims["evt"] = other.id  # right key, right person and jti, wrong event
    assert_401(enter(client, event.id, jwt.encode(claims, secret, algorithm="HS256")))


def test_another_users_token(app, admitted, make_user, login):
    event, _, token_a, _ = admitted
    b = make_user()
    client_b = login(app.test_client(), b)
    assert_401(enter(client_b, event.id, token_a))
    # Even when B was admitted too.
    client_b.post(f"/api/events/{event.id}/queue")
    with app.app_context():
        waiting_room.admit(event.id)
    token_b = client_b.get(f"/api/events/{event.id}/queue").json["token"]
    assert token_b and token_b != token_a
    assert_401(enter(client_b, event.id, token_a))
    assert enter(client_b, event.id, token_b).status_code == 200


def test_token_never_issued(admitted, secret):
    event, user, token, client = admitted
    real = jwt.decode(token, secret, algorithms=["HS256"])
    forged = jwt.encode(claims_for(event, user, exp=real["exp"]), secret, algorithm="HS256")
    body = assert_401(enter(client, event.id, forged))
    assert body["error"] == "invalid_token"
    # The genuine one still works afterwards.
    assert enter(client, event.id, token).status_code == 200


def test_token_never_issued_for_someone_never_admitted(app, make_event, make_user, login, secret):
    event = make_event(admission="open")
    user = make_user()
    client = login(app.test_client(), user)
    forged = jwt.encode(claims_for(event, user), secret, algorithm="HS256")
    assert_401(enter(client, event.id, forged))


def test_tampered_payload(admitted, make_user):
    event, user, token, client = admitted
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    for change in (
        {"exp": claims["exp"] + 3600},
        {"jti": "x" + claims["jti"]},
        {"sub": str(user.id + 1)},
        {"evt": event.id + 1},
    ):
        forged = f"{header}.{segment({**claims, **change})}.{signature}"
        assert_401(enter(client, event.id, forged))
    # A flipped signature character, too.
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert_401(enter(client, event.id, f"{header}.{payload}.{flipped}"))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Token abc"},
    ],
    ids=["missing", "empty", "bearer-only", "bearer-space", "basic", "other-scheme"],
)
def test_missing_or_wrong_authorization_header(admitted, headers):
    event, _, _, client = admitted
    assert_401(client.post(f"/api/events/{event.id}/enter", headers=headers))


@pytest.mark.parametrize(
    "token",
    [
        "abc",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        "...",
        "e30.e30.",
        "e30.e30.e30",
        "eyJhbGciOiJIUzI1NiJ9.not-base64!.sig",
        "%%%.%%%.%%%",
        "x" * 5000,
        "eyJhbGciOiJIUzI1NiJ9.W10.c2ln",  # payload is a JSON list
        "eyJhbGciOiJIUzI1NiJ9.bnVsbA.c2ln",  # payload is null
    ],
)
def test_malformed_tokens(admitted, token):
    event, _, _, client = admitted
    assert_401(enter(client, event.id, token))


@pytest.mark.parametrize(
    "change",
    [
        {"sub": None},
        {"sub": 12345},
        {"evt": None},
        {"evt": "1"},
        {"jti": None},
        {"jti": 5},
        {"exp": "soon"},
        {"exp": None},
    ],
    ids=lambda c: f"{next(iter(c))}={next(iter(c.values()))!r}",
)
def test_claims_of_the_wrong_type(admitted, secret, change):
    """Right key, claims of odd types: still a clean 401."""
    event, _, token, client = admitted
    claims = {**jwt.decode(token, secret, algorithms=["HS256"]), **change}
    claims = {k: v for k, v in claims.items() if v is not None}
    forged = hs256({"alg": "HS256", "typ": "JWT"}, claims, secret)
    assert_401(enter(client, event.id, forged))


def test_missing_claims(admitted, secret):
    event, _, token, client = admitted
    claims = jwt.decode(token, secret, algorithms=["HS256"])
    for name in ("sub", "evt", "jti", "exp"):
        partial = {k: v for k, v in claims.items() if k != name}
        assert_401(enter(client, event.id, jwt.encode(partial, secret, algorithm="HS256")))


def test_unknown_event_is_not_a_500(admitted):
    _, _, token, client = admitted
    response = enter(client, 999_999, token)
    assert response.status_code in (401, 404)
    assert response.json["error"]


# Windows


def test_token_from_an_earlier_window_after_leave_and_rejoin(app, admitted):
    event, _, old_token, client = admitted
    assert client.delete(f"/api/events/{event.id}/queue").status_code == 204
    assert client.post(f"/api/events/{event.id}/queue").json["status"] == "waiting"
    time.sleep(0.01)
    with app.app_context():
        assert waiting_room.admit(event.id)["admitted"] == 1
    new_token = client.get(f"/api/events/{event.id}/queue").json["token"]
    assert new_token != old_token
    assert_401(enter(client, event.id, old_token))
    assert enter(client, event.id, new_token).status_code == 200


def test_token_from_an_expired_window_after_rejoin(app, admitted, r):
    event, user, old_token, client = admitted
    k = keys.event(event.id)
    r.zadd(k.active, {str(user.id): int(time.time() * 1000) - 1000})  # the window ended
    assert client.post(f"/api/events/{event.id}/queue").json["status"] == "waiting"
    with app.app_context():
        assert waiting_room.admit(event.id)["admitted"] == 1
    new_token = client.get(f"/api/events/{event.id}/queue").json["token"]
    old_jti = jwt.decode(old_token, options={"verify_signature": False})["jti"]
    new_jti = jwt.decode(new_token, options={"verify_signature": False})["jti"]
    assert old_jti != new_jti
    assert_401(enter(client, event.id, old_token))
    assert enter(client, event.id, new_token).status_code == 200


def test_a_new_window_needs_a_new_entry(app, admitted, r):
    """Entered in the first window; admitted again after it ended: the booking
    page stays shut until the new token is presented."""
    event, user, old_token, client = admitted
    assert enter(client, event.id, old_token).status_code == 200
    r.zadd(keys.event(event.id).active, {str(user.id): int(time.time() * 1000) - 1000})
    client.post(f"/api/events/{event.id}/queue")
    with app.app_context():
        assert waiting_room.admit(event.id)["admitted"] == 1
    new_token = client.get(f"/api/events/{event.id}/queue").json["token"]
    assert client.get(seats_url(event.id)).status_code == 302
    assert enter(client, event.id, new_token).status_code == 200
    assert client.get(seats_url(event.id)).status_code == 200


def test_entering_after_the_window_ended(admitted, r):
    event, user, token, client = admitted
    r.zadd(keys.event(event.id).active, {str(user.id): int(time.time() * 1000) - 1000})
    body = assert_401(enter(client, event.id, token))
    assert body["error"] == "invalid_token"


def test_entering_after_leaving(admitted):
    event, _, token, client = admitted
    assert client.delete(f"/api/events/{event.id}/queue").status_code == 204
    assert_401(enter(client, event.id, token))


# The booking page


def seats_url(event_id):
    return f"/events/{event_id}/seats"


def test_seats_page_after_entering(admitted):
    event, _, token, client = admitted
    assert enter(client, event.id, token).status_code == 200
    response = client.get(seats_url(event.id))
    assert response.status_code == 200
    assert b"Time left to book" in response.data


def test_seats_page_admitted_but_not_entered(admitted):
    """Their turn came: the waiting room takes them in."""
    event, _, _, client = admitted
    response = client.get(seats_url(event.id))
    assert response.status_code == 302
    assert response.headers["Location"] == f"/events/{event.id}/waiting"


def test_seats_page_in_another_session(app, admitted, login):
    """The waiting room offers "Continue on this device"."""
    event, user, token, client = admitted
    assert enter(client, event.id, token).status_code == 200
    other = login(app.test_client(), user)
    response = other.get(seats_url(event.id))
    assert response.status_code == 302
    assert response.headers["Location"] == f"/events/{event.id}/waiting"


def test_seats_page_after_logging_in_again(admitted, login):
    """A new login is a new session: the entry does not carry over by itself."""
    event, user, token, client = admitted
    assert enter(client, event.id, token).status_code == 200
    login(client, user)
    assert client.get(seats_url(event.id)).status_code == 302


def test_seats_page_after_the_window_ended(admitted, r):
    event, user, token, client = admitted
    assert enter(client, event.id, token).status_code == 200
    assert client.get(seats_url(event.id)).status_code == 200
    r.zadd(keys.event(event.id).active, {str(user.id): int(time.time() * 1000) - 1000})
    response = client.get(seats_url(event.id))
    assert response.status_code == 302
    assert response.headers["Location"] == f"/events/{event.id}"


def test_seats_page_after_leaving(admitted):
    event, _, token, client = admitted
    assert enter(client, event.id, token).status_code == 200
    client.delete(f"/api/events/{event.id}/queue")
    assert client.get(seats_url(event.id)).status_code == 302


def test_seats_page_after_staff_removed_the_person(app, admitted, make_user, login):
    event, user, token, client = admitted
    assert enter(client, event.id, token).status_code == 200
    staff = login(app.test_client(), make_user(staff=True))
    assert staff.delete(f"/api/admin/events/{event.id}/queue/{user.id}").status_code == 204
    assert client.get(seats_url(event.id)).status_code == 302


def test_seats_page_anonymous_goes_to_login(app, make_event):
    event = make_event()
    response = app.test_client().get(seats_url(event.id))
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login")


def test_seats_page_unknown_event(client, make_user, login):
    login(client, make_user())
    assert client.get(seats_url(999_999)).status_code == 404


def booking_answers(client, event_id, seat_id) -> tuple[int, int, int]:
    """What the three booking scripts answer this client: the seat map, a
    hold, and a checkout (of a token nobody holds)."""
    seat_map = client.get(f"/api/events/{event_id}/seats").status_code
    hold = client.post(f"/api/events/{event_id}/seats/{seat_id}/hold").status_code
    pay = client.post(
        f"/api/events/{event_id}/checkout",
        json={"seats": [{"seat_id": seat_id + 1, "token": 1}]},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    ).status_code
    return seat_map, hold, pay


def test_every_booking_script_asks_entered_and_still_active(app, admitted, login, r):
    """The seat map, hold and checkout each check "this session entered and
    its window is open" inside their own script (_prelude.lua's entered_until)."""
    event, user, token, client = admitted
    seat_id = seat_ids(app, event.id)[0]
    assert booking_answers(client, event.id, seat_id) == (403, 403, 403)  # not entered yet

    assert enter(client, event.id, token).status_code == 200
    seat_map, hold, pay = booking_answers(client, event.id, seat_id)
    assert (seat_map, hold) == (200, 201) and pay == 409  # in: only the bogus token fails

    same_person_elsewhere = login(app.test_client(), user)
    assert booking_answers(same_person_elsewhere, event.id, seat_id) == (403, 403, 403)

    r.zadd(keys.event(event.id).active, {str(user.id): int(time.time() * 1000) - 1})
    assert booking_answers(client, event.id, seat_id) == (403, 403, 403)  # the window is over


# The browser path: the htmx poll is the entrance


def test_htmx_poll_of_an_admitted_person_enters_and_redirects(
    app, client, make_user, login, make_event
):
    event = make_event(admission="open")
    login(client, make_user())
    assert client.post(f"/events/{event.id}/join").status_code == 302
    with app.app_context():
        assert waiting_room.admit(event.id)["admitted"] == 1
    assert client.get(seats_url(event.id)).status_code == 302  # not entered yet
    response = client.get(f"/events/{event.id}/waiting/status", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == seats_url(event.id)
    assert client.get(seats_url(event.id)).status_code == 200
    # Polling again (e.g. a second tab of the same session) stays fine.
    again = client.get(f"/events/{event.id}/waiting/status", headers={"HX-Request": "true"})
    assert again.headers["HX-Redirect"] == seats_url(event.id)


def test_no_javascript_poll_of_an_admitted_person_enters(app, client, make_user, login, make_event):
    event = make_event(admission="open")
    login(client, make_user())
    client.post(f"/events/{event.id}/join")
    with app.app_context():
        waiting_room.admit(event.id)
    response = client.get(f"/events/{event.id}/waiting/status")
    assert response.status_code == 200
    assert "HX-Redirect" not in response.headers
    assert b'http-equiv="refresh"' not in response.data  # nothing left to wait for
    assert f'href="{seats_url(event.id)}"'.encode() in response.data
    assert client.get(seats_url(event.id)).status_code == 200


def test_browser_entry_then_api_client_of_the_same_user_is_refused(
    app, client, make_user, login, make_event
):
    event = make_event(admission="open")
    user = make_user()
    login(client, user)
    client.post(f"/events/{event.id}/join")
    with app.app_context():
        waiting_room.admit(event.id)
    client.get(f"/events/{event.id}/waiting/status", headers={"HX-Request": "true"})
    phone = login(app.test_client(), user)
    token = phone.get(f"/api/events/{event.id}/queue").json["token"]
    assert enter(phone, event.id, token).status_code == 409
    assert client.get(seats_url(event.id)).status_code == 200


# "Continue on this device": logged in again, or on another device


def continue_here(client, event_id):
    return client.post(f"/events/{event_id}/continue")


def status_fragment(client, event_id):
    return client.get(f"/events/{event_id}/waiting/status", headers={"HX-Request": "true"})


def test_logged_in_again_continues_with_the_seats_held(app, admitted, login):
    """Log out and in again while booking: the waiting room says it is your
    turn elsewhere, offers to continue, keeps looking; continuing moves the
    window here with the held seat, and the old session can no longer book."""
    event, user, token, client = admitted
    assert enter(client, event.id, token).status_code == 200
    seat_id = seat_ids(app, event.id)[0]
    assert client.post(f"/api/events/{event.id}/seats/{seat_id}/hold").status_code == 201

    again = login(app.test_client(), user)
    page = status_fragment(again, event.id)
    assert page.status_code == 200 and "HX-Redirect" not in page.headers
    body = page.get_data(as_text=True)
    assert "another window or device" in body
    assert f'action="/events/{event.id}/continue"' in body
    assert 'hx-trigger="every 30s"' in body  # it keeps looking
    assert "Your time to book ends in" in body

    response = continue_here(again, event.id)
    assert response.status_code == 302
    assert response.headers["Location"] == seats_url(event.id)
    assert again.get(seats_url(event.id)).status_code == 200
    seat_list = again.get(f"/api/events/{event.id}/seats").json
    assert [s["id"] for s in seat_list if s["held_by_me"]] == [seat_id]
    # The session that had it: the seat map, holds and payment are closed to it,
    # and it is offered the way back.
    assert booking_answers(client, event.id, seat_ids(app, event.id)[1]) == (403, 403, 403)
    assert client.get(seats_url(event.id)).headers["Location"] == f"/events/{event.id}/waiting"
    assert f'action="/events/{event.id}/continue"' in status_fragment(client, event.id).get_data(
        as_text=True
    )
    panel = client.get(f"/events/{event.id}/seats/panel", headers={"HX-Request": "true"})
    panel = panel.get_data(as_text=True)
    assert "You are booking in another window or device now." in panel
    assert f'action="/events/{event.id}/continue"' in panel
    # The no-JavaScript frame looks again too.
    frame = again.get(f"/events/{event.id}/waiting/status").get_data(as_text=True)
    assert "http-equiv" not in frame  # this session has it now: nothing to wait for
    assert 'content="30"' in client.get(f"/events/{event.id}/waiting/status").get_data(as_text=True)


def test_continue_needs_an_open_window(app, admitted, login, r):
    event, user, token, client = admitted
    assert enter(client, event.id, token).status_code == 200
    r.zadd(keys.event(event.id).active, {str(user.id): int(time.time() * 1000) - 1})
    again = login(app.test_client(), user)
    response = continue_here(again, event.id)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/events/{event.id}"
    assert again.get(seats_url(event.id)).status_code == 302


def test_continue_is_only_for_the_same_person(app, admitted, make_user, login):
    """Another account's session has no window of its own to move."""
    event, _, token, client = admitted
    assert enter(client, event.id, token).status_code == 200
    stranger = login(app.test_client(), make_user())
    assert continue_here(stranger, event.id).headers["Location"] == f"/events/{event.id}"
    assert client.get(seats_url(event.id)).status_code == 200  # untouched


def test_continue_needs_login_and_a_post(app, make_event):
    """(And a CSRF token: tests/test_pages.py.)"""
    event = make_event(admission="open")
    anonymous = app.test_client()
    assert (
        anonymous.post(f"/events/{event.id}/continue").headers["Location"].startswith("/auth/login")
    )
    assert anonymous.get(f"/events/{event.id}/continue").status_code == 405


def test_continue_unknown_event(client, make_user, login):
    login(client, make_user())
    assert continue_here(client, 999_999).status_code == 404


def test_moving_back_and_forth_keeps_one_session_in(app, admitted, login):
    event, user, token, client = admitted
    assert enter(client, event.id, token).status_code == 200
    phone = login(app.test_client(), user)
    assert continue_here(phone, event.id).headers["Location"] == seats_url(event.id)
    assert continue_here(client, event.id).headers["Location"] == seats_url(event.id)
    assert client.get(seats_url(event.id)).status_code == 200
    assert phone.get(seats_url(event.id)).status_code == 302
