"""Staff pages (/admin): the events with live numbers, and for one event the
live seat map, numbers, chart, controls, what-if and audit log. One guard
for the whole blueprint; every form carries a CSRF token; every action is
audited (app/staff.py)."""

import re
import threading
import time

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import format_time, get_locale, gettext, ngettext
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from pydantic import ValidationError

from app import audit, bots, cancellations, dashboard, events, seats, staff, tickets
from app.errors import AppError
from app.i18n import admission_state, number, when
from app.web import identity
from app.web.schemas import CreateEvent, UpdateEvent, first_problem
from app.web.seat_cells import PLACE, Skeletons, escaped, per_app, place, seat_name, seat_namer

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

# Every field of an event as the forms (or, for fields no form changes, plain
# words) name it: in validation messages and in the audit log.
LABELS = {
    "name": _l("Name"),
    **SETTINGS,
    "active_ttl": _l("Booking window per person (s)"),
    "hold_ttl": _l("Hold time per seat (s)"),
    "venue": _l("Venue"),
    "starts_at": _l("Date (UTC)"),
    "sale_opens_at": _l("Sale opens (UTC)"),
    "prequeue_opens_at": _l("Queue opens (UTC)"),
    "sections": _l("Seat layout"),
    "sections.name": _l("name"),
    "sections.rows": _l("rows"),
    "sections.seats_per_row": _l("seats per row"),
    "sections.price": _l("price"),
}
# The create form says "People let in per second" where the live form says
# "Let in per second".
CREATE_LABELS = LABELS | {"admit_rate": _l("People let in per second")}
# Fields of the audit log's event entries that nobody sets by hand.
UNSHOWN = {"id", "draw_commitment", "drawn_at"}
AUDIT_PAGE = 20


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
                "venue": form.get("venue", ""),
                "starts_at": form.get("starts_at") or None,
                "sale_opens_at": form.get("sale_opens_at") or None,
                "prequeue_opens_at": form.get("prequeue_opens_at") or None,
                "sections": _parse_sections(form.get("sections", "")),
                "bot_protection": form.get("bot_protection") == "on",
                **{
                    field: _whole(form[field], CREATE_LABELS[field])
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
        problem = _first_error(e, CREATE_LABELS)
        flash(gettext("The event was not created: %(problem)s", problem=problem), "error")
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
        "admin/event.html", **_live_context(event_id), **_log_context(event_id), what_if=None
    )


@bp.route("/events/<int:event_id>/check-in", methods=["GET", "POST"])
def check_in(event_id):
    """The door: paste (or scan, app/static/check-in.js) a ticket code."""
    event = events.get(event_id)
    result = None
    if request.method == "POST":
        code = request.form.get("code", "").strip()
        if code:
            result = tickets.check_in(event_id, code, identity.user_id())
    return render_template("admin/check_in.html", event=event, result=result)


@bp.get("/events/<int:event_id>/live")
def live(event_id):
    """The part of the page that refreshes itself every 2 s."""
    return render_template("admin/_live.html", **_live_context(event_id))


@bp.post("/events/<int:event_id>/settings")
def settings(event_id):
    form = request.form
    if form.get("admission") == "closed" and not _confirmed():
        event = events.get(event_id)
        return _confirm(
            event,
            gettext("Close admission for %(name)s?", name=event.name),
            gettext(
                "Nobody joins, holds or checks out any more; a payment already under way "
                "finishes. The people waiting stay in the queue, and you can open again."
            ),
            gettext("Yes, close admission"),
            url_for("admin.settings", event_id=event_id),
            {"admission": "closed"},
        )
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
                    field: _whole(form[field], LABELS[field])
                    for field in ("max_active", "admit_rate", "poll_budget", "max_seats_per_person")
                    if form.get(field)
                },
            }
        ).model_dump(exclude_unset=True)
    except (ValueError, ValidationError) as e:
        flash(gettext("Nothing changed: %(problem)s", problem=_first_error(e, LABELS)), "error")
    else:
        staff.update_event(identity.user_id(), event_id, **changes)
        saved = ", ".join(f"{SETTINGS.get(k, k)} = {_shown(k, v)}" for k, v in changes.items())
        flash(gettext("Saved: %(changes)s", changes=saved), "info")
    return redirect(url_for("admin.event", event_id=event_id))


