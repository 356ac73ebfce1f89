"""Peewee models mirroring schema.sql (the source of truth). No business logic."""

from datetime import UTC, datetime

import peewee as pw

from app.extensions import db

# Times are stored as naive UTC, to the second.


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def iso(value: datetime | None) -> str | None:
    """A stored time as the JSON API writes it: 2030-01-31T19:00:00Z."""
    return value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z") if value else None


def epoch_ms(value: datetime | None) -> int:
    """A stored time (naive UTC) in ms since the epoch; 0 for none."""
    return int(value.replace(tzinfo=UTC).timestamp() * 1000) if value else 0


def seat_label(section: str, row: str, number: int) -> str:
    """How a seat is named in receipts and messages: Floor-A5."""
    return f"{section}-{row}{number}"


class BaseModel(pw.Model):
    class Meta:
        database = db
        legacy_table_names = False


class User(BaseModel):
    id = pw.BigAutoField()
    email = pw.CharField(max_length=254, unique=True)
    name = pw.CharField(max_length=100, default="")
    password_hash = pw.CharField(max_length=255)
    is_staff = pw.BooleanField(default=False)
    points = pw.BigIntegerField(default=0)
    created_at = pw.DateTimeField(default=utcnow)
    # Cookies of an earlier generation are no longer sessions (app/sessions.py).
    session_generation = pw.IntegerField(default=0)

    class Meta:
        table_name = "users"


class Event(BaseModel):
    id = pw.BigAutoField()
    name = pw.CharField(max_length=200)
    venue = pw.CharField(max_length=200, default="")
    starts_at = pw.DateTimeField(null=True)  # the performance (None: not announced)
    sale_opens_at = pw.DateTimeField(null=True)
    # open: admitting; paused: people wait, nobody is admitted; closed: no joins.
    admission = pw.CharField(max_length=10, default="paused")
    max_active = pw.IntegerField()
    admit_rate = pw.IntegerField()
    active_ttl = pw.IntegerField()
    hold_ttl = pw.IntegerField()
    poll_budget = pw.IntegerField(default=5000)
    # Seats one person may have of this event: held, being paid for and bought.
    max_seats_per_person = pw.IntegerField(default=4)
    prequeue_opens_at = pw.DateTimeField(null=True)
    draw_seed = pw.CharField(max_length=64, default="")
    drawn_at = pw.DateTimeField(null=True)
    # Joins by accounts newer than the event's cut-off need a solved
    # proof of work (app/bots.py); off: the API works as it always did.
    bot_protection = pw.BooleanField(default=False)
    # Fans may cancel until then (None: they cannot; staff always can).
    cancellable_until = pw.DateTimeField(null=True)
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "events"


class Seat(BaseModel):
    id = pw.BigAutoField()
    event = pw.ForeignKeyField(Event, backref="seats", on_delete="CASCADE")
    section = pw.CharField(max_length=50)
    row = pw.CharField(max_length=10, column_name="row_label")
    number = pw.IntegerField()
    price = pw.IntegerField()
    # available, booked or blocked; holds live in Redis until checkout.
    status = pw.CharField(max_length=10, default="available")
    holder = pw.ForeignKeyField(User, null=True, backref="seats", on_delete="SET NULL")
    version = pw.IntegerField(default=0)
    fencing_token = pw.BigIntegerField(default=0)

    class Meta:
        table_name = "seats"
        indexes = ((("event", "section", "row", "number"), True), (("event", "status"), False))

    @property
    def label(self) -> str:
        return seat_label(self.section, self.row, self.number)


class Booking(BaseModel):
    id = pw.BigAutoField()
    user = pw.ForeignKeyField(User, backref="bookings")
    event = pw.ForeignKeyField(Event, backref="bookings")
    amount = pw.BigIntegerField()
    points_left = pw.BigIntegerField()  # the buyer's balance after paying (for replays)
    status = pw.CharField(max_length=10, default="confirmed")
    idempotency_key = pw.CharField(max_length=100)
    request_hash = pw.CharField(max_length=64)
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "bookings"
        indexes = ((("user", "idempotency_key"), True),)


class BookingSeat(BaseModel):
    id = pw.BigAutoField()
    booking = pw.ForeignKeyField(Booking, backref="booking_seats", on_delete="CASCADE")
    seat = pw.ForeignKeyField(Seat, backref="booking_seats")
    price = pw.IntegerField()
    # 1 while the booking stands, NULL once cancelled: the unique index on
    # (seat, live) makes two live bookings of one seat impossible.
    live = pw.SmallIntegerField(null=True, default=1)

    class Meta:
        table_name = "booking_seats"
        indexes = ((("seat", "live"), True),)


class Payment(BaseModel):
    id = pw.BigAutoField()
    booking = pw.ForeignKeyField(Booking, backref="payments", on_delete="CASCADE")
    user = pw.ForeignKeyField(User, backref="payments")
    amount = pw.BigIntegerField()
    method = pw.CharField(max_length=20, default="points")
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "payments"


class Refund(BaseModel):
    """One cancellation's refund: its seats (comma-separated ids), the
    points given back and the buyer's balance after them."""

    id = pw.BigAutoField()
    booking = pw.ForeignKeyField(Booking, backref="refunds", on_delete="CASCADE")
    user = pw.ForeignKeyField(User, backref="refunds")
    amount = pw.BigIntegerField()
    seat_ids = pw.CharField(max_length=255)
    points_left = pw.BigIntegerField()
    actor = pw.ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "refunds"


class DrawEntry(BaseModel):
    event = pw.ForeignKeyField(Event, backref="draw_entries", on_delete="CASCADE")
    user_id = pw.BigIntegerField()  # no foreign key: the record outlives accounts
    public_id = pw.CharField(max_length=16)

    class Meta:
        table_name = "draw_entries"
        primary_key = pw.CompositeKey("event", "user_id")
        indexes = ((("event", "public_id"), True),)


class AuditLog(BaseModel):
    id = pw.BigAutoField()
    actor = pw.ForeignKeyField(User, null=True, backref="audit_entries", on_delete="SET NULL")
    action = pw.CharField(max_length=50)
    target = pw.CharField(max_length=100)
    before = pw.TextField(null=True)
    after = pw.TextField(null=True)
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "audit_log"


class Checkin(BaseModel):
    # One row per ticket (a booking_seats row) let in at the door: the
    # primary key makes a second check-in of one ticket fail (app/tickets.py).
    ticket = pw.ForeignKeyField(
        BookingSeat, primary_key=True, column_name="ticket_id", on_delete="CASCADE"
    )
    event_id = pw.BigIntegerField()
    staff_id = pw.BigIntegerField(null=True)  # no foreign key: the record outlives accounts
    checked_in_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "checkins"


MODELS = [User, Event, Seat, Booking, BookingSeat, Payment, Refund, DrawEntry, AuditLog, Checkin]
