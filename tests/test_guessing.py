"""Guessing passwords, making accounts by the thousand, probing emails, and
the per-IP counts behind a proxy (issue 14, items 6, 7 and 11).

These build apps with rate limits on (the session app runs with them off);
the `rebind` fixture binds the global singletons back afterwards.
"""

import contextlib
import threading
import time

import pytest
from helpers import assert_error

from app import accounts, create_app
from app.errors import AppError

PASSWORD = "password123"


@pytest.fixture
def limited(app, rebind):
    """An app on the session's servers with rate limits on; `limits`
    replace entries of RATE_LIMITS, `settings` other settings."""

    def make(limits=None, **settings):
        base = dict(app.test_settings)
        rates = {**app.config["RATE_LIMITS"], **(limits or {})}
        return create_app({**base, "RATELIMIT_ENABLED": True, "RATE_LIMITS": rates, **settings})

    return make


def login(client, email, password=PASSWORD, ip="127.0.0.1"):
    return client.post(
        "/api/auth/login",
        json={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": ip},
    )


def register(client, email, ip="127.0.0.1"):
    return client.post(
        "/api/auth/register",
        json={"email": email, "password": PASSWORD},
        environ_base={"REMOTE_ADDR": ip},
    )


def assert_429(response, longest=60):
    body = assert_error(response, 429, "too_many_requests")
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= longest, retry_after
    return body, retry_after


# Item 7: logins


def test_logins_from_one_address_are_limited(limited, make_user):
    app = limited({"login": "3/minute"})
    user = make_user()
    client = app.test_client()
    assert [login(client, user.email).status_code for _ in range(3)] == [200] * 3
    body, _ = assert_429(login(client, user.email))
    assert "wait" in body["message"] or "try again" in body["message"], body
    # Another address has its own count.
    assert login(client, user.email, ip="10.9.8.7").status_code == 200


def test_failed_logins_lock_the_account_for_longer_and_longer(limited, make_user):
    """Failures per email, from any address: 2 a second, then 3 an hour (the
    defaults are 5 a minute, 20 an hour). Right passwords do not count."""
    app = limited({"login_failures": "2/second;3/hour"})
    user, client = make_user(), app.test_client()
    for _ in range(4):
        assert login(client, user.email).status_code == 200  # successes are free
    assert [login(client, user.email, "wrong-one").status_code for _ in range(2)] == [401, 401]
    # Locked, even with the right password and from another address.
    _, first_wait = assert_429(login(client, user.email, ip="10.0.0.2"), longest=1)
    time.sleep(1.01)
    assert login(client, user.email, "wrong-two").status_code == 401  # the 3rd this hour
    _, second_wait = assert_429(login(client, user.email), longest=3600)
    assert second_wait > 60 > first_wait, (first_wait, second_wait)
    # Someone else's account is not affected.
    other = make_user()
    assert login(client, other.email).status_code == 200


def test_failed_logins_on_the_page_count_too(limited, make_user):
    app = limited({"login_failures": "2/minute"})
    user, client = make_user(), app.test_client()
    form = {"email": user.email, "password": "wrong"}
    assert [client.post("/auth/login", data=form).status_code for _ in range(2)] == [200, 200]
    page = client.post("/auth/login", data={"email": user.email, "password": PASSWORD})
    assert page.status_code == 429 and page.mimetype == "text/html"
    assert_429(login(client, user.email))  # one count for the page and the API


def test_guessing_the_password_through_a_password_change_is_limited_too(limited, make_user):
    # A stolen cookie may try the current password at POST /api/me/password:
    # failures there count per account, as at the login.
    app = limited({"login_failures": "2/minute"})
    user, client = make_user(), app.test_client()
    assert login(client, user.email).status_code == 200
    change = {"current_password": "a-guess-123", "new_password": "another-one-456"}
    tries = [client.post("/api/me/password", json=change).status_code for _ in range(2)]
    assert tries == [401, 401]
    assert_429(client.post("/api/me/password", json={**change, "current_password": PASSWORD}))
    assert login(client, user.email).status_code == 200  # the password itself stands


# Item 7: registering


def test_accounts_from_one_address_are_limited(limited):
    app = limited({"register": "3/hour"})
    client = app.test_client()
    made = [register(client, f"bulk{i}@example.com").status_code for i in range(3)]
    assert made == [201] * 3
    assert_429(register(client, "bulk3@example.com"), longest=3600)
    page = client.post("/auth/register", data={"email": "bulk4@example.com", "password": PASSWORD})
    assert page.status_code == 429  # the page shares the count
    assert register(client, "elsewhere@example.com", ip="10.1.1.1").status_code == 201


def test_the_default_register_limit_is_low(app):
    """A few accounts an hour per address, not thousands."""
    from limits import parse_many

    limits = parse_many(app.config["RATE_LIMITS"]["register"])
    per_day = min(limit.amount * 86400 / limit.get_expiry() for limit in limits)
    assert per_day <= 100, app.config["RATE_LIMITS"]["register"]


# Item 11: probing which emails have accounts


def test_probing_emails_through_register_is_slow_and_says_nothing_past_the_limit(
    limited, make_user
):
    """The API keeps the contract's 409 email_taken, but every attempt counts
    against the address's register limit, and past it a taken and a free
    email get the same answer."""
    app = limited({"register": "2/hour"})
    taken = make_user().email
    client = app.test_client()
    assert_error(register(client, taken), 409, "email_taken")
    assert register(client, "free-one@example.com").status_code == 201
    answers = [register(client, email) for email in (taken, "free-two@example.com")]
    bodies = [(r.status_code, r.get_json(), r.headers["Retry-After"]) for r in answers]
    assert bodies[0][:2] == bodies[1][:2] and bodies[0][0] == 429, bodies
    assert abs(int(bodies[0][2]) - int(bodies[1][2])) <= 1


# Item 7: hashing cannot take every thread


def test_password_hashing_busy_is_a_quick_503_not_a_hang(limited, make_user):
    """While every hashing slot of the process is taken, a login waits at
    most PASSWORD_HASH_WAIT and answers 503 busy with Retry-After; the
    poll and other pages are not held up."""
    app = limited(PASSWORD_HASH_SLOTS=1, PASSWORD_HASH_WAIT=0.2)
    user, client = make_user(), app.test_client()
    with app.app_context():
        slots = accounts.hashing_slots()
    release = threading.Event()

    def hold_the_slot():
        """A long hash: it keeps the slot after its own wait has run out."""
        with contextlib.suppress(AppError):
            slots.run(release.wait)

    holder = threading.Thread(target=hold_the_slot)
    holder.start()
    try:
        time.sleep(0.05)
        started = time.monotonic()
        response = login(client, user.email)
        took = time.monotonic() - started
        body = assert_error(response, 503, "busy")
        assert int(response.headers["Retry-After"]) >= 1
        assert "try again" in body["message"], body
        assert took < 1.0, took
        assert client.get("/healthz").status_code == 200
    finally:
        release.set()
        holder.join()
    assert login(client, user.email).status_code == 200


# Item 6: the per-IP counts behind a proxy


def join_from(client, event_id, forwarded_for, proxy="10.0.0.1"):
    return client.post(
        f"/api/events/{event_id}/queue",
        environ_base={"REMOTE_ADDR": proxy},
        headers={"X-Forwarded-For": forwarded_for},
    )


def logged_in(app, user):
    client = app.test_client()
    assert login(client, user.email, ip="10.0.0.1").status_code == 200
    return client


def test_behind_a_trusted_proxy_each_client_has_its_own_per_ip_count(limited, make_user, event):
    app = limited({"per_ip": "2/minute", "join": "100/minute"}, TRUSTED_PROXIES=1)
    people = [logged_in(app, make_user()) for _ in range(3)]
    assert [join_from(people[0], event.id, "198.51.100.1").status_code for _ in range(2)] == [
        200,
        200,
    ]
    assert_429(join_from(people[1], event.id, "198.51.100.1"))
    # A second client behind the same proxy is counted apart.
    assert join_from(people[2], event.id, "198.51.100.2").status_code == 200


def test_without_trusted_proxies_a_forged_forwarded_for_gets_no_fresh_count(
    limited, make_user, event
):
    app = limited({"per_ip": "2/minute", "join": "100/minute"}, TRUSTED_PROXIES=0)
    people = [logged_in(app, make_user()) for _ in range(3)]
    for person, forged in zip(people[:2], ("203.0.113.1", "203.0.113.2"), strict=True):
        assert join_from(person, event.id, forged).status_code == 200
    assert_429(join_from(people[2], event.id, "203.0.113.3"))
