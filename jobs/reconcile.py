"""Every minute: copy MySQL's booked and blocked seats, fencing tokens and
event settings into Redis, so they come back by themselves after Redis
loses data (a flush, a restart, a failover that lost the last writes)."""

import logging

from app import keys, mirror
from app.extensions import redis_store
from jobs import for_each_event

log = logging.getLogger(__name__)


def reconcile() -> dict:
    return for_each_event(
        reconcile_event,
        log,
        noteworthy=lambda result: (
            result["changed"] or result["fence_raised"] or result["config_restored"]
        ),
        message="event %s: reconciled seats with the database: %s",
        level=logging.WARNING,  # Redis disagreed with MySQL: worth an operator's look
    )


def reconcile_event(event_id: int) -> dict:
    result = mirror.reconcile(event_id) | {"config_restored": mirror.restore_config(event_id)}
    repairs = result["changed"] + result["fence_raised"] + int(bool(result["config_restored"]))
    if repairs:  # for /metrics (ticketdrop_event_reconcile_repairs_total)
        redis_store.client.hincrby(keys.event(event_id).tick, "repaired_total", repairs)
    return result
