"""Rate limits (flask-limiter on the test Redis): per person on join, hold and
checkout (shared by each page and its JSON endpoint), a per-IP ceiling, never
on the poll.

The session app runs with limits off; these tests build apps with limits on.
create_app() rebinds global singletons (the db proxy, the Redis client, the
limiter), so the `rebind` fixture binds them back to the session app's
settings afterwards, limits off again.
"""

import math
import uuid

import pytest

from app import create_app, waiting_room
from app.models import Booking, Seat

# The test app's JWT_SECRET is short on purpose; pyjwt warns about it.

LIMITS = {"join": "3/minute", "hold": "3/minute", "checkout": "2/minute", "per_ip": "1000/minute"}


@pytest.fixture
def limited_app(app, rebind):
    """Build an app on the session's Redis and database with rate limits on."""

    def make(**limits):
        settings = dict(app.test_settings)
        return create_app(
            {
                **settings,
                "RATELIMIT_ENABLED": True,
                "RATE_LIMITS": {**app.config["RATE_LIMITS"], **LIMITS, **limits},
            }
        )

    return make


@pytest.fixture
def lim(limited_app):
    return limited_app()


@pytest.fixture
def person(lim, make_user, login):
    """A logged-in person on the limited app: returns a new test client each call."""

    def make(points=None):
        return login(lim.test_client(), make_user(points=points))

    return make


def enter(app, client, event_id):
    """Join (one join request), get admitted and enter: may hold seats and pay."""
    assert client.post(f"/api/events/{event_id}/queue").status_code == 200
    with app.app_context():
        waiting_room.admit(event_id)
    status = client.get(f"/api/events/{event_id}/queue").get_json()
    assert status["status"] == "admitted", status
    response = client.post(
        f"/api/events/{event_id}/enter", headers={"Authorization": f"Bearer {status['token']}"}
    )
    assert response.status_code == 200, response.get_json()
    return client


def seat_ids(app, event_id):
    with app.app_context():
        return [s.id for s in Seat.select(Seat.id).where(Seat.event == event_id).order_by(Seat.id)]


def assert_429_json(response):
    assert response.status_code == 429, (response.status_code, response.data[:300])
    body = response.get_json()
    assert isinstance(body, dict), response.data[:300]
    assert body["error"] == "too_many_requests", body
    assert isinstance(body["message"], str) and body["message"], body
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60, retry_after
    return body


# Join


def test_fourth_join_by_one_person_is_429(lim, event, person):
    client = person()
    for _ in range(3):  # joining again is harmless (idempotent) and counts
        assert client.post(f"/api/events/{event.id}/queue").status_code == 200
    body = assert_429_json(client.post(f"/api/events/{event.id}/queue"))
    assert "too fast" in body["message"], body
    # Still in the queue, and polling is not limited.
    assert client.get(f"/api/events/{event.id}/queue").status_code == 200


def test_join_limit_is_per_person_not_per_ip(lim, event, person):
    first, second = person(), person()  # the same address (127.0.0.1)
    for _ in range(3):
        assert first.post(f"/api/events/{event.id}/queue").status_code == 200
    assert_429_json(first.post(f"/api/events/{event.id}/queue"))
    for _ in range(3):
        assert second.post(f"/api/events/{event.id}/queue").status_code == 200
    assert_429_json(second.post(f"/api/events/{event.id}/queue"))
    assert_429_json(first.post(f"/api/events/{event.id}/queue"))


def test_per_ip_ceiling(limited_app, event, make_user, login):
    low = limited_app(per_ip="5/minute")
    people = [login(low.test_client(), make_user()) for _ in range(7)]
    for client in people[:5]:
        assert client.post(f"/api/events/{event.id}/queue").status_code == 200
    assert_429_json(people[5].post(f"/api/events/{event.id}/queue"))
    # Another address is counted on its own.
    other_ip = people[6].post(
        f"/api/events/{event.id}/queue", environ_base={"REMOTE_ADDR": "10.1.2.3"}
    )
    assert other_ip.status_code == 200, other_ip.get_json()
    # The ceiling is per action: the people already in may still poll and hold.
    assert people[0].get(f"/api/events/{event.id}/queue").status_code == 200


# Hold and checkout


def test_hold_is_limited_per_person(lim, event, person):
    ids = seat_ids(lim, event.id)
    client, other = enter(lim, person(), event.id), enter(lim, person(), event.id)
    for seat_id in ids[:3]:
        assert client.post(f"/api/events/{event.id}/seats/{seat_id}/hold").status_code == 201
    assert_429_json(client.post(f"/api/events/{event.id}/seats/{ids[3]}/hold"))
    # Someone else is not affected.
    assert other.post(f"/api/events/{event.id}/seats/{ids[3]}/hold").status_code == 201
    listing = {s["id"]: s for s in client.get(f"/api/events/{event.id}/seats").get_json()}
    assert [s for s in ids[:4] if listing[s]["held_by_me"]] == ids[:3]


