"""The hot path (app/web/hot_path.py) answers the poll before Flask does: it
must answer exactly what Flask answers, and leave everything else to Flask."""

import io
import random
import sys
import time

import pytest
from helpers import free_port, redis_now_ms

from app import keys, waiting_room
from app.web.hot_path import HotPath, SessionReader

HX = {"HTTP_HX_REQUEST": "true"}


def environ(path: str, cookie: str | None, method: str = "GET", **extra) -> dict:
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "HTTP_HOST": "localhost",
        **extra,
    }
    if cookie:
        env["HTTP_COOKIE"] = cookie
    return env


def answer(wsgi_app, env: dict) -> tuple[str, dict, bytes]:
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, headers

    body = b"".join(wsgi_app(env, start_response))
    return seen["status"], dict(seen["headers"]), body


def both(app, env: dict):
    """(the hot path's answer, Flask's own answer) to the same request, with
    the same poll interval jitter; None for the hot path if it handed on."""
    hot_path = app.wsgi_app.wsgi_app  # inside app/web/observe.py's Observe
    assert isinstance(hot_path, HotPath)
    random.seed(7)
    calls = {"flask": 0}
    flask = hot_path.flask

    def counting(environ, start_response):
        calls["flask"] += 1
        return flask(environ, start_response)

    hot_path.flask = counting
    try:
        fast = answer(hot_path, dict(env))
    finally:
        hot_path.flask = flask
    random.seed(7)
    slow = answer(flask, dict(env))
    return (None if calls["flask"] else fast), slow


def session_cookie(client) -> str:
    cookie = client.get_cookie("session")
    return f"session={cookie.value}"


@pytest.fixture
def waiting(app, client, make_user, login, event):
    """A logged-in person waiting behind 1,233 others: (client, their cookie)."""
    login(client, make_user())
    assert client.post(f"/events/{event.id}/join").status_code == 302
    # The first fragment (Flask's) puts the progress bar's start into the cookie.
    assert client.get(f"/events/{event.id}/waiting/status", headers={"HX-Request": "true"})
    return client, session_cookie(client)


def queue_ahead(r, event_id: int, people: int) -> None:
    """Put `people` in front of everyone who is waiting now."""
    if not people:
        return
    k = keys.event(event_id)
    r.zadd(k.queue, {str(10**9 + i): -people + i for i in range(people)})
    r.zadd(k.heartbeat, dict.fromkeys((str(10**9 + i) for i in range(people)), redis_now_ms(r)))


def test_the_json_poll_is_flasks_answer_byte_for_byte(app, event, waiting, r):
    _, cookie = waiting
    queue_ahead(r, event.id, 1233)
    fast, slow = both(app, environ(f"/api/events/{event.id}/queue", cookie))
    assert fast is not None, "the hot path handed a plain poll on to Flask"
    assert fast[0] == slow[0] == "200 OK"
    assert fast[2] == slow[2]
    assert b'"position":1234' in fast[2]
    assert fast[1] == slow[1]  # every header, the same value


@pytest.mark.parametrize(
    "ahead, paused, rate, language",
    [
        (0, False, 0, "en"),  # the front, no estimate yet, one person: singular
        (1233, False, 12.5, "en"),  # exact place, an estimate
        (7_400, False, 50, "ko"),  # a band, Korean
        (120_000, True, 0, "en"),  # over 100,000 ahead, paused
        (3, True, 0, "ko"),
    ],
)
def test_the_fragment_is_flasks_answer_byte_for_byte(
    app, event, waiting, r, ahead, paused, rate, language
):
    _, cookie = waiting
    queue_ahead(r, event.id, ahead)
    k = keys.event(event.id)
    if paused:
        r.hset(k.config, "state", "paused")
    r.hset(k.tick, "rate_obs", rate)
    env = environ(f"/events/{event.id}/waiting/status", cookie, **HX, HTTP_ACCEPT_LANGUAGE=language)
    fast, slow = both(app, env)
    assert fast is not None, "the hot path handed a waiting person's fragment on"
    assert fast[0] == slow[0] == "200 OK"
    assert fast[2].decode() == slow[2].decode()
    assert fast[1] == slow[1]
    text = fast[2].decode()
    assert "hx-trigger=" in text and "Retry-After" in fast[1]
    assert ("대기" in text) == (language == "ko")


@pytest.mark.parametrize(
    ("opens_in_ms", "language"), [(3_600_000, "en"), (90_000, "ko"), (-500, "en")]
)
def test_the_pre_queue_is_flasks_answer_byte_for_byte(
    app, event, waiting, r, make_user, opens_in_ms, language
):
    # In the pre-queue (before the sale opens, or while its draw is made):
    # no place, the person's draw id, the time to the opening.
    client, cookie = waiting
    k = keys.event(event.id)
    uid = client.get("/api/me").json["id"]
    r.zrem(k.queue, uid)
    r.zadd(k.prequeue, {uid: 1, 10**9: 2})
    r.hset(k.config, "opens_at_ms", redis_now_ms(r) + opens_in_ms)
    for env in (
        environ(f"/api/events/{event.id}/queue", cookie),
        environ(f"/events/{event.id}/waiting/status", cookie, **HX, HTTP_ACCEPT_LANGUAGE=language),
    ):
        fast, slow = both(app, env)
        assert fast is not None, env["PATH_INFO"]
        assert fast[0] == slow[0] == "200 OK" and fast[2] == slow[2] and fast[1] == slow[1]
        with app.app_context():
            assert waiting_room.poll(event.id, uid).draw_id.encode() in fast[2]


