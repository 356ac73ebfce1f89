"""The htmx pages, through the test client: rendering, escaping, the waiting
room's cacheable page and per-person fragment, forms, CSRF and headers."""

import math
import re
from urllib.parse import urlencode, urlsplit

import pytest
from helpers import entered, hold, pay, seat_ids

from app import events, keys
from app.models import User

# The test app's JWT_SECRET is short on purpose; pyjwt warns about it.

XSS = "<script>alert(1)</script>"
HX = {"HX-Request": "true"}


def html(response) -> str:
    return response.get_data(as_text=True)


def status_url(event_id):
    return f"/events/{event_id}/waiting/status"


@pytest.fixture
def person(app, make_user, login):
    """A logged-in browser: (user, client)."""
    user = make_user()
    return user, login(app.test_client(), user)


def delay_ms(page: str) -> int:
    match = re.search(r'hx-trigger="load delay:(\d+)ms, every 90s"', page)
    assert match, page
    return int(match.group(1))


def progress(page: str) -> int:
    match = re.search(r'role="progressbar"[^>]*aria-valuenow="(\d+)"', page, re.S)
    assert match, page
    return int(match.group(1))


# Events


def test_index_and_event_pages_render(client, make_event):
    event = make_event(admission="open")
    index = client.get("/")
    assert index.status_code == 200
    assert f'href="/events/{event.id}"' in html(index)
    page = client.get(f"/events/{event.id}")
    assert page.status_code == 200
    assert "Test event" in html(page)
    assert "Log in to join the queue" in html(page)


def test_index_hides_closed_events(app, client):
    with app.app_context():
        shown = events.create(
            "Shown show", [{"name": "A", "rows": 1, "seats_per_row": 1, "price": 1}]
        )
        hidden = events.create(
            "Hidden show", [{"name": "A", "rows": 1, "seats_per_row": 1, "price": 1}]
        )
        events.update(hidden.id, admission="closed")
    page = html(client.get("/"))
    assert "Shown show" in page and "Hidden show" not in page
    assert client.get(f"/events/{shown.id}").status_code == 200
    assert "This sale is closed" in html(client.get(f"/events/{hidden.id}"))


def test_unknown_event_pages_are_404(client):
    for url in ("/events/999999", "/events/999999/waiting"):
        response = client.get(url)
        assert response.status_code == 404
        assert "text/html" in response.content_type


def test_names_are_escaped(app, client, person):
    with app.app_context():
        event = events.create(XSS, [{"name": "A", "rows": 1, "seats_per_row": 1, "price": 1}])
        events.update(event.id, admission="open")
    _, logged_in = person
    for c in (client, logged_in):
        for url in ("/", f"/events/{event.id}", f"/events/{event.id}/waiting"):
            page = html(c.get(url))
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, url
            assert XSS not in page, url


def test_email_in_the_header_is_escaped(app, make_user, login):
    user = make_user(email="a<b>@example.com")
    client = login(app.test_client(), user)
    page = html(client.get("/"))
    assert "a&lt;b&gt;@example.com" in page and "a<b>@" not in page


# The waiting page: the same for everyone, cacheable


def test_waiting_page_is_the_same_for_everyone(app, client, make_event, make_user, login):
    event = make_event(admission="open")
    a = login(app.test_client(), make_user())
    b = login(app.test_client(), make_user(staff=True))
    a.post(f"/events/{event.id}/join")  # one of them is even in the queue
    pages = [c.get(f"/events/{event.id}/waiting") for c in (client, a, b)]
    assert all(p.status_code == 200 for p in pages)
    assert pages[0].data == pages[1].data == pages[2].data
    for page in pages:
        assert "public" in page.headers["Cache-Control"]
        assert "max-age" in page.headers["Cache-Control"]
        # Nothing per person may ride along with a publicly cacheable page;
        # it varies only with the language (Accept-Language or the `lang`
        # cookie: test_i18n.py), never with the session.
        assert "Set-Cookie" not in page.headers
        assert {v.strip() for v in page.headers["Vary"].split(",")} == {"Accept-Language", "Cookie"}


