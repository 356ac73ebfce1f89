"""Booking pages (htmx): the live seat map, holds, checkout, confirmation and
"my bookings". Only for people who came through the entrance and are still
within their active window; forms work without JavaScript too."""

import uuid
from itertools import groupby

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext

from app import bookings, checkout, events, seats
from app.errors import AppError
from app.i18n import duration
from app.web import identity
from app.web.identity import page_login_required
from app.web.limits import limited

bp = Blueprint("booking", __name__)


@bp.get("/events/<int:event_id>/seats", endpoint="seats")
@page_login_required
def seats_page(event_id):
    event = events.get(event_id)
    try:
        context = _panel_context(event_id)
    except AppError as e:
        if e.status != 403:
            raise
        flash(e.message, "error")
        return redirect(url_for("pages.event", event_id=event_id))
    return render_template("booking/seats.html", event=event, **context)


@bp.get("/events/<int:event_id>/seats/panel")
@page_login_required
def panel(event_id):
    """The part of the seat page that refreshes itself every few seconds."""
    return _render_panel(event_id)


@bp.post("/events/<int:event_id>/seats/hold")
@page_login_required
@limited("hold")
def hold(event_id):
    seat_id = request.form.get("seat", type=int)
    try:
        held = seats.hold(event_id, identity.user_id(), identity.session_id(), seat_id or 0)
    except AppError as e:
        return _after_action(event_id, e.message, "error")
    label = seats.seat_info(event_id, held.seat_id).label
    return _after_action(
        event_id,
        gettext(
            "Seat %(label)s is yours for %(time)s.", label=label, time=duration(held.expires_in)
        ),
        "info",
    )


@bp.post("/events/<int:event_id>/seats/release")
@page_login_required
def release(event_id):
    seat_id = request.form.get("seat", type=int) or 0
    seats.seat_info(event_id, seat_id)
    released = seats.release(event_id, identity.user_id(), seat_id)
    return _after_action(
        event_id,
        gettext("Seat released.") if released else str(seats.NOT_YOUR_HOLD[2]),
        "info" if released else "error",
    )


@bp.route("/events/<int:event_id>/checkout", methods=["GET", "POST"])
@page_login_required
@limited("checkout")
def checkout_page(event_id):
    event = events.get(event_id)
    user_id, session_id = identity.user_id(), identity.session_id()
    if request.method == "POST":
        key = request.form.get("idempotency_key", "")[:100] or uuid.uuid4().hex
        try:
            receipt = checkout.buy_my_holds(event_id, user_id, session_id, key)
        except AppError as e:
            flash(e.message, "error")
            if e.status == 403:  # not entered, or the window is over
                return redirect(url_for("pages.event", event_id=event_id))
            return redirect(url_for("booking.checkout_page", event_id=event_id))
        return redirect(url_for("booking.confirmation", booking_id=receipt.booking_id))
    try:
        summary = checkout.summary(event_id, user_id, session_id)
    except AppError as e:
        flash(e.message, "error")
        return redirect(url_for("pages.event", event_id=event_id))
    if not summary.holds:
        flash(gettext("Pick a seat first."), "info")
        return redirect(url_for("booking.seats", event_id=event_id))
    return render_template(
        "booking/checkout.html", event=event, summary=summary, idempotency_key=uuid.uuid4().hex
    )


@bp.get("/bookings/<int:booking_id>")
@page_login_required
def confirmation(booking_id):
    booking = bookings.find(identity.user_id(), booking_id=booking_id)
    if booking is None:
        abort(404)
    return render_template(
        "booking/confirmation.html",
        booking=booking,
        receipt=bookings.receipt(booking),
        event=events.get(booking.event_id),
    )


@bp.get("/bookings")
@page_login_required
def my_bookings():
    return render_template("booking/bookings.html", bookings=bookings.for_user(identity.user_id()))


def _after_action(event_id: int, message: str, category: str):
    """htmx: the refreshed panel with the message in it; without JavaScript:
    back to the seat page with the message flashed."""
    if request.headers.get("HX-Request") == "true":
        return _render_panel(event_id, message=message, category=category)
    flash(message, category)
    return redirect(url_for("booking.seats", event_id=event_id))


def _render_panel(event_id: int, **extra):
    try:
        context = _panel_context(event_id)
    except AppError as e:
        if e.status != 403:
            raise
        context = {"over": True}
    response = make_response(
        render_template("booking/_panel.html", event_id=event_id, **context, **extra)
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _panel_context(event_id: int) -> dict:
    user_id = identity.user_id()
    catalogue = seats.catalogue(event_id)
    now_ms, active_until_ms, states = seats.live_states(event_id, user_id, identity.session_id())
    cells = []
    for seat in catalogue.values():
        state = states.get(seat.id)
        kind = state.public if state else "available"
        if kind == "held" and state.holder == user_id and state.kind == "held":
            kind = "mine"
        cells.append(
            {
                "seat": seat,
                "state": kind,
                "expires_in": (state.until_ms - now_ms) // 1000 if kind == "mine" else 0,
            }
        )
    layout = [
        (
            section,
            [
                (row, list(row_cells))
                for row, row_cells in groupby(section_cells, key=lambda c: c["seat"].row)
            ],
        )
        for section, section_cells in groupby(cells, key=lambda c: c["seat"].section)
    ]
    mine = [c for c in cells if c["state"] == "mine"]
    return {
        "layout": layout,
        "mine": mine,
        "total": sum(c["seat"].price for c in mine),
        "window_left": max(0, (active_until_ms - now_ms) // 1000),
        "limit": events.get(event_id).max_seats_per_person,
    }
