"""Seats: the catalogue, live states, hold and release, and the staff's seat
controls (block, unblock, release anyone's hold).

A seat's live state is one field of the event's seats hash in Redis (absent
means available; see app/lua/_prelude.lua for the encoding). MySQL keeps booked
and blocked seats and, for every seat, the largest fencing token it has been
told about: a hold writes its token there before it is handed out, so a
stalled buyer with an older token can never book a seat someone else holds.
"""

import logging
from dataclasses import dataclass
from functools import lru_cache

from flask_babel import lazy_gettext as _l

from app import keys, metrics, mirror
from app.entrance import NOT_ENTERED
from app.errors import AppError, not_found
from app.extensions import redis_store
from app.models import Event, Seat, seat_label

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SeatInfo:
    """What never changes about a seat: cached per process."""

    id: int
    section: str
    row: str
    number: int
    price: int

    @property
    def label(self) -> str:
        return seat_label(self.section, self.row, self.number)


@dataclass
class SeatState:
    kind: str  # available, held, paying, booked, blocked
    holder: int | None = None
    token: int | None = None
    until_ms: int | None = None  # end of the hold or payment lease

    @classmethod
    def parse(cls, raw: str | None, now_ms: int) -> "SeatState":
        if not raw:
            return cls("available")
        kind, *rest = raw.split(":")
        if kind == "blocked":
            return cls("blocked")
        holder, token = int(rest[0]), int(rest[1])
        if kind == "booked":
            return cls("booked", holder, token)
        until = int(rest[2])
        return cls(kind, holder, token, until) if until > now_ms else cls("available")

    @property
    def public(self) -> str:
        """What customers see: being paid for looks like held."""
        return "held" if self.kind == "paying" else self.kind


@dataclass
class Hold:
    seat_id: int
    token: int
    expires_in: int  # seconds


def catalogue(event_id: int) -> dict[int, SeatInfo]:
    """Every seat of an event in map order (section, row, number). Seats never
    change after an event is created, so each process loads them once."""
    return _load_catalogue(int(event_id))


@lru_cache(maxsize=64)
def _load_catalogue(event_id: int) -> dict[int, SeatInfo]:
    # A missing event raises (lru_cache keeps no exception): a made-up id costs
    # one primary-key lookup and evicts nobody's catalogue.
    if not Event.select().where(Event.id == event_id).exists():
        raise not_found("event")
    rows = (
        Seat.select(Seat.id, Seat.section, Seat.row, Seat.number, Seat.price)
        .where(Seat.event == event_id)
        .order_by(Seat.id)
        .tuples()
    )
    return {row[0]: SeatInfo(*row) for row in rows}


def seat_info(event_id: int, seat_id: int) -> SeatInfo:
    seat = catalogue(event_id).get(seat_id)
    if seat is None:
        raise not_found("seat")
    return seat


def live_states(
    event_id: int, user_id: int | None = None, session_id: str | None = None
) -> tuple[int, int, dict[int, SeatState]]:
    """(now_ms, active_until_ms, states of the seats that are not available).
    With a user, 403 unless that session entered and is still active."""
    k = keys.event(event_id)
    result = redis_store.scripts.seat_map(
        keys=[k.seats, k.entrance(user_id or 0), k.active],
        args=[user_id or 0, session_id or ""] if user_id else [0, ""],
    )
    now_ms, active_until = int(result[0]), int(result[1])
    if user_id and not active_until:
        raise AppError(*NOT_ENTERED)
    states = _parse_states(result[2:], now_ms)
    return now_ms, active_until, {sid: s for sid, s in states.items() if s.kind != "available"}


@dataclass
class OwnSeats:
    """What my_seats.lua tells about one person: the time, their window's
    end, the seats they may still pick under the event's limit (before their
    holds), and the exact states of their seats and of the seats asked for."""

    now_ms: int
    active_until_ms: int
    unbought: int  # max_seats_per_person minus the seats bought
    states: dict[int, SeatState]
    # Seats in their holds set: live holds, and lapsed ones that no hold has
    # swept out yet (hold.lua), so a hold that ran out can be told of.
    listed: frozenset[int] = frozenset()


