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
from flask_babel import get_locale, gettext

from app import bookings, cancellations, checkout, events, seat_map, seats, tickets, waiting_room
from app.errors import AppError
from app.i18n import duration
from app.web import identity
from app.web.identity import page_login_required
from app.web.limits import limited
from app.web.seat_cells import SeatButtons, per_app, seat_name

bp = Blueprint("booking", __name__)
bp.add_app_template_global(seat_name)
bp.add_app_template_global(seats.seat_info)
bp.add_app_template_filter(tickets.qr_svg, "qr")

# Refusals of a hold, put into words that name the seat (the JSON API keeps
# the codes and its own messages).
REFUSED = {
    "seat_taken": lambda seat: gettext("Someone else is holding %(seat)s.", seat=seat),
    "seat_booked": lambda seat: gettext("%(seat)s is already sold.", seat=seat),
    "seat_blocked": lambda seat: gettext("%(seat)s is not for sale.", seat=seat),
}


@bp.get("/events/<int:event_id>/seats", endpoint="seats")
@page_login_required
def seats_page(event_id):
    event = events.get(event_id)
    try:
        context = _panel_context(event_id)
    except AppError as e:
        if e.status != 403:
            raise
        return _not_booking_here(event_id)
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
        return _after_action(event_id, _refusal(event_id, seat_id or 0, e), "error")
    name = seat_name(seats.seat_info(event_id, held.seat_id))
    return _after_action(
        event_id,
        gettext("You hold %(seat)s for %(time)s.", seat=name, time=duration(held.expires_in)),
        "info",
    )


def _refusal(event_id: int, seat_id: int, e: AppError) -> str:
    """A refused hold's message, naming the seat when there is one."""
    seat = seats.catalogue(event_id).get(seat_id)
    if seat is None or e.status == 403:
        return e.message
    name = seat_name(seat)
    if e.code in REFUSED:
        return REFUSED[e.code](name)
    return gettext("%(seat)s: %(reason)s", seat=name, reason=e.message)


