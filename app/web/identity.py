"""Who is asking: the person named by the signed session cookie, login (which
rotates the session), logout (which ends every copy of it: app/sessions.py),
and the login and staff guards."""

import secrets
from functools import wraps
from urllib.parse import urlsplit

from flask import Flask, make_response, redirect, request, session, url_for
from flask_babel import lazy_gettext as _l

from app import accounts, sessions
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
    session["gen"] = sessions.current(user.id)
    session.permanent = True


def logout() -> None:
    """End this session and every copy of it (and the person's other sessions)."""
    uid = user_id()
    session.clear()
    if uid:
        sessions.revoke(uid)


def change_password(current_password: str, new_password: str) -> None:
    """The logged-in person's new password ends every other session; this
    one goes on under a fresh cookie of the new generation."""
    user = current_user()
    if user is None:
        raise AppError(*LOGIN_REQUIRED)
    accounts.change_password(user, current_password, new_password)
    login(user)


def init_app(app: Flask) -> None:
    """Check the session's generation on every request (after the hot path's
    handed-on error, app/web/errors.py, so a silent Redis is asked once)."""
    app.before_request(forget_ended_session)


def forget_ended_session() -> None:
    """A cookie of an earlier generation (logged out, password changed,
    revoked by staff) is nobody: cleared, so the guards answer 401 or the
    login page. Cookies from before generations existed count as 0."""
    if request.endpoint == "static" or request.blueprint == "health" or not session.get("uid"):
        return
    if session.get("gen", 0) != sessions.current(session["uid"]):
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
            return to_login()
        return view(*args, **kwargs)

    return wrapped


def to_login():
    """The login page, and back here afterwards. An htmx request (a panel's
    refresh, say, after logging out on another device) sends the whole
    page there, and back to that page, not to the fragment."""
    if request.headers.get("HX-Request") != "true":
        return redirect(url_for("auth.login", next=request.full_path))
    page = urlsplit(request.headers.get("HX-Current-URL", ""))
    back = page.path + (f"?{page.query}" if page.query else "") if page.path else None
    response = make_response("", 200)
    response.headers["HX-Redirect"] = url_for("auth.login", next=back)
    return response


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
        return to_login()
    if not user.is_staff:
        raise AppError(403, "forbidden", _l("This page is for staff only."))
