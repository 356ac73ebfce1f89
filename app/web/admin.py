"""Staff pages (/admin): the events with live numbers, and for one event the
live seat map, numbers, chart, controls, what-if and audit log. One guard
for the whole blueprint; every form carries a CSRF token; every action is
audited (app/staff.py)."""

import json
import re
import threading
import time

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import format_time, get_locale, gettext
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from pydantic import ValidationError

from app import audit, bots, dashboard, seats, staff
from app.errors import AppError
from app.i18n import admission_state, number
from app.web import identity
from app.web.schemas import CreateEvent, UpdateEvent, first_problem
from app.web.seat_cells import PLACE, Skeletons, escaped, per_app, place

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.before_request(identity.require_staff_page)

# The live settings as the forms name them.
SETTINGS = {
    "admission": _l("Admission"),
    "max_active": _l("Most people booking at once"),
    "admit_rate": _l("Let in per second"),
    "poll_budget": _l("Poll budget per second"),
    "max_seats_per_person": _l("Seats per person"),
    "bot_protection": _l("Bot check on joins"),
}


@bp.app_template_filter("json_text")
def json_text(value) -> str:
    """An audit entry's before/after as readable JSON: a Korean event name
    stays Korean (tojson would spell it \\ubd04...). Escaped like any text."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


@bp.get("/")
def index():
    return render_template("admin/index.html", rows=dashboard.events_with_stats())


@bp.post("/events")
def create_event():
    form = request.form
    try:
        body = CreateEvent.model_validate(
            {
                "name": form.get("name", ""),
                "sale_opens_at": form.get("sale_opens_at") or None,
                "prequeue_opens_at": form.get("prequeue_opens_at") or None,
                "sections": _parse_sections(form.get("sections", "")),
                "bot_protection": form.get("bot_protection") == "on",
                **{
                    field: _whole(form[field], field)
                    for field in (
                        "max_active",
                        "admit_rate",
                        "active_ttl",
                        "hold_ttl",
                        "poll_budget",
                        "max_seats_per_person",
                    )
                    if form.get(field)
                },
            }
        )
    except (ValueError, ValidationError) as e:
        flash(gettext("The event was not created: %(problem)s", problem=_first_error(e)), "error")
        return redirect(url_for("admin.index"))
    try:
        event = staff.create_event(identity.user_id(), **body.model_dump())
    except AppError as e:  # a rule across fields (the queue opens before the sale)
        flash(gettext("The event was not created: %(problem)s", problem=e.message), "error")
        return redirect(url_for("admin.index"))
    flash(gettext("Created %(name)s (admission paused).", name=event.name), "info")
    return redirect(url_for("admin.event", event_id=event.id))


@bp.get("/events/<int:event_id>")
def event(event_id):
    return render_template(
        "admin/event.html",
        **_live_context(event_id),
        log=audit.recent(f"event:{event_id}"),
        what_if=None,
    )


@bp.get("/events/<int:event_id>/live")
def live(event_id):
    """The part of the page that refreshes itself every 2 s."""
    return render_template("admin/_live.html", **_live_context(event_id))


@bp.post("/events/<int:event_id>/settings")
def settings(event_id):
    form = request.form
    try:
        changes = UpdateEvent.model_validate(
            {
                **({"admission": form["admission"]} if form.get("admission") else {}),
                # Its own buttons (on / off): an unticked checkbox sends nothing.
                **(
                    {"bot_protection": form["bot_protection"] == "on"}
                    if form.get("bot_protection")
                    else {}
                ),
                **{
                    field: _whole(form[field], field)
                    for field in ("max_active", "admit_rate", "poll_budget", "max_seats_per_person")
                    if form.get(field)
                },
            }
        ).model_dump(exclude_unset=True)
    except (ValueError, ValidationError) as e:
        flash(gettext("Nothing changed: %(problem)s", problem=_first_error(e)), "error")
    else:
        staff.update_event(identity.user_id(), event_id, **changes)
        saved = ", ".join(f"{SETTINGS.get(k, k)} = {_shown(k, v)}" for k, v in changes.items())
        flash(gettext("Saved: %(changes)s", changes=saved), "info")
    return redirect(url_for("admin.event", event_id=event_id))


def _shown(setting: str, value) -> str:
    if setting == "admission":
        return admission_state(value)
    if setting == "bot_protection":
        return gettext("on") if value else gettext("off")
    return number(value)


@bp.post("/events/<int:event_id>/seats/<int:seat_id>/<any(block, unblock, release):action>")
def seat_action(event_id, seat_id, action):
    control = {
        "block": staff.block_seat,
        "unblock": staff.unblock_seat,
        "release": staff.release_hold,
    }[action]
    try:
        control(identity.user_id(), event_id, seat_id)
        forget_map(event_id)
    except AppError as e:
        if e.status == 404:
            raise
        flash(e.message, "error")
    else:
        label = seats.seat_info(event_id, seat_id).label
        flash(
            {
                "block": gettext("Seat %(label)s: blocked.", label=label),
                "unblock": gettext("Seat %(label)s: unblocked.", label=label),
                "release": gettext("Seat %(label)s: hold released.", label=label),
            }[action],
            "info",
        )
    return redirect(url_for("admin.event", event_id=event_id, seat=seat_id))


@bp.post("/events/<int:event_id>/queue/remove")
def remove_from_queue(event_id):
    user = dashboard.find_user(request.form.get("person", ""))
    if user is None:
        flash(gettext("No such person (give an email or a user id)."), "error")
    elif staff.remove_from_queue(identity.user_id(), event_id, user.id):
        flash(gettext("%(email)s was removed from the queue.", email=user.email), "info")
    else:
        flash(gettext("%(email)s was not in the queue.", email=user.email), "info")
    return redirect(url_for("admin.event", event_id=event_id))


@bp.post("/events/<int:event_id>/sessions/revoke")
def revoke_sessions(event_id):
    """Beside "remove from the queue": a person whose cookie was stolen."""
    user = dashboard.find_user(request.form.get("person", ""))
    if user is None:
        flash(gettext("No such person (give an email or a user id)."), "error")
    else:
        staff.revoke_sessions(identity.user_id(), user.id)
        flash(gettext("%(email)s is signed out everywhere.", email=user.email), "info")
    return redirect(url_for("admin.event", event_id=event_id))


@bp.get("/events/<int:event_id>/what-if")
def what_if(event_id):
    args = request.args
    try:
        rate, cap = int(args.get("rate", "")), int(args.get("cap", ""))
        crowd = int(args["crowd"]) if args.get("crowd") else None
        budget = int(args["budget"]) if args.get("budget") else None
        if not (1 <= rate <= 100_000 and 1 <= cap <= 1_000_000):
            raise ValueError
        if not (0 <= (crowd or 0) <= 100_000_000 and 100 <= (budget or 100) <= 1_000_000):
            raise ValueError
    except ValueError:
        flash(
            gettext(
                "What-if needs a rate (1-100,000/s) and a cap (1-1,000,000); a crowd "
                "(0-100,000,000) and a poll budget (100-1,000,000/s) if given."
            ),
            "error",
        )
        return redirect(url_for("admin.event", event_id=event_id))
    return render_template(
        "admin/event.html",
        **_live_context(event_id),
        log=audit.recent(f"event:{event_id}"),
        what_if=dashboard.what_if(event_id, rate, cap, crowd, budget),
    )


def _live_context(event_id: int) -> dict:
    board = dashboard.board(event_id)
    selected = request.args.get("seat", type=int)
    cell = next(iter(dashboard.board_seats(event_id, only=selected)), None) if selected else None
    return board | {
        "seat_map": _seat_map(event_id, selected),
        "selected": cell and {"seat": cell.seat, "state": cell.state, "tip": _tip(cell)},
        "bot_cutoff": bots.cutoff(board["event"]),
    }


# The rendered staff maps of this process: (event id, language) -> (until, html).
_maps: dict[tuple, tuple[float, str]] = {}
_rendering = threading.Lock()


def _seat_map(event_id: int, selected: int | None) -> Markup:
    """The staff seat map. For 100,000 seats it takes seconds to render, and
    every staff page asks again every 2 s: it is kept, shared by all staff
    of this process, for STAFF_MAP_CACHE_MS or twice as long as it took to
    render, whichever is longer (so it costs at most half of one thread
    however many watch), and made again after a staff seat action."""
    key = (event_id, str(get_locale()))
    kept = _maps.get(key)
    if not kept or time.monotonic() >= kept[0]:
        with _rendering:
            kept = _maps.get(key)
            if not kept or time.monotonic() >= kept[0]:
                kept = _maps[key] = _render_map(event_id)
    html = kept[1]
    if selected:  # the one per-person mark, put on the shared map
        html = re.sub(
            f'(id="admin-seat-{int(selected)}" class="seat \\w+)"', r'\1 selected"', html, count=1
        )
    return Markup(html)


def _render_map(event_id: int) -> tuple[float, str]:
    """(until when to keep it, the map's html)."""
    started = time.monotonic()
    free = escaped(gettext("available"))  # the tip of every free seat, put into words once
    cells = [
        (
            c.seat,
            place(c.seat)
            | {
                "label": escaped(c.seat.label),
                "tip": free if c.state == "available" else escaped(_tip(c)),
            },
            c.state,
        )
        for c in dashboard.board_seats(event_id)
    ]
    skeletons, language = _staff_seats(), str(get_locale())
    layout = [
        (section, [(row, skeletons.render(event_id, language, seats)) for row, seats in rows])
        for section, rows in _rows(cells)
    ]
    html = render_template("admin/_map.html", layout=layout)
    took = time.monotonic() - started
    keep = max(current_app.config["STAFF_MAP_CACHE_MS"] / 1000, 2 * took)
    if len(_maps) >= 16:  # old events' maps go first
        del _maps[next(iter(_maps))]
    return (time.monotonic() + keep if current_app.config["STAFF_MAP_CACHE_MS"] else 0), html


STAFF_FIELDS = (*PLACE, "label", "tip")


def _staff_seats() -> Skeletons:
    """The staff map's seat skeletons, one set per app."""
    return per_app("staff_seats", lambda app: Skeletons(app, "admin/_seat.html", STAFF_FIELDS))


def forget_map(event_id: int) -> None:
    """After a staff action on a seat: the next refresh shows it."""
    for key in list(_maps):  # (a copy: another thread may be adding a map)
        if key[0] == event_id:
            _maps.pop(key, None)


def _tip(cell: dashboard.BoardSeat) -> str:
    """A seat's state as staff read it on hover: who holds it, for how long."""
    who, left = cell.who, cell.seconds_left
    if cell.state == "held":
        return gettext("held by %(who)s, %(seconds)s s left", who=who, seconds=left)
    if cell.state == "paying":
        return gettext("being paid for by %(who)s, %(seconds)s s left", who=who, seconds=left)
    if cell.state == "booked" and cell.sold_at:
        time = format_time(cell.sold_at, "HH:mm:ss")
        return gettext("booked by %(who)s at %(time)s UTC", who=who, time=time)
    if cell.state == "booked":
        return gettext("booked by %(who)s", who=who)
    return gettext("blocked") if cell.state == "blocked" else gettext("available")


def _rows(cells: list[tuple]) -> list:
    """[(section, [(row, [(values, state), ...]), ...]), ...] in map order,
    from (seat, values, state) in map order."""
    layout: dict = {}
    for seat, values, state in cells:
        layout.setdefault(seat.section, {}).setdefault(seat.row, []).append((values, state))
    return [(section, list(rows.items())) for section, rows in layout.items()]


def _parse_sections(text: str) -> list[dict]:
    """One section a line: name, rows, seats per row, price."""
    sections = []
    for line_number, line in enumerate(filter(str.strip, text.splitlines()), 1):
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4:
            raise ValueError(
                gettext(
                    "section line %(number)s needs: name, rows, seats per row, price",
                    number=line_number,
                )
            )
        name, rows, per_row, price = parts
        where = gettext("section line %(number)s", number=line_number)
        sections.append(
            {
                "name": name,
                "rows": _whole(rows, where),
                "seats_per_row": _whole(per_row, where),
                "price": _whole(price, where),
            }
        )
    return sections


def _whole(text: str, where: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(
            gettext("%(where)s: %(text)s is not a whole number", where=where, text=text)
        ) from None


def _first_error(e: Exception) -> str:
    if isinstance(e, ValidationError):
        where, what = first_problem(e)
        return f"{where}: {what}"
    return str(e)
