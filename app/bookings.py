"""Reading bookings back: a person's list and one receipt (the checkout that
writes them lives in checkout.py, the cancellations that refund them in
cancellations.py)."""

from dataclasses import asdict, dataclass

from peewee import fn

from app import tickets
from app.models import Booking, BookingSeat, Event, Refund, Seat, iso


@dataclass
class Receipt:
    booking_id: int
    seats: list[dict]  # [{seat_id, label, price}] in seat order
    amount: int
    points_left: int
    created_at: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


def receipt(booking: Booking) -> Receipt:
    """A booking as its buyer sees it at checkout (every seat it bought)."""
    return Receipt(
        booking.id,
        [{k: s[k] for k in ("seat_id", "label", "price")} for s in seats_of(booking.id)],
        booking.amount,
        booking.points_left,
        iso(booking.created_at),
    )


def for_user(user_id: int) -> list[dict]:
    """A person's bookings, newest first, as the JSON API shows them: the
    cancelled ones too, so that a fan can see what was refunded."""
    rows = (
        Booking.select(Booking, Event)
        .join(Event)
        .where(Booking.user == user_id)
        .order_by(Booking.id.desc())
    )
    return [
        {
            "booking_id": booking.id,
            "event_id": booking.event_id,
            "event_name": booking.event.name,
            "venue": booking.event.venue,
            "starts_at": iso(booking.event.starts_at),
            "seats": [
                {k: s[k] for k in ("seat_id", "label", "cancelled")} for s in seats_of(booking.id)
            ],
            "amount": booking.amount,
            "created_at": iso(booking.created_at),
            "tickets": tickets.for_booking(booking.id),
            "status": booking.status,
            "refunded": refunded(booking.id),
        }
        for booking in rows
    ]


def seats_of(booking_id: int) -> list[dict]:
    """[{seat_id, label, price, cancelled}] in seat order: every seat the
    booking bought, the cancelled ones included (a cancel keeps the seat's
    booking row and clears its `live` flag)."""
    rows = (
        BookingSeat.select(BookingSeat.live, Seat)
        .join(Seat)
        .where(BookingSeat.booking == booking_id)
        .order_by(Seat.id)
    )
    return [
        {
            "seat_id": row.seat.id,
            "label": row.seat.label,
            "price": row.seat.price,
            "cancelled": row.live is None,
        }
        for row in rows
    ]


def refunded(booking_id: int) -> int:
    """Every point refunded on this booking so far (0: none)."""
    total = Refund.select(fn.SUM(Refund.amount)).where(Refund.booking == booking_id).scalar()
    return int(total or 0)


def tickets_for(user_id: int, event_id: int) -> int:
    """How many seats this person has bought for this event (live bookings)."""
    return (
        BookingSeat.select()
        .join(Booking)
        .where(
            Booking.user == user_id,
            Booking.event == event_id,
            Booking.status == "confirmed",
            BookingSeat.live == 1,
        )
        .count()
    )


def find(user_id: int, booking_id: int | None = None, idempotency_key: str | None = None):
    """One of this person's bookings, by id or by the checkout's
    Idempotency-Key; None if there is no such booking of theirs."""
    where = Booking.id == booking_id if booking_id else Booking.idempotency_key == idempotency_key
    return Booking.get_or_none(Booking.user == user_id, where)