def test_waiting_page_loads_the_status_fragment(client, make_event):
    event = make_event(admission="open")
    page = html(client.get(f"/events/{event.id}/waiting"))
    url = status_url(event.id)
    assert re.search(rf'hx-get="{re.escape(url)}"\s+hx-trigger="load"', page), page
    noscript = re.search(r"<noscript>(.*?)</noscript>", page, re.S)
    assert noscript, page
    assert re.search(rf'<iframe[^>]*src="{re.escape(url)}"', noscript.group(1))
    assert "htmx" in page  # the script is on the page


def test_waiting_page_shows_no_flash_messages(app, person, make_event):
    """A flash left over from another page must not make the page personal."""
    _, client = person
    event = make_event(admission="closed")
    client.post(f"/events/{event.id}/join")  # flashes "closed"
    anonymous = app.test_client().get(f"/events/{event.id}/waiting").data
    assert client.get(f"/events/{event.id}/waiting").data == anonymous


# The status fragment


def test_fragment_for_a_waiting_person(person, make_event):
    _, client = person
    event = make_event(admission="open")
    assert client.post(f"/events/{event.id}/join").status_code == 302
    response = client.get(status_url(event.id), headers=HX)
    assert response.status_code == 200
    page = html(response)
    assert "<html" not in page  # a fragment, not a page
    n = delay_ms(page)
    assert 900 <= n <= 1100  # 1 s tier, +-10 % jitter
    assert int(response.headers["Retry-After"]) == math.ceil(n / 1000)
    assert re.search(r'hx-get="' + re.escape(status_url(event.id)) + '"', page)
    assert 'hx-swap="outerHTML"' in page
    assert 0 <= progress(page) <= 100
    assert 'aria-valuemin="0"' in page and 'aria-valuemax="100"' in page
    assert 'class="status-text"' in page  # what live.js reads out on change
    # ...through the waiting page's own polite live region, which outlives the swaps.
    assert re.search(
        r'id="announcer"[^>]*aria-live="polite"', html(client.get(f"/events/{event.id}/waiting"))
    )
    assert re.search(r"number <strong>1</strong>", page)
    vary = {v.strip() for v in response.headers["Vary"].split(",")}
    assert "HX-Request" in vary
    assert "no-store" in response.headers["Cache-Control"]
    assert f'href="/events/{event.id}/leave"' in page


def test_fragment_delay_follows_every_response(person, make_event):
    """Each response schedules the next poll from the interval it just chose."""
    _, client = person
    event = make_event(admission="open")
    client.post(f"/events/{event.id}/join")
    for _ in range(8):
        response = client.get(status_url(event.id), headers=HX)
        n = delay_ms(html(response))
        assert 900 <= n <= 1100
        assert int(response.headers["Retry-After"]) == math.ceil(n / 1000)


def test_full_page_without_htmx_refreshes_itself(person, make_event):
    _, client = person
    event = make_event(admission="open")
    client.post(f"/events/{event.id}/join")
    response = client.get(status_url(event.id))
    assert response.status_code == 200
    page = html(response)
    assert page.lstrip().lower().startswith("<!doctype html>")
    match = re.search(r'<meta http-equiv="refresh" content="(\d+)">', page)
    assert match, page
    assert match.group(1) == response.headers["Retry-After"]
    assert 1 <= int(match.group(1)) <= 2
    assert "hx-trigger" not in page  # no htmx here: the meta refresh does the polling
    assert 'aria-live="polite"' in page and 'role="progressbar"' in page
    assert "HX-Request" in response.headers["Vary"]


