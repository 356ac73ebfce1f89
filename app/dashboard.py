"""What staff see: the live numbers of an event, its seat board (every seat's
state, who holds or bought it, and when), the what-if prediction, and
finding a person. Read models only; the controls are app/staff.py's."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from peewee import fn

from app import capacity, charts, events, keys, seats
from app.extensions import redis_store
from app.models import Booking, BookingSeat, Event, Seat, User, utcnow


def stats(event_id: int) -> dict:
    """The staff numbers: queue, admissions, and seats by state."""
    event = events.get(event_id)
    k = keys.event(event.id)
    pipe = redis_store.client.pipeline(transaction=False)
    pipe.zcard(k.queue)
    pipe.zcard(k.prequeue)
    pipe.zcard(k.active)
    pipe.hmget(k.tick, "admitted_total", "rate_obs", "cleanup_removed")
    pipe.scard(k.stay)
    queued, prequeued, active, (admitted_total, rate_obs, removed), staying = pipe.execute()
    in_db = dict(
        Seat.select(Seat.status, fn.COUNT(Seat.id))
        .where(Seat.event == event.id)
        .group_by(Seat.status)
        .tuples()
    )
    held = _held(event.id)  # holds live in Redis only
    return {
        "event_id": event.id,
        "admission": event.admission,
        "waiting": queued + prequeued,
        "prequeue": prequeued,  # of those, in the pre-queue (the draw is to come)
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
        "staying": staying,  # of those waiting, staying in line for returned seats
    }


def _held(event_id: int) -> int:
    """Seats held or being paid for right now."""
    _, _, states = seats.live_states(event_id)
    return sum(
        1
        for seat_id in seats.catalogue(event_id)
        if seat_id in states and states[seat_id].public == "held"
    )


def events_with_stats() -> list[tuple[Event, dict]]:
    """Every event, newest first, with its numbers (the staff's event list)."""
    return [(e, stats(e.id)) for e in Event.select().order_by(Event.id.desc())]


@dataclass
class BoardSeat:
    """One seat of the staff seat board."""

    seat: seats.SeatInfo
    state: str  # available, held, paying, booked, blocked
    who: str | int | None = None  # the holder's or buyer's email (their id if gone)
    seconds_left: int = 0  # of a hold or a payment lease
    sold_at: datetime | None = None


def board(event_id: int) -> dict:
    """The staff's live view of an event: its numbers and the chart (the
    seats: board_seats)."""
    event = events.get(event_id)
    numbers = stats(event_id)
    seconds, micros = redis_store.client.time()  # the samples' clock
    now = {
        "ms": seconds * 1000 + micros // 1000,
        "waiting": numbers["waiting"],
        "active": numbers["active"],
        "admitted_per_s": numbers["admit_rate_observed"],
    }
    return {
        "event": event,
        "stats": numbers,
        "chart": charts.for_event(event_id, event.admit_rate, now),
        "clear_in": clear_in(numbers),
        "bookings_per_minute": _bookings_last_minute(event_id),
    }


def board_seats(event_id: int, only: int | None = None) -> list[BoardSeat]:
    """Every seat in map order (or the seat `only`) with who holds or bought it."""
    catalogue = seats.catalogue(event_id)
    if only is not None:
        catalogue = {only: catalogue[only]} if only in catalogue else {}
    now_ms, _, states = seats.live_states(event_id)
    emails = emails_of({s.holder for sid, s in states.items() if s.holder and sid in catalogue})
    sold = BookingSeat.select(BookingSeat.seat, Booking.created_at).join(Booking)
    sold = sold.where(Booking.event == event_id, BookingSeat.live == 1)
    sold_at = dict((sold.where(BookingSeat.seat == only) if only is not None else sold).tuples())
    cells = []
    for seat in catalogue.values():
        state = states.get(seat.id)
        if state is None:
            cells.append(BoardSeat(seat, "available"))
            continue
        left = max(0, (state.until_ms - now_ms) // 1000) if state.until_ms else 0
        who = emails.get(state.holder, state.holder)
        cells.append(BoardSeat(seat, state.kind, who, left, sold_at.get(seat.id)))
    return cells


def emails_of(user_ids: set[int]) -> dict[int, str]:
    """The emails of these people (absent: gone or never there)."""
    if not user_ids:
        return {}
    return dict(User.select(User.id, User.email).where(User.id.in_(list(user_ids))).tuples())


def clear_in(numbers: dict) -> float | None:
    """Seconds until everyone waiting is in, at the observed rate (None while
    admission is not open: then the queue does not move)."""
    if numbers["admission"] != "open" or not numbers["waiting"]:
        return None
    rate = numbers["admit_rate_observed"] or numbers["admit_rate"]
    return numbers["waiting"] / rate


def _bookings_last_minute(event_id: int) -> int:
    since = utcnow() - timedelta(minutes=1)
    return Booking.select().where(Booking.event == event_id, Booking.created_at >= since).count()


def what_if(
    event_id: int, rate: int, cap: int, crowd: int | None = None, budget: int | None = None
) -> dict:
    """Predicted time to admit everyone waiting now, at this rate and cap;
    and the poll intervals and load for a crowd (default: those waiting
    now) at a poll budget (default: the event's)."""
    event = events.get(event_id)
    numbers = stats(event_id)
    prediction = capacity.time_to_admit(
        numbers["waiting"], rate, cap, event.active_ttl, numbers["active"]
    )
    if prediction["seconds"] == float("inf"):
        prediction["seconds"] = None
    crowd = numbers["waiting"] if crowd is None else crowd
    rule = capacity.PollRule.of(
        current_app.config["POLL_TIERS"], budget or event.poll_budget, event.active_ttl, rate
    )
    scale = capacity.scale_for(crowd, rule)
    polls = {
        "crowd": crowd,
        "budget": int(rule.budget),
        "tiers": capacity.tier_loads(crowd, scale, rule) if crowd else [],
        "total": capacity.load(crowd, scale, rule),
    }
    return prediction | {"waiting": numbers["waiting"], "rate": rate, "cap": cap, "polls": polls}


def find_user(email_or_id: str) -> User | None:
    text = email_or_id.strip()
    if text.isdigit():
        return User.get_or_none(User.id == int(text))
    return User.get_or_none(User.email == text.lower())