def own_states(
    event_id: int, user_id: int, session_id: str, also: tuple[int, ...] = ()
) -> OwnSeats:
    """The exact states of the seats this person holds or pays for, and of
    the seats `also` (available ones included), in one EVALSHA. 403 unless
    this session entered and is still active."""
    k = keys.event(event_id)
    result = mirror.with_config(
        event_id,
        lambda: redis_store.scripts.my_seats(
            keys=[k.seats, k.holds(user_id), k.entrance(user_id), k.active, k.config, k.bought],
            args=[user_id, session_id or "", *also],
        ),
    )
    now_ms, active_until = int(result[0]), int(result[1])
    if not active_until:
        raise AppError(*NOT_ENTERED)
    unbought = int(result[2]) - int(result[3])
    pairs = result[4:]
    listed = frozenset(int(pairs[i]) for i in range(0, len(pairs) - 2 * len(also), 2))
    return OwnSeats(now_ms, active_until, unbought, _parse_states(pairs, now_ms), listed)


def _parse_states(pairs: list, now_ms: int) -> dict[int, SeatState]:
    """{seat id: state} from a script's seat id, state, ... pairs."""
    return {int(pairs[i]): SeatState.parse(pairs[i + 1], now_ms) for i in range(0, len(pairs), 2)}


