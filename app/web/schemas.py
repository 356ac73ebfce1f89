"""Request bodies of the JSON API, validated strictly (wrong types are 422)."""

from datetime import UTC, datetime
from typing import Annotated, Literal

from flask_babel import gettext, ngettext
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from app.config import MOST_SEATS_PER_PERSON
from app.errors import AppError
from app.i18n import number


def _in_utc(cls, value: datetime | None) -> datetime | None:
    """Times are stored as naive UTC; one that cannot be expressed in UTC is refused."""
    if value is None or value.tzinfo is None:
        return value
    try:
        return value.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise ValueError(gettext("the time is out of range")) from None


class Body(BaseModel):
    # Lengths and patterns apply to the text as sent, as the OpenAPI document
    # says; names are trimmed afterwards (Name).
    model_config = ConfigDict(strict=True)


def _trimmed(value: str) -> str:
    """Leading and trailing whitespace dropped; nothing but whitespace is refused."""
    trimmed = value.strip()
    if value and not trimmed:
        raise ValueError(gettext("should not be only spaces"))
    return trimmed


Name = Annotated[str, AfterValidator(_trimmed)]


class Register(Body):
    # Spaces around the address are allowed and dropped (as the pattern says).
    email: Name = Field(min_length=3, max_length=254, pattern=r"^\s*[^@\s]+@[^@\s]+\.[^@\s]+\s*$")
    password: str = Field(min_length=8, max_length=200)
    name: Name = Field(default="", max_length=100)


class Login(Body):
    email: str = Field(max_length=254)
    password: str = Field(max_length=200)


class ChangePassword(Body):
    current_password: str = Field(max_length=200)
    new_password: str = Field(min_length=8, max_length=200)  # as Register's


class Section(Body):
    name: Name = Field(min_length=1, max_length=50)
    rows: int = Field(ge=1, le=100)
    seats_per_row: int = Field(ge=1, le=200)
    price: int = Field(ge=0, le=10_000_000)


class CreateEvent(Body):
    name: Name = Field(min_length=1, max_length=200)
    venue: Name = Field(default="", max_length=200)
    starts_at: datetime | None = Field(default=None, strict=False)
    sale_opens_at: datetime | None = Field(default=None, strict=False)
    sections: list[Section] = Field(min_length=1, max_length=50)
    max_active: int | None = Field(default=None, ge=1, le=1_000_000)
    admit_rate: int | None = Field(default=None, ge=1, le=100_000)
    active_ttl: int | None = Field(default=None, ge=10, le=86_400)
    hold_ttl: int | None = Field(default=None, ge=1, le=86_400)
    poll_budget: int | None = Field(default=None, ge=100, le=1_000_000)
    max_seats_per_person: int | None = Field(default=None, ge=1, le=MOST_SEATS_PER_PERSON)
    prequeue_opens_at: datetime | None = Field(default=None, strict=False)
    bot_protection: bool | None = None
    cancellable_until: datetime | None = Field(default=None, strict=False)

    @field_validator("sections")
    @classmethod
    def sections_fit(cls, sections):
        if sum(s.rows * s.seats_per_row for s in sections) > 100_000:
            raise ValueError(gettext("an event has at most %(count)s seats", count=number(100_000)))
        names = [s.name.casefold() for s in sections]
        if len(set(names)) != len(names):
            raise ValueError(gettext("every section needs its own name"))
        return sections

    in_utc = field_validator(
        "starts_at", "sale_opens_at", "prequeue_opens_at", "cancellable_until"
    )(classmethod(_in_utc))


class UpdateEvent(Body):
    admission: Literal["open", "paused", "closed"] | None = None
    venue: Name | None = Field(default=None, max_length=200)
    starts_at: datetime | None = Field(default=None, strict=False)
    max_active: int | None = Field(default=None, ge=1, le=1_000_000)
    admit_rate: int | None = Field(default=None, ge=1, le=100_000)
    active_ttl: int | None = Field(default=None, ge=10, le=86_400)
    hold_ttl: int | None = Field(default=None, ge=1, le=86_400)
    sale_opens_at: datetime | None = Field(default=None, strict=False)
    poll_budget: int | None = Field(default=None, ge=100, le=1_000_000)
    max_seats_per_person: int | None = Field(default=None, ge=1, le=MOST_SEATS_PER_PERSON)
    prequeue_opens_at: datetime | None = Field(default=None, strict=False)
    bot_protection: bool | None = None
    cancellable_until: datetime | None = Field(default=None, strict=False)

    in_utc = field_validator(
        "starts_at", "sale_opens_at", "prequeue_opens_at", "cancellable_until"
    )(classmethod(_in_utc))


