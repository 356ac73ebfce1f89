"""Every minute: copy MySQL's booked and blocked seats and fencing tokens into
Redis, so seat states come back by themselves after Redis loses data."""

import logging

from app import seats
from app.extensions import db
from app.models import Event
from jobs import flask_app

log = logging.getLogger(__name__)


def reconcile() -> dict:
    with flask_app().app_context(), db.connection_context():
        results = {}
        for event in Event.select(Event.id).where(Event.admission != "closed"):
            results[event.id] = seats.reconcile(event.id)
            if results[event.id]["changed"] or results[event.id]["fence_raised"]:
                log.warning(
                    "event %s: reconciled seats with the database: %s", event.id, results[event.id]
                )
        return results