def test_paused_admission_keeps_the_front_polling_every_second(person, make_event):
    # A small paused queue learns within a second or so that the doors opened.
    _, client = person
    event = make_event(admission="paused")
    client.post(f"/events/{event.id}/join")
    response = client.get(status_url(event.id), headers=HX)
    page = html(response)
    assert 900 <= delay_ms(page) <= 1_100
    assert "paused" in page
    assert int(response.headers["Retry-After"]) == math.ceil(delay_ms(page) / 1000)
    meta = client.get(status_url(event.id))
    content = re.search(r'http-equiv="refresh" content="(\d+)"', html(meta)).group(1)
    assert 1 <= int(content) <= 2 and content == meta.headers["Retry-After"]


def crowd(r, event_id, n):
    """n people already ahead (scores below any real join's sequence number)."""
    queue = keys.event(event_id).queue
    for start in range(0, n, 20_000):
        r.zadd(queue, {f"ahead{i}": -(i + 1) for i in range(start, min(n, start + 20_000))})


def test_fragment_in_a_banded_tier(person, make_event, r):
    _, client = person
    event = make_event(admission="open")
    crowd(r, event.id, 6000)
    client.post(f"/events/{event.id}/join")
    response = client.get(status_url(event.id), headers=HX)
    page = html(response)
    text = re.sub(r"\s+", " ", page)
    assert "between number <strong>6,001</strong> and <strong>7,000</strong>" in text
    assert "6,001 people waiting" in page
    assert 9_000 <= delay_ms(page) <= 11_000  # the 10 s tier
    assert int(response.headers["Retry-After"]) == math.ceil(delay_ms(page) / 1000)


def test_fragment_far_back_shows_only_a_lower_bound(person, make_event, r):
    _, client = person
    event = make_event(admission="open")
    crowd(r, event.id, 100_000)
    client.post(f"/events/{event.id}/join")
    response = client.get(status_url(event.id), headers=HX)
    page = html(response)
    assert "over <strong>100,000</strong> people ahead" in page
    assert 54_000 <= delay_ms(page) <= 66_000  # the 60 s tier


def test_progress_bar_moves_as_people_ahead_go_in(app, make_event, make_user, login):
    event = make_event(admission="open")
    ahead = [login(app.test_client(), make_user()) for _ in range(2)]
    for c in ahead:
        c.post(f"/events/{event.id}/join")
    me = login(app.test_client(), make_user())
    me.post(f"/events/{event.id}/join")
    assert "number <strong>3</strong>" in html(me.get(status_url(event.id), headers=HX))
    assert progress(html(me.get(status_url(event.id), headers=HX))) == 0
    ahead[0].post(f"/events/{event.id}/leave")
    assert progress(html(me.get(status_url(event.id), headers=HX))) == 50
    ahead[1].post(f"/events/{event.id}/leave")
    page = html(me.get(status_url(event.id), headers=HX))
    assert progress(page) == 100 and "number <strong>1</strong>" in page


def test_progress_bar_without_a_recorded_start(app, make_event, make_user, login):
    """Joined through the JSON API (or logged in again, which starts a fresh
    session): the page never saw the starting place. With people still ahead
    the bar must not claim the person is through the queue."""
    event = make_event(admission="open")
    for _ in range(2):
        login(app.test_client(), make_user()).post(f"/api/events/{event.id}/queue")
    user = make_user()
    me = login(app.test_client(), user)
    assert me.post(f"/api/events/{event.id}/queue").json["position"] == 3
    page = html(me.get(status_url(event.id), headers=HX))
    assert "number <strong>3</strong>" in page
    assert progress(page) < 100
    # The same after joining through the page and logging in again.
    other = make_user()
    browser = login(app.test_client(), other)
    browser.post(f"/events/{event.id}/join")
    assert progress(html(browser.get(status_url(event.id), headers=HX))) == 0
    login(browser, other)
    assert progress(html(browser.get(status_url(event.id), headers=HX))) < 100


def test_fragment_when_not_logged_in(client, make_event):
    event = make_event(admission="open")
    for headers in (HX, {}):
        response = client.get(status_url(event.id), headers=headers)
        assert response.status_code == 200
        page = html(response)
        assert "log in" in page
        assert re.search(r'href="/auth/login\?next=[^"]*waiting"', page), page
        assert "load delay" not in page  # nothing to poll for
        assert "Retry-After" not in response.headers
        assert 'http-equiv="refresh"' not in page


