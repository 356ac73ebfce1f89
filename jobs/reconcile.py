"""Every minute: copy MySQL's booked and blocked seats and fencing tokens into
Redis, so seat states come back by themselves after Redis loses data."""

import logging

from app import mirror
from jobs import for_each_event

log = logging.getLogger(__name__)


def reconcile() -> dict:
    return for_each_event(
        mirror.reconcile,
        log,
        noteworthy=lambda result: result["changed"] or result["fence_raised"],
        message="event %s: reconciled seats with the database: %s",
        level=logging.WARNING,  # Redis disagreed with MySQL: worth an operator's look
    )
