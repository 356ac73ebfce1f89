"""Seat maps without a template render per seat.

A seat's markup (booking/_seat.html for fans, admin/_seat.html for staff)
is rendered through Flask once per (event, language, state, sent alone or
not) with placeholders for the seat's own values (as app/web/fragments.py
does for the waiting room) and kept; a seat is then a join of those parts
with its values, escaped as Jinja would. A 100,000-seat map costs a
fraction of a second instead of seconds, and a fan's refresh renders only
the blocks it sends (app/seat_map.py)."""

from collections.abc import Callable
from types import SimpleNamespace

from flask import Flask, current_app, render_template
from flask_babel import gettext
from markupsafe import Markup

from app import i18n
from app.seats import SeatInfo
from app.web.fragments import ESCAPE, HOLE, HOLES

rendered = 0  # seats made by this process (the tests count them)


class Skeletons:
    """One template's seat, per (event, language, state, alone)."""

    def __init__(self, app: Flask, template: str, fields: tuple[str, ...]):
        self.app, self.template, self.fields = app, template, fields
        self.made: dict[tuple, list[str]] = {}

    def render(self, event_id: int, language: str, cells, oob: bool = False) -> Markup:
        """`cells`: (values, state) pairs, values already escaped, by field."""
        global rendered
        out = []
        for values, state in cells:
            key = (event_id, language, state, oob)
            parts = self.made.get(key) or self._make(key)
            # parts: text, field name, text, field name, ..., text
            out.append(parts[0])
            for i in range(1, len(parts), 2):
                out.append(values[parts[i]])
                out.append(parts[i + 1])
            rendered += 1
        return Markup("".join(out))

    def _make(self, key: tuple) -> list[str]:
        event_id, language, state, oob = key
        sample = SimpleNamespace(**{name: HOLE.format(name) for name in self.fields})
        with self.app.test_request_context(headers={"Accept-Language": language}):
            html = render_template(
                self.template, seat=sample, state=state, event_id=event_id, oob=oob
            )
        self.made[key] = parts = HOLES.split(html)
        return parts


def seat_namer() -> Callable[[object], str]:
    """How every page names a seat, everywhere (the fans' panel, messages,
    checkout, the buttons' labels, the confirmation; the staff map, seat box
    and audit log): "Floor A5", "Floor A열 5번". The current language's
    pattern is looked up once: `name = seat_namer()`, then `name(seat)` for
    each of a map's seats. `seat`: anything with a section, a row and a
    number (the JSON API keeps its own "Floor-A5")."""
    pattern = gettext("%(section)s %(row)s%(number)s")
    return lambda seat: pattern % {"section": seat.section, "row": seat.row, "number": seat.number}


def seat_name(seat) -> str:
    """One seat's name (seat_namer, for a single seat)."""
    return seat_namer()(seat)


def escaped(text: str) -> str:
    return text.translate(ESCAPE)


def per_app(name: str, make):
    """One `make(app)` per app, kept in app.extensions (made on first use)."""
    app = current_app._get_current_object()
    if name not in app.extensions:
        app.extensions[name] = make(app)
    return app.extensions[name]


PLACE = ("id", "section", "row", "number")


def place(seat: SeatInfo) -> dict[str, str]:
    """The values every seat's markup names it by."""
    return {
        "id": str(seat.id),
        "section": escaped(seat.section),
        "row": escaped(seat.row),
        "number": str(seat.number),
    }


class SeatButtons:
    """The fans' seat buttons (booking/_seat.html)."""

    def __init__(self, app: Flask):
        self.skeletons = Skeletons(app, "booking/_seat.html", (*PLACE, "points"))
        self.points: dict[tuple, str] = {}

    def render(
        self, event_id: int, language: str, cells: list[tuple[SeatInfo, str]], oob: bool = False
    ) -> Markup:
        """The buttons of these (seat, state) pairs, in this order."""
        return self.skeletons.render(
            event_id,
            language,
            (
                (place(seat) | {"points": self._points(seat.price, language)}, s)
                for seat, s in cells
            ),
            oob,
        )

    def _points(self, price: int, language: str) -> str:
        key = (price, language)
        if key not in self.points:
            self.points[key] = escaped(i18n.number(price, locale=language))
        return self.points[key]
