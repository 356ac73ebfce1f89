"""Tickets: one per booked seat (its booking_seats row), a code signed with
Ed25519 for the QR, and check-in at the door (docs/TICKETS.md).

A code is `<payload>.<signature>`, both base64url without padding; the
payload is compact JSON with ticket_id, event_id, seat_id, booking_id and
holder (the buyer's user id); the signature is over the payload's bytes."""

import base64
import binascii
import contextlib
import json
import os
import threading
from pathlib import Path

import peewee as pw
import segno
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import current_app
from markupsafe import Markup

from app.models import Booking, BookingSeat, Checkin, Seat, User, iso, utcnow
from app.sql import for_update, run, write_transaction

KEY_FILE = "ticket-signing-key"
RESULTS = ("valid", "already_used", "revoked", "forged", "other_event")
FIELDS = ("ticket_id", "event_id", "seat_id", "booking_id")
# Codes longer than this are garbage (a real one is about 190 characters).
MOST_CODE_CHARS = 1000

_key_lock = threading.Lock()


# The key


def signing_key() -> Ed25519PrivateKey:
    """The app's ticket signing key, loaded once per app: TICKET_SIGNING_KEY
    (base64 of the raw 32 bytes), else one generated once into the instance
    folder."""
    app = current_app._get_current_object()
    key = app.extensions.get("ticket_key")
    if key is None:
        with _key_lock:
            key = app.extensions.get("ticket_key")
            if key is None:
                raw = app.config.get("TICKET_SIGNING_KEY")
                raw = base64.b64decode(raw) if raw else _instance_key(Path(app.instance_path))
                key = Ed25519PrivateKey.from_private_bytes(raw)
                app.extensions["ticket_key"] = key
    return key


