"""The JSON API (docs/API.md is the contract). Views stay thin: parse,
call a module, answer."""

from flask import Blueprint, Response, jsonify, request
from flask_babel import lazy_gettext as _l

from app import (
    accounts,
    bookings,
    bots,
    cancellations,
    checkout,
    draw,
    entrance,
    events,
    mirror,
    seat_map,
    seats,
    tickets,
    waiting_room,
)
from app.errors import AppError
from app.web import identity
from app.web.identity import api_login_required
from app.web.limits import (
    limited,
    login_limited,
    note_failed_login,
    password_change_limited,
    register_limited,
)
from app.web.schemas import (
    Cancel,
    ChangePassword,
    Checkout,
    Join,
    Login,
    Register,
    Release,
    parse,
)

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.before_request
def json_bodies_only():
    """Unsafe methods must say `Content-Type: application/json`, with a body
    or without. A page of another origin cannot send that without a CORS
    preflight (which this API never grants): its forms and its simple
    fetches (no-cors) carry no content type or a form/text one, and a
    bodiless one would otherwise act as the logged-in person."""
    unsafe = request.method in ("POST", "PUT", "PATCH", "DELETE")
    if unsafe and request.mimetype != "application/json":
        raise AppError(
            415,
            "unsupported_media_type",
            _l("Send Content-Type: application/json (with a JSON body, or none)."),
        )


def json_body() -> dict:
    try:
        data = request.get_json(silent=True) if request.content_length else {}
    except RecursionError:  # absurdly deep nesting: not a body we accept
        data = None
    if data is None:
        raise AppError(400, "bad_json", _l("The body is not valid JSON."))
    return data


def queue_response(status: waiting_room.QueueStatus):
    response = jsonify(status.to_json())
    if status.retry_after:
        response.headers["Retry-After"] = status.retry_after
    return response


# Accounts


@bp.post("/auth/register")
@register_limited
def register():
    body = parse(Register, json_body())
    user = accounts.register(body.email, body.password, body.name)
    return jsonify(id=user.id, email=user.email, points=user.points), 201


@bp.post("/auth/login")
@login_limited
def login():
    body = parse(Login, json_body())
    try:
        user = accounts.authenticate(body.email, body.password)
    except AppError as e:
        if e.status == 401:
            note_failed_login()
        raise
    identity.login(user)
    return jsonify(id=user.id, email=user.email, is_staff=user.is_staff)


@bp.post("/auth/logout")
def logout():
    identity.logout()
    return "", 204


@bp.get("/me")
@api_login_required
def me():
    user = identity.current_user()
    if user is None:  # the account was deleted under a live session
        identity.logout()
        raise AppError(*identity.LOGIN_REQUIRED)
    return jsonify(
        id=user.id, email=user.email, name=user.name, points=user.points, is_staff=user.is_staff
    )


@bp.post("/me/password")
@api_login_required
@password_change_limited
def change_password():
    body = parse(ChangePassword, json_body())
    try:
        identity.change_password(body.current_password, body.new_password)
    except AppError as e:
        if e.status == 401:
            note_failed_login()
        raise
    return "", 204


@bp.get("/me/bookings")
@api_login_required
def my_bookings():
    return jsonify(bookings.for_user(identity.user_id()))


@bp.post("/me/bookings/<int:booking_id>/cancel")
@api_login_required
def cancel_booking(booking_id):
    body = parse(Cancel, json_body())
    return jsonify(cancellations.cancel(booking_id, body.seat_ids, user_id=identity.user_id()))


# Events and the waiting room


@bp.get("/tickets/key")
def ticket_key():
    """The public key that checks ticket codes (docs/TICKETS.md)."""
    return jsonify(tickets.public_key())


@bp.get("/events")
def list_events():
    rows = events.listing()
    counts = waiting_room.counts([e.id for e in rows])
    sold_out = mirror.sold_out([e.id for e in rows])
    return jsonify([events.describe(e, *counts[e.id], e.id in sold_out) for e in rows])