def _shown(setting: str, value) -> str:
    """A setting's value in words."""
    if setting == "admission":
        return admission_state(value)
    if isinstance(value, bool):
        return gettext("on") if value else gettext("off")
    if setting in ("sale_opens_at", "prequeue_opens_at"):
        return when(value, time="short") if value else gettext("not set")
    if isinstance(value, int | float):
        return number(value)
    return "—" if value is None else str(value)


# Seat actions that take a seat from someone: asked again first.
SEAT_CONFIRM = {
    "release": (
        _l("Release the hold on %(label)s?"),
        _l("The person holding it loses it and cannot pay for it; it is on sale again at once."),
        _l("Yes, release the hold"),
    ),
    "release_and_block": (
        _l("Release the hold on %(label)s and block it?"),
        _l(
            "The person holding it loses it and cannot pay for it; nobody can hold it until "
            "you unblock it."
        ),
        _l("Yes, release and block"),
    ),
}


@bp.post(
    "/events/<int:event_id>/seats/<int:seat_id>/"
    "<any(block, unblock, release, release_and_block):action>"
)
def seat_action(event_id, seat_id, action):
    label = seat_name(seats.seat_info(event_id, seat_id))  # 404 for a seat of another event
    if action in SEAT_CONFIRM and not _confirmed():
        question, detail, yes = SEAT_CONFIRM[action]
        return _confirm(
            events.get(event_id),
            str(question) % {"label": label},
            str(detail),
            str(yes),
            url_for("admin.seat_action", event_id=event_id, seat_id=seat_id, action=action),
            {},
            back=url_for("admin.event", event_id=event_id, seat=seat_id, _anchor="seat-controls"),
        )
    control = {
        "block": staff.block_seat,
        "unblock": staff.unblock_seat,
        "release": staff.release_hold,
        "release_and_block": _release_and_block,
    }[action]
    try:
        control(identity.user_id(), event_id, seat_id)
        forget_map(event_id)
    except AppError as e:
        if e.status == 404:
            raise
        flash(e.message, "error")
    else:
        label = seat_name(seats.seat_info(event_id, seat_id))
        flash(
            {
                "block": gettext("Seat %(label)s: blocked.", label=label),
                "unblock": gettext("Seat %(label)s: unblocked.", label=label),
                "release": gettext("Seat %(label)s: hold released.", label=label),
                "release_and_block": gettext(
                    "Seat %(label)s: hold released and blocked.", label=label
                ),
            }[action],
            "info",
        )
    return redirect(url_for("admin.event", event_id=event_id, seat=seat_id))


def _release_and_block(actor_id: int, event_id: int, seat_id: int) -> None:
    """Two audited actions: the hold ends, then the seat is blocked."""
    staff.release_hold(actor_id, event_id, seat_id)
    staff.block_seat(actor_id, event_id, seat_id)


@bp.post("/events/<int:event_id>/seats/bulk")
def bulk_seats(event_id):
    """Block the free seats of a section or of one of its rows (asked again
    first, with how many), or put its blocked seats back on sale."""
    form = request.form
    event = events.get(event_id)
    section, row = form.get("section", ""), form.get("row") or None
    blocking = form.get("blocked") != "off"
    where = _where(section, row)
    counts = _group_counts(event_id, section, row)
    back = url_for("admin.event", event_id=event_id, seat=form.get("seat", type=int))
    if counts is None:
        flash(gettext("%(where)s has no seats.", where=where), "error")
        return redirect(back)
    if blocking and not _confirmed():
        free, taken = counts["available"], counts["taken"]
        return _confirm(
            event,
            ngettext(
                "Block the %(num)s free seat of %(where)s?",
                "Block the %(num)s free seats of %(where)s?",
                free,
                where=where,
            ),
            ngettext(
                "Nobody can hold it until you unblock it.",
                "Nobody can hold them until you unblock them.",
                free,
            )
            + " "
            + ngettext(
                "%(num)s seat held, being paid for or sold is skipped.",
                "%(num)s seats held, being paid for or sold are skipped.",
                taken,
            ),
            gettext("Yes, block them"),
            url_for("admin.bulk_seats", event_id=event_id),
            {k: v for k, v in form.items() if k in ("section", "row", "blocked", "seat") and v},
            back=back,
        )
    result = staff.block_seats(identity.user_id(), event_id, section, row, blocking)
    forget_map(event_id)
    changed, skipped = len(result["changed"]), len(result["skipped"])
    if blocking:
        message = ngettext(
            "%(where)s: %(num)s seat blocked",
            "%(where)s: %(num)s seats blocked",
            changed,
            where=where,
        )
        if skipped:
            message += ngettext(
                "; %(num)s skipped (held, being paid for or sold)",
                "; %(num)s skipped (held, being paid for or sold)",
                skipped,
            )
        if result["already"]:
            message += gettext("; %(num)s already blocked", num=number(len(result["already"])))
    else:
        message = ngettext(
            "%(where)s: %(num)s seat back on sale",
            "%(where)s: %(num)s seats back on sale",
            changed,
            where=where,
        )
    flash(message + ".", "info")
    return redirect(back)


