"""Staff pages (/admin): the events with live numbers, and for one event the
live seat map, numbers, chart, controls, what-if and audit log. One guard
for the whole blueprint; every form carries a CSRF token; every action is
audited (app/staff.py)."""

from datetime import timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from pydantic import ValidationError

from app import audit, charts, events, seats, staff
from app.errors import AppError
from app.models import Booking, BookingSeat, Event, User, utcnow
from app.web import session as web_session
from app.web.schemas import CreateEvent, UpdateEvent

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.before_request(web_session.require_staff_page)


@bp.get("/")
def index():
    rows = list(Event.select().order_by(Event.id.desc()))
    return render_template("admin/index.html", rows=[(e, events.stats(e.id)) for e in rows])


@bp.post("/events")
def create_event():
    form = request.form
    try:
        body = CreateEvent.model_validate({
            "name": form.get("name", ""),
            "sale_opens_at": form.get("sale_opens_at") or None,
            "sections": _parse_sections(form.get("sections", "")),
            **{field: int(form[field]) for field in ("max_active", "admit_rate", "active_ttl",
                                                      "hold_ttl") if form.get(field)},
        })
    except (ValueError, ValidationError) as e:
        flash(f"The event was not created: {_first_error(e)}", "error")
        return redirect(url_for("admin.index"))
    event = events.create(body.name, [s.model_dump() for s in body.sections],
                          actor_id=web_session.user_id(), sale_opens_at=body.sale_opens_at,
                          max_active=body.max_active, admit_rate=body.admit_rate,
                          active_ttl=body.active_ttl, hold_ttl=body.hold_ttl)
    flash(f"Created {event.name} (admission paused).", "info")
    return redirect(url_for("admin.event", event_id=event.id))


@bp.get("/events/<int:event_id>")
def event(event_id):
    return render_template("admin/event.html", **_live_context(event_id),
                           log=audit.recent(f"event:{event_id}"),
                           what_if=None)


@bp.get("/events/<int:event_id>/live")
def live(event_id):
    """The part of the page that refreshes itself every 2 s."""
    return render_template("admin/_live.html", **_live_context(event_id))


@bp.post("/events/<int:event_id>/settings")
def settings(event_id):
    form = request.form
    try:
        changes = UpdateEvent.model_validate({
            **({"admission": form["admission"]} if form.get("admission") else {}),
            **{field: int(form[field]) for field in ("max_active", "admit_rate")
               if form.get(field)},
        }).model_dump(exclude_unset=True)
    except (ValueError, ValidationError) as e:
        flash(f"Nothing changed: {_first_error(e)}", "error")
    else:
        staff.update_event(web_session.user_id(), event_id, **changes)
        flash("Saved: " + ", ".join(f"{k} = {v}" for k, v in changes.items()), "info")
    return redirect(url_for("admin.event", event_id=event_id))


@bp.post("/events/<int:event_id>/seats/<int:seat_id>/<any(block, unblock, release):action>")
def seat_action(event_id, seat_id, action):
    control = {"block": staff.block_seat, "unblock": staff.unblock_seat,
               "release": staff.release_hold}[action]
    try:
        control(web_session.user_id(), event_id, seat_id)
    except AppError as e:
        if e.status == 404:
            raise
        flash(e.message, "error")
    else:
        label = seats.seat_info(event_id, seat_id).label
        flash(f"Seat {label}: {action}ed." if action != "release" else
              f"Seat {label}: hold released.", "info")
    return redirect(url_for("admin.event", event_id=event_id, seat=seat_id))


@bp.post("/events/<int:event_id>/queue/remove")
def remove_from_queue(event_id):
    user = staff.find_user(request.form.get("person", ""))
    if user is None:
        flash("No such person (give an email or a user id).", "error")
    elif staff.remove_from_queue(web_session.user_id(), event_id, user.id):
        flash(f"{user.email} was removed from the queue.", "info")
    else:
        flash(f"{user.email} was not in the queue.", "info")
    return redirect(url_for("admin.event", event_id=event_id))


@bp.get("/events/<int:event_id>/what-if")
def what_if(event_id):
    try:
        rate = int(request.args.get("rate", ""))
        cap = int(request.args.get("cap", ""))
        if not (1 <= rate <= 100_000 and 1 <= cap <= 1_000_000):
            raise ValueError
    except ValueError:
        flash("What-if needs a rate (1-100,000/s) and a cap (1-1,000,000).", "error")
        return redirect(url_for("admin.event", event_id=event_id))
    return render_template("admin/event.html", **_live_context(event_id),
                           log=audit.recent(f"event:{event_id}"),
                           what_if=staff.what_if(event_id, rate, cap))


def _live_context(event_id: int) -> dict:
    event = events.get(event_id)
    stats = events.stats(event_id)
    now_ms, _, states = seats.live_states(event_id)
    people = _emails({s.holder for s in states.values() if s.holder})
    sold_at = dict(BookingSeat.select(BookingSeat.seat, Booking.created_at).join(Booking)
                   .where(Booking.event == event_id, BookingSeat.live == 1).tuples())
    cells = []
    for seat in seats.catalogue(event_id).values():
        state = states.get(seat.id)
        kind = state.kind if state else "available"
        tip = kind.replace("paying", "being paid for")
        if state and kind in ("held", "paying"):
            tip += f" by {people.get(state.holder, state.holder)}, " \
                   f"{max(0, (state.until_ms - now_ms) // 1000)} s left"
        elif state and kind == "booked":
            when = sold_at.get(seat.id)
            tip += f" by {people.get(state.holder, state.holder)}" + \
                   (f" at {when:%H:%M:%S} UTC" if when else "")
        cells.append({"seat": seat, "state": kind, "tip": tip})
    selected = request.args.get("seat", type=int)
    return {"event": event, "stats": stats, "layout": _rows(cells),
            "selected": next((c for c in cells if c["seat"].id == selected), None),
            "chart": charts.for_event(event_id, event.admit_rate),
            "clear_in": _clear_in(stats), "bookings_per_minute": _bookings_last_minute(event_id)}


def _rows(cells: list[dict]) -> list:
    layout: dict = {}
    for cell in cells:
        layout.setdefault(cell["seat"].section, {}).setdefault(cell["seat"].row, []).append(cell)
    return [(section, list(rows.items())) for section, rows in layout.items()]


def _emails(user_ids: set[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    return dict(User.select(User.id, User.email).where(User.id.in_(list(user_ids))).tuples())


def _clear_in(stats: dict) -> float | None:
    """Seconds until everyone waiting is in, at the observed rate (None while
    admission is not open: then the queue does not move)."""
    if stats["admission"] != "open" or not stats["waiting"]:
        return None
    rate = stats["admit_rate_observed"] or stats["admit_rate"]
    return stats["waiting"] / rate


def _bookings_last_minute(event_id: int) -> int:
    since = utcnow() - timedelta(minutes=1)
    return Booking.select().where(Booking.event == event_id, Booking.created_at >= since).count()


def _parse_sections(text: str) -> list[dict]:
    """One section a line: name, rows, seats per row, price."""
    sections = []
    for number, line in enumerate(filter(str.strip, text.splitlines()), 1):
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4:
            raise ValueError(f"section line {number} needs: name, rows, seats per row, price")
        name, rows, per_row, price = parts
        sections.append({"name": name, "rows": int(rows), "seats_per_row": int(per_row),
                         "price": int(price)})
    return sections


def _first_error(e: Exception) -> str:
    if isinstance(e, ValidationError):
        first = e.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(e)
