"""Languages: English (the default) and Korean.

The locale of a request is the `lang` cookie that the language switcher
(/lang/<code>, app/web/lang.py) sets, else the best match of the browser's
Accept-Language, else English. Outside a request (RQ jobs, the command line)
it is English.

Strings are marked with gettext / `_l` (lazy_gettext: for messages made
before anyone knows who will read them, such as AppError's) and extracted
with babel.cfg into app/translations. Numbers, times and durations go
through the filters below, so they follow the locale too.
"""

import logging
import os
import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations
from babel.units import format_unit
from flask import Flask, g, has_request_context, request
from flask_babel import format_datetime, get_locale, get_translations
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from jinja2 import pass_context
from jinja2.ext import _make_new_gettext, _make_new_ngettext  # Jinja's own newstyle wrappers
from markupsafe import Markup
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from app.config import DEFAULT_LANGUAGE as DEFAULT
from app.extensions import babel

log = logging.getLogger(__name__)

# Each language named in its own language, as the switcher shows it.
LANGUAGES = {"en": "English", "ko": "한국어"}
COOKIE = "lang"

ADMISSION = {"open": _l("open"), "paused": _l("paused"), "closed": _l("closed")}


TRANSLATIONS = Path(__file__).parent / "translations"


def choose_language(cookie: str | None, accept_language: str | None) -> str:
    """The switcher's `lang` cookie, else the best match of Accept-Language,
    else the default: the one rule, for Flask and for the hot path."""
    if cookie in LANGUAGES:
        return cookie
    return _best_match(accept_language or "")


@lru_cache(maxsize=1024)
def _best_match(accept_language: str) -> str:
    # Cached: a crowd sends few distinct headers, and parsing one is not free.
    accepted = parse_accept_header(accept_language, LanguageAccept)
    return accepted.best_match(list(LANGUAGES)) or DEFAULT


def select_locale() -> str | None:
    """Flask-Babel's locale selector (None outside a request: the default)."""
    if not has_request_context():
        return None
    return choose_language(request.cookies.get(COOKIE), request.headers.get("Accept-Language"))


@lru_cache(maxsize=len(LANGUAGES))
def catalog(code: str) -> Translations:
    """The compiled catalog of a language, outside any request (the hot path)."""
    return Translations.load(str(TRANSLATIONS), [code])


def init_app(app: Flask) -> None:
    compile_catalogs(TRANSLATIONS)
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.policies["ext.i18n.trimmed"] = True  # as babel.cfg extracts them
    app.jinja_env.filters.update(
        number=_in_render_locale(number),
        duration=_in_render_locale(duration),
        when=when,
        local_time=local_time,
        admission_state=admission_state,
        mmss=mmss,
    )

    @app.context_processor
    def languages():
        return {"languages": LANGUAGES, "current_language": language}

    @app.context_processor
    def catalog_of_this_render():
        """The template's gettext, bound to this request's catalog once per
        render. Flask-Babel's own looks the catalog up again for every string
        (several context-local lookups each), which cost the poll fragment,
        rendered every second per person, a quarter of its time."""
        translations = get_translations()
        gettext = _make_new_gettext(translations.ugettext)
        return {
            "gettext": gettext,
            "_": gettext,
            "ngettext": _make_new_ngettext(translations.ungettext),
            "render_locale": _locale(),
        }

    @app.after_request
    def vary_on_language(response):
        """An answer put into words for a locale depends on Accept-Language
        and on the `lang` cookie: say so to caches."""
        if hasattr(getattr(g, "_flask_babel", None), "babel_locale"):
            response.vary.update(("Accept-Language", "Cookie"))
        return response


def compile_catalogs(directory: Path) -> None:
    """Compile each messages.po whose .mo is missing or older, as `make`
    does with pybabel, so that an app started without make (flask, a web server,
    an IDE) still speaks Korean. Fuzzy entries are left out, as pybabel does."""
    for po in directory.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as source:
            catalog = read_po(source, locale=po.parent.parent.name)
        partial = mo.with_suffix(f".{os.getpid()}.tmp")  # workers may start at once
        try:
            with partial.open("wb") as target:
                write_mo(target, catalog)
            partial.replace(mo)
        except OSError as e:  # a read-only install: run `make translations` when building
            log.warning("could not compile %s: %s", po, e)
            partial.unlink(missing_ok=True)


