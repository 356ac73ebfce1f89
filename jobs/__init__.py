"""RQ jobs: plain importable functions that take ids (never request objects),
open their own database connection and call the app's modules.

Workers run with the JSON serializer (pickle is unsafe):
    rq worker -w rq.worker.SimpleWorker -S json --url "$REDIS_URL" ticketdrop
"""

from rq.job import Job
from rq.serializers import JSONSerializer

_app = None


def flask_app():
    """The app, created once per worker process."""
    global _app
    if _app is None:
        from app import create_app

        _app = create_app()
    return _app


class JSONJob(Job):
    """A job that is always stored as JSON, so that rq-scheduler (which does
    not pass a serializer) writes jobs the JSON-serializing worker can read."""

    def __init__(self, id=None, connection=None, serializer=None):
        super().__init__(id, connection=connection, serializer=serializer or JSONSerializer)
