"""The app's log lines: a request id on every line written while a request
is answered, and one access line per request (app/web/observe.py calls
begin_request and end_request around each one)."""

import contextvars
import logging
import re
import secrets

REQUEST_ID = contextvars.ContextVar("request_id", default="-")
# An id a proxy in front sent (nginx: `proxy_set_header X-Request-Id $request_id`)
# is kept when it looks like one; anything else is replaced.
GOOD_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
access_log = logging.getLogger("ticketdrop.access")


def begin_request(environ) -> str:
    """This request's id (the proxy's, else a new one), set for its log lines."""
    sent = environ.get("HTTP_X_REQUEST_ID")
    request_id = sent if sent and GOOD_ID.fullmatch(sent) else secrets.token_hex(8)
    REQUEST_ID.set(request_id)
    return request_id


def end_request(environ, route: str, status: int, seconds: float) -> None:
    """The request's access line."""
    access_log.info(
        "%s %s %s %.1fms", environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), status,
        seconds * 1000,
    )  # fmt: skip
