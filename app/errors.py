"""One error type for every refusal the product makes on purpose.

Modules raise AppError; the JSON API turns it into {"error", "message"} with
its status, the pages into a message on the page. Anything unexpected is
logged and answered as 500 without leaking details; an unreachable Redis or
database is a 503 with a clear message.
"""

import logging

import peewee
import redis.exceptions
from flask import Flask, jsonify, render_template, request
from playhouse.pool import MaxConnectionsExceeded
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class AppError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def not_found(what: str = "event") -> AppError:
    return AppError(404, "not_found", f"No such {what}.")


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path in ("/healthz", "/readyz")


def respond(status: int, code: str, message: str, headers: dict | None = None):
    headers = dict(headers or {})
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
    @app.errorhandler(AppError)
    def app_error(e: AppError):
        return respond(e.status, e.code, e.message, e.headers)

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        code = (e.name or "error").lower().replace(" ", "_")
        messages = {413: "The request body is too large (1 MiB at most)."}
        headers = {}
        if e.code == 429:
            from app.web.limits import retry_after

            headers["Retry-After"] = retry_after()
        return respond(e.code or 500, code, messages.get(e.code, e.description or e.name),
                       headers)

    @app.errorhandler(redis.exceptions.ConnectionError)
    @app.errorhandler(redis.exceptions.TimeoutError)
    def redis_down(e):
        log.error("Redis unavailable: %s", e)
        return respond(503, "unavailable", "The waiting room is unavailable right now; "
                       "please try again in a moment.", {"Retry-After": "5"})

    @app.errorhandler(peewee.OperationalError)
    @app.errorhandler(peewee.InterfaceError)
    @app.errorhandler(MaxConnectionsExceeded)
    def database_down(e):
        log.error("Database unavailable: %s", e)
        return respond(503, "unavailable", "The service is unavailable right now; "
                       "please try again in a moment.", {"Retry-After": "5"})

    @app.errorhandler(Exception)
    def unexpected(e):
        log.exception("Unhandled error on %s %s", request.method, request.path)
        return respond(500, "internal_error", "Something went wrong on our side.")
