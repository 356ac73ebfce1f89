"""The poll, answered without Flask's request machinery.

The JSON poll (GET /api/events/<id>/queue) and the htmx status fragment (GET
/events/<id>/waiting/status with HX-Request) are what a waiting crowd sends,
every second near the front. Flask's request cycle (request context, session,
URL matching, the extensions' hooks, the response object) costs more than the
poll's own work, so this WSGI middleware in front of Flask answers them
itself: the identity from the session cookie (its signature checked once,
then remembered; its generation, app/sessions.py, read from Redis at most
once per SESSION_CHECK_SECONDS per person and process), `waiting_room.poll`
(one EVALSHA), and the answer encoded,
byte for byte what Flask would send (tests/test_hot_path.py compares them).

It answers only the common case: a valid, current session and a poll that says
"waiting" (for the JSON poll also "admitted" and "sold out"). Everything
else goes on to Flask untouched: no cookie or a bad one, an ended session
(Flask answers 401), a generation Redis lost, a browser whose
turn it is (the entrance), sold out, not in the queue, a config Redis lost,
a fragment whose progress-bar start is not in the cookie yet, any other
method or path, a request with a body. An
error from Redis is handed on to Flask (environ HANDED_ON_ERROR), which
answers it as it answers every error, without asking Redis a second time.
"""

import re
import time
from collections import OrderedDict

import orjson
from flask import Flask
from itsdangerous import BadData

from app import i18n, sessions, waiting_room
from app.extensions import REDIS_UNAVAILABLE
from app.web import SECURITY_HEADERS, fragments, hsts, observe

HANDED_ON_ERROR = "ticketdrop.hot_path_error"
JSON_POLL = re.compile(r"/api/events/(\d{1,18})/queue")
FRAGMENT_POLL = re.compile(r"/events/(\d{1,18})/waiting/status")
# The headers Flask's views send with these answers (Vary: Cookie as Flask's
# session adds it, the fragment's own, no-store as for every logged-in
# answer, and the security headers; HSTS is added over HTTPS).
JSON_HEADERS = (("Content-Type", "application/json"), ("Vary", "Cookie"),
                *SECURITY_HEADERS.items(), ("Cache-Control", "no-store"))  # fmt: skip
FRAGMENT_HEADERS = (
    ("Content-Type", "text/html; charset=utf-8"),
    ("Vary", "HX-Request, Cookie, Accept-Language"),
    ("Cache-Control", "no-store"),
    *SECURITY_HEADERS.items(),
)


