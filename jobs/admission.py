"""The admission tick: every second, for every event that is not closed."""

import logging

from app import waiting_room
from app.extensions import db
from app.models import Event
from jobs import flask_app

log = logging.getLogger(__name__)


def tick() -> dict:
    """Admit people into every event's active set (paused events only drop
    expired actives). Safe to run late, twice, or from several workers."""
    with flask_app().app_context(), db.connection_context():
        event_ids = [e.id for e in Event.select(Event.id).where(Event.admission != "closed")]
        results = {}
        for event_id in event_ids:
            results[event_id] = waiting_room.admit(event_id)
            if results[event_id]["admitted"] or results[event_id]["expired"]:
                log.info(
                    "event %s: admitted %s, expired %s, active %s",
                    event_id,
                    *(results[event_id][k] for k in ("admitted", "expired", "active")),
                )
        return results
