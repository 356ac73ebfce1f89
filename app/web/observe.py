"""Around every request, the hot path's too: its id (app/logs.py, echoed in
X-Request-Id), its access line, and, with METRICS_TOKEN set, its count and
time by route (app/metrics.py). The route is the URL rule that matched
(`/api/events/<int:event_id>/queue`): Flask's views note it in
before_request, the hot path for its own answers; "unmatched" otherwise."""

import time

from flask import Flask, request

from app import logs, metrics

ROUTE = "ticketdrop.route"
JSON_POLL = "/api/events/<int:event_id>/queue"
FRAGMENT_POLL = "/events/<int:event_id>/waiting/status"
# A poll that went well is counted, not written down: a crowd polls every
# second, and a line each would drown everything else in the log.
# The same for the load balancer's health checks, every few seconds.
QUIET = {("GET", JSON_POLL), ("GET", FRAGMENT_POLL), ("GET", "/healthz"), ("GET", "/readyz")}
# Any other method is "OTHER": a label per made-up method would let anyone
# grow the metrics without bound.
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def init_app(app: Flask) -> None:
    """Note each Flask request's route first, before any hook can refuse it."""

    def note_route():
        rule = request.url_rule
        request.environ[ROUTE] = rule.rule if rule is not None else "unmatched"

    app.before_request_funcs.setdefault(None, []).insert(0, note_route)
    app.wsgi_app = Observe(app, app.wsgi_app)


class Observe:
    """WSGI middleware, outermost: it times everything inside it."""

    def __init__(self, app: Flask, wsgi_app):
        self.wsgi_app = wsgi_app
        self.counting = bool(app.config["METRICS_TOKEN"])

    def __call__(self, environ, start_response):
        request_id = logs.begin_request(environ)
        started = time.perf_counter()
        answered = [500]

        def start(status: str, headers: list, exc_info=None):
            answered[0] = int(status[:3])
            headers.append(("X-Request-Id", request_id))
            return start_response(status, headers, exc_info)

        try:
            return self.wsgi_app(environ, start)
        finally:
            self.done(environ, answered[0], time.perf_counter() - started)

    def done(self, environ, status: int, seconds: float) -> None:
        route, method = environ.get(ROUTE, "unmatched"), environ["REQUEST_METHOD"]
        if method not in METHODS:
            method = "OTHER"
        if self.counting:
            metrics.TALLY.add(route, method, status, seconds)
        if status >= 400 or (method, route) not in QUIET:
            logs.end_request(environ, route, status, seconds)
        logs.end_request_id()
