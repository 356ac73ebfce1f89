"""Checkout: Redis checks the holds, then one MySQL transaction makes the sale.

1. Redis (pay_begin.lua): every (seat, holder, token) must match; the seats
   move to "being paid for" under a short lease nobody else can take.
2. MySQL, one transaction: lock the seat rows (ascending id), then the user
   row, always in that order, so no two checkouts can deadlock on each other;
   refuse a seat that is not available, whose stored fencing token is newer
   than the presented one, or whose version moved, and seats past the
   event's limit per person (counting what the buyer bought before: the
   user row's lock makes one person's checkouts take turns); book, pay,
   deduct points.
   Deadlocks, lock wait timeouts and version conflicts are retried with
   exponential backoff and jitter.
3. Redis (pay_finish.lua): after commit the seats are booked and the buyer's
   active slot is freed; after a refusal they go back to the buyer's hold.

The same Idempotency-Key returns the first result and charges nothing.
"""

import hashlib
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import NamedTuple

import peewee
from flask import current_app
from flask_babel import lazy_gettext as _l

from app import bookings, keys, metrics, mirror, seats
from app.bookings import Receipt
from app.config import MOST_SEATS_PER_PERSON
from app.entrance import NOT_ENTERED
from app.errors import AppError, not_found
from app.extensions import redis_store
from app.i18n import lazy_number
from app.models import User, iso, seat_label, utcnow
from app.sql import for_update, run, write_transaction

log = logging.getLogger(__name__)

DEADLOCK, LOCK_WAIT_TIMEOUT = 1213, 1205


def _mismatch(kind: str, label: str):
    """Why a held seat cannot be paid for (pay_begin.lua's verdict)."""
    return {
        "expired": _l("Your hold on seat %(label)s expired; please pick it again.", label=label),
        "taken": _l("Someone else is holding seat %(label)s now.", label=label),
        "stale": _stale(label),
        "booked": _l("Seat %(label)s is already sold.", label=label),
        "blocked": _l("Seat %(label)s is not for sale.", label=label),
    }[kind]


def _stale(label: str):
    return _l("Your hold on seat %(label)s was replaced; please pick it again.", label=label)


class Retry(Exception):
    """A conflict worth another attempt: deadlock, lock wait, version moved
    (`reason`, as /metrics counts them)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@metrics.outcome(metrics.CHECKOUTS, lambda result: "booked" if result[1] else "replay")
def checkout(
    event_id: int, user_id: int, session_id: str, items: list[tuple[int, int]], idempotency_key: str
) -> tuple[Receipt, bool]:
    """Buy the held seats `items` [(seat_id, token)]. Returns (receipt, created):
    created is False when the Idempotency-Key was seen before."""
    request_hash = _request_hash(event_id, items)
    earlier = _replay(user_id, idempotency_key, request_hash)
    if earlier:
        return earlier, False
    _validate(event_id, items)

    lease_ends = _begin_payment(event_id, user_id, session_id, items)
    try:
        receipt = _book_with_retries(
            event_id, user_id, items, idempotency_key, request_hash, lease_ends
        )
    except BaseException:
        _finish_payment(event_id, user_id, items, "abort")
        earlier = _replay(user_id, idempotency_key, request_hash)
        if earlier:  # a concurrent request with the same key won
            return earlier, False
        raise
    _finish_payment(event_id, user_id, items, "booked")
    mirror.note_sold_out(event_id, may_clear=False)
    log.info(
        "booking %s: user %s bought %s seats of event %s for %s points",
        receipt.booking_id,
        user_id,
        len(items),
        event_id,
        receipt.amount,
    )
    return receipt, True


@dataclass
class Summary:
    """What the checkout page shows: the seats this session holds now, in map
    order, their total and the person's points."""

    holds: list[tuple[seats.SeatInfo, seats.Hold]]
    total: int
    points: int


