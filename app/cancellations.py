"""Cancellation and refund: a booking, or some of its seats, given back.

1. MySQL, one transaction, in checkout's lock order: the seat rows (ascending
   id), then the buyer's row, then the booking's own rows. Only seats whose
   booking row is still live are cancelled: their `live` flag is cleared,
   the seat goes back on sale (available, no holder, version + 1, fencing
   token + 1, so the token of the hold that bought it, and of any hold
   before, can never pass checkout's check again), the price paid is given
   back to the buyer (a `refunds` row), and the audit log is written. A
   booking with no live seat left is "cancelled"; a partly cancelled one
   stays "confirmed" (its `amount` stays what was paid: the refunds say
   what came back).
2. Redis (cancel.lua), after commit: each seat's state is cleared only while
   it is still this booking's booked state, the fence counter is raised to
   MySQL's token, the buyer's bought count goes down; then the sold-out flag
   is recomputed. If Redis cannot be told, the reconcile job repairs it
   (reconcile.lua clears a booked state whose token is older than MySQL's).

Repeating a cancel is harmless: seats already cancelled are not refunded
again, and the answer is the booking's refunds so far.
Fans may cancel their own bookings until the event's `cancellable_until`
(never, when it is not set); staff always can.
"""

import logging
import random
import time

import peewee
from flask import current_app
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from app import audit, bookings, keys, mirror
from app.checkout import DEADLOCK, LOCK_WAIT_TIMEOUT, _lock_seats, _lock_user
from app.errors import AppError
from app.extensions import redis_store
from app.i18n import number
from app.models import Booking, BookingSeat, Event, Refund, utcnow
from app.sql import for_update, run, write_transaction

log = logging.getLogger(__name__)

NO_BOOKING = (404, "not_found", _l("No such booking."))
CANCEL_CLOSED = (
    409,
    "cancellation_closed",
    _l("This booking can no longer be cancelled online."),
)


CHECKED_IN = (
    409,
    "checked_in",
    _l("A ticket of this booking was already used at the door: it cannot be cancelled."),
)


class _Again(Exception):
    """A deadlock or a lock wait timeout: worth another attempt."""


def cancel(
    booking_id: int,
    seat_ids: list[int] | None = None,
    *,
    user_id: int | None = None,
    actor_id: int | None = None,
) -> dict:
    """Cancel the booking's seats `seat_ids` (all, when None) and refund them.
    With `user_id` (the fan): only their own booking (404 otherwise), and
    only until the event's deadline (409). Without it (staff, `actor_id`):
    any booking, at any time. Returns {booking_id, refunded, points}."""
    booking = Booking.get_or_none(Booking.id == booking_id) if booking_id < 2**63 else None
    if booking is None or (user_id is not None and booking.user_id != user_id):
        raise AppError(*NO_BOOKING)
    rows = {
        seat_id: (row_id, price)
        for row_id, seat_id, price in BookingSeat.select(
            BookingSeat.id, BookingSeat.seat, BookingSeat.price
        )
        .where(BookingSeat.booking == booking.id)
        .tuples()
    }
    wanted = sorted(set(rows if seat_ids is None else seat_ids))
    if not wanted or any(seat_id not in rows for seat_id in wanted):
        raise AppError(422, "invalid", _l("These seats are not all part of this booking."))
    if user_id is not None and _anything_live(booking.id, wanted):
        _check_deadline(booking.event_id)

    attempts = current_app.config["CHECKOUT_ATTEMPTS"]
    for attempt in range(attempts):
        try:
            cancelled = _cancel_locked(booking, rows, wanted, actor_id or user_id)
            break
        except _Again as e:
            if attempt + 1 == attempts:
                raise AppError(
                    503,
                    "busy",
                    _l("The cancellation could not finish right now; please try again."),
                    {"Retry-After": "1"},
                ) from e
            time.sleep(0.02 * 2**attempt * random.uniform(0.5, 1.5))
    if cancelled:
        tell_redis(booking.event_id, booking.user_id, cancelled)
        mirror.note_sold_out(booking.event_id)
        log.info(
            "booking %s: seats %s cancelled",
            booking.id,
            [seat_id for seat_id, _ in cancelled],
        )
    return result(booking.id)


def find(booking_id: int, event_id: int) -> Booking | None:
    """A booking of this event by its number (None: no such booking here)."""
    if not 1 <= booking_id < 2**63:
        return None
    return Booking.get_or_none(Booking.id == booking_id, Booking.event == event_id)


def result(booking_id: int) -> dict:
    """What a cancel answers: the points refunded on this booking so far and
    the buyer's balance after the latest refund (the same for a repeat)."""
    latest = (
        Refund.select(Refund.points_left)
        .where(Refund.booking == booking_id)
        .order_by(Refund.id.desc())
        .first()
    )
    return {
        "booking_id": booking_id,
        "refunded": bookings.refunded(booking_id),
        "points": latest.points_left if latest else None,
    }


