"""Accounts: register, authenticate. Passwords are stored as werkzeug's slow hash,
made in a bounded number of slots per process (HashingSlots)."""

import threading

import peewee
from flask import Flask, current_app
from flask_babel import lazy_gettext as _l
from werkzeug.security import check_password_hash, generate_password_hash

from app.errors import AppError
from app.extensions import db
from app.models import User

# Checked against when the email is unknown, so that both paths cost the same
# and response times do not reveal which emails have accounts.
_DUMMY_HASH = generate_password_hash("not a real password")

BUSY = (
    503,
    "busy",
    _l("Too many people are logging in right now; please try again in a moment."),
    {"Retry-After": "2"},
)


class HashingSlots:
    """At most `slots` password hashes at once in this process, and as many
    more requests waiting for one (each at most `wait` s); past that a login
    is refused at once. A flood of logins (each hash ~0.1 s of a core) then
    holds at most 2 x `slots` web threads, and the poll keeps the others."""

    def __init__(self, slots: int, wait: float):
        self.running = threading.BoundedSemaphore(slots) if slots else None
        self.queue = threading.BoundedSemaphore(2 * slots) if slots else None
        self.wait = wait

    def run(self, work):
        if self.running is None:  # PASSWORD_HASH_SLOTS=0: no bound
            return work()
        if not self.queue.acquire(blocking=False):
            raise AppError(*BUSY)
        try:
            if not self.running.acquire(timeout=self.wait):
                raise AppError(*BUSY)
            try:
                return work()
            finally:
                self.running.release()
        finally:
            self.queue.release()


def init_app(app: Flask) -> None:
    app.extensions["password_hashing"] = HashingSlots(
        app.config["PASSWORD_HASH_SLOTS"], app.config["PASSWORD_HASH_WAIT"]
    )


def hashing_slots() -> HashingSlots:
    return current_app.extensions["password_hashing"]


def _hash(password: str) -> str:
    return hashing_slots().run(lambda: generate_password_hash(password))


def register(
    email: str, password: str, name: str = "", is_staff: bool = False, points: int | None = None
) -> User:
    if points is None:
        points = current_app.config["STARTING_POINTS"]
    password_hash = _hash(password)  # before the transaction: it may wait for a slot
    try:
        with db.atomic():
            return User.create(
                email=normalize_email(email),
                name=name,
                is_staff=is_staff,
                password_hash=password_hash,
                points=points,
            )
    except peewee.IntegrityError:
        raise AppError(
            409, "email_taken", _l("An account with this email already exists.")
        ) from None


def authenticate(email: str, password: str) -> User:
    user = User.get_or_none(User.email == normalize_email(email))
    stored = user.password_hash if user else _DUMMY_HASH
    if not hashing_slots().run(lambda: check_password_hash(stored, password)) or not user:
        raise AppError(401, "invalid_credentials", _l("Wrong email or password."))
    return user


def find(user_id: int) -> User | None:
    return User.get_or_none(User.id == user_id)


def set_password(user: User, password: str) -> None:
    user.password_hash = _hash(password)
    user.save()


def normalize_email(email: str) -> str:
    return email.strip().lower()