def summary(event_id: int, user_id: int, session_id: str) -> Summary:
    """403 unless this session entered and is still active."""
    holds = seats.my_holds(event_id, user_id, session_id)
    points = User.get_by_id(user_id).points
    return Summary(holds, sum(seat.price for seat, _ in holds), points)


def buy_my_holds(event_id: int, user_id: int, session_id: str, idempotency_key: str) -> Receipt:
    """The checkout page's Pay button: buy what this session holds now, with
    the tokens Redis has (so a stale page cannot buy seats it no longer
    holds). Pressed twice, it answers with the booking the first press made."""
    done = bookings.find(user_id, idempotency_key=idempotency_key)
    if done:
        return bookings.receipt(done)
    holds = seats.my_holds(event_id, user_id, session_id)
    items = [(seat.id, hold.token) for seat, hold in holds]
    return checkout(event_id, user_id, session_id, items, idempotency_key)[0]


def _request_hash(event_id: int, items: list[tuple[int, int]]) -> str:
    canonical = json.dumps({"event": event_id, "seats": sorted(items)})
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(user_id: int, idempotency_key: str, request_hash: str) -> Receipt | None:
    booking = bookings.find(user_id, idempotency_key=idempotency_key)
    if booking is None:
        return None
    if booking.request_hash != request_hash:
        raise AppError(
            422,
            "idempotency_key_reused",
            _l("This Idempotency-Key was already used for a different checkout."),
        )
    return bookings.receipt(booking)


def _validate(event_id: int, items: list[tuple[int, int]]) -> None:
    """The shape of the order (the event's own limit: pay_begin.lua, _check_limit)."""
    limit = MOST_SEATS_PER_PERSON
    if not 1 <= len(items) <= limit:
        raise AppError(422, "invalid", _l("Check out between 1 and %(limit)s seats.", limit=limit))
    if len({seat_id for seat_id, _ in items}) != len(items):
        raise AppError(422, "invalid", _l("A seat appears twice."))
    for seat_id, _ in items:
        seats.seat_info(event_id, seat_id)  # 404 for a seat of another event


def _begin_payment(
    event_id: int, user_id: int, session_id: str, items: list[tuple[int, int]]
) -> float:
    """pay_begin.lua; returns when the payment lease ends, on this process's
    monotonic clock: the lease's length is measured by Redis's clock, and
    only the time since is measured here, so a web host whose wall clock is
    wrong judges the lease as Redis does."""
    k = keys.event(event_id)
    flat = [value for item in items for value in item]
    result = mirror.with_config(
        event_id,
        lambda: redis_store.scripts.pay_begin(
            keys=[k.config, k.seats, k.entrance(user_id), k.active, k.bought],
            args=[user_id, session_id or "", current_app.config["CHECKOUT_LEASE"] * 1000, *flat],
        ),
    )
    if result[0] == "paying":
        lease_until_ms, now_ms = int(result[1]), int(result[2])
        return time.monotonic() + (lease_until_ms - now_ms) / 1000
    if result[0] == "closed":
        raise AppError(*seats.CLOSED)
    if result[0] == "limit":
        raise seats.over_the_limit(int(result[1]))
    if result[0] == "mismatch":
        label = seats.seat_info(event_id, int(result[1])).label
        raise AppError(409, f"hold_{result[2]}", _mismatch(result[2], label))
    raise AppError(*NOT_ENTERED)


def _finish_payment(event_id: int, user_id: int, items, outcome: str) -> None:
    k = keys.event(event_id)
    flat = [value for item in items for value in item]
    try:
        redis_store.scripts.pay_finish(
            keys=[k.seats, k.holds(user_id), k.entrance(user_id), k.active, k.bought],
            args=[user_id, outcome, *flat],
        )
    except Exception:
        # The database already decided; the lease runs out by itself and the
        # reconcile job copies booked seats into Redis.
        log.exception("event %s: could not mark seats %s in Redis", event_id, outcome)


