"""Browser pages (htmx): events, the waiting room and the booking entrance."""

import math

from flask import (
    Blueprint,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale, gettext

from app import bookings, bots, capacity, entrance, events, mirror, waiting_room
from app.errors import AppError
from app.web import fragments, identity
from app.web.identity import page_login_required
from app.web.limits import limited

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    rows = events.listing(on_sale_only=True)
    counts = waiting_room.counts([e.id for e in rows])
    return render_template(
        "events/index.html",
        events=rows,
        counts=counts,
        sold_out=mirror.sold_out([e.id for e in rows]),
    )


@bp.get("/events/<int:event_id>")
def event(event_id):
    event = events.get(event_id)
    waiting, active = waiting_room.counts([event.id])[event.id]
    return render_template(
        "events/event.html",
        event=event,
        waiting=waiting,
        active=active,
        sold_out=event.id in mirror.sold_out([event.id]),
        draw=events.describe(event),  # the fair start's commitment and drawn_at
        bot_cutoff=bots.cutoff(event),
        **_yours(event.id),
    )


def _yours(event_id: int) -> dict:
    """The logged-in person's part of the event page: where they stand
    (app/waiting_room.py's Place; a position only where the waiting room
    shows it exactly) and how many tickets they have."""
    uid = identity.user_id()
    if not uid:
        return {"place": None, "tickets": 0}
    place = waiting_room.place(event_id, uid, identity.session_id())
    if place.position and capacity.band_for(place.position, current_app.config["POLL_TIERS"]):
        place.position = None
    return {"place": place, "tickets": bookings.tickets_for(uid, event_id)}


@bp.post("/events/<int:event_id>/join")
@page_login_required
@limited("join")
def join(event_id):
    try:
        status = waiting_room.join(event_id, identity.user_id(), request.form.get("altcha"))
    except AppError as e:
        if e.status == 404:
            raise
        flash(e.message, "error")
        return redirect(url_for("pages.event", event_id=event_id))
    # Remembered in the cookie for the progress bar: no Redis cost per poll
    # (in the pre-queue, from the first poll that has a place).
    session.pop(f"start:{event_id}", None)
    if not status.draw_id:
        session[f"start:{event_id}"] = status.position or (status.position_band or {}).get(
            "from", 1
        )
    return redirect(url_for("pages.waiting", event_id=event_id))


@bp.route("/events/<int:event_id>/leave", methods=["GET", "POST"])
@page_login_required
def leave(event_id):
    """GET asks to confirm (so the status fragment, polled often, needs no
    CSRF token of its own); POST leaves."""
    if request.method != "POST":  # GET and HEAD change nothing
        return render_template("waiting/leave.html", event=events.get(event_id))
    waiting_room.leave(event_id, identity.user_id())
    session.pop(f"start:{event_id}", None)
    flash(gettext("You left the queue."), "info")
    return redirect(url_for("pages.event", event_id=event_id))


@bp.post("/events/<int:event_id>/stay")
@page_login_required
def stay(event_id):
    """ "Tell me if seats come back": stay in line after the sell-out."""
    events.get(event_id)
    try:
        waiting_room.stay(event_id, identity.user_id())
    except AppError as e:
        if e.code != "not_in_queue":
            raise
        flash(
            gettext("You are no longer in this queue; you can join it again if seats come back."),
            "info",
        )
        return redirect(url_for("pages.event", event_id=event_id))
    return redirect(url_for("pages.waiting", event_id=event_id))


@bp.post("/events/<int:event_id>/continue")
@page_login_required
def continue_here(event_id):
    """ "Continue on this device": the person's open window (entered in
    another session: logged out and in again, or another device) moves to
    this one, with the seats held in it."""
    events.get(event_id)
    try:
        entrance.move_here(event_id, identity.user_id(), identity.session_id())
    except AppError:
        flash(gettext("Your time to book is over; you can join the queue again."), "info")
        return redirect(url_for("pages.event", event_id=event_id))
    return redirect(url_for("booking.seats", event_id=event_id))


@bp.get("/events/<int:event_id>/waiting")
def waiting(event_id):
    """The waiting page is the same for everyone who reads the same language
    (cacheable, one copy per language); only the status fragment it loads
    is per person."""
    event = events.get(event_id)
    response = make_response(render_template("waiting/page.html", event=event))
    response.headers["Cache-Control"] = "public, max-age=60"
    # The language comes from Accept-Language or the `lang` cookie (app/i18n.py).
    response.vary.update(("Accept-Language", "Cookie"))
    return response


@bp.get("/events/<int:event_id>/waiting/status")
def waiting_status(event_id):
    """The per-person status: an htmx fragment that schedules its own next
    poll, or (no JavaScript) a tiny page for the <noscript> frame that
    refreshes itself at the same interval."""
    fragment = request.headers.get("HX-Request") == "true"
    seen = waiting_room.poll_for_page(event_id, identity.user_id(), identity.session_id())
    if seen.entered and fragment:
        response = make_response("", 200)
        response.headers["HX-Redirect"] = url_for("booking.seats", event_id=event_id)
        return response
    view = None
    if seen.status and seen.status.status == "waiting":
        view = fragments.status_view(
            seen.status,
            _start_position(event_id, seen.status),
            url_for("pages.waiting_status", event_id=event_id),
            url_for("pages.leave", event_id=event_id),
            get_locale(),
        )
    template = "waiting/_status.html" if fragment else "waiting/status_page.html"
    response = make_response(
        render_template(
            template,
            event_id=event_id,
            status=seen.status,
            view=view,
            problem=seen.problem,
            message=seen.message,
            window_left=seen.window_left,
            poll_after=seen.poll_after or _staying_poll(seen.status),
        )
    )
    response.headers["Vary"] = "HX-Request, Cookie"
    response.headers["Cache-Control"] = "no-store"
    if seen.status and seen.status.retry_after:
        response.headers["Retry-After"] = seen.status.retry_after
    return response


def _staying_poll(status: waiting_room.QueueStatus | None) -> int | None:
    """Staying in line for returned seats: the fragment looks again at the
    interval the server chose (whole seconds, for hx-trigger's "every")."""
    return math.ceil(status.poll_after) if status and status.staying else None


def _start_position(event_id: int, status: waiting_room.QueueStatus) -> int:
    """Where this person stood when they started waiting, for the progress bar.
    Kept in the session cookie (no Redis cost); first seen here if they joined
    elsewhere (the JSON API, another login)."""
    key = f"start:{event_id}"
    if key not in session and status.status == "waiting" and not status.draw_id:
        session[key] = status.position or status.position_band["from"]
    return session.get(key, 1)
