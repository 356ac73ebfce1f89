"""The staff JSON API (/api/admin). One guard for the whole blueprint: 401
for nobody logged in, 403 for a customer. Every action is audited (app/staff.py)."""

from flask import Blueprint, jsonify
from flask_babel import gettext

from app import cancellations, dashboard, events, staff, tickets, waiting_room
from app.errors import AppError
from app.web import identity
from app.web.api import json_bodies_only, json_body
from app.web.schemas import Cancel, CreateEvent, UpdateEvent, parse

bp = Blueprint("admin_api", __name__, url_prefix="/api/admin")
bp.before_request(identity.require_staff_json)
bp.before_request(json_bodies_only)


@bp.post("/events")
def create_event():
    body = parse(CreateEvent, json_body())
    event = staff.create_event(identity.user_id(), **body.model_dump())
    return jsonify(events.describe(event, 0, 0)), 201


@bp.patch("/events/<int:event_id>")
def update_event(event_id):
    body = parse(UpdateEvent, json_body())
    event = staff.update_event(identity.user_id(), event_id, **body.model_dump(exclude_unset=True))
    return jsonify(events.describe(event, *waiting_room.counts([event.id])[event.id]))


@bp.get("/events/<int:event_id>/stats")
def event_stats(event_id):
    return jsonify(dashboard.stats(event_id))


@bp.post("/events/<int:event_id>/seats/<int:seat_id>/release")
def release_seat(event_id, seat_id):
    staff.release_hold(identity.user_id(), event_id, seat_id)
    return jsonify(seat_id=seat_id, status="available")


@bp.post("/events/<int:event_id>/seats/<int:seat_id>/block")
def block_seat(event_id, seat_id):
    staff.block_seat(identity.user_id(), event_id, seat_id)
    return jsonify(seat_id=seat_id, status="blocked")


@bp.post("/events/<int:event_id>/seats/<int:seat_id>/unblock")
def unblock_seat(event_id, seat_id):
    staff.unblock_seat(identity.user_id(), event_id, seat_id)
    return jsonify(seat_id=seat_id, status="available")


@bp.delete("/events/<int:event_id>/queue/<int:user_id>")
def remove_from_queue(event_id, user_id):
    staff.remove_from_queue(identity.user_id(), event_id, user_id)
    return "", 204


@bp.post("/users/<int:user_id>/sessions/revoke")
def revoke_sessions(user_id):
    staff.revoke_sessions(identity.user_id(), user_id)
    return "", 204


@bp.post("/bookings/<int:booking_id>/cancel")
def cancel_booking(booking_id):
    body = parse(Cancel, json_body())
    return jsonify(cancellations.cancel(booking_id, body.seat_ids, actor_id=identity.user_id()))


@bp.post("/events/<int:event_id>/check-in")
def check_in(event_id):
    """A door scanner's check-in of one ticket code (docs/TICKETS.md)."""
    data = json_body()
    code = data.get("code") if isinstance(data, dict) else None
    if not isinstance(code, str) or not code.strip():
        raise AppError(422, "invalid", gettext("code: a ticket code is required."))
    events.get(event_id)
    return jsonify(tickets.check_in(event_id, code, identity.user_id()))
