"""Batched removal of ghosts: people who stopped polling."""

import logging

from flask import current_app

from app import waiting_room
from jobs import for_each_event

log = logging.getLogger(__name__)


def clean_up() -> dict:
    """For every event not closed, remove everyone whose last poll is older
    than HEARTBEAT_TIMEOUT, at most CLEANUP_BATCH per Redis call."""

    def one_event(event_id: int) -> int:
        config = current_app.config
        return waiting_room.clean_up(
            event_id, config["HEARTBEAT_TIMEOUT"], config["CLEANUP_BATCH"], config["CLEANUP_PAUSE"]
        )

    return for_each_event(
        one_event, log, noteworthy=bool, message="event %s: removed %s people who stopped polling"
    )
