"""Ending sessions (issue 14, item 3): logout, a password change and staff
revocation end every copy of a session cookie, on the JSON API, the pages
and the hot-path poll (within its documented bound), also after Redis lost
the session generations. Real Redis and the real database."""

import time

import pytest
from helpers import assert_error

from app import keys

pytestmark = pytest.mark.usefixtures("quick_passwords")


class Thief:
    """Sends a copy of someone's session cookie with every request, whatever
    the server answers (a Set-Cookie that clears it changes nothing)."""

    def __init__(self, app, client):
        self.client = app.test_client(use_cookies=False)
        self.cookie = f"session={client.get_cookie('session').value}"

    def get(self, url, **kwargs):
        return self.client.get(url, headers={"Cookie": self.cookie}, **kwargs)

    def post(self, url, **kwargs):
        return self.client.post(url, headers={"Cookie": self.cookie}, **kwargs)


def poll(client, event_id):
    """The JSON poll: answered by the hot path (app/web/hot_path.py) when it can."""
    return client.get(f"/api/events/{event_id}/queue")


def assert_ended(app, thief, event_id):
    """The copy is refused everywhere: the API, the pages, and the hot-path
    poll within SESSION_CHECK_SECONDS."""
    deadline = time.monotonic() + app.config["SESSION_CHECK_SECONDS"] + 0.5
    while poll(thief, event_id).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert_error(poll(thief, event_id), 401, "login_required")
    assert_error(thief.get("/api/me"), 401, "login_required")
    assert thief.get("/bookings").status_code == 302  # to the login page


@pytest.fixture
def victim(app, make_user, login, event):
    """A fan in the queue, and a thief with a copy of the fan's cookie that
    works (API and hot-path poll) before anything is done: (user, client, thief)."""
    user = make_user(password="old-password-1")
    client = login(app.test_client(), user, "old-password-1")
    assert client.post(f"/api/events/{event.id}/queue").status_code == 200
    thief = Thief(app, client)
    assert thief.get("/api/me").json["id"] == user.id
    for _ in range(3):  # the second and later are the hot path's (a remembered cookie)
        assert poll(thief, event.id).status_code == 200
    return user, client, thief


def test_logout_ends_every_copy_of_the_session(app, event, victim, login):
    user, client, thief = victim
    assert client.post("/api/auth/logout").status_code == 204
    assert_ended(app, thief, event.id)
    assert_error(client.get("/api/me"), 401)
    # The victim logs in again: the new session works, the stolen copy stays dead.
    login(client, user, "old-password-1")
    assert client.get("/api/me").status_code == 200
    assert poll(client, event.id).status_code == 200
    assert_error(thief.get("/api/me"), 401)


def test_the_logout_page_ends_every_copy_too(app, event, victim):
    _, client, thief = victim
    assert client.post("/auth/logout").status_code == 302
    assert_ended(app, thief, event.id)


def test_a_password_change_ends_the_other_copies_and_keeps_this_one(app, event, victim, login):
    user, client, thief = victim
    change = "/api/me/password"
    wrong = client.post(change, json={"current_password": "nope-nope", "new_password": "x" * 12})
    assert_error(wrong, 401, "invalid_credentials")
    short = client.post(change, json={"current_password": "old-password-1", "new_password": "x"})
    assert_error(short, 422)
    stolen = {"current_password": "a-guess-123", "new_password": "thief-password"}
    assert_error(thief.post(change, json=stolen), 401)
    assert thief.get("/api/me").status_code == 200  # none of that ended anything
    response = client.post(
        change, json={"current_password": "old-password-1", "new_password": "new-password-2"}
    )
    assert response.status_code == 204, response.json
    assert client.get("/api/me").status_code == 200  # the person who changed it stays in
    assert poll(client, event.id).status_code == 200
    assert_ended(app, thief, event.id)
    bad = app.test_client().post(
        "/api/auth/login", json={"email": user.email, "password": "old-password-1"}
    )
    assert_error(bad, 401)
    login(app.test_client(), user, "new-password-2")
    assert_error(app.test_client().post(change, json={}), 401)  # nobody logged in


