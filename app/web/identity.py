"""Who is asking: the person named by the signed session cookie, login (which
rotates the session), logout, and the login and staff guards."""

import secrets
from functools import wraps

from flask import redirect, request, session, url_for
from flask_babel import lazy_gettext as _l

from app import accounts
from app.errors import AppError
from app.models import User

LOGIN_REQUIRED = (401, "login_required", _l("Please log in first."))


def login(user: User) -> None:
    """Start a fresh session: nothing from before login survives (no fixation)."""
    session.clear()
    session["uid"] = user.id
    session["sid"] = secrets.token_urlsafe(16)  # names this session at the entrance
    session["email"] = user.email
    session["staff"] = user.is_staff  # only to show the Staff link; access is checked in MySQL
    session.permanent = True


def logout() -> None:
    session.clear()


def user_id() -> int | None:
    return session.get("uid")


def session_id() -> str | None:
    return session.get("sid")


def current_user() -> User | None:
    uid = user_id()
    return accounts.find(uid) if uid else None


def api_login_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if not user_id():
            raise AppError(*LOGIN_REQUIRED)
        return view(*args, **kwargs)

    return wrapped


def page_login_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if not user_id():
            return redirect(url_for("auth.login", next=request.full_path))
        return view(*args, **kwargs)

    return wrapped


def require_staff_json():
    """Guard of the staff JSON API: 401 for nobody logged in, 403 for a
    customer (checked in the database: revoking the flag takes effect at once)."""
    user = current_user()
    if user is None:
        raise AppError(*LOGIN_REQUIRED)
    if not user.is_staff:
        raise AppError(403, "forbidden", _l("Staff only."))


def require_staff_page():
    """Guard of the staff pages: the login page for nobody, 403 for a customer."""
    user = current_user()
    if user is None:
        return redirect(url_for("auth.login", next=request.full_path))
    if not user.is_staff:
        raise AppError(403, "forbidden", _l("This page is for staff only."))