def public_key() -> dict:
    """What GET /api/tickets/key publishes."""
    raw = (
        signing_key()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return {"alg": "Ed25519", "public_key": base64.b64encode(raw).decode()}


def _instance_key(instance: Path) -> bytes:
    """The raw private key kept in instance/ticket-signing-key (mode 0600),
    made on first use; write-then-link so two processes agree on one key."""
    path = instance / KEY_FILE
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        raw = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            os.fchmod(fd, 0o600)
            out.write(base64.b64encode(raw).decode())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        tmp.unlink()
    return base64.b64decode(path.read_text().strip())


# Codes


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(ticket_id: int, event_id: int, seat_id: int, booking_id: int, holder: int) -> str:
    """The code of one ticket (the text in its QR)."""
    payload = {
        "ticket_id": ticket_id,
        "event_id": event_id,
        "seat_id": seat_id,
        "booking_id": booking_id,
        "holder": holder,
    }
    data = json.dumps(payload, separators=(",", ":")).encode()
    return f"{_b64url(data)}.{_b64url(signing_key().sign(data))}"


def verify(code: str) -> dict | None:
    """The payload of a code signed by this app's key, else None."""
    if not isinstance(code, str) or len(code) > MOST_CODE_CHARS:
        return None
    payload_text, dot, signature_text = code.strip().partition(".")
    if not dot:
        return None
    try:
        data, signature = _unb64url(payload_text), _unb64url(signature_text)
        signing_key().public_key().verify(signature, data)
        payload = json.loads(data)
    except (binascii.Error, ValueError, InvalidSignature):
        return None
    if not isinstance(payload, dict) or not all(
        type(payload.get(f)) is int for f in FIELDS
    ):  # fmt: skip
        return None
    return payload


def qr_svg(code: str) -> Markup:
    """The code as an inline SVG QR (decorative: the page names the seat and
    shows the code as text beside it)."""
    svg = segno.make(code, error="m").svg_inline(scale=4, svgclass="qr", border=4)
    return Markup(svg.replace("<svg ", '<svg aria-hidden="true" focusable="false" ', 1))


# A booking's tickets


def for_booking(booking_id: int) -> list[dict]:
    """[{ticket_id, seat_id, label, code, status}] in seat order; status:
    valid, checked_in or revoked."""
    rows = list(
        BookingSeat.select(BookingSeat, Booking, Seat)
        .join(Booking)
        .switch(BookingSeat)
        .join(Seat)
        .where(BookingSeat.booking == booking_id)
        .order_by(Seat.id)
    )
    checked = {
        c.ticket_id
        for c in Checkin.select(Checkin.ticket).where(Checkin.ticket.in_([r.id for r in rows]))
    } if rows else set()  # fmt: skip
    return [_ticket(row, row.id in checked) for row in rows]


def _ticket(row: BookingSeat, checked: bool) -> dict:
    status = "revoked" if row.live is None else "checked_in" if checked else "valid"
    booking = row.booking
    return {
        "ticket_id": row.id,
        "seat_id": row.seat_id,
        "label": row.seat.label,
        "code": sign(row.id, booking.event_id, row.seat_id, booking.id, booking.user_id),
        "status": status,
    }


def owned(user_id: int, ticket_id: int) -> dict | None:
    """One ticket of this person's (with its event_id and booking_id), else None."""
    row = (
        BookingSeat.select(BookingSeat, Booking)
        .join(Booking)
        .where(BookingSeat.id == ticket_id, Booking.user == user_id, Booking.status == "confirmed")
        .first()
    )
    if row is None:
        return None
    for ticket in for_booking(row.booking_id):
        if ticket["ticket_id"] == ticket_id:
            return ticket | {"event_id": row.booking.event_id, "booking_id": row.booking_id}
    return None


# At the door


def check_in(event_id: int, code: str, staff_id: int | None) -> dict:
    """Let one ticket in: {result, ticket_id?, seat_id?, seat?, holder?,
    checked_in_at?, checked_in_by?}. The insert into checkins is the one
    atomic step: of two doors scanning one ticket at once, one gets the row
    and the other the duplicate key (already_used)."""
    payload = verify(code)
    if payload is None:
        return {"result": "forged"}
    ticket_id = payload["ticket_id"]
    if payload["event_id"] != event_id:
        return {"result": "other_event", "ticket_id": ticket_id}
    row = (
        BookingSeat.select(BookingSeat, Booking, Seat)
        .join(Booking)
        .switch(BookingSeat)
        .join(Seat)
        .where(BookingSeat.id == ticket_id)
        .first()
    )
    if row is None:  # signed by us, since deleted
        return {"result": "revoked", "ticket_id": ticket_id}
    booking = row.booking
    if (booking.id, row.seat_id, booking.event_id) != (
        payload["booking_id"],
        payload["seat_id"],
        event_id,
    ):
        return {"result": "forged"}
    found = {"ticket_id": ticket_id, "seat_id": row.seat_id, "seat": row.seat.label}
    if row.live is None or booking.status != "confirmed":
        return {"result": "revoked", **found}
    try:
        # The ticket's row locked first, as a cancellation locks it
        # (app/cancellations.py): a ticket cancelled at this moment is
        # either let in before or refused after, never both.
        with write_transaction():
            (live,) = run(
                "SELECT `live` FROM `booking_seats` WHERE `id` = %s" + for_update(), (ticket_id,)
            ).fetchone()
            if live is None:
                return {"result": "revoked", **found}
            Checkin.insert(
                ticket=ticket_id, event_id=event_id, staff_id=staff_id, checked_in_at=utcnow()
            ).execute()
    except pw.IntegrityError:
        earlier = Checkin.get_or_none(Checkin.ticket == ticket_id)
        return {
            "result": "already_used",
            **found,
            "checked_in_at": iso(earlier.checked_in_at) if earlier else None,
            "checked_in_by": _name(earlier.staff_id) if earlier else None,
        }
    done = Checkin.get(Checkin.ticket == ticket_id)
    return {
        "result": "valid",
        **found,
        "holder": _name(booking.user_id),
        "checked_in_at": iso(done.checked_in_at),
    }


def _name(user_id: int | None) -> str | None:
    """A person as the door staff see them: their name, else their email."""
    user = User.get_or_none(User.id == user_id) if user_id else None
    return (user.name or user.email) if user else None
