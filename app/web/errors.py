"""How the web answers a refusal or a failure.

An AppError (app/errors.py) becomes {"error", "message"} with its status for
the JSON API, a message in the page's message area for htmx, and an error
page otherwise. HTTP errors that werkzeug and flask-wtf raise get messages of
our own words; an unreachable Redis or database is a 503 with Retry-After;
anything unexpected is logged and answered as 500 without details.
"""

import logging

import peewee
from flask import Flask, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from playhouse.pool import MaxConnectionsExceeded
from werkzeug.exceptions import HTTPException

from app.errors import AppError
from app.extensions import REDIS_UNAVAILABLE
from app.web.hot_path import HANDED_ON_ERROR
from app.web.limits import retry_after

log = logging.getLogger(__name__)

# What people read for HTTP errors that werkzeug and flask-wtf raise (their
# own descriptions are English and technical).
HTTP_MESSAGES = {
    400: _l("The request could not be understood."),
    401: _l("Please log in first."),
    403: _l("You are not allowed to do this."),
    404: _l("There is no such page."),
    405: _l("This address does not accept this kind of request."),
    413: _l("The request body is too large (1 MiB at most)."),
    415: _l("This kind of content is not accepted here."),
    429: _l("You are going too fast; please wait a moment and try again."),
    500: _l("Something went wrong on our side."),
}
CSRF_MESSAGE = _l(
    "This form has expired or did not come from this site; please reload the page and try again."
)
REDIS_DOWN = _l("The waiting room is unavailable right now; please try again in a moment.")
DATABASE_DOWN = _l("The service is unavailable right now; please try again in a moment.")
UNAVAILABLE_RETRY_AFTER = "5"


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path in ("/healthz", "/readyz")


def respond(status: int, code: str, message, headers: dict | None = None):
    headers, message = dict(headers or {}), str(message)
    if wants_json():
        response = jsonify(error=code, message=message)
    elif request.headers.get("HX-Request") == "true":
        # htmx: show the message in the page's message area, whatever the target was.
        response = render_template("_message.html", message=message)
        headers.update({"HX-Retarget": "#messages", "HX-Reswap": "innerHTML"})
    else:
        response = render_template("error.html", status=status, message=message)
    return response, status, headers


def register(app: Flask) -> None:
    @app.before_request
    def handed_on_error():
        """An error the hot path met (app/web/hot_path.py) is answered here,
        as every error is, without asking Redis a second time."""
        error = request.environ.get(HANDED_ON_ERROR)
        if error is not None:
            raise error

    @app.errorhandler(AppError)
    def app_error(e: AppError):
        return respond(e.status, e.code, e.message, e.headers)

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        code = (e.name or "error").lower().replace(" ", "_")
        headers = {"Retry-After": retry_after()} if e.code == 429 else {}
        if isinstance(e, CSRFError):
            message = CSRF_MESSAGE
        else:
            message = HTTP_MESSAGES.get(e.code, e.description or e.name)
        return respond(e.code or 500, code, message, headers)

    def redis_down(e):
        log.error("Redis unavailable: %s", e)
        return respond(503, "unavailable", REDIS_DOWN, {"Retry-After": UNAVAILABLE_RETRY_AFTER})

    for error in REDIS_UNAVAILABLE:
        app.register_error_handler(error, redis_down)

    @app.errorhandler(peewee.OperationalError)
    @app.errorhandler(peewee.InterfaceError)
    @app.errorhandler(MaxConnectionsExceeded)
    def database_down(e):
        log.error("Database unavailable: %s", e)
        return respond(503, "unavailable", DATABASE_DOWN, {"Retry-After": UNAVAILABLE_RETRY_AFTER})

    @app.errorhandler(Exception)
    def unexpected(e):
        log.exception("Unhandled error on %s %s", request.method, request.path)
        return respond(500, "internal_error", HTTP_MESSAGES[500])
