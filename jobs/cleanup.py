"""Batched removal of ghosts: people who stopped polling."""

import logging

from flask import current_app

from app import waiting_room
from app.extensions import db
from app.models import Event
from jobs import flask_app

log = logging.getLogger(__name__)


def clean_up() -> dict:
    """For every event not closed, remove everyone whose last poll is older
    than HEARTBEAT_TIMEOUT, at most CLEANUP_BATCH per Redis call."""
    with flask_app().app_context(), db.connection_context():
        config = current_app.config
        event_ids = [e.id for e in Event.select(Event.id).where(Event.admission != "closed")]
        removed = {}
        for event_id in event_ids:
            removed[event_id] = waiting_room.clean_up(
                event_id,
                config["HEARTBEAT_TIMEOUT"],
                config["CLEANUP_BATCH"],
                config["CLEANUP_PAUSE"],
            )
            if removed[event_id]:
                log.info(
                    "event %s: removed %s people who stopped polling", event_id, removed[event_id]
                )
        return removed
