"""The admit job: every second, one admit tick for every event not closed."""

import logging
import time

from app import metrics, waiting_room
from jobs import draw, flask_app, for_each_event

log = logging.getLogger(__name__)


def tick() -> dict:
    """Admit people into every event's active set (paused events only drop
    expired actives). Safe to run late, twice, or from several workers.
    Its duration goes to /metrics (through Redis: metrics.record_tick)."""
    started = time.perf_counter()
    results = for_each_event(
        admit_one,
        log,
        noteworthy=lambda result: result["admitted"] or result["expired"] or "draw" in result,
        message="event %s: %s",
    )
    with flask_app().app_context():
        metrics.record_tick(time.perf_counter() - started)
    return results


def admit_one(event_id: int) -> dict:
    """One tick; at the opening, the draw first (queued as a job of its
    own: nobody is let in until it is made)."""
    result = waiting_room.admit(event_id)
    if result["status"] == "draw":
        result["draw"] = draw.start(event_id)
    return result