def _book_with_retries(
    event_id, user_id, items, idempotency_key, request_hash, lease_ends
) -> Receipt:
    attempts = current_app.config["CHECKOUT_ATTEMPTS"]
    for attempt in range(attempts):
        try:
            return _book(event_id, user_id, items, idempotency_key, request_hash, lease_ends)
        except Retry as e:
            metrics.CHECKOUT_RETRIES.labels(e.reason).inc()
            if attempt + 1 == attempts:
                raise AppError(
                    503,
                    "busy",
                    _l(
                        "So many people are buying right now that your "
                        "checkout could not finish; please try again."
                    ),
                    {"Retry-After": "1"},
                ) from e
            log.info("checkout for user %s: %s, retrying (attempt %s)", user_id, e, attempt + 2)
            time.sleep(0.02 * 2**attempt * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")


def _book(event_id, user_id, items, idempotency_key, request_hash, lease_ends) -> Receipt:
    """The sale, as one transaction of hand-written SQL and no model objects:
    on this hot path peewee's query building and model instances cost more
    CPU than the statements themselves (BENCHMARKS.md, figure 7)."""
    tokens = dict(items)
    try:
        with write_transaction():  # innodb_lock_wait_timeout: set per connection
            # Lock order for everyone: seats by ascending id, then the user.
            rows = _lock_seats(sorted(tokens), current_app.config["LOCK_WAIT_TIMEOUT"])
            points = _lock_user(user_id)
            if len(rows) != len(tokens) or points is None:
                raise AppError(404, "not_found", _l("No such seat or person."))
            _check_seats(event_id, rows, tokens, lease_ends)
            _check_limit(event_id, user_id, len(rows))
            amount = sum(seat.price for seat in rows)
            if points < amount:
                raise AppError(
                    402,
                    "not_enough_points",
                    _l(
                        "This costs %(amount)s points and you have %(points)s.",
                        amount=lazy_number(amount),
                        points=lazy_number(points),
                    ),
                )
            _mark_booked(rows, user_id, tokens)
            run("UPDATE `users` SET `points` = `points` - %s WHERE `id` = %s", (amount, user_id))
            receipt = _record_sale(
                event_id, user_id, rows, amount, points - amount, idempotency_key, request_hash
            )
    except peewee.OperationalError as e:
        if e.args and e.args[0] in (DEADLOCK, LOCK_WAIT_TIMEOUT):
            reason = "deadlock" if e.args[0] == DEADLOCK else "lock_wait_timeout"
            raise Retry(reason, reason.replace("_", " ")) from e
        raise
    except peewee.IntegrityError as e:
        # A unique key said no: the seat has a live booking (the last line of
        # defence) or this Idempotency-Key was just used by a concurrent request.
        raise AppError(409, "seat_booked", _l("One of these seats is already sold.")) from e
    return receipt


class LockedSeat(NamedTuple):
    """A seat row as read under its lock (a plain tuple: no model instance)."""

    id: int
    event_id: int
    section: str
    row: str
    number: int
    price: int
    status: str
    version: int
    fencing_token: int

    @property
    def label(self) -> str:
        return seat_label(self.section, self.row, self.number)


def _lock_seats(seat_ids: list[int], wait: int) -> list[LockedSeat]:
    marks = ", ".join(["%s"] * len(seat_ids))
    cursor = run(
        "SELECT `id`, `event_id`, `section`, `row_label`, `number`, `price`, `status`, "
        f"`version`, `fencing_token` FROM `seats` WHERE `id` IN ({marks}) ORDER BY `id`"
        + for_update(wait),
        seat_ids,
    )
    return [LockedSeat._make(row) for row in cursor.fetchall()]


def _lock_user(user_id: int) -> int | None:
    """The user row, locked; returns the points (None: no such person)."""
    row = run("SELECT `points` FROM `users` WHERE `id` = %s" + for_update(), (user_id,)).fetchone()
    return row[0] if row else None


def _mark_booked(rows: list[LockedSeat], user_id: int, tokens: dict) -> None:
    """One UPDATE for all seats, each guarded by the version read under the
    lock: fewer rows changed than seats means one moved under us."""
    tokens_sql = " ".join(["WHEN %s THEN %s"] * len(rows))
    guards_sql = " OR ".join(["(`id` = %s AND `version` = %s)"] * len(rows))
    params = [user_id]
    params += [value for seat in rows for value in (seat.id, tokens[seat.id])]
    params += [value for seat in rows for value in (seat.id, seat.version)]
    cursor = run(
        "UPDATE `seats` SET `status` = 'booked', `holder_id` = %s, "
        f"`fencing_token` = CASE `id` {tokens_sql} END, `version` = `version` + 1 "
        f"WHERE {guards_sql}",
        params,
    )
    if cursor.rowcount != len(rows):
        raise Retry("version", f"seats {[seat.id for seat in rows]} changed under us (version)")


def _record_sale(
    event_id, user_id, rows, amount, points_left, idempotency_key, request_hash
) -> Receipt:
    """Insert the booking, its seats (one statement) and the payment."""
    created_at = utcnow()
    booking_id = run(
        "INSERT INTO `bookings` (`user_id`, `event_id`, `amount`, `points_left`, `status`, "
        "`idempotency_key`, `request_hash`, `created_at`) "
        "VALUES (%s, %s, %s, %s, 'confirmed', %s, %s, %s)",
        (user_id, event_id, amount, points_left, idempotency_key, request_hash, created_at),
    ).lastrowid
    run(
        "INSERT INTO `booking_seats` (`booking_id`, `seat_id`, `price`, `live`) VALUES "
        + ", ".join(["(%s, %s, %s, 1)"] * len(rows)),
        [value for seat in rows for value in (booking_id, seat.id, seat.price)],
    )
    run(
        "INSERT INTO `payments` (`booking_id`, `user_id`, `amount`, `method`, `created_at`) "
        "VALUES (%s, %s, %s, 'points', %s)",
        (booking_id, user_id, amount, created_at),
    )
    seats_sold = [{"seat_id": s.id, "label": s.label, "price": s.price} for s in rows]
    return Receipt(booking_id, seats_sold, amount, points_left, iso(created_at))


# The dialect differences of the statements above, in one place. They are
# written in the SQL that MySQL, MariaDB and SQLite share (backquoted names,
# CASE, multi-row VALUES), with PyMySQL's %s placeholders.


def _check_seats(event_id: int, rows: list[LockedSeat], tokens: dict, lease_ends: float) -> None:
    # A margin for the time from here to the commit.
    margin = min(1.0, current_app.config["CHECKOUT_LEASE"] / 10)
    if time.monotonic() > lease_ends - margin:
        # Stalled past the lease: someone else may hold these seats by now.
        raise AppError(
            409,
            "lease_expired",
            _l("Your checkout took too long and your seats were released; please pick them again."),
        )
    for seat in rows:
        if seat.event_id != event_id:
            raise not_found("seat")
        if seat.status != "available":
            raise AppError(
                409,
                "seat_booked" if seat.status == "booked" else "seat_blocked",
                _l("Seat %(label)s is no longer for sale.", label=seat.label),
            )
        if seat.fencing_token > tokens[seat.id]:
            # A newer hold exists: this buyer is stale (a paused process, a
            # lost lease). The database refuses even if Redis was wrong.
            raise AppError(409, "hold_stale", _stale(seat.label))


def _check_limit(event_id: int, user_id: int, buying: int) -> None:
    """The event's max_seats_per_person, counting the seats this person
    bought before. The user row is locked, so the person's other checkouts
    wait; this plain read is the transaction's first, so InnoDB's snapshot
    starts here and sees the sale of whichever went first."""
    limit, bought = run(
        "SELECT `max_seats_per_person`, (SELECT COUNT(*) FROM `seats` WHERE `holder_id` = %s "
        "AND `event_id` = %s AND `status` = 'booked') FROM `events` WHERE `id` = %s",
        (user_id, event_id, event_id),
    ).fetchone()
    if bought + buying > limit:
        raise seats.over_the_limit(limit)