def test_the_password_page_changes_it(app, event, victim, login):
    user, client, thief = victim
    page = client.get("/auth/password")
    assert page.status_code == 200 and b'name="new_password"' in page.data
    assert b"/auth/password" in client.get("/bookings").data  # linked where bookings are
    form = {"current_password": "wrong-one!", "new_password": "new-password-2"}
    assert client.post("/auth/password", data=form).status_code == 200  # shown again, an error
    assert thief.get("/api/me").status_code == 200
    form["current_password"] = "old-password-1"
    assert client.post("/auth/password", data=form).status_code == 302
    assert client.get("/api/me").status_code == 200
    assert_ended(app, thief, event.id)
    login(app.test_client(), user, "new-password-2")
    assert app.test_client().get("/auth/password").status_code == 302  # log in first


def test_staff_sign_a_person_out_everywhere(app, event, victim, staff, customer, login):
    user, client, thief = victim
    _, staff_client = staff
    _, customer_client = customer
    url = f"/api/admin/users/{user.id}/sessions/revoke"
    assert_error(customer_client.post(url), 403, "forbidden")
    assert_error(app.test_client().post(url), 401)
    assert_error(staff_client.post("/api/admin/users/987654321/sessions/revoke"), 404)
    assert thief.get("/api/me").status_code == 200
    assert staff_client.post(url).status_code == 204
    assert_ended(app, thief, event.id)
    assert_error(client.get("/api/me"), 401)
    assert staff_client.get("/api/me").status_code == 200  # only that person
    login(client, user, "old-password-1")
    assert client.get("/api/me").status_code == 200


def test_the_staff_page_button_signs_a_person_out(app, event, victim, staff):
    user, _, thief = victim
    _, staff_client = staff
    page = staff_client.get(f"/admin/events/{event.id}")
    assert b"/sessions/revoke" in page.data
    response = staff_client.post(
        f"/admin/events/{event.id}/sessions/revoke", data={"person": user.email}
    )
    assert response.status_code == 302
    assert_ended(app, thief, event.id)


def test_the_cli_signs_a_person_out(app, event, victim, runner):
    user, _, thief = victim
    result = runner.invoke(args=["revoke-sessions", user.email.upper()])
    assert result.exit_code == 0, result.output
    assert_ended(app, thief, event.id)
    assert runner.invoke(args=["revoke-sessions", "nobody@example.com"]).exit_code != 0


def test_a_revocation_survives_redis_losing_the_generations(
    app, r, event, victim, login, make_user
):
    """Redis may lose the generation key (a failover, FLUSHALL): MySQL keeps
    it, so neither do revoked cookies come back nor is everyone logged out."""
    from app import sessions

    user, client, thief = victim
    bystander = login(app.test_client(), user, "old-password-1")  # a second device
    other = login(app.test_client(), make_user())
    assert client.post("/api/auth/logout").status_code == 204
    assert_ended(app, thief, event.id)
    assert_error(bystander.get("/api/me"), 401)  # every device of that person
    r.delete(sessions.key(user.id))
    assert_error(thief.get("/api/me"), 401)
    assert r.get(sessions.key(user.id)) is not None  # reloaded from MySQL
    r.flushdb()
    assert_error(thief.get("/api/me"), 401)
    assert other.get("/api/me").status_code == 200  # nobody else lost their session
    login(client, user, "old-password-1")
    assert client.get("/api/me").status_code == 200


def test_the_generation_key_is_the_persons_own_slot(app):
    """Not an event's slot: no event script touches it (Redis Cluster)."""
    from app import sessions

    assert sessions.key(42) == "{user:42}:sgen"
    assert keys.event(42).tag not in sessions.key(42)


def test_the_hot_path_reads_a_generation_once_per_bound(app, event, victim):
    """The poll's own Redis work stays one EVALSHA: the generation is read
    again only after SESSION_CHECK_SECONDS."""
    user, client, _ = victim
    generations = app.wsgi_app.wsgi_app.generations
    generations.seen.clear()
    assert poll(client, event.id).status_code == 200
    first_read = generations.seen[user.id][1]
    for _ in range(5):
        assert poll(client, event.id).status_code == 200
    assert generations.seen[user.id][1] == first_read
    generations.seen[user.id] = (generations.seen[user.id][0], first_read - 60)  # long ago
    assert poll(client, event.id).status_code == 200
    assert generations.seen[user.id][1] > first_read
