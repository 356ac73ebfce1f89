"""Reading bookings back (the checkout that writes them lives in checkout.py)."""

from app.events import iso
from app.models import Booking, BookingSeat, Seat


def for_user(user_id: int) -> list[dict]:
    """A person's bookings, newest first, as the JSON API shows them."""
    rows = (
        Booking.select()
        .where(Booking.user == user_id, Booking.status == "confirmed")
        .order_by(Booking.id.desc())
    )
    result = []
    for booking in rows:
        seats = (
            Seat.select()
            .join(BookingSeat)
            .where(BookingSeat.booking == booking.id)
            .order_by(Seat.id)
        )
        result.append(
            {
                "booking_id": booking.id,
                "event_id": booking.event_id,
                "seats": [{"seat_id": s.id, "label": s.label} for s in seats],
                "amount": booking.amount,
                "created_at": iso(booking.created_at),
            }
        )
    return result
