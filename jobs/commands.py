"""The worker and scheduler commands (`flask --app wsgi worker`, `... scheduler`),
added to the app's command line by wsgi.py."""

import click
from flask import Flask, current_app
from redis import Redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from jobs.schedule import make_scheduler


def rq_connection(url: str) -> Redis:
    """RQ wants bytes back, so it gets its own client (not decode_responses)."""
    return Redis.from_url(url)


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
        connection = rq_connection(config["REDIS_URL"])
        make_scheduler(connection, config["RQ_QUEUE"], interval, config).run()

    @app.cli.command("worker")
    @click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
    def worker(burst):
        """Run an RQ worker on the app's queue (JSON serializer, no fork per job)."""
        connection = rq_connection(current_app.config["REDIS_URL"])
        queue = Queue(
            current_app.config["RQ_QUEUE"], connection=connection, serializer=JSONSerializer
        )
        SimpleWorker([queue], connection=connection, serializer=JSONSerializer).work(
            burst=burst, with_scheduler=False, logging_level="WARNING"
        )
