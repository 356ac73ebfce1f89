"""The app's log lines: a request id on every line written while a request
is answered, and one access line per request (app/web/observe.py calls
begin_request and end_request around each one). `configure` sets up the
process's logging once, for the web server, the worker and the scheduler
alike: one line per record on stderr, as text or as JSON (LOG_FORMAT)."""

import contextvars
import itertools
import json
import logging
import os
import re
import secrets
import sys
from datetime import UTC, datetime

REQUEST_ID = contextvars.ContextVar("request_id", default="-")
# An id a proxy in front sent (nginx: `proxy_set_header X-Request-Id $request_id`)
# is kept when it looks like one; anything else is replaced.
GOOD_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
access_log = logging.getLogger("ticketdrop.access")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


def begin_request(environ) -> str:
    """This request's id (the proxy's, else a new one), set for its log lines."""
    sent = environ.get("HTTP_X_REQUEST_ID")
    request_id = sent if sent and GOOD_ID.fullmatch(sent) else new_id()
    REQUEST_ID.set(request_id)
    return request_id


def end_request_id() -> None:
    """Lines written after the request are no longer its own."""
    REQUEST_ID.set("-")


_ids = {"pid": 0, "prefix": "", "count": itertools.count()}


def new_id() -> str:
    """A random prefix per process and a counter: unique across hosts and
    processes, and a third of the cost of random bytes per request (the
    poll's budget is counted in microseconds)."""
    if _ids["pid"] != os.getpid():  # a new process (a fork's too): a new prefix
        _ids.update(pid=os.getpid(), prefix=secrets.token_hex(6), count=itertools.count())
    return f"{_ids['prefix']}{next(_ids['count']):x}"


def end_request(environ, route: str, status: int, seconds: float) -> None:
    """The request's access line; its parts are fields of their own in JSON."""
    method, path, ms = environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), seconds * 1000
    fields = {"method": method, "path": path, "status": status, "ms": round(ms, 1), "route": route}
    access_log.info("%s %s %s %.1fms", method, path, status, ms, extra=fields)


def configure(config) -> None:
    """The root logger gets one handler of ours, at LOG_LEVEL, in LOG_FORMAT.
    Every create_app calls this (tests make many apps in one process): the
    handler is set up again, never added twice."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, StderrHandler)), None)
    if handler is None:
        handler = StderrHandler()
        handler.addFilter(add_request_id)
        root.addHandler(handler)
    json_lines = config["LOG_FORMAT"] == "json"
    handler.setFormatter(JSONFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
    root.setLevel(config["LOG_LEVEL"].upper())


class StderrHandler(logging.StreamHandler):
    """Writes to sys.stderr as it is at each line, not as it was when the
    handler was made (pytest swaps it for each test it captures)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _):
        pass


def add_request_id(record: logging.LogRecord) -> bool:
    """Every line says which request it belongs to ("-": none, a job's)."""
    record.request_id = REQUEST_ID.get()
    return True


# What every LogRecord has; anything else on a record came from `extra=`.
RECORD_FIELDS = {*vars(logging.makeLogRecord({})), "message", "asctime", "request_id"}


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger,
    message, request_id, each `extra=` field, and exc with the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        line |= {key: value for key, value in vars(record).items() if key not in RECORD_FIELDS}
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)