class Join(Body):
    # The solved challenge of an event with bot protection (app/bots.py):
    # the base64 ALTCHA payload, as the ALTCHA widget sends it.
    altcha: str | None = Field(default=None, max_length=8000)


class HeldSeat(Body):
    seat_id: int = Field(ge=1, le=2**53)
    token: int = Field(ge=1, le=2**53)


class Checkout(Body):
    seats: list[HeldSeat] = Field(min_length=1, max_length=MOST_SEATS_PER_PERSON)


class Cancel(Body):
    # The booking's seats to cancel; all of them when absent.
    seat_ids: list[Annotated[int, Field(ge=1, le=2**53)]] | None = Field(
        default=None, min_length=1, max_length=MOST_SEATS_PER_PERSON
    )


class Release(Body):
    token: int | None = Field(default=None, ge=1, le=2**53)


def parse(model: type[Body], data) -> Body:
    """Validate a decoded JSON body; 422 with the first problem spelled out."""
    if not isinstance(data, dict):
        raise AppError(422, "invalid", gettext("The body must be a JSON object."))
    try:
        return model.model_validate(data)
    except ValidationError as e:
        where, what = first_problem(e)
        raise AppError(422, "invalid", f"{where or 'body'}: {what}") from None


def first_problem(e: ValidationError, labels: dict | None = None) -> tuple[str, str]:
    """(where, what) of a validation error's first problem: the field's path
    ("sections.0.rows"), or with `labels` (field or "list.field" -> the form's
    label) as a person reads it ("section line 1, rows"), and what is wrong,
    in the reader's language."""
    first = e.errors()[0]
    path = [str(part) for part in first["loc"]]
    if labels is None:
        return ".".join(path), explain(first)
    return labelled(path, labels), explain(first)


def labelled(path: list[str], labels: dict) -> str:
    """A field's path in the words of a form: a list item by its line number."""
    if len(path) >= 2 and path[1].isdigit():
        where = gettext("section line %(number)s", number=int(path[1]) + 1)
        field = path[2] if len(path) > 2 else None
        if field is None:
            return where
        return f"{where}, {labels.get(f'{path[0]}.{field}', field)}"
    return ", ".join(str(labels.get(part, part)) for part in path)


def explain(error: dict) -> str:
    """One pydantic error in words (pydantic's own are English only)."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "value_error":  # raised by a validator above, already in words
        return str(ctx.get("error", error["msg"]))
    if kind in ("string_too_short", "string_too_long", "too_short", "too_long"):
        size = ctx.get("min_length", ctx.get("max_length"))
        return {
            "string_too_short": ngettext(
                "should have at least %(num)s character",
                "should have at least %(num)s characters",
                size,
            ),
            "string_too_long": ngettext(
                "should have at most %(num)s character",
                "should have at most %(num)s characters",
                size,
            ),
            "too_short": ngettext(
                "should have at least %(num)s item", "should have at least %(num)s items", size
            ),
            "too_long": ngettext(
                "should have at most %(num)s item", "should have at most %(num)s items", size
            ),
        }[kind]
    if kind == "greater_than_equal":
        return gettext("should be %(limit)s or more", limit=number(ctx["ge"]))
    if kind == "less_than_equal":
        return gettext("should be %(limit)s or less", limit=number(ctx["le"]))
    if kind == "literal_error":
        return gettext(
            "should be one of: %(choices)s", choices=ctx["expected"].replace(" or ", ", ")
        )
    words = {
        "missing": gettext("is required"),
        "string_type": gettext("should be text"),
        "string_pattern_mismatch": gettext("is not in the right form"),
        "int_type": gettext("should be a whole number"),
        "list_type": gettext("should be a list"),
        "model_type": gettext("should be an object"),
        "dict_type": gettext("should be an object"),
    }
    if kind in words:
        return words[kind]
    if kind.startswith("datetime"):
        return gettext("should be a date and time such as 2030-01-31T19:00:00Z")
    return error["msg"]  # a kind these bodies cannot produce today: pydantic's English
