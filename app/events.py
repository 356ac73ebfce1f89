"""Events: create one with its seat layout, change its admission and limits
live, describe it. MySQL holds the settings; app/mirror.py copies them into
Redis, where the Lua scripts read them."""

import string
from datetime import datetime

import peewee
from flask import current_app
from flask_babel import lazy_gettext as _l

from app import audit, draw, keys, mirror
from app.config import EVENT_DEFAULTS
from app.errors import AppError, not_found
from app.extensions import db, redis_store
from app.models import Event, Seat, iso

ADMISSION_STATES = ("open", "paused", "closed")


def get(event_id: int) -> Event:
    event = Event.get_or_none(Event.id == event_id)
    if event is None:
        raise not_found("event")
    return event


def listing(on_sale_only: bool = False) -> list[Event]:
    """Every event, oldest first; `on_sale_only`: without the closed ones."""
    query = Event.select().order_by(Event.id)
    if on_sale_only:
        query = query.where(Event.admission != "closed")
    return list(query)


def create(
    name: str,
    sections: list[dict],
    actor_id: int | None = None,
    sale_opens_at: datetime | None = None,
    prequeue_opens_at: datetime | None = None,
    **settings,
) -> Event:
    """Create an event and its seats; admission starts paused. Its draw's
    seed is made now, so its commitment is public from the start."""
    _check_opening(sale_opens_at, prequeue_opens_at)
    values = {
        **EVENT_DEFAULTS,
        "max_seats_per_person": current_app.config["MAX_SEATS_PER_PERSON"],
        **{k: v for k, v in settings.items() if v is not None},
    }
    values.update(prequeue_opens_at=prequeue_opens_at, draw_seed=draw.new_seed())
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
    mirror.sync_config(event)
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
    """Open, pause or close admission and change the settings live."""
    # None means "unchanged", except for the times, where it means "no set time".
    changes = {k: v for k, v in changes.items() if v is not None or k in TIMES}
    if "admission" in changes and changes["admission"] not in ADMISSION_STATES:
        raise AppError(422, "invalid", _l("admission must be open, paused or closed."))
    with db.atomic():
        event = get(event_id)
        before = describe(event)
        for field, value in changes.items():
            setattr(event, field, value)
        if TIMES & changes.keys():
            _check_opening(event.sale_opens_at, event.prequeue_opens_at)
        event.save()
        audit.record(actor_id, "event.update", f"event:{event.id}", before, describe(event))
    if event.admission != before["admission"]:
        # Restart the admission clock: reopening must not release the time
        # the event spent paused or closed all at once.
        redis_store.client.hdel(keys.event(event.id).tick, "last_ms", "carry")
        if event.admission == "open":
            mirror.reconcile(event.id)  # a sale opens knowing what is sold
    elif event.admit_rate != before["admit_rate"]:
        # A backlog banked at the old rate (a late tick's catch-up) is dropped.
        redis_store.client.hdel(keys.event(event.id).tick, "carry")
    mirror.sync_config(event)  # the next admit tick uses the new values
    return event


TIMES = {"starts_at", "sale_opens_at", "prequeue_opens_at", "cancellable_until"}


def _check_opening(sale_opens_at, prequeue_opens_at) -> None:
    """Joining opens before the sale does (or at once, with no time set)."""
    if prequeue_opens_at is None:
        return
    if sale_opens_at is None or prequeue_opens_at >= sale_opens_at:
        raise AppError(
            422,
            "invalid",
            _l("The queue must open before the sale does: set “Queue opens” before “Sale opens”."),
        )


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
        "venue": event.venue,
        "starts_at": iso(event.starts_at),
        "sale_opens_at": iso(event.sale_opens_at),
        "admission": event.admission,
        "max_active": event.max_active,
        "admit_rate": event.admit_rate,
        "active_ttl": event.active_ttl,
        "hold_ttl": event.hold_ttl,
        "poll_budget": event.poll_budget,
        "max_seats_per_person": event.max_seats_per_person,
        "prequeue_opens_at": iso(event.prequeue_opens_at),
        # The fair start (app/draw.py): public from the start; the seed and
        # the order at GET /api/events/{id}/draw once drawn.
        "draw_commitment": draw.commitment(event.draw_seed) if event.draw_seed else None,
        "drawn_at": iso(event.drawn_at),
        "bot_protection": event.bot_protection,
        # Fans may cancel until then (null: they cannot; staff always can).
        "cancellable_until": iso(event.cancellable_until),
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