def test_the_lang_cookie_chooses_the_fragments_language(app, event, waiting):
    _, cookie = waiting
    env = environ(
        f"/events/{event.id}/waiting/status", f"{cookie}; lang=ko", **HX, HTTP_ACCEPT_LANGUAGE="en"
    )
    fast, slow = both(app, env)
    assert fast is not None and fast[2] == slow[2]
    assert "대기" in fast[2].decode()


def test_a_sold_out_json_poll_and_an_admitted_one_are_answered_too(app, event, waiting, r):
    client, cookie = waiting
    k = keys.event(event.id)
    r.hset(k.config, "sold_out", 1)
    fast, slow = both(app, environ(f"/api/events/{event.id}/queue", cookie))
    assert fast is not None and fast[2] == slow[2] and b'"sold_out"' in fast[2]
    # Told, the person stays in line (else they would be out of it: test_returns.py).
    assert client.post(f"/api/events/{event.id}/queue/stay").get_json()["staying"]
    r.hset(k.config, "sold_out", 0)
    with app.app_context():
        assert waiting_room.admit(event.id)["admitted"] == 1
    fast = answer(app.wsgi_app, environ(f"/api/events/{event.id}/queue", cookie))
    assert b'"status":"admitted"' in fast[2] and b'"token":"ey' in fast[2]


@pytest.mark.parametrize(
    "case",
    [
        "no cookie",
        "forged cookie",
        "not in the queue",
        "admitted fragment",
        "sold out fragment",
        "no start yet",
        "head",
        "post",
        "body",
        "another path",
        "no htmx",
    ],
)
def test_everything_else_goes_on_to_flask(app, event, waiting, r, case):
    client, cookie = waiting
    url = f"/events/{event.id}/waiting/status"
    env = environ(url, cookie, **HX)
    if case == "no cookie":
        env = environ(url, None, **HX)
    elif case == "forged cookie":
        env = environ(url, cookie[:-3] + "abc", **HX)
    elif case == "not in the queue":
        client.delete(f"/api/events/{event.id}/queue")
    elif case == "admitted fragment":
        with app.app_context():
            waiting_room.admit(event.id)
    elif case == "sold out fragment":
        r.hset(keys.event(event.id).config, "sold_out", 1)
    elif case == "no start yet":
        with client.session_transaction() as session:
            session.pop(f"start:{event.id}")
        env = environ(url, session_cookie(client), **HX)
    elif case == "head":
        env = environ(url, cookie, "HEAD", **HX)
    elif case == "post":
        env = environ(f"/api/events/{event.id}/queue", cookie, "POST")
    elif case == "body":
        env = environ(f"/api/events/{event.id}/queue", cookie, CONTENT_LENGTH="2")
        env["wsgi.input"] = io.BytesIO(b"{}")
    elif case == "another path":
        env = environ(f"/api/events/{event.id}/queue/", cookie)
    elif case == "no htmx":
        env = environ(url, cookie)
    fast, slow = both(app, env)
    assert fast is None, f"{case}: the hot path answered it itself"
    assert not slow[0].startswith("5"), slow


def test_a_forged_or_expired_cookie_is_never_believed(app, waiting):
    _, cookie = waiting
    reader = SessionReader(app)
    value = cookie.partition("=")[2]
    assert reader.read({"HTTP_COOKIE": cookie})["uid"]
    # A character inside the signature (the last one may only carry padding bits).
    forged = cookie[:-5] + ("A" if cookie[-5] != "A" else "B") + cookie[-4:]
    assert reader.read({"HTTP_COOKIE": forged}) is None
    reader.max_age = -1  # everything signed so far is too old now, remembered or not
    assert value in reader.seen
    assert reader.read({"HTTP_COOKIE": cookie}) is None


def test_a_silent_redis_costs_the_poll_one_timeout_not_two(app, make_app, waiting, event):
    """The hot path hands the error it met to Flask, which answers 503 at once."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", free_port()))
    silent.listen(16)  # accepts, never answers
    try:
        papp = make_app(REDIS_URL=f"redis://127.0.0.1:{silent.getsockname()[1]}/0", REDIS_TIMEOUT=1)
        _, cookie = waiting
        started = time.monotonic()
        status, headers, body = answer(
            papp.wsgi_app, environ(f"/api/events/{event.id}/queue", cookie)
        )
        seconds = time.monotonic() - started
    finally:
        silent.close()
    assert status.startswith("503") and headers["Retry-After"] and b"unavailable" in body
    assert 1 <= seconds < 1.9, seconds


def test_the_skeletons_escape_as_jinja_does():
    from markupsafe import escape

    from app.web.fragments import ESCAPE

    for text in ["a&b<c>d\"e'f", "1,234", "4분 ~ 6분", "/events/1/waiting/status?x=1&y=2", ""]:
        assert text.translate(ESCAPE) == str(escape(text))