def _where(section: str, row: str | None) -> str:
    """A section, or one row of it, in words."""
    if row is None:
        return gettext("%(section)s (every row)", section=section)
    return gettext("%(section)s, row %(row)s", section=section, row=row)


def _group_counts(event_id: int, section: str, row: str | None) -> dict | None:
    """How many seats of a section (or row) are free, blocked or taken now
    (None: it has no seats)."""
    group = [
        s.id
        for s in seats.catalogue(event_id).values()
        if s.section == section and (row is None or s.row == row)
    ]
    if not group:
        return None
    _, _, states = seats.live_states(event_id)
    kinds = [states[s].kind if s in states else "available" for s in group]
    return {
        "available": kinds.count("available"),
        "blocked": kinds.count("blocked"),
        "taken": len(kinds) - kinds.count("available") - kinds.count("blocked"),
    }


def _confirmed() -> bool:
    return request.form.get("confirmed") == "yes"


def _confirm(event, question: str, detail: str, yes: str, action: str, fields: dict, back=None):
    """The page that asks again before a destructive action: its form sends
    the same fields with confirmed=yes (no JavaScript needed)."""
    return render_template(
        "admin/confirm.html",
        event=event,
        question=question,
        detail=detail,
        yes=yes,
        action=action,
        fields=fields,
        back=back or url_for("admin.event", event_id=event.id),
    )


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


@bp.post("/events/<int:event_id>/bookings/cancel")
def cancel_booking(event_id):
    """Cancel a booking of this event by its number and refund it (asked again first)."""
    event = events.get(event_id)
    typed = request.form.get("booking", "").strip().lstrip("#")
    booking = cancellations.find(int(typed), event_id) if typed.isdigit() else None
    if booking is None:
        flash(gettext("This event has no booking with that number."), "error")
        return redirect(url_for("admin.event", event_id=event_id))
    if not _confirmed():
        return _confirm(
            event,
            gettext("Cancel booking %(number)s and refund it?", number=booking.id),
            gettext("Its seats go back on sale and its points go back to the buyer."),
            gettext("Yes, cancel and refund"),
            url_for("admin.cancel_booking", event_id=event_id),
            {"booking": booking.id},
        )
    try:
        result = cancellations.cancel(booking.id, actor_id=identity.user_id())
    except AppError as e:  # a ticket used at the door, the database too busy
        if e.status == 404:
            raise
        flash(e.message, "error")
    else:
        forget_map(event_id)
        flash(cancellations.told(result), "info")
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
        **_log_context(event_id),
        what_if=dashboard.what_if(event_id, rate, cap, crowd, budget),
    )


def _log_context(event_id: int) -> dict:
    """One page of the event's audit log (newest first), in sentences."""
    number_ = max(1, request.args.get("page", 1, type=int))
    entries, older = audit.page(f"event:{event_id}", number_, AUDIT_PAGE)
    return {
        "log": audit_lines(event_id, entries),
        "log_page": number_,
        "log_older": older,
    }


def audit_lines(event_id: int, entries: list[dict]) -> list[dict]:
    """Audit entries as staff read them: when, who, and what happened in a
    sentence ("Most people booking at once: 10,000 → 50"), with seat labels
    and people's emails instead of ids."""
    catalogue = seats.catalogue(event_id)
    people = dashboard.emails_of(
        {
            int(m)
            for e in entries
            for m in re.findall(r"user[: ](\d+)", f"{e['target']} {e['before']}")
        }
    )
    return [
        {"id": e["id"], "at": e["at"], "actor": e["actor"], "text": _sentence(e, catalogue, people)}
        for e in entries
    ]


