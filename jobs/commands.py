"""The worker and scheduler commands (`flask --app wsgi worker`, `... scheduler`),
added to the app's command line by wsgi.py. Their log lines go through the
app's handler (app/logs.py), in its format."""

import logging

import click
import rq.logutils
from flask import Flask, current_app
from redis import Redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from jobs.schedule import make_scheduler


def rq_connection(url: str) -> Redis:
    """RQ wants bytes back, so it gets its own client (not decode_responses),
    even when its Redis is the app's."""
    return Redis.from_url(url)


def rq_url(config: dict) -> str:
    """RQ's plain Redis: RQ_REDIS_URL (config.py defaults it to a plain REDIS_URL)."""
    if not config["RQ_REDIS_URL"]:
        raise click.ClickException(
            "REDIS_URL is a Redis Cluster, which RQ cannot use: set RQ_REDIS_URL "
            "to a plain Redis for the jobs and schedules."
        )
    return config["RQ_REDIS_URL"]


# RQ's INFO lines written for every job (taken, done, its result kept): the
# admit job runs every second, 86,400 lines a day that say nothing. A job
# that fails is still a WARNING of its own; the jobs log what they did.
PER_JOB = {"dequeue_job_and_maintain_ttl", "handle_job_success", "_finalize_success"}


def not_per_job(record: logging.LogRecord) -> bool:
    return not (record.levelno == logging.INFO and record.funcName in PER_JOB)


def quiet_rq() -> None:
    """RQ's worker logs through the root logger's handler (ours: RQ adds its
    own only when there is none), without its per-job lines, and in plain
    text (its colours are escape codes in a log file or a JSON line)."""
    logging.getLogger("rq.worker").addFilter(not_per_job)
    rq.logutils.colorizer.notty = True


def register(app: Flask) -> None:
    @app.cli.command("scheduler")
    @click.option(
        "--interval",
        type=float,
        default=1.0,
        show_default=True,
        help="Seconds between checks for due jobs.",
    )
    def scheduler(interval):
        """Run rq-scheduler with the periodic jobs (re-registered if Redis loses them)."""
        config = current_app.config
        connection = rq_connection(rq_url(config))
        make_scheduler(connection, config["RQ_QUEUE"], interval, config).run()

    @app.cli.command("worker")
    @click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
    def worker(burst):
        """Run an RQ worker on the app's queue (JSON serializer, no fork per job)."""
        connection = rq_connection(rq_url(current_app.config))
        queue = Queue(
            current_app.config["RQ_QUEUE"], connection=connection, serializer=JSONSerializer
        )
        quiet_rq()
        SimpleWorker([queue], connection=connection, serializer=JSONSerializer).work(
            burst=burst, with_scheduler=False, logging_level=current_app.config["LOG_LEVEL"].upper()
        )