def test_checkout_is_limited_per_person(lim, event, person):
    ids = seat_ids(lim, event.id)
    poor = enter(lim, person(points=10), event.id)
    rich = enter(lim, person(), event.id)

    def pay(client, seat_id):
        token = client.post(f"/api/events/{event.id}/seats/{seat_id}/hold").get_json()["token"]
        return client.post(
            f"/api/events/{event.id}/checkout",
            json={"seats": [{"seat_id": seat_id, "token": token}]},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )

    token = poor.post(f"/api/events/{event.id}/seats/{ids[0]}/hold").get_json()["token"]
    body = {"seats": [{"seat_id": ids[0], "token": token}]}
    for _ in range(2):  # refusals count too: no guessing at full speed
        response = poor.post(
            f"/api/events/{event.id}/checkout",
            json=body,
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        assert response.status_code == 402, response.get_json()
    assert_429_json(
        poor.post(
            f"/api/events/{event.id}/checkout",
            json=body,
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
    )
    # Someone else pays normally.
    assert pay(rich, ids[1]).status_code == 201
    with lim.app_context():
        assert Booking.select().count() == 1


SHARED_REASON = (
    "app/web/limits.py limited(): limiter.limit(..., scope=...) is not a shared limit; "
    "flask-limiter stores it under '<endpoint>:<scope>', so each page and its JSON endpoint "
    "count separately (a person gets the limit twice, the per-IP ceiling too); "
    "limiter.shared_limit(..., scope=...) would share one count"
)


@pytest.mark.parametrize("action", ["join", "hold", "checkout"])
def test_page_and_api_share_one_count_per_person(lim, event, person, action):
    """The JSON endpoint uses up the person's allowance; the page then says 429."""
    client = enter(lim, person(), event.id) if action != "join" else person()
    ids = seat_ids(lim, event.id)
    if action == "join":
        api = [client.post(f"/api/events/{event.id}/queue") for _ in range(2)]  # + 1 above: 3
        api.insert(0, client.post(f"/api/events/{event.id}/queue"))
        page = client.post(f"/events/{event.id}/join")
    elif action == "hold":
        api = [client.post(f"/api/events/{event.id}/seats/{s}/hold") for s in ids[:3]]
        page = client.post(f"/events/{event.id}/seats/hold", data={"seat": ids[3]})
    else:
        api = [
            client.post(
                f"/api/events/{event.id}/checkout",
                json={"seats": []},
                headers={"Idempotency-Key": "k"},
            )
            for _ in range(2)
        ]
        page = client.post(f"/events/{event.id}/checkout", data={"idempotency_key": "x"})
    assert all(r.status_code != 429 for r in api), [r.status_code for r in api]
    assert page.status_code == 429, page.status_code


def test_per_ip_ceiling_covers_the_page_too(limited_app, event, make_user, login):
    low = limited_app(per_ip="5/minute")
    people = [login(low.test_client(), make_user()) for _ in range(6)]
    for client in people[:5]:
        assert client.post(f"/api/events/{event.id}/queue").status_code == 200
    assert people[5].post(f"/events/{event.id}/join").status_code == 429


# Pages and htmx


def test_page_join_beyond_the_limit_is_an_html_page(lim, event, person):
    client = person()
    for _ in range(3):
        response = client.post(f"/events/{event.id}/join")
        assert response.status_code == 302, response.data[:300]
    response = client.post(f"/events/{event.id}/join")
    assert response.status_code == 429
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "<h1>Too many requests</h1>" in page
    assert "too fast" in page
    assert 1 <= int(response.headers["Retry-After"]) <= 60


def test_htmx_beyond_the_limit_goes_to_the_message_area(lim, event, person):
    client = person()
    hx = {"HX-Request": "true"}
    for _ in range(3):
        assert client.post(f"/events/{event.id}/join", headers=hx).status_code == 302
    response = client.post(f"/events/{event.id}/join", headers=hx)
    assert response.status_code == 429
    assert response.headers["HX-Retarget"] == "#messages"
    assert response.headers["HX-Reswap"] == "innerHTML"
    fragment = response.get_data(as_text=True)
    assert 'role="alert"' in fragment and "too fast" in fragment
    assert "<html" not in fragment  # a fragment, not a whole page


def test_the_429_message_tells_people_to_wait(lim, event, person):
    client = person()
    for _ in range(3):
        client.post(f"/api/events/{event.id}/queue")
    api = client.post(f"/api/events/{event.id}/queue").get_json()["message"]
    page = client.post(f"/events/{event.id}/join").get_data(as_text=True)
    for text in (api.lower(), page.lower()):
        assert "try again" in text or "wait" in text, text


# The poll


def test_poll_is_never_limited(limited_app, event, make_user, login):
    strict = limited_app(per_ip="5/minute", join="1/minute")
    client = login(strict.test_client(), make_user())
    assert client.post(f"/api/events/{event.id}/queue").status_code == 200
    statuses = [client.get(f"/api/events/{event.id}/queue").status_code for _ in range(100)]
    assert statuses == [200] * 100
    # The browser's status fragment is not limited either.
    fragments = [
        client.get(f"/events/{event.id}/waiting/status", headers={"HX-Request": "true"}).status_code
        for _ in range(20)
    ]
    assert fragments == [200] * 20


def test_join_keeps_the_poll_interval_in_retry_after(lim, event, person):
    """The rate-limit headers must not replace the waiting room's Retry-After
    (the next poll) on a successful join."""
    client = person()
    response = client.post(f"/api/events/{event.id}/queue")
    assert response.status_code == 200
    poll_after = response.get_json()["poll_after"]
    assert response.headers["Retry-After"] == str(math.ceil(poll_after)), (
        response.headers["Retry-After"],
        poll_after,
        response.headers.get("X-RateLimit-Reset"),
    )
