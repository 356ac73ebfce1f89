"""Accounts: register, authenticate. Passwords are stored as werkzeug's slow hash,
made in a bounded number of slots per process (HashingSlots)."""

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import peewee
from flask import Flask, current_app
from flask_babel import lazy_gettext as _l
from werkzeug.security import check_password_hash, generate_password_hash

from app import sessions
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
    """Password hashes run on `slots` threads of their own per process, at a
    lower CPU priority than the web threads, so the poll goes first when a
    flood of logins (each hash ~0.1 s of a core) keeps the cores busy. At
    most as many more wait, each at most `wait` s; past that a login is
    refused at once (503 busy), so logins hold few web threads."""

    def __init__(self, slots: int, wait: float):
        self.pool = (
            ThreadPoolExecutor(slots, "password-hash", initializer=_lower_priority)
            if slots
            else None
        )
        self.places = threading.BoundedSemaphore(2 * slots) if slots else None
        self.wait = wait

    def run(self, work):
        if self.pool is None:  # PASSWORD_HASH_SLOTS=0: no bound
            return work()
        if not self.places.acquire(blocking=False):
            raise AppError(*BUSY)
        try:
            future = self.pool.submit(work)
            try:
                return future.result(timeout=self.wait)
            except TimeoutError:
                future.cancel()  # still queued: it never runs
                raise AppError(*BUSY) from None
        finally:
            self.places.release()


def _lower_priority() -> None:
    """Linux gives each thread its own nice value: the hashing threads yield
    the CPU to the web threads (a no-op where that is not allowed)."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


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


def change_password(user: User, current_password: str, new_password: str) -> None:
    """The person's own change: the current password first (a stolen cookie
    alone cannot take the account over)."""
    stored = user.password_hash
    if not hashing_slots().run(lambda: check_password_hash(stored, current_password)):
        raise AppError(401, "invalid_credentials", _l("The current password is wrong."))
    set_password(user, new_password)


def find(user_id: int) -> User | None:
    return User.get_or_none(User.id == user_id)


def set_password(user: User, password: str) -> None:
    """A new password ends every session of the person: whoever knew the
    old one may hold a cookie."""
    user.password_hash = _hash(password)
    user.save(only=[User.password_hash])
    sessions.revoke(user.id)


def normalize_email(email: str) -> str:
    return email.strip().lower()
