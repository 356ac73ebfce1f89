"""RQ jobs: plain importable functions that take ids (never request objects),
open their own database connection and call the app's modules.

Workers run with the JSON serializer (pickle is unsafe):
    rq worker -w rq.worker.SimpleWorker -S json --url "$RQ_REDIS_URL" ticketdrop
"""

import logging

from rq.job import Job
from rq.serializers import JSONSerializer

from app import create_app
from app.extensions import db
from app.models import Event

_app = None


def flask_app():
    """The app, created once per worker process."""
    global _app
    if _app is None:
        _app = create_app()
    return _app


def for_each_event(
    work, log: logging.Logger, *, noteworthy, message: str, level: int = logging.INFO
) -> dict:
    """Run work(event_id) for every event that is not closed, inside the app
    and a database connection; returns {event_id: result}. A result for
    which noteworthy(result) is true is logged: `message` % (event_id, result)."""
    with flask_app().app_context(), db.connection_context():
        open_events = Event.select(Event.id).where(Event.admission != "closed")
        results = {}
        for (event_id,) in open_events.tuples():
            results[event_id] = work(event_id)
            if noteworthy(results[event_id]):
                log.log(level, message, event_id, results[event_id])
        return results


class JSONJob(Job):
    """A job that is always stored as JSON, so that rq-scheduler (which does
    not pass a serializer) writes jobs the JSON-serializing worker can read."""

    def __init__(self, id=None, connection=None, serializer=None):
        super().__init__(id, connection=connection, serializer=serializer or JSONSerializer)