def _sentence(entry: dict, catalogue: dict, people: dict) -> str:
    action, before, after = entry["action"], entry["before"], entry["after"]
    target = entry["target"]
    seat = re.search(r":seat:(\d+)$", target)
    if seat:
        info = catalogue.get(int(seat.group(1)))
        label = seat_name(info) if info else gettext("seat %(id)s", id=seat.group(1))
    if action == "event.create":
        return gettext("Created the event %(name)s", name=(after or {}).get("name", ""))
    if action == "event.update":
        changes = [
            f"{LABELS.get(field, field)}: {_shown(field, before.get(field))} → "
            f"{_shown(field, value)}"
            for field, value in (after or {}).items()
            if field not in UNSHOWN and (before or {}).get(field) != value
        ]
        return "; ".join(changes) if changes else gettext("Saved the settings; nothing changed")
    if action == "event.draw":
        count = (after or {}).get("participants", 0)
        return ngettext(
            "Drew the order of the pre-queue (%(num)s person)",
            "Drew the order of the pre-queue (%(num)s people)",
            count,
        )
    if action == "seat.block" and seat:
        return gettext("Blocked %(seat)s", seat=label)
    if action == "seat.unblock" and seat:
        return gettext("Put %(seat)s back on sale", seat=label)
    if action == "seat.release" and seat:
        holder = re.search(r"user (\d+)", str(before))
        if holder:
            who = people.get(int(holder.group(1)), holder.group(1))
            return gettext("Released the hold of %(who)s on %(seat)s", who=who, seat=label)
        return gettext("Released the hold on %(seat)s", seat=label)
    if action == "queue.remove":
        person = re.search(r":user:(\d+)$", target)
        who = people.get(int(person.group(1)), person.group(1)) if person else "?"
        if after == "removed" and before != "not in the queue":
            return gettext("Removed %(who)s from the queue", who=who)
        return gettext("Tried to remove %(who)s from the queue: not in it", who=who)
    if action in ("seats.block", "seats.unblock") and before and after:
        where = _where(before.get("section", ""), before.get("row"))
        changed, skipped = after.get("changed", 0), after.get("skipped", 0)
        if action == "seats.unblock":
            return ngettext(
                "Put %(num)s seat of %(where)s back on sale",
                "Put %(num)s seats of %(where)s back on sale",
                changed,
                where=where,
            )
        text = ngettext(
            "Blocked %(num)s seat of %(where)s",
            "Blocked %(num)s seats of %(where)s",
            changed,
            where=where,
        )
        if skipped:
            text += ngettext(
                "; %(num)s skipped (held, being paid for or sold)",
                "; %(num)s skipped (held, being paid for or sold)",
                skipped,
            )
        return text
    return f"{action} {target}"  # an action this page does not know yet


def _live_context(event_id: int) -> dict:
    board = dashboard.board(event_id)
    selected = request.args.get("seat", type=int)
    cell = next(iter(dashboard.board_seats(event_id, only=selected)), None) if selected else None
    catalogue = seats.catalogue(event_id).values()
    return board | {
        "sections": list(dict.fromkeys(s.section for s in catalogue)),
        "rows": list(dict.fromkeys(s.row for s in catalogue)),
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
    name, tip = seat_namer(), _tips()  # the language's words, looked up once for all seats
    cells = [
        (
            c.seat,
            place(c.seat)
            | {
                "label": escaped(name(c.seat)),
                "tip": free if c.state == "available" else escaped(tip(c)),
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
    return _tips()(cell)


def _tips():
    """_tip for each of a map's seats: the language's words looked up once."""
    held = gettext("held by %(who)s, %(seconds)s s left")
    paying = gettext("being paid for by %(who)s, %(seconds)s s left")
    booked_at, booked = gettext("booked by %(who)s at %(time)s UTC"), gettext("booked by %(who)s")
    blocked, available = gettext("blocked"), gettext("available")

    def tip(cell: dashboard.BoardSeat) -> str:
        who, left = cell.who, cell.seconds_left
        if cell.state == "held":
            return held % {"who": who, "seconds": left}
        if cell.state == "paying":
            return paying % {"who": who, "seconds": left}
        if cell.state == "booked" and cell.sold_at:
            return booked_at % {"who": who, "time": format_time(cell.sold_at, "HH:mm:ss")}
        if cell.state == "booked":
            return booked % {"who": who}
        return blocked if cell.state == "blocked" else available

    return tip


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


def _first_error(e: Exception, labels: dict) -> str:
    if isinstance(e, ValidationError):
        where, what = first_problem(e, labels)
        return f"{where}: {what}"
    return str(e)