def test_fragment_when_not_in_the_queue(person, make_event):
    _, client = person
    event = make_event(admission="open")
    for headers in (HX, {}):
        page = html(client.get(status_url(event.id), headers=headers))
        assert "not in this queue" in page
        assert f'action="/events/{event.id}/join"' in page
        assert "Join the queue" in page
        assert "load delay" not in page


def test_fragment_for_an_unknown_event(person):
    _, client = person
    assert client.get(status_url(999_999), headers=HX).status_code == 404


# Forms: join and leave


def test_join_and_leave_forms(person, make_event):
    user, client = person
    event = make_event(admission="open")
    response = client.post(f"/events/{event.id}/join")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/events/{event.id}/waiting"
    assert client.get(f"/api/events/{event.id}/queue").json["status"] == "waiting"
    # Joining again keeps the place.
    assert client.post(f"/events/{event.id}/join").status_code == 302
    assert client.get(f"/api/events/{event.id}/queue").json["position"] == 1
    response = client.post(f"/events/{event.id}/leave")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/events/{event.id}"
    assert client.get(f"/api/events/{event.id}/queue").status_code == 404
    assert "You left the queue." in html(client.get(f"/events/{event.id}"))


def test_event_page_offers_join_when_logged_in(person, make_event):
    _, client = person
    event = make_event(admission="paused")
    page = html(client.get(f"/events/{event.id}"))
    assert f'action="/events/{event.id}/join"' in page


def test_event_page_knows_your_place(app, person, make_user, login, make_event, r):
    """Back on the event page from the waiting room: your place and the way
    back, not Join; read only (no heartbeat written)."""
    user, client = person
    event = make_event(admission="paused")
    ahead = login(app.test_client(), make_user())
    assert ahead.post(f"/events/{event.id}/join").status_code == 302
    assert client.post(f"/events/{event.id}/join").status_code == 302
    heartbeat = r.zscore(keys.event(event.id).heartbeat, user.id)
    page = html(client.get(f"/events/{event.id}"))
    assert "You are number <strong>2</strong> in the queue." in page
    assert f'href="/events/{event.id}/waiting"' in page
    assert f'action="/events/{event.id}/join"' not in page
    assert r.zscore(keys.event(event.id).heartbeat, user.id) == heartbeat


def test_event_page_when_it_is_your_turn(app, make_user, login, make_event):
    event = make_event(admission="open")
    user, client = entered(app, make_user, login, event)
    page = html(client.get(f"/events/{event.id}"))
    assert "It is your turn." in page
    assert f'href="/events/{event.id}/seats"' in page
    assert f'action="/events/{event.id}/join"' not in page
    # The same person on another device: offered to continue there.
    phone = login(app.test_client(), user)
    page = html(phone.get(f"/events/{event.id}"))
    assert f'action="/events/{event.id}/continue"' in page


def test_event_page_counts_your_tickets(app, make_user, login, make_event):
    """After paying: your tickets and the way to them; no error about the
    waiting room, also when the browser goes back to the seat map."""
    event = make_event(admission="open")
    _, client = entered(app, make_user, login, event, points=10_000)
    first, second = seat_ids(app, event.id)[:2]
    items = [(seat, hold(client, event.id, seat)) for seat in (first, second)]
    assert pay(client, event.id, items).status_code == 201
    back = client.get(f"/events/{event.id}/seats")
    assert back.headers["Location"] == f"/events/{event.id}"
    page = html(client.get(f"/events/{event.id}"))
    assert "You have 2 tickets for this event." in page
    assert 'href="/bookings"' in page
    assert "flash error" not in page
    assert f'action="/events/{event.id}/join"' in page  # they may buy more


def test_join_when_not_logged_in(client, make_event):
    event = make_event(admission="open")
    response = client.post(f"/events/{event.id}/join")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/auth/login"
    assert "next=" in response.headers["Location"]


