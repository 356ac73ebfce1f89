"""The draw job: the fair start's draw at the opening (app/draw.py), as a
job of its own. A million people take a minute or two (BENCHMARKS.md,
figure 15), far longer than an admit tick may run and than other events'
ticks should wait, so the tick only queues it."""

import logging

from flask import current_app
from rq import Queue, get_current_job
from rq.job import JobStatus
from rq.serializers import JSONSerializer

from app import draw
from app.extensions import db
from jobs import JSONJob, flask_app

log = logging.getLogger(__name__)


def job_id(event_id: int) -> str:
    return f"draw-event-{int(event_id)}"


def start(event_id: int) -> dict:
    """Queue the draw on the queue of the job calling this (the admit tick),
    unless it is queued or running already. Called outside RQ (a shell, a
    test), make it here and now."""
    tick = get_current_job()
    if tick is None:
        return draw.make(event_id, current_app.config["SECRET_KEY"])
    connection = tick.connection
    if JSONJob.exists(job_id(event_id), connection=connection):
        status = JSONJob.fetch(job_id(event_id), connection=connection).get_status()
        if status in (JobStatus.QUEUED, JobStatus.STARTED):
            return {"queued": False}
    Queue(tick.origin, connection=connection, serializer=JSONSerializer).enqueue(
        "jobs.draw.make",
        event_id,
        job_id=job_id(event_id),
        job_timeout=int(2 * draw.expected_seconds(10_000_000)),
        result_ttl=3600,
        failure_ttl=86_400,
    )
    return {"queued": True}


def make(event_id: int) -> dict:
    """The job: make the draw (idempotent; a second run finds it made)."""
    with flask_app().app_context(), db.connection_context():
        result = draw.make(event_id, current_app.config["SECRET_KEY"])
    log.info("event %s: draw %s", event_id, result)
    return result