def my_holds(event_id: int, user_id: int, session_id: str) -> list[tuple[SeatInfo, Hold]]:
    """The seats this person holds now, with their tokens, in map order."""
    seats = catalogue(event_id)
    now_ms, _, states = live_states(event_id, user_id, session_id)
    return [
        (seats[sid], Hold(sid, s.token, max(0, (s.until_ms - now_ms) // 1000)))
        for sid, s in sorted(states.items())
        if s.kind == "held" and s.holder == user_id and sid in seats
    ]


CLOSED = (
    409,
    "event_closed",
    _l("Sales for this event have closed. Your bookings are under My bookings."),
)

HOLD_REFUSALS = {
    "not_entered": NOT_ENTERED,
    "closed": CLOSED,
    "taken": (409, "seat_taken", _l("Someone else is holding this seat.")),
    "booked": (409, "seat_booked", _l("This seat is already sold.")),
    "blocked": (409, "seat_blocked", _l("This seat is not for sale.")),
}


@metrics.outcome(metrics.HOLDS, "held")
def hold(event_id: int, user_id: int, session_id: str, seat_id: int) -> Hold:
    """Hold a seat (one Lua script), then tell MySQL the hold's fencing token."""
    seat_info(event_id, seat_id)
    for attempt in range(2):
        result = _run_hold(event_id, user_id, session_id, seat_id)
        status = result[0]
        if status in HOLD_REFUSALS:
            raise AppError(*HOLD_REFUSALS[status])
        if status == "limit":
            raise over_the_limit(int(result[1]))
        token, until_ms, now_ms = (int(x) for x in result[1:4])
        try:
            recorded = _record_token(seat_id, token, again=status == "yours")
        except Exception:
            # MySQL is down: a hold it does not know of must not stand.
            release(event_id, user_id, seat_id, token)
            raise
        if recorded:
            return Hold(seat_id, token, (until_ms - now_ms) // 1000)
        # MySQL refused the token: the seat is sold or blocked there, or Redis
        # lost its counters. Undo the hold, bring Redis in line, try once more.
        release(event_id, user_id, seat_id, token)
        mirror.reconcile(event_id, [seat_id])
        log.warning(
            "event %s seat %s: hold %s refused by the database; reconciled",
            event_id,
            seat_id,
            token,
        )
        if attempt:
            raise AppError(409, "seat_taken", _l("This seat is no longer available."))
    raise AssertionError("unreachable")


def over_the_limit(limit: int) -> AppError:
    """The event's max_seats_per_person counts seats held, being paid for and
    bought (hold.lua, and checkout's check in MySQL)."""
    return AppError(
        422,
        "seat_limit",
        _l(
            "You can have at most %(limit)s seats of this event, counting the ones "
            "you hold and the ones you bought. Release a seat to pick another.",
            limit=limit,
        ),
    )


def _run_hold(event_id: int, user_id: int, session_id: str, seat_id: int) -> list:
    k = keys.event(event_id)
    return mirror.with_config(
        event_id,
        lambda: redis_store.scripts.hold(
            keys=[
                k.config,
                k.seats,
                k.fence,
                k.holds(user_id),
                k.entrance(user_id),
                k.active,
                k.bought,
            ],
            args=[user_id, session_id or "", seat_id],
        ),
    )


def _record_token(seat_id: int, token: int, again: bool = False) -> bool:
    """Store the hold's token in MySQL; False if the seat is not available
    there or already knows a newer token (`again`: the same token is fine)."""
    newer_known = Seat.fencing_token > token if again else Seat.fencing_token >= token
    updated = (
        Seat.update(fencing_token=token)
        .where(Seat.id == seat_id, Seat.status == "available", ~newer_known)
        .execute()
    )
    if updated == 0 and again:  # MySQL counts a same-value update as no change
        return (
            Seat.select()
            .where(Seat.id == seat_id, Seat.status == "available", Seat.fencing_token == token)
            .exists()
        )
    return updated == 1


NOT_YOUR_HOLD = (404, "not_your_hold", _l("You do not hold this seat."))


def release(event_id: int, user_id: int, seat_id: int, token: int | None = None) -> bool:
    """Give a hold back. Only its holder can; with a token, only that hold."""
    k = keys.event(event_id)
    return bool(
        redis_store.scripts.release(
            keys=[k.seats, k.holds(user_id)],
            args=[user_id, seat_id, "" if token is None else token],
        )
    )


# Staff controls. Each returns (before, after) states for the audit log.


def block(event_id: int, seat_id: int) -> tuple[str, str]:
    """Block a free seat: Redis first (no new holds from this instant), then MySQL."""
    seat_info(event_id, seat_id)
    result = redis_store.scripts.block(keys=[keys.event(event_id).seats], args=[seat_id])
    if result[0] != "blocked":
        raise AppError(
            409,
            f"seat_{result[0]}",
            {
                "held": _l("This seat cannot be blocked: someone is holding it."),
                "paying": _l("This seat cannot be blocked: someone is paying for it."),
                "booked": _l("This seat cannot be blocked: it is sold."),
            }[result[0]],
        )
    updated = (
        Seat.update(status="blocked", version=Seat.version + 1)
        .where(Seat.id == seat_id, Seat.status.in_(["available", "blocked"]))
        .execute()
    )
    if not updated:
        mirror.reconcile(event_id, [seat_id])  # MySQL knows better (sold): put Redis right
        raise AppError(409, "seat_booked", _l("This seat cannot be blocked: it is sold."))
    mirror.note_sold_out(event_id, may_clear=False)
    return "available", "blocked"


def unblock(event_id: int, seat_id: int) -> tuple[str, str]:
    """Put a blocked seat back on sale: MySQL first, then Redis."""
    seat_info(event_id, seat_id)
    updated = (
        Seat.update(status="available", version=Seat.version + 1)
        .where(Seat.id == seat_id, Seat.status == "blocked")
        .execute()
    )
    if not updated:
        raise AppError(409, "not_blocked", _l("This seat is not blocked."))
    k = keys.event(event_id)
    if redis_store.client.hget(k.seats, seat_id) == "blocked":
        redis_store.client.hdel(k.seats, seat_id)
    mirror.note_sold_out(event_id)
    return "blocked", "available"


def release_any(event_id: int, seat_id: int) -> tuple[str, str]:
    """Staff: end whoever's hold is on a seat."""
    seat_info(event_id, seat_id)
    _, _, states = live_states(event_id)
    state = states.get(seat_id)
    if state is None or state.kind != "held":
        raise AppError(
            409, "not_held", _l("This seat is not held (a payment in progress is left to finish).")
        )
    if not release(event_id, state.holder, seat_id, state.token):
        raise AppError(409, "not_held", _l("The hold ended meanwhile."))
    return f"held by user {state.holder} (token {state.token})", "available"


def set_blocked_many(
    event_id: int, section: str, row: str | None, blocked: bool, batch: int = 500
) -> dict:
    """Staff: block (blocked=True) every free seat of a section, or of one row
    of it, or put its blocked seats back on sale. Seats held, being paid for
    or sold are skipped, as block() refuses them one by one. Returns the seat
    ids {"changed": [...], "already": [...], "skipped": [...]}; 404 when the
    section (or the row) has no seat."""
    group = [
        s.id
        for s in catalogue(event_id).values()
        if s.section == section and (row is None or s.row == row)
    ]
    if not group:
        raise not_found("seat")
    return _block_many(event_id, group, batch) if blocked else _unblock_many(event_id, group)


def _block_many(event_id: int, group: list[int], batch: int) -> dict:
    """Redis first (no new holds from this instant), then MySQL, as block()."""
    k = keys.event(event_id)
    was_blocked = {
        seat_id
        for seat_id, raw in zip(group, _hmget(k.seats, group), strict=True)
        if raw == "blocked"
    }
    answers = []
    for start in range(0, len(group), batch):  # one round trip a batch, each seat atomic
        pipe = redis_store.client.pipeline(transaction=False)
        for seat_id in group[start : start + batch]:
            redis_store.scripts.block(keys=[k.seats], args=[seat_id], client=pipe)
        answers += pipe.execute()
    ok = [seat_id for seat_id, answer in zip(group, answers, strict=True) if answer[0] == "blocked"]
    done = set(ok)
    skipped = [seat_id for seat_id in group if seat_id not in done]
    newly = [seat_id for seat_id in ok if seat_id not in was_blocked]
    for start in range(0, len(ok), batch):
        Seat.update(status="blocked", version=Seat.version + 1).where(
            Seat.id.in_(ok[start : start + batch]), Seat.status == "available"
        ).execute()
    sold = (
        [  # MySQL knows better (sold): put Redis right, as block() does
            seat_id
            for (seat_id,) in Seat.select(Seat.id)
            .where(Seat.id.in_(ok), Seat.status == "booked")
            .tuples()
        ]
        if ok
        else []
    )
    if sold:
        mirror.reconcile(event_id, sold)
    mirror.note_sold_out(event_id, may_clear=False)
    sold_set = set(sold)
    return {
        "changed": [s for s in newly if s not in sold_set],
        "already": [s for s in ok if s in was_blocked and s not in sold_set],
        "skipped": skipped + sold,
    }


def _unblock_many(event_id: int, group: list[int]) -> dict:
    """MySQL first, then Redis, as unblock()."""
    blocked = [
        seat_id
        for (seat_id,) in Seat.select(Seat.id)
        .where(Seat.id.in_(group), Seat.status == "blocked")
        .tuples()
    ]
    if blocked:
        Seat.update(status="available", version=Seat.version + 1).where(
            Seat.id.in_(blocked), Seat.status == "blocked"
        ).execute()
        k = keys.event(event_id)
        still = [
            s for s, raw in zip(blocked, _hmget(k.seats, blocked), strict=True) if raw == "blocked"
        ]
        if still:
            redis_store.client.hdel(k.seats, *still)
        mirror.note_sold_out(event_id)
    return {"changed": blocked, "already": [], "skipped": []}


def _hmget(key: str, fields: list[int]) -> list:
    return redis_store.client.hmget(key, fields) if fields else []