@bp.post("/events/<int:event_id>/seats/release")
@page_login_required
def release(event_id):
    seat_id = request.form.get("seat", type=int) or 0
    name = seat_name(seats.seat_info(event_id, seat_id))
    released = seats.release(event_id, identity.user_id(), seat_id)
    return _after_action(
        event_id,
        gettext("You released %(seat)s.", seat=name)
        if released
        else gettext("You do not hold %(seat)s.", seat=name),
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
            if e.status == 403:  # not entered, or the window is over
                return _not_booking_here(event_id)
            flash(e.message, "error")
            return redirect(url_for("booking.checkout_page", event_id=event_id))
        return redirect(url_for("booking.confirmation", booking_id=receipt.booking_id))
    try:
        summary = checkout.summary(event_id, user_id, session_id)
    except AppError as e:
        if e.status != 403:
            raise
        return _not_booking_here(event_id)
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
    event = events.get(booking.event_id)
    return render_template(
        "booking/confirmation.html",
        booking=booking,
        seats=bookings.seats_of(booking.id),
        refunded=bookings.refunded(booking.id),
        event=event,
        cancellable=cancellations.cancellable(event),
        tickets=tickets.for_booking(booking.id),
    )


@bp.post("/bookings/<int:booking_id>/cancel")
@page_login_required
def cancel(booking_id):
    """The confirmation page's "Cancel this booking": asked again, then done."""
    booking = bookings.find(identity.user_id(), booking_id=booking_id)
    if booking is None:
        abort(404)
    if request.form.get("confirmed") != "yes":
        if booking.status == "cancelled":  # nothing left to ask about: its page says so
            return redirect(url_for("booking.confirmation", booking_id=booking.id))
        event = events.get(booking.event_id)
        return render_template("booking/cancel.html", booking=booking, event=event)
    try:
        result = cancellations.cancel(booking.id, user_id=identity.user_id())
    except AppError as e:
        if e.status == 404:
            raise
        flash(e.message, "error")
    else:
        flash(cancellations.told(result), "info")
    return redirect(url_for("booking.confirmation", booking_id=booking.id))


@bp.get("/tickets/<int:ticket_id>")
@page_login_required
def ticket(ticket_id):
    """One ticket to print or show at the door (its owner only)."""
    found = tickets.owned(identity.user_id(), ticket_id)
    if found is None:
        abort(404)
    return render_template("booking/ticket.html", ticket=found, event=events.get(found["event_id"]))


@bp.get("/bookings")
@page_login_required
def my_bookings():
    return render_template("booking/bookings.html", bookings=bookings.for_user(identity.user_id()))


def _not_booking_here(event_id: int):
    """Someone who cannot book in this session goes where their next step
    is: the waiting room while they have a place (it takes them in when
    their turn comes, or offers "Continue on this device"), else the event
    page, which shows their tickets or the Join button."""
    uid = identity.user_id()
    where = waiting_room.place(event_id, uid, identity.session_id())
    if where.kind in ("elsewhere", "not_entered", "queue", "prequeue"):
        return redirect(url_for("pages.waiting", event_id=event_id))
    if not bookings.tickets_for(uid, event_id):  # (those who have some see them there)
        flash(gettext("To pick seats, join the queue: it lets you in when it is your turn."))
    return redirect(url_for("pages.event", event_id=event_id))


def _after_action(event_id: int, message: str, category: str):
    """htmx: the refreshed panel with the message in it (and the touched seat
    read exactly); without JavaScript: back to the seat page with the
    message flashed."""
    if request.headers.get("HX-Request") == "true":
        seat_id = request.form.get("seat", type=int) or 0
        return _render_panel(event_id, also=(seat_id,), message=message, category=category)
    flash(message, category)
    return redirect(url_for("booking.seats", event_id=event_id))


def _render_panel(event_id: int, also: tuple[int, ...] = (), **extra):
    """The panel, and the buttons of the seats that changed since the version
    the page sent (all of them for none)."""
    try:
        view = _map_view(event_id, also)
    except AppError as e:
        if e.status != 403:
            raise
        where = waiting_room.place(event_id, identity.user_id(), identity.session_id())
        context = {"over": True, "moved": where.kind == "elsewhere"}
    else:
        blocks = view.changed_blocks(request.values.get("v"))
        cells = [(seat, view.cell(seat.id)) for b in blocks for seat in view.layout.block(b)]
        changed = _buttons().render(event_id, _language(), cells, True)
        context = _status(view) | {"changed": changed, "refresh": True}
    response = make_response(
        render_template("booking/_panel.html", event_id=event_id, **context, **extra)
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _panel_context(event_id: int) -> dict:
    """The whole seat page: the panel and every row of the map."""
    view = _map_view(event_id)
    buttons, language = _buttons(), _language()
    layout = [
        (
            section,
            [
                (row, buttons.render(event_id, language, [(s, view.cell(s.id)) for s in in_row]))
                for row, in_row in groupby(in_section, key=lambda s: s.row)
            ],
        )
        for section, in_section in groupby(view.layout.seats, key=lambda s: s.section)
    ]
    return _status(view) | {"layout": layout}


def _map_view(event_id: int, also: tuple[int, ...] = ()) -> seat_map.View:
    return seat_map.view(event_id, identity.user_id(), identity.session_id(), also)


def _status(view: seat_map.View) -> dict:
    """What the panel shows besides the map: the window, this person's seats."""
    mine = [{"seat": seat, "expires_in": view.seconds_left(s)} for seat, s in view.mine()]
    return {
        "mine": mine,
        "lapsed": view.lapsed(),  # holds that ran out: told, with a way to hold again
        "sections_left": view.seats_left(),  # sent out of band to the map's sections
        "total": sum(c["seat"].price for c in mine),
        "window_left": max(0, (view.active_until_ms - view.now_ms) // 1000),
        "version": view.version,
        "seats_left": max(0, view.unbought),  # shown while holding none
    }


def _buttons() -> SeatButtons:
    """The seat buttons' skeletons, one set per app."""
    return per_app("seat_buttons", SeatButtons)


def _language() -> str:
    return str(get_locale())
