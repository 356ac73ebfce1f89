"""The waiting room's status fragment: the waiting status put into words
(`StatusView`), and, for the hot path, that fragment without a template
render per poll.

A waiting person's fragment (waiting/_status.html) takes one of a dozen
shapes per language: exact place, band or "over N ahead"; paused, an
estimate, or none yet; singular or plural. For each shape, the template is
rendered once, through Flask like any page, with placeholders for the words
and numbers that change, and kept as a skeleton; a poll then only fills in
its numbers (escaped, as Jinja would). The result is byte for byte the page
Flask renders for the same status (tests/test_hot_path.py).
"""

import re
from dataclasses import dataclass, fields, replace

from babel import Locale
from flask import Flask, render_template

from app import i18n, waiting_room

TEMPLATE = "waiting/_status.html"


@dataclass
class StatusView:
    """A waiting status as the fragment shows it (text already formatted)."""

    poll_url: str
    leave_url: str
    delay_ms: int  # until the next poll
    next_update: str  # the same, in words
    position_kind: str  # exact, band, beyond, or draw (in the pre-queue: no place yet)
    position: str = ""  # exact
    low: str = ""  # band
    high: str = ""
    ahead: str = ""  # beyond: people ahead, at least
    total: str = ""  # people waiting
    total_count: int = 0  # the same number, for the plural
    wait_kind: str = "estimating"  # paused, eta, estimating, opening or drawing
    eta_low: str = ""
    eta_high: str = ""
    draw_id: str = ""  # the pre-queue: this person's id in the draw
    opens_in: str = ""  # the pre-queue: time until the sale opens
    pct: int = 0  # of the way from where this person joined to the front

    @property
    def shape(self) -> tuple[str, str]:
        return self.position_kind, self.wait_kind


def status_view(
    status: waiting_room.QueueStatus,
    start: int,
    poll_url: str,
    leave_url: str,
    locale: Locale | str,
) -> StatusView:
    """`start`: the place this person had when they started waiting;
    `locale`: a Locale or a language code (as i18n.number takes them)."""
    band = status.position_band
    view = StatusView(
        poll_url=poll_url,
        leave_url=leave_url,
        delay_ms=int(status.poll_after * 1000),
        next_update=i18n.duration(int(round(status.poll_after)), locale=locale),
        position_kind=_position_kind(status),
        total=i18n.number(status.waiting_total, locale=locale),
        total_count=status.waiting_total,
    )
    if status.draw_id:
        view.draw_id = status.draw_id
        view.wait_kind = "opening" if status.opens_in else "drawing"
        view.opens_in = i18n.duration(status.opens_in, locale=locale)
        return view
    here = status.position or band["from"]
    view.pct = 100 if start <= 1 else max(0, min(100, round((start - here) / (start - 1) * 100)))
    if status.position:
        view.position = i18n.number(status.position, locale=locale)
    elif band["to"]:
        view.low = i18n.number(band["from"], locale=locale)
        view.high = i18n.number(band["to"], locale=locale)
    else:
        view.ahead = i18n.number(band["from"] - 1, locale=locale)
    if status.paused:
        view.wait_kind = "paused"
    elif status.eta_range:
        view.wait_kind = "eta"
        view.eta_low = i18n.duration(status.eta_range["from"], locale=locale)
        view.eta_high = i18n.duration(status.eta_range["to"], locale=locale)
    return view


def _position_kind(status: waiting_room.QueueStatus) -> str:
    if status.draw_id:
        return "draw"
    if status.position:
        return "exact"
    return "band" if status.position_band["to"] else "beyond"


# HTML escaping exactly as Jinja's (markupsafe's), as one table lookup per
# character: markupsafe.escape's call costs more than these short values.
ESCAPE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;"})

# Placeholders survive HTML escaping and cannot occur in our text (Unicode's
# private use area).
HOLE = "\ue000{}\ue001"
HOLES = re.compile("\ue000(\\w+)\ue001")
SHAPE_FIELDS = ("position_kind", "wait_kind")
TEXT_FIELDS = [f.name for f in fields(StatusView) if f.type is str and f.name not in SHAPE_FIELDS]


class Skeletons:
    """The waiting fragment per (language, shape, plural form), made on first
    use by rendering the template through Flask with placeholders."""

    def __init__(self, app: Flask):
        self.app = app
        self.made: dict[tuple, list[str]] = {}

    def render(self, language: str, view: StatusView) -> bytes:
        plural = plural_form(language, view.total_count)
        key = (language, view.shape, plural)
        parts = self.made.get(key) or self._make(key, view)
        # parts: text, field name, text, field name, ..., text
        out = [parts[0]]
        for i in range(1, len(parts), 2):
            out.append(str(getattr(view, parts[i])).translate(ESCAPE))
            out.append(parts[i + 1])
        return "".join(out).encode()

    def _make(self, key: tuple, view: StatusView) -> list[str]:
        language, _, plural = key
        holes = {name: HOLE.format(name) for name in TEXT_FIELDS}
        sample = replace(view, **holes, total_count=_count_for(language, plural))
        sample.delay_ms, sample.pct = HOLE.format("delay_ms"), HOLE.format("pct")
        status = waiting_room.QueueStatus("waiting")
        with self.app.test_request_context(headers={"Accept-Language": language}):
            html = render_template(TEMPLATE, status=status, view=sample, problem=None)
        self.made[key] = parts = HOLES.split(html)
        return parts


def plural_form(language: str, count: int) -> int:
    """Which plural form the language uses for this count (the catalog's
    rule; English, which has no catalog of its own: one, or other)."""
    rule = getattr(i18n.catalog(language), "plural", None)
    return rule(count) if rule else int(count != 1)


def _count_for(language: str, plural: int) -> int:
    """A number the language puts in this plural form (the skeleton's text
    is chosen by the form, not the number)."""
    return next(n for n in range(1000) if plural_form(language, n) == plural)
