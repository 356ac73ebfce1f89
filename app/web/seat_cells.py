"""The fan's seat buttons without a template render per seat.

booking/_seat.html is rendered through Flask once per (event, language,
state, sent alone or not) with placeholders for the seat's own values (as
app/web/fragments.py does for the waiting room) and kept; a seat is then a
join of those parts with its values, escaped as Jinja would. A 100,000-seat
map costs a fraction of a second instead of seconds, and a refresh renders
only the blocks it sends (app/seat_map.py)."""

from types import SimpleNamespace

from flask import Flask, render_template
from markupsafe import Markup

from app import i18n
from app.seats import SeatInfo
from app.web.fragments import ESCAPE, HOLE, HOLES

TEMPLATE = "booking/_seat.html"
FIELDS = ("id", "section", "row", "number", "points")
rendered = 0  # seat buttons made by this process (the tests count them)


class SeatButtons:
    def __init__(self, app: Flask):
        self.app = app
        self.made: dict[tuple, list[str]] = {}
        self.points: dict[tuple, str] = {}

    def render(
        self, event_id: int, language: str, cells: list[tuple[SeatInfo, str]], oob: bool = False
    ) -> Markup:
        """The buttons of these (seat, state) pairs, in this order."""
        global rendered
        rendered += len(cells)
        out = []
        for seat, state in cells:
            parts = self.made.get((event_id, language, state, oob)) or self._make(
                event_id, language, state, oob
            )
            values = {
                "id": str(seat.id),
                "section": seat.section.translate(ESCAPE),
                "row": seat.row.translate(ESCAPE),
                "number": str(seat.number),
                "points": self._points(seat.price, language),
            }
            # parts: text, field name, text, field name, ..., text
            out.append(parts[0])
            for i in range(1, len(parts), 2):
                out.append(values[parts[i]])
                out.append(parts[i + 1])
        return Markup("".join(out))

    def _points(self, price: int, language: str) -> str:
        key = (price, language)
        if key not in self.points:
            self.points[key] = i18n.number(price, locale=language).translate(ESCAPE)
        return self.points[key]

    def _make(self, event_id: int, language: str, state: str, oob: bool) -> list[str]:
        sample = SimpleNamespace(**{name: HOLE.format(name) for name in FIELDS})
        with self.app.test_request_context(headers={"Accept-Language": language}):
            html = render_template(TEMPLATE, seat=sample, state=state, event_id=event_id, oob=oob)
        self.made[(event_id, language, state, oob)] = parts = HOLES.split(html)
        return parts