class HotPath:
    """WSGI middleware: `app.wsgi_app = HotPath(app, app.wsgi_app)`."""

    def __init__(self, app: Flask, flask_wsgi_app):
        self.app, self.flask = app, flask_wsgi_app
        self.sessions = SessionReader(app)
        self.generations = Generations(app.config["SESSION_CHECK_SECONDS"])
        self.skeletons = fragments.Skeletons(app)
        self.urls: dict[tuple, tuple[str, str]] = {}

    def __call__(self, environ, start_response):
        if environ["REQUEST_METHOD"] == "GET" and not environ.get("CONTENT_LENGTH"):
            path = environ.get("PATH_INFO", "")
            if match := JSON_POLL.fullmatch(path):
                answer, route = self.json_poll(environ, int(match[1])), observe.JSON_POLL
            elif (match := FRAGMENT_POLL.fullmatch(path)) and environ.get(
                "HTTP_HX_REQUEST"
            ) == "true":
                answer, route = self.fragment_poll(environ, int(match[1])), observe.FRAGMENT_POLL
            else:
                answer = None
            if answer is not None:
                environ[observe.ROUTE] = route
                status, headers, body = answer
                start_response(status, headers)
                return [body]
        return self.flask(environ, start_response)

    def json_poll(self, environ, event_id: int):
        session = self._session(environ)
        if session is None:
            return None
        status = self._poll(environ, event_id, session["uid"])
        if status is None:
            return None
        # As Flask's jsonify writes it: compact, keys sorted, a final newline.
        body = orjson.dumps(status.to_json(), option=orjson.OPT_SORT_KEYS) + b"\n"
        return "200 OK", self._finish(environ, JSON_HEADERS, body, status), body

    def fragment_poll(self, environ, event_id: int):
        session = self._session(environ)
        if session is None:
            return None
        status = self._poll(environ, event_id, session["uid"])
        if status is None or status.status != "waiting":
            return None  # admitted (the entrance) or sold out: Flask's view
        start = session.get(f"start:{event_id}")
        if start is None and not status.draw_id:
            return None  # Flask puts the progress bar's start into the cookie (once)
        language = i18n.choose_language(
            cookie_value(environ, i18n.COOKIE), environ.get("HTTP_ACCEPT_LANGUAGE")
        )
        poll_url, leave_url = self._urls(environ.get("SCRIPT_NAME", ""), event_id)
        view = fragments.status_view(status, start, poll_url, leave_url, language)
        body = self.skeletons.render(language, view)
        return "200 OK", self._finish(environ, FRAGMENT_HEADERS, body, status), body

    def _session(self, environ) -> dict | None:
        """The cookie's session when it is signed, logged in and of the
        person's current generation; None for Flask to answer (after a Redis
        error, with the error handed on)."""
        session = self.sessions.read(environ)
        if not session or not session.get("uid"):
            return None
        try:
            current = self.generations.current(session["uid"])
        except sessions.FALL_BACK:
            return None  # the person's slot is failing over: Flask asks MySQL
        except REDIS_UNAVAILABLE as e:
            environ[HANDED_ON_ERROR] = e
            return None
        return session if current is not None and current == session.get("gen", 0) else None

    def _poll(self, environ, event_id: int, user_id: int):
        """waiting_room.poll; None for anything Flask should answer (after a
        Redis error, with the error handed on)."""
        try:
            return waiting_room.poll(event_id, user_id, self.app.config, reload=False)
        except REDIS_UNAVAILABLE as e:
            environ[HANDED_ON_ERROR] = e
        except Exception:  # not in the queue, the config to reload, ...: Flask's view
            pass
        return None

    def _urls(self, script_name: str, event_id: int) -> tuple[str, str]:
        """The fragment's own URL and the leave page's, built once per event."""
        urls = self.urls.get((script_name, event_id))
        if urls is None:
            adapter = self.app.url_map.bind("localhost", script_name=script_name or "/")
            urls = self.urls[(script_name, event_id)] = (
                adapter.build("pages.waiting_status", {"event_id": event_id}),
                adapter.build("pages.leave", {"event_id": event_id}),
            )
        return urls

    def _finish(self, environ, fixed: tuple, body: bytes, status) -> list:
        headers = [*fixed, ("Content-Length", str(len(body)))]
        if status.retry_after:
            headers.append(("Retry-After", status.retry_after))
        if strict := hsts(self.app.config, environ.get("wsgi.url_scheme")):
            headers.append(("Strict-Transport-Security", strict))
        return headers


class SessionReader:
    """The session cookie's contents, as Flask's own session interface reads
    them (same serializer, key and lifetime), remembered per cookie value:
    a signed cookie cannot change, so a cookie seen once needs no second
    HMAC and JSON decode. Only valid cookies are remembered; the memory is
    bounded (emptied when full), and a remembered cookie still expires."""

    SIZE = 20_000

    def __init__(self, app: Flask):
        self.name = app.config["SESSION_COOKIE_NAME"]
        self.serializer = app.session_interface.get_signing_serializer(app)
        self.max_age = int(app.permanent_session_lifetime.total_seconds())
        self.seen: OrderedDict[str, tuple[dict, float]] = OrderedDict()

    def read(self, environ) -> dict | None:
        value = cookie_value(environ, self.name)
        if not value:
            return None
        known = self.seen.get(value)
        if known is None:
            try:
                data, signed_at = self.serializer.loads(
                    value, max_age=self.max_age, return_timestamp=True
                )
            except BadData:
                return None
            known = (data, signed_at.timestamp())
            if len(self.seen) >= self.SIZE:
                self.seen.clear()
            self.seen[value] = known
        data, signed_at = known
        if time.time() - signed_at > self.max_age:
            return None
        return data


class Generations:
    """Each person's session generation as this process last read it from
    Redis, believed for `seconds`: the front polls every second, so most of
    its polls ask Redis nothing more than the poll itself. The bound: an
    ended session's copies still get poll answers (nothing that acts: every
    action goes through Flask, which checks each request) for at most
    `seconds`. A generation Redis lost is not remembered (None): Flask
    reads it again from MySQL. Bounded memory, emptied when full."""

    SIZE = 100_000

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.seen: dict[int, tuple[int, float]] = {}

    def current(self, user_id: int) -> int | None:
        now = time.monotonic()
        known = self.seen.get(user_id)
        if known is None or now - known[1] >= self.seconds:
            generation = sessions.cached(user_id)
            if generation is None:
                return None
            if len(self.seen) >= self.SIZE:
                self.seen.clear()
            known = self.seen[user_id] = (generation, now)
        return known[0]


def cookie_value(environ, name: str) -> str | None:
    """One cookie's value from the Cookie header (ours are never quoted)."""
    header = environ.get("HTTP_COOKIE")
    if not header:
        return None
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None
