"""Accounts: register, authenticate. Passwords are stored as werkzeug's slow hash."""

import peewee
from flask import current_app
from flask_babel import lazy_gettext as _l
from werkzeug.security import check_password_hash, generate_password_hash

from app import sessions
from app.errors import AppError
from app.extensions import db
from app.models import User

# Checked against when the email is unknown, so that both paths cost the same
# and response times do not reveal which emails have accounts.
_DUMMY_HASH = generate_password_hash("not a real password")


def register(
    email: str, password: str, name: str = "", is_staff: bool = False, points: int | None = None
) -> User:
    if points is None:
        points = current_app.config["STARTING_POINTS"]
    try:
        with db.atomic():
            return User.create(
                email=normalize_email(email),
                name=name,
                is_staff=is_staff,
                password_hash=generate_password_hash(password),
                points=points,
            )
    except peewee.IntegrityError:
        raise AppError(
            409, "email_taken", _l("An account with this email already exists.")
        ) from None


def authenticate(email: str, password: str) -> User:
    user = User.get_or_none(User.email == normalize_email(email))
    if not check_password_hash(user.password_hash if user else _DUMMY_HASH, password) or not user:
        raise AppError(401, "invalid_credentials", _l("Wrong email or password."))
    return user


def change_password(user: User, current_password: str, new_password: str) -> None:
    """The person's own change: the current password first (a stolen cookie
    alone cannot take the account over)."""
    if not check_password_hash(user.password_hash, current_password):
        raise AppError(401, "invalid_credentials", _l("The current password is wrong."))
    set_password(user, new_password)


def find(user_id: int) -> User | None:
    return User.get_or_none(User.id == user_id)


def set_password(user: User, password: str) -> None:
    """A new password ends every session of the person: whoever knew the
    old one may hold a cookie."""
    user.password_hash = generate_password_hash(password)
    user.save(only=[User.password_hash])
    sessions.revoke(user.id)


def normalize_email(email: str) -> str:
    return email.strip().lower()
