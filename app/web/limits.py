"""Rate limits (flask-limiter on Redis): per person on join, hold and checkout,
plus a generous per-IP ceiling (thousands of people share one address behind
carrier NAT). The poll is deliberately not limited here: it is one Redis
round trip, as cheap as a refusal; the reverse proxy caps it per IP (README).
"""

from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from app.web import session as web_session

limiter = Limiter(key_func=get_remote_address)


def person_key() -> str:
    uid = web_session.user_id()
    return f"user:{uid}" if uid else f"ip:{get_remote_address()}"


def limited(action: str):
    """Decorate a view: `action`'s per-person limit (shared by its page and its
    JSON endpoint, through one scope) and the per-IP ceiling."""
    def decorate(view):
        view = limiter.limit(lambda: current_app.config["RATE_LIMITS"][action],
                             key_func=person_key, scope=f"{action}:person")(view)
        return limiter.limit(lambda: current_app.config["RATE_LIMITS"]["per_ip"],
                             key_func=get_remote_address, scope=f"{action}:ip")(view)
    return decorate


def storage_uri(redis_url: str) -> str:
    """The limits library spells unix sockets redis+unix://."""
    return "redis+unix://" + redis_url[len("unix://"):] if redis_url.startswith("unix://") \
        else redis_url
