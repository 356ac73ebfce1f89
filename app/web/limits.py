"""Rate limits (flask-limiter on Redis): per person on join, hold and checkout,
plus a generous per-IP ceiling (thousands of people share one address behind
carrier NAT). The poll is deliberately not limited here: it is one Redis
round trip, as cheap as a refusal; the reverse proxy caps it per IP (README).
"""

import time

from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from app.web import identity

limiter = Limiter(key_func=get_remote_address)


def person_key() -> str:
    uid = identity.user_id()
    return f"user:{uid}" if uid else f"ip:{get_remote_address()}"


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
            key_func=get_remote_address,
        )(view)

    return decorate


def retry_after() -> str:
    """Seconds until the breached limit's window resets (for a 429)."""
    breached = limiter.current_limit
    return str(max(1, int(breached.reset_at - time.time())) if breached else 60)