def language() -> str:
    """The current language code: "en" or "ko"."""
    return str(get_locale() or DEFAULT)


def _locale() -> Locale:
    return get_locale() or Locale.parse(DEFAULT)  # no app context at all: English


def _in_render_locale(function):
    """The filter form of number() and duration(): the locale that the
    render's context already holds, instead of looking it up per number."""

    @pass_context
    def in_locale(context, value, *args):
        return function(value, *args, locale=context.get("render_locale"))

    return in_locale


def number(value, pattern: str | None = None, locale: Locale | str | None = None) -> str:
    """12345 -> "12,345", 12.5 -> "12.5", with the locale's separators; a CLDR
    pattern such as "@##" (up to three significant digits) if given. The
    locale: the request's by default, or a Locale, or a language code (the
    cheapest to look up in the cache: the hot path passes codes)."""
    return _number(value, pattern, locale or _locale())


@lru_cache(maxsize=4096)
def _number(value, pattern: str | None, locale: Locale | str) -> str:
    # Cached: a seat map shows the same few prices thousands of times.
    return format_decimal(value, pattern, locale=locale)


def lazy_number(value) -> LazyString:
    """A number inside a lazy message: formatted when the message is read."""
    return LazyString(number, value)


def duration(seconds, locale: Locale | str | None = None) -> str:
    """Seconds as people say them: "45 sec", "5 min", "1 hr 20 min"; in
    Korean "45초", "5분", "1시간 20분" (the locale: as for number())."""
    seconds = max(0, int(seconds or 0))
    locale = locale or _locale()

    def unit(value: int, name: str) -> str:
        return _unit(value, name, locale)

    if seconds < 60:
        return unit(seconds, "second")
    minutes = round(seconds / 60)
    if minutes < 60:
        return unit(minutes, "minute")
    hours, minutes = divmod(minutes, 60)
    return f"{unit(hours, 'hour')} {unit(minutes, 'minute')}" if minutes else unit(hours, "hour")


@lru_cache(maxsize=4096)
def _unit(value: int, name: str, locale: Locale | str) -> str:
    # Cached: every poll fragment says its wait and its next update this way.
    return format_unit(value, f"duration-{name}", length="short", locale=locale)


def when(value: datetime | str | None, time: str = "medium") -> str:
    """A date and time (UTC) the locale's way: "Jan 5, 2030, 3:04:05 PM",
    "2030. 1. 5. 오후 3:04:05" (time="short": without the seconds). Takes a
    datetime or an ISO 8601 string."""
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    locale = _locale()
    # The locale's own patterns, with AM/PM in full words: CLDR abbreviates
    # Korean's 오후 to "PM".
    clock = re.sub(r"\ba\b", "aaaa", locale.time_formats[time].pattern)
    pattern = str(locale.datetime_formats["medium"]).format(
        clock, locale.date_formats["medium"].pattern
    )
    return format_datetime(value, pattern)


def local_time(value: datetime | str | None, time: str = "short") -> Markup:
    """A time for fans: in UTC as when() writes it, in a <time> element
    that app/static/localtime.js rewrites in the reader's own time zone
    (the browser's). Without JavaScript the UTC text stays."""
    if not value:
        return Markup("")
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    stamp = value.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
    return Markup('<time datetime="{}" data-local="{}">{} UTC</time>').format(
        stamp, time, when(value, time)
    )


def admission_state(state: str) -> str:
    """An event's admission state (open, paused, closed) in words."""
    return str(ADMISSION.get(state, state))


def mmss(seconds) -> str:
    """A countdown's text: 4:05 (countdown.js counts on from it)."""
    seconds = max(0, int(seconds or 0))
    return f"{seconds // 60}:{seconds % 60:02d}"
