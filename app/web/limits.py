"""Rate limits (flask-limiter on Redis): per person on join, hold and checkout,
plus a generous per-IP ceiling (thousands of people share one address behind
carrier NAT). The poll is deliberately not limited here: it is one Redis
round trip, as cheap as a refusal; the reverse proxy caps it per IP (README).

Every count of an event's action is per event and carries the event's hash
tag (app/keys.py), so on Redis Cluster it lives on the event's own master: a
master failing over disturbs only its own events, never another event's join,
hold or checkout.

Accounts: login per address (every attempt) and per email (failed attempts
only, in growing windows: the lockout that makes guessing slow); register per
address (every attempt: new accounts, and probing which emails are taken).
"""

import hashlib
import time

from flask import current_app, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from app import keys
from app.web import identity

limiter = Limiter(key_func=get_remote_address)


def person_key() -> str:
    uid = identity.user_id()
    return _in_event(f"user:{uid}" if uid else f"ip:{get_remote_address()}")


def ip_key() -> str:
    return _in_event(f"ip:{get_remote_address()}")


def _in_event(who: str) -> str:
    """`who`'s count in the event of this request (every limited view has one)."""
    return keys.event(request.view_args["event_id"]).tag + who


def limited(action: str):
    """Decorate a view: `action`'s per-person limit and the per-IP ceiling,
    each one count shared by the page and the JSON endpoint (shared scopes).
    The 429's message is app/web/errors.py's, in the reader's language."""

    def decorate(view):
        view = limiter.shared_limit(
            lambda: current_app.config["RATE_LIMITS"][action],
            scope=f"{action}:person",
            key_func=person_key,
        )(view)
        return limiter.shared_limit(
            lambda: current_app.config["RATE_LIMITS"]["per_ip"],
            scope=f"{action}:ip",
            key_func=ip_key,
        )(view)

    return decorate


def _email_key() -> str:
    """The email a login names (JSON or form), hashed: Redis never holds
    the address itself."""
    body = request.get_json(silent=True) if request.is_json else request.form.to_dict()
    email = body.get("email") if isinstance(body, dict) else None
    normal = email.strip().lower() if isinstance(email, str) else ""
    return "email:" + hashlib.sha256(normal.encode(errors="replace")).hexdigest()[:32]


def _per_address(action: str):
    return limiter.shared_limit(
        lambda: current_app.config["RATE_LIMITS"][action],
        scope=f"{action}:ip",
        key_func=lambda: f"ip:{get_remote_address()}",
        methods=["POST"],  # showing the page is free
    )


def login_limited(view):
    """LOGIN_LIMIT per address, and LOGIN_FAILURE_LIMIT per email counting
    only failed logins (views call note_failed_login): past it, even the
    right password waits (429 with Retry-After), from any address."""
    view = limiter.shared_limit(
        lambda: current_app.config["RATE_LIMITS"]["login_failures"],
        scope="login:failures",
        key_func=_email_key,
        deduct_when=lambda response: g.get("login_failed", False),
        methods=["POST"],
    )(view)
    return _per_address("login")(view)


def password_change_limited(view):
    """LOGIN_FAILURE_LIMIT per account for a wrong current password (views
    call note_failed_login): a stolen cookie guesses the password here no
    faster than at the login."""
    return limiter.shared_limit(
        lambda: current_app.config["RATE_LIMITS"]["login_failures"],
        scope="password:failures",
        key_func=lambda: f"user:{identity.user_id()}",
        deduct_when=lambda response: g.get("login_failed", False),
        methods=["POST"],
    )(view)


def note_failed_login() -> None:
    g.login_failed = True


def register_limited(view):
    """REGISTER_LIMIT per address, every attempt (a taken email too)."""
    return _per_address("register")(view)


def retry_after() -> str:
    """Seconds until the breached limit's window resets (for a 429)."""
    breached = limiter.current_limit
    return str(max(1, int(breached.reset_at - time.time())) if breached else 60)