@bp.get("/events/<int:event_id>")
def get_event(event_id):
    event = events.get(event_id)
    waiting, active = waiting_room.counts([event.id])[event.id]
    sold_out = event.id in mirror.sold_out([event.id])
    return jsonify(events.describe(event, waiting, active, sold_out))


@bp.get("/events/<int:event_id>/challenge")
def get_challenge(event_id):
    """A proof-of-work challenge for joining an event with bot protection."""
    events.get(event_id)
    response = jsonify(bots.challenge(event_id))
    response.headers["Cache-Control"] = "no-store"  # each one is good once
    return response


@bp.get("/events/<int:event_id>/draw")
def get_draw(event_id):
    return jsonify(draw.published(event_id))


@bp.post("/events/<int:event_id>/queue")
@api_login_required
@limited("join")
def join_queue(event_id):
    body = parse(Join, json_body())
    return queue_response(waiting_room.join(event_id, identity.user_id(), body.altcha))


@bp.get("/events/<int:event_id>/queue")
@api_login_required
def poll_queue(event_id):
    return queue_response(waiting_room.poll(event_id, identity.user_id()))


@bp.post("/events/<int:event_id>/queue/stay")
@api_login_required
def stay_in_queue(event_id):
    return queue_response(waiting_room.stay(event_id, identity.user_id()))


@bp.delete("/events/<int:event_id>/queue")
@api_login_required
def leave_queue(event_id):
    waiting_room.leave(event_id, identity.user_id())
    return "", 204


@bp.post("/events/<int:event_id>/enter")
@api_login_required
def enter(event_id):
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AppError(
            401, "invalid_token", _l("Send the admission token as 'Authorization: Bearer <token>'.")
        )
    until = entrance.enter(event_id, identity.user_id(), identity.session_id(), token.strip())
    return jsonify(status="entered", active_until=until)


# Seats and checkout: entered, still-active sessions only


@bp.get("/events/<int:event_id>/seats")
@api_login_required
def list_seats(event_id):
    mine = seat_map.view(event_id, identity.user_id(), identity.session_id())
    tag = seat_map.etag(mine)
    if request.if_none_match.contains(tag):  # nothing changed: no listing to build
        response = Response(status=304)
    else:
        response = jsonify(seat_map.seat_list(mine))
    # Not stored (it names this person's holds and tokens); a client that
    # keeps the ETag itself still gets its 304.
    response.set_etag(tag)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/events/<int:event_id>/seats/<int:seat_id>/hold")
@api_login_required
@limited("hold")
def hold_seat(event_id, seat_id):
    hold = seats.hold(event_id, identity.user_id(), identity.session_id(), seat_id)
    return jsonify(seat_id=hold.seat_id, token=hold.token, expires_in=hold.expires_in), 201


@bp.delete("/events/<int:event_id>/seats/<int:seat_id>/hold")
@api_login_required
def release_seat(event_id, seat_id):
    body = parse(Release, json_body())
    seats.seat_info(event_id, seat_id)
    if not seats.release(event_id, identity.user_id(), seat_id, body.token):
        raise AppError(*seats.NOT_YOUR_HOLD)
    return "", 204


@bp.post("/events/<int:event_id>/checkout")
@api_login_required
@limited("checkout")
def checkout_seats(event_id):
    key = request.headers.get("Idempotency-Key", "").strip()
    if not 1 <= len(key) <= 100:
        raise AppError(422, "invalid", _l("Send an Idempotency-Key header (1-100 characters)."))
    body = parse(Checkout, json_body())
    receipt, created = checkout.checkout(
        event_id,
        identity.user_id(),
        identity.session_id(),
        [(item.seat_id, item.token) for item in body.seats],
        key,
    )
    return jsonify(receipt.to_json()), 201 if created else 200
