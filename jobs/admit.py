"""The admit job: every second, one admit tick for every event not closed."""

import logging

from app import waiting_room
from jobs import for_each_event

log = logging.getLogger(__name__)


def tick() -> dict:
    """Admit people into every event's active set (paused events only drop
    expired actives). Safe to run late, twice, or from several workers."""
    return for_each_event(
        waiting_room.admit,
        log,
        noteworthy=lambda result: result["admitted"] or result["expired"],
        message="event %s: %s",
    )
