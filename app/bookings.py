"""Reading bookings back: a person's list and one receipt (the checkout that
writes them lives in checkout.py)."""

from dataclasses import asdict, dataclass

from app import tickets
from app.models import Booking, BookingSeat, Event, Seat, iso


@dataclass
class Receipt:
    booking_id: int
    seats: list[dict]  # [{seat_id, label, price}] in seat order
    amount: int
    points_left: int
    created_at: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


def receipt(booking: Booking, rows: list[Seat] | None = None) -> Receipt:
    """A booking as its buyer sees it (`rows`: its seats, if already read)."""
    if rows is None:
        rows = _seats_of(booking.id)
    return Receipt(
        booking.id,
        [{"seat_id": s.id, "label": s.label, "price": s.price} for s in rows],
        booking.amount,
        booking.points_left,
        iso(booking.created_at),
    )


def for_user(user_id: int) -> list[dict]:
    """A person's bookings, newest first, as the JSON API shows them."""
    rows = (
        Booking.select(Booking, Event)
        .join(Event)
        .where(Booking.user == user_id, Booking.status == "confirmed")
        .order_by(Booking.id.desc())
    )
    return [
        {
            "booking_id": booking.id,
            "event_id": booking.event_id,
            "event_name": booking.event.name,
            "venue": booking.event.venue,
            "starts_at": iso(booking.event.starts_at),
            "seats": [{"seat_id": s.id, "label": s.label} for s in _seats_of(booking.id)],
            "amount": booking.amount,
            "created_at": iso(booking.created_at),
            "tickets": tickets.for_booking(booking.id),
        }
        for booking in rows
    ]


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


def _seats_of(booking_id: int) -> list[Seat]:
    return list(
        Seat.select().join(BookingSeat).where(BookingSeat.booking == booking_id).order_by(Seat.id)
    )
