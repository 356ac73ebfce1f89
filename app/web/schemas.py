"""Request bodies of the JSON API, validated strictly (wrong types are 422)."""

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.errors import AppError


def _in_utc(cls, value: datetime | None) -> datetime | None:
    """Times are stored as naive UTC; one that cannot be expressed in UTC is refused."""
    if value is None or value.tzinfo is None:
        return value
    try:
        return value.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise ValueError("the time is out of range") from None


class Body(BaseModel):
    model_config = ConfigDict(strict=True, str_strip_whitespace=True)


class Register(Body):
    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    password: str = Field(min_length=8, max_length=200)
    name: str = Field(default="", max_length=100)


class Login(Body):
    email: str = Field(max_length=254)
    password: str = Field(max_length=200)


class Section(Body):
    name: str = Field(min_length=1, max_length=50)
    rows: int = Field(ge=1, le=100)
    seats_per_row: int = Field(ge=1, le=200)
    price: int = Field(ge=0, le=10_000_000)


class CreateEvent(Body):
    name: str = Field(min_length=1, max_length=200)
    sale_opens_at: datetime | None = Field(default=None, strict=False)
    sections: list[Section] = Field(min_length=1, max_length=50)
    max_active: int | None = Field(default=None, ge=1, le=1_000_000)
    admit_rate: int | None = Field(default=None, ge=1, le=100_000)
    active_ttl: int | None = Field(default=None, ge=10, le=86_400)
    hold_ttl: int | None = Field(default=None, ge=1, le=86_400)

    @field_validator("sections")
    @classmethod
    def sections_fit(cls, sections):
        if sum(s.rows * s.seats_per_row for s in sections) > 100_000:
            raise ValueError("an event has at most 100,000 seats")
        names = [s.name.casefold() for s in sections]
        if len(set(names)) != len(names):
            raise ValueError("every section needs its own name")
        return sections

    in_utc = field_validator("sale_opens_at")(classmethod(_in_utc))


class UpdateEvent(Body):
    admission: Literal["open", "paused", "closed"] | None = None
    max_active: int | None = Field(default=None, ge=1, le=1_000_000)
    admit_rate: int | None = Field(default=None, ge=1, le=100_000)
    active_ttl: int | None = Field(default=None, ge=10, le=86_400)
    hold_ttl: int | None = Field(default=None, ge=1, le=86_400)
    sale_opens_at: datetime | None = Field(default=None, strict=False)

    in_utc = field_validator("sale_opens_at")(classmethod(_in_utc))


class HeldSeat(Body):
    seat_id: int = Field(ge=1, le=2**53)
    token: int = Field(ge=1, le=2**53)


class Checkout(Body):
    seats: list[HeldSeat] = Field(min_length=1, max_length=20)


class Release(Body):
    token: int | None = Field(default=None, ge=1, le=2**53)


def parse(model: type[Body], data) -> Body:
    """Validate a decoded JSON body; 422 with the first problem spelled out."""
    if not isinstance(data, dict):
        raise AppError(422, "invalid", "The body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise AppError(422, "invalid", f"{where}: {first['msg']}") from None
