"""Browser pages (htmx): events, the waiting room and the booking entrance."""

import time

from flask import (
    Blueprint,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext

from app import entrance, events, seats, waiting_room
from app.errors import AppError
from app.models import Event
from app.web import session as web_session
from app.web.limits import limited
from app.web.session import page_login_required

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    rows = list(Event.select().where(Event.admission != "closed").order_by(Event.id))
    counts = events.queue_counts([e.id for e in rows])
    return render_template(
        "events/index.html",
        events=rows,
        counts=counts,
        sold_out=seats.sold_out([e.id for e in rows]),
    )


@bp.get("/events/<int:event_id>")
def event(event_id):
    event = events.get(event_id)
    waiting, active = events.queue_counts([event.id])[event.id]
    return render_template(
        "events/event.html",
        event=event,
        waiting=waiting,
        active=active,
        sold_out=event.id in seats.sold_out([event.id]),
    )


@bp.post("/events/<int:event_id>/join")
@page_login_required
@limited("join")
def join(event_id):
    try:
        status = waiting_room.join(event_id, web_session.user_id())
    except AppError as e:
        if e.status == 404:
            raise
        flash(e.message, "error")
        return redirect(url_for("pages.event", event_id=event_id))
    # Remembered in the cookie for the progress bar: no Redis cost per poll.
    session[f"start:{event_id}"] = status.position or (status.position_band or {}).get("from", 1)
    return redirect(url_for("pages.waiting", event_id=event_id))


@bp.route("/events/<int:event_id>/leave", methods=["GET", "POST"])
@page_login_required
def leave(event_id):
    """GET asks to confirm (so the status fragment, polled often, needs no
    CSRF token of its own); POST leaves."""
    if request.method != "POST":  # GET and HEAD change nothing
        return render_template("waiting/leave.html", event=events.get(event_id))
    waiting_room.leave(event_id, web_session.user_id())
    session.pop(f"start:{event_id}", None)
    flash(gettext("You left the queue."), "info")
    return redirect(url_for("pages.event", event_id=event_id))


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
    template = "waiting/_status.html" if fragment else "waiting/status_page.html"
    user_id = web_session.user_id()
    context = {"event_id": event_id, "status": None, "problem": None, "start": 1}
    if not user_id:
        context["problem"] = "login"
    else:
        try:
            status = waiting_room.poll(event_id, user_id)
        except AppError as e:
            if e.code != "not_in_queue":
                raise
            context["problem"] = "not_in_queue"
        else:
            context.update(status=status, start=_start_position(event_id, status))
            if status.status == "admitted":
                try:
                    # The browser's entrance: consume the token for this session now.
                    entrance.enter(event_id, user_id, web_session.session_id(), status.token)
                except AppError as e:
                    context.update(status=None, problem="entered_elsewhere", message=e.message)
                else:
                    if fragment:
                        response = make_response("", 200)
                        response.headers["HX-Redirect"] = url_for(
                            "booking.seats", event_id=event_id
                        )
                        return response
    response = make_response(render_template(template, **context))
    response.headers["Vary"] = "HX-Request, Cookie"
    response.headers["Cache-Control"] = "no-store"
    status = context["status"]
    if status and status.retry_after:
        response.headers["Retry-After"] = status.retry_after
    return response


def _start_position(event_id: int, status: waiting_room.QueueStatus) -> int:
    """Where this person stood when they started waiting, for the progress bar.
    Kept in the session cookie (no Redis cost); first seen here if they joined
    elsewhere (the JSON API, another login)."""
    key = f"start:{event_id}"
    if key not in session and status.status == "waiting":
        session[key] = status.position or status.position_band["from"]
    return session.get(key, 1)


@bp.app_template_filter("mmss")
def mmss(seconds) -> str:
    seconds = max(0, int(seconds or 0))
    return f"{seconds // 60}:{seconds % 60:02d}"


@bp.app_template_filter("clock")
def clock(epoch_seconds: int) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(epoch_seconds))


@bp.app_template_filter("isotime")
def isotime(epoch_seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_seconds))