def told(result: dict) -> str:
    """What the pages tell a person once a cancel went through."""
    return gettext(
        "Booking %(number)s is cancelled; %(points)s points refunded.",
        number=result["booking_id"],
        points=number(result["refunded"]),
    )


def cancellable(event: Event, now=None) -> bool:
    """May the fan still cancel a booking of this event?"""
    deadline = event.cancellable_until
    return deadline is not None and (now or utcnow()) <= deadline


def _check_deadline(event_id: int) -> None:
    if not cancellable(Event.get_by_id(event_id)):
        raise AppError(*CANCEL_CLOSED)


def _anything_live(booking_id: int, seat_ids: list[int]) -> bool:
    return (
        BookingSeat.select()
        .where(
            BookingSeat.booking == booking_id,
            BookingSeat.seat.in_(seat_ids),
            BookingSeat.live == 1,
        )
        .exists()
    )


def _cancel_locked(booking, rows: dict, wanted: list[int], actor_id) -> list[tuple[int, int]]:
    """The transaction; returns [(seat id, booked token)] of the seats it
    cancelled (none: all were cancelled before)."""
    try:
        with write_transaction():
            # Lock order for everyone: seats by ascending id, then the user.
            locked = {s.id: s for s in _lock_seats(wanted, current_app.config["LOCK_WAIT_TIMEOUT"])}
            points = _lock_user(booking.user_id)
            # All of the booking's rows, by primary key (no gap locks): whether
            # each is live, read under lock (a locking read sees the latest).
            ids = [row_id for row_id, _ in rows.values()]
            live = {
                seat_id
                for seat_id, flag in run(
                    "SELECT `seat_id`, `live` FROM `booking_seats` WHERE `id` IN ("
                    + ", ".join(["%s"] * len(ids))
                    + ")"
                    + for_update(),
                    ids,
                ).fetchall()
                if flag == 1
            }
            going = [seat_id for seat_id in wanted if seat_id in live]
            if not going:
                return []
            # A ticket used at the door is not given back. The check-in locks
            # the same row (app/tickets.py), so it came before or waits.
            marks = ", ".join(["%s"] * len(going))
            if run(
                f"SELECT 1 FROM `checkins` WHERE `ticket_id` IN ({marks})",
                [rows[seat_id][0] for seat_id in going],
            ).fetchone():
                raise AppError(*CHECKED_IN)
            for seat_id in going:
                seat = locked[seat_id]
                if seat.status != "booked":  # a live row means booked: never expected
                    raise AssertionError(f"seat {seat_id} has a live booking but is {seat.status}")
            amount = sum(rows[seat_id][1] for seat_id in going)
            marks = ", ".join(["%s"] * len(going))
            run(
                f"UPDATE `booking_seats` SET `live` = NULL WHERE `id` IN ({marks})",
                [rows[seat_id][0] for seat_id in going],
            )
            run(
                "UPDATE `seats` SET `status` = 'available', `holder_id` = NULL, "
                "`version` = `version` + 1, `fencing_token` = `fencing_token` + 1 "
                f"WHERE `id` IN ({marks})",
                going,
            )
            run(
                "UPDATE `users` SET `points` = `points` + %s WHERE `id` = %s",
                (amount, booking.user_id),
            )
            run(
                "INSERT INTO `refunds` (`booking_id`, `user_id`, `amount`, `seat_ids`, "
                "`points_left`, `actor_id`, `created_at`) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    booking.id,
                    booking.user_id,
                    amount,
                    ",".join(str(seat_id) for seat_id in going),
                    points + amount,
                    actor_id,
                    utcnow(),
                ),
            )
            still_live = len(live) - len(going)
            if not still_live:
                run("UPDATE `bookings` SET `status` = 'cancelled' WHERE `id` = %s", (booking.id,))
            audit.record(
                actor_id,
                "booking.cancel",
                f"event:{booking.event_id}:booking:{booking.id}",
                {"seats": sorted(live), "status": booking.status},
                {
                    "cancelled": going,
                    "refunded": amount,
                    "status": "confirmed" if still_live else "cancelled",
                },
            )
    except peewee.OperationalError as e:
        if e.args and e.args[0] in (DEADLOCK, LOCK_WAIT_TIMEOUT):
            raise _Again(str(e)) from e
        raise
    return [(seat_id, locked[seat_id].fencing_token) for seat_id in going]


def tell_redis(event_id: int, user_id: int, cancelled: list[tuple[int, int]]) -> None:
    """cancel.lua, after commit. A failure is logged: MySQL already decided,
    and the reconcile job copies its state into Redis within a minute."""
    k = keys.event(event_id)
    args = [user_id]
    for seat_id, token in cancelled:
        args += [seat_id, token, token + 1]
    try:
        redis_store.scripts.cancel(keys=[k.seats, k.fence, k.bought], args=args)
    except Exception:
        log.exception("event %s: could not put cancelled seats %s back in Redis", event_id, args)