def test_join_a_closed_event(person, make_event):
    _, client = person
    event = make_event(admission="closed")
    response = client.post(f"/events/{event.id}/join")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/events/{event.id}"
    assert "closed" in html(client.get(f"/events/{event.id}"))


def test_join_an_unknown_event(person):
    _, client = person
    assert client.post("/events/999999/join").status_code == 404


# CSRF (a second app with CSRF switched on, on the same Redis and database)


@pytest.fixture
def csrf_app(app):
    from app import create_app

    csrf_app = create_app(
        {
            **{
                k: app.config[k]
                for k in ("TESTING", "REDIS_URL", "DATABASE_URL", "SECRET_KEY", "JWT_SECRET")
            },
            "WTF_CSRF_ENABLED": True,
        }
    )
    yield csrf_app
    # create_app rebinds the global db proxy and Redis client: bind them back.
    create_app(
        {
            **{
                k: app.config[k]
                for k in ("TESTING", "REDIS_URL", "DATABASE_URL", "SECRET_KEY", "JWT_SECRET")
            },
            "WTF_CSRF_ENABLED": False,
        }
    )


def csrf_token(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def test_login_form_needs_the_csrf_token(csrf_app, make_user):
    user = make_user()
    client = csrf_app.test_client()
    form = {"email": user.email, "password": "password123"}
    refused = client.post("/auth/login", data=form)
    assert refused.status_code == 400
    assert client.post("/auth/login", data={**form, "csrf_token": "forged"}).status_code == 400
    token = csrf_token(html(client.get("/auth/login")))
    response = client.post("/auth/login", data={**form, "csrf_token": token})
    assert response.status_code == 302
    assert client.get("/api/me").status_code == 200


def test_a_token_from_another_session_is_refused(csrf_app, make_user):
    user = make_user()
    other = csrf_app.test_client()
    token = csrf_token(html(other.get("/auth/login")))
    client = csrf_app.test_client()
    client.get("/auth/login")
    response = client.post(
        "/auth/login", data={"email": user.email, "password": "password123", "csrf_token": token}
    )
    assert response.status_code == 400


def test_join_form_needs_the_csrf_token(csrf_app, make_user, make_event):
    user = make_user()
    event = make_event(admission="open")
    client = csrf_app.test_client()
    # The JSON API needs no token (it takes JSON bodies only).
    assert (
        client.post(
            "/api/auth/login", json={"email": user.email, "password": "password123"}
        ).status_code
        == 200
    )
    assert client.post(f"/events/{event.id}/join").status_code == 400
    assert client.get(f"/api/events/{event.id}/queue").status_code == 404
    token = csrf_token(html(client.get(f"/events/{event.id}")))
    response = client.post(f"/events/{event.id}/join", data={"csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/events/{event.id}/waiting"
    assert client.get(f"/api/events/{event.id}/queue").json["status"] == "waiting"
    # Leaving, continuing on this device and logging out need it too.
    assert client.post(f"/events/{event.id}/leave").status_code == 400
    assert client.post(f"/events/{event.id}/continue").status_code == 400
    assert client.post("/auth/logout").status_code == 400
    assert client.post("/auth/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/api/me").status_code == 401


def test_cross_site_form_post_to_the_api_is_refused(csrf_app, make_user, make_event):
    user = make_user()
    event = make_event(admission="open")
    client = csrf_app.test_client()
    client.post("/api/auth/login", json={"email": user.email, "password": "password123"})
    for content_type in (
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data; boundary=x",
    ):
        response = client.post(
            f"/api/events/{event.id}/queue", data="a=b", content_type=content_type
        )
        assert response.status_code == 415
    assert client.get(f"/api/events/{event.id}/queue").status_code == 404


# Account pages without JavaScript


def test_register_page(client):
    page = client.get("/auth/register")
    assert page.status_code == 200
    assert 'action="/auth/register"' in html(page) and 'name="password"' in html(page)
    response = client.post(
        "/auth/register",
        data={"email": "form@example.com", "password": "password123", "name": "Form"},
    )
    assert response.status_code == 302 and response.headers["Location"] == "/"
    me = client.get("/api/me").json
    assert me["email"] == "form@example.com" and me["points"] == 100_000
    assert "Welcome" in html(client.get("/"))


@pytest.mark.parametrize(
    "form, message",
    [
        ({"email": "x@example.com", "password": "short"}, "Password"),
        ({"email": "not-an-email", "password": "password123"}, "Email"),
        ({"email": "x@example.com"}, "Password"),
        ({}, "Email"),
    ],
)
def test_register_page_problems(app, client, form, message):
    response = client.post("/auth/register", data=form)
    assert response.status_code == 200
    page = html(response)
    assert 'class="flash error"' in page and message in page
    assert client.get("/api/me").status_code == 401
    with app.app_context():
        assert User.select().count() == 0


def test_register_page_duplicate_email(client, make_user):
    make_user(email="dup@example.com")
    response = client.post(
        "/auth/register", data={"email": "dup@example.com", "password": "password123"}
    )
    assert response.status_code == 200
    assert "already exists" in html(response)


def test_login_and_logout_pages(client, make_user):
    user = make_user()
    assert client.get("/auth/login").status_code == 200
    response = client.post("/auth/login", data={"email": user.email, "password": "password123"})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert user.email in html(client.get("/"))
    assert client.get("/auth/logout").status_code == 200
    assert client.get("/api/me").status_code == 200  # GET does not log out
    response = client.post("/auth/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/api/me").status_code == 401
    assert "You are logged out." in html(client.get("/"))


@pytest.mark.parametrize("password", ["wrong-password", "", "x" * 500])
def test_login_page_bad_password(client, make_user, password):
    user = make_user()
    response = client.post("/auth/login", data={"email": user.email, "password": password})
    assert response.status_code == 200
    assert "Wrong email or password." in html(response)
    assert client.get("/api/me").status_code == 401


def test_login_page_unknown_email(client):
    response = client.post(
        "/auth/login", data={"email": "who@example.com", "password": "password123"}
    )
    assert response.status_code == 200 and "Wrong email or password." in html(response)


def test_login_next_same_site(client, make_user, make_event):
    user = make_user()
    event = make_event()
    target = f"/events/{event.id}/waiting"
    page = html(client.get(f"/auth/login?next={target}"))
    assert f'name="next" value="{target}"' in page
    response = client.post(
        "/auth/login", data={"email": user.email, "password": "password123", "next": target}
    )
    assert response.headers["Location"] == target


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example",
        "http://evil.example/path",
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "https:evil.example",
        "javascript:alert(1)",
        "evil.example",
        " //evil.example",
        "/\t/evil.example",
        "%2F%2Fevil.example",
    ],
)
def test_login_next_cannot_leave_the_site(client, make_user, target):
    user = make_user()
    for how in ("form", "query"):
        c = client
        form = {"email": user.email, "password": "password123"}
        url = "/auth/login"
        if how == "form":
            form["next"] = target
        else:
            url = "/auth/login?" + urlencode({"next": target})
        response = c.post(url, data=form)
        assert response.status_code == 302
        location = response.headers["Location"]
        # As a browser reads it: backslashes count as slashes.
        parts = urlsplit(location.replace("\\", "/"))
        assert not parts.scheme and not parts.netloc, location
        assert location.startswith("/") and not location.startswith("//"), location
        assert "evil.example" not in location or location.startswith("/%"), location


def test_register_next_cannot_leave_the_site(client):
    response = client.post(
        "/auth/register",
        data={"email": "n@example.com", "password": "password123", "next": "https://evil.example"},
    )
    assert response.headers["Location"] == "/"


def test_an_oversized_form_is_413_not_500(client):
    response = client.post(
        "/auth/login", data={"email": "a@example.com", "password": "x" * (8 * 1024 * 1024)}
    )
    assert response.status_code == 413
    assert "text/html" in response.content_type


# Headers and cookies


@pytest.mark.parametrize("url", ["/", "/auth/login", "/events/999999", "/api/events", "/healthz"])
def test_security_headers(client, url):
    response = client.get(url)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors" in csp and "default-src 'self'" in csp


def test_security_headers_on_pages_with_content(client, make_event):
    event = make_event()
    for url in (f"/events/{event.id}", f"/events/{event.id}/waiting", status_url(event.id)):
        response = client.get(url)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'self'" in response.headers["Content-Security-Policy"]


def test_session_cookie_flags(client, make_user):
    user = make_user()
    for response in (
        client.post("/auth/login", data={"email": user.email, "password": "password123"}),
        client.post("/api/auth/login", json={"email": user.email, "password": "password123"}),
    ):
        cookie = response.headers["Set-Cookie"]
        assert cookie.startswith("session=")
        flags = {part.strip().lower() for part in cookie.split(";")}
        assert "httponly" in flags
        assert "samesite=lax" in flags
        assert "path=/" in flags


def test_polling_does_not_reissue_the_cookie(person, make_event):
    """Polls are the hot path: no new Set-Cookie on each one."""
    _, client = person
    event = make_event(admission="open")
    client.post(f"/events/{event.id}/join")
    client.get(status_url(event.id), headers=HX)
    response = client.get(status_url(event.id), headers=HX)
    assert "Set-Cookie" not in response.headers
    assert "Set-Cookie" not in client.get(f"/api/events/{event.id}/queue").headers


# Logging in: a refused form keeps what was typed and where the person was going


def test_a_failed_login_keeps_the_email_and_next(client, make_user):
    user = make_user()
    response = client.post(
        "/auth/login",
        data={"email": user.email, "password": "wrong-password", "next": "/events/7/waiting"},
    )
    page = html(response)
    assert "Wrong email or password." in page
    assert f'value="{user.email}"' in page
    assert 'name="next" value="/events/7/waiting"' in page
    assert 'href="/auth/register?next=/events/7/waiting"' in page.replace("%2F", "/")
    assert "wrong-password" not in page
    # The right password then goes on to where the person was going.
    again = client.post(
        "/auth/login",
        data={"email": user.email, "password": "password123", "next": "/events/7/waiting"},
    )
    assert again.headers["Location"] == "/events/7/waiting"


def test_a_refused_registration_keeps_name_email_and_next(client, make_user):
    taken = make_user()
    page = html(
        client.post(
            "/auth/register",
            data={"email": taken.email, "password": "password123", "name": "Ada", "next": "/x"},
        )
    )
    assert f'value="{taken.email}"' in page and 'value="Ada"' in page
    assert 'name="next" value="/x"' in page
    assert 'href="/auth/login?next=/x"' in page.replace("%2F", "/")


def test_the_header_login_link_comes_back_here(client, make_event):
    event = make_event()
    page = html(client.get(f"/events/{event.id}")).replace("%2F", "/")
    assert f'href="/auth/login?next=/events/{event.id}"' in page
    assert f'href="/auth/register?next=/events/{event.id}"' in page
    assert 'href="/auth/login?next=/auth' not in html(client.get("/auth/register"))


def test_staff_land_on_the_staff_pages(client, make_user):
    staff = make_user(staff=True)
    response = client.post("/auth/login", data={"email": staff.email, "password": "password123"})
    assert response.headers["Location"] == "/admin/"
    fan = make_user()
    other = client.application.test_client()
    response = other.post("/auth/login", data={"email": fan.email, "password": "password123"})
    assert response.headers["Location"] == "/"


# What a ticket buyer sees: the event, its date and venue, in their own time zone


def test_my_bookings_and_the_confirmation_name_the_event(app, make_user, login, make_event):
    from datetime import datetime

    event = make_event(
        admission="open", venue="Olympic Hall, Seoul", starts_at=datetime(2030, 5, 4, 10, 30)
    )
    _, client = entered(app, make_user, login, event, points=10_000)
    seat = seat_ids(app, event.id)[0]
    booking_id = pay(client, event.id, [(seat, hold(client, event.id, seat))]).json["booking_id"]

    mine = client.get("/api/me/bookings").json[0]
    assert (mine["event_name"], mine["venue"]) == ("Test event", "Olympic Hall, Seoul")
    assert mine["starts_at"].startswith("2030-05-04T10:30:00")

    page = html(client.get("/bookings"))
    assert f'<a href="/bookings/{booking_id}">Test event</a>' in page
    assert "Olympic Hall, Seoul" in page
    # UTC in the HTML; localtime.js rewrites it in the reader's zone.
    assert '<time datetime="2030-05-04T10:30:00Z" data-local="short">May 4, 2030' in page
    assert "1 ticket:" in page
    assert f'href="/events/{event.id}"' in page

    confirmation = html(client.get(f"/bookings/{booking_id}"))
    assert "Olympic Hall, Seoul" in confirmation
    assert f'href="/events/{event.id}">Back to Test event</a>' in confirmation
    event_page = html(client.get(f"/events/{event.id}"))
    assert "Venue" in event_page and '<time datetime="2030-05-04T10:30:00Z"' in event_page


def test_venue_and_date_through_the_api(staff, make_event):
    _, client = staff
    event = make_event()
    response = client.patch(
        f"/api/admin/events/{event.id}",
        json={"venue": "  Arena  ", "starts_at": "2031-01-02T03:04:00+09:00"},
    )
    assert response.status_code == 200, response.json
    assert response.json["venue"] == "Arena"
    assert response.json["starts_at"].startswith("2031-01-01T18:04:00")
    cleared = client.patch(f"/api/admin/events/{event.id}", json={"starts_at": None}).json
    assert cleared["starts_at"] is None and cleared["venue"] == "Arena"
    assert (
        client.patch(f"/api/admin/events/{event.id}", json={"venue": "x" * 201}).status_code == 422
    )


def test_the_cacheable_waiting_page_keeps_the_account_links(client, make_user, login, make_event):
    """The waiting page is everyone's copy; the person's own links (My
    bookings, Staff, Log out) come from a fragment of their own."""
    event = make_event()
    page = html(client.get(f"/events/{event.id}/waiting"))
    assert 'hx-get="/auth/links"' in page and 'href="/bookings"' in page
    waiting_url = f"http://localhost/events/{event.id}/waiting"
    anonymous = client.get(
        "/auth/links", headers={"HX-Request": "true", "HX-Current-URL": waiting_url}
    )
    assert anonymous.headers["Cache-Control"] == "no-store"
    assert f'/auth/login?next=/events/{event.id}/waiting"' in html(anonymous).replace("%2F", "/")
    user = make_user()
    login(client, user)
    assert html(client.get(f"/events/{event.id}/waiting")) == page  # the same copy for everyone
    mine = html(client.get("/auth/links", headers={"HX-Request": "true"}))
    assert user.email in mine and 'action="/auth/logout"' in mine and 'name="csrf_token"' in mine
    assert "Cookie" in client.get("/auth/links").headers["Vary"]


def test_an_htmx_refresh_without_a_session_takes_the_page_to_the_login(client, make_event):
    """Logged out elsewhere (logout ends every copy): the seat panel's next
    refresh sends the whole page to the login, and back to that page after."""
    event = make_event()
    response = client.get(
        f"/events/{event.id}/seats/panel?v=x",
        headers={
            "HX-Request": "true",
            "HX-Current-URL": f"http://localhost/events/{event.id}/seats",
        },
    )
    assert response.status_code == 200 and response.get_data() == b""
    assert response.headers["HX-Redirect"].replace("%2F", "/") == (
        f"/auth/login?next=/events/{event.id}/seats"
    )
    plain = client.get(f"/events/{event.id}/seats/panel?v=x")
    assert plain.status_code == 302 and "/auth/login?next=" in plain.headers["Location"]
