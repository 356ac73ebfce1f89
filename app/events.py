"""Events: create with a seat layout, change admission live, numbers for staff.

MySQL holds each event's settings; Redis holds a copy in the event's config
hash, which is what the Lua scripts read. `sync_config` writes that copy and
is called whenever the settings change or Redis turns out to have lost it.
"""

import string
from datetime import UTC, datetime

import peewee
from flask_babel import lazy_gettext as _l
from peewee import fn

from app import audit, keys, seats
from app.config import EVENT_DEFAULTS
from app.errors import AppError, not_found
from app.extensions import db, redis_store
from app.models import Event, Seat

ADMISSION_STATES = ("open", "paused", "closed")


def get(event_id: int) -> Event:
    event = Event.get_or_none(Event.id == event_id)
    if event is None:
        raise not_found("event")
    return event


def create(
    name: str,
    sections: list[dict],
    actor_id: int | None = None,
    sale_opens_at: datetime | None = None,
    **settings,
) -> Event:
    """Create an event and its seats; admission starts paused."""
    values = {**EVENT_DEFAULTS, **{k: v for k, v in settings.items() if v is not None}}
    try:
        event = _create_with_seats(name, sections, sale_opens_at, values, actor_id)
    except peewee.IntegrityError:
        raise AppError(
            422,
            "invalid",
            _l(
                "Two seats would have the same section, row and "
                "number: give every section its own name."
            ),
        ) from None
    sync_config(event)
    return event


def _create_with_seats(name, sections, sale_opens_at, values, actor_id) -> Event:
    with db.atomic():
        event = Event.create(name=name, sale_opens_at=sale_opens_at, **values)
        rows = [
            {
                "event": event.id,
                "section": s["name"],
                "row": row_label(r),
                "number": n,
                "price": s["price"],
            }
            for s in sections
            for r in range(s["rows"])
            for n in range(1, s["seats_per_row"] + 1)
        ]
        for start in range(0, len(rows), 500):
            Seat.insert_many(rows[start : start + 500]).execute()
        audit.record(actor_id, "event.create", f"event:{event.id}", None, describe(event))
    return event


def update(event_id: int, actor_id: int | None = None, **changes) -> Event:
    """Open, pause or close admission and change max_active / admit_rate live."""
    # None means "unchanged", except for sale_opens_at where it means "no set time".
    changes = {k: v for k, v in changes.items() if v is not None or k == "sale_opens_at"}
    if "admission" in changes and changes["admission"] not in ADMISSION_STATES:
        raise AppError(422, "invalid", _l("admission must be open, paused or closed."))
    with db.atomic():
        event = get(event_id)
        before = describe(event)
        for field, value in changes.items():
            setattr(event, field, value)
        event.save()
        audit.record(actor_id, "event.update", f"event:{event.id}", before, describe(event))
    if event.admission != before["admission"]:
        # Restart the admission clock: reopening must not release the time
        # the event spent paused or closed all at once.
        redis_store.client.hdel(keys.event(event.id).tick, "last_ms", "carry")
        if event.admission == "open":
            seats.reconcile(event.id)  # a sale opens knowing what is sold
    elif event.admit_rate != before["admit_rate"]:
        # A backlog banked at the old rate (a late tick's catch-up) is dropped.
        redis_store.client.hdel(keys.event(event.id).tick, "carry")
    sync_config(event)  # the next admission tick uses the new values
    return event


def sync_config(event: Event) -> None:
    """Copy the event's settings into its Redis config hash. If the hash is
    missing, Redis lost the event: bring its seats back from MySQL first."""
    # 'state' rather than the hash: a sold-out update may have recreated it alone.
    if not redis_store.client.hexists(keys.event(event.id).config, "state"):
        seats.reconcile(event.id)
    opens_at_ms = 0
    if event.sale_opens_at:
        opens_at_ms = int(event.sale_opens_at.replace(tzinfo=UTC).timestamp() * 1000)
    redis_store.client.hset(
        keys.event(event.id).config,
        mapping={
            "state": event.admission,
            "max_active": event.max_active,
            "rate": event.admit_rate,
            "active_ttl_ms": event.active_ttl * 1000,
            "hold_ttl_ms": event.hold_ttl * 1000,
            "opens_at_ms": opens_at_ms,
            "sold_out": int(event.id in seats.sold_out([event.id])),
        },
    )


def reload_config(event_id: int) -> None:
    """Redis lost an event's config (restart, flush): write it again from MySQL,
    with the booked and blocked seats and the fencing tokens MySQL knows."""
    sync_config(get(event_id))


def queue_counts(event_ids: list[int]) -> dict[int, tuple[int, int]]:
    """(waiting, active) per event, in one round trip."""
    pipe = redis_store.client.pipeline(transaction=False)
    for event_id in event_ids:
        k = keys.event(event_id)
        pipe.zcard(k.queue)
        pipe.zcard(k.active)
    counts = pipe.execute()
    return {eid: (counts[2 * i], counts[2 * i + 1]) for i, eid in enumerate(event_ids)}


def stats(event_id: int) -> dict:
    """The staff numbers: queue, admissions, and seats by state."""
    event = get(event_id)
    k = keys.event(event.id)
    pipe = redis_store.client.pipeline(transaction=False)
    pipe.zcard(k.queue)
    pipe.zcard(k.active)
    pipe.hmget(k.tick, "admitted_total", "rate_obs", "cleanup_removed")
    waiting, active, (admitted_total, rate_obs, removed) = pipe.execute()
    in_db = dict(
        Seat.select(Seat.status, fn.COUNT(Seat.id))
        .where(Seat.event == event.id)
        .group_by(Seat.status)
        .tuples()
    )
    held = seats.counts(event.id)["held"]  # holds live in Redis only
    return {
        "event_id": event.id,
        "admission": event.admission,
        "waiting": waiting,
        "active": active,
        "max_active": event.max_active,
        "admit_rate": event.admit_rate,
        "admitted_total": int(admitted_total or 0),
        "admit_rate_observed": round(float(rate_obs or 0), 1),
        "cleanup_removed": int(removed or 0),
        "held": held,
        "booked": in_db.get("booked", 0),
        "available": max(0, in_db.get("available", 0) - held),
        "blocked": in_db.get("blocked", 0),
        "sold_out": in_db.get("available", 0) == 0,
    }


def describe(
    event: Event,
    waiting: int | None = None,
    active: int | None = None,
    sold_out: bool | None = None,
) -> dict:
    """The event as the JSON API shows it."""
    data = {
        "id": event.id,
        "name": event.name,
        "sale_opens_at": iso(event.sale_opens_at),
        "admission": event.admission,
        "max_active": event.max_active,
        "admit_rate": event.admit_rate,
        "active_ttl": event.active_ttl,
        "hold_ttl": event.hold_ttl,
    }
    if waiting is not None:
        data.update(waiting=waiting, active=active)
    if sold_out is not None:
        data["sold_out"] = sold_out
    return data


def row_label(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA: row names as printed on tickets."""
    letters = string.ascii_uppercase
    label = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        label = letters[rem] + label
    return label


def iso(value: datetime | None) -> str | None:
    return value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z") if value else None
