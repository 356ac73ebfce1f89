"""Session generations: how logout, a password change and staff revocation
end every copy of a signed session cookie.

Each person has a generation number; the cookie carries the one it was
issued under, and a cookie of an older generation is no longer a session
(app/web/identity.py checks it on every Flask request, the hot path within
SESSION_CHECK_SECONDS). Ending sessions is adding one: every copy of every
earlier cookie of that person dies at once, on every device.

MySQL (users.session_generation) is the record; Redis keeps a copy under the
person's own hash tag, read on every request. When Redis loses the copy
(failover, FLUSHALL) it is read again from MySQL: a revoked cookie never
comes back to life, and nobody is logged out by the loss.
"""

import contextlib

import redis.exceptions

from app.extensions import REDIS_UNAVAILABLE, db, redis_store
from app.models import User

# When the person's own slot cannot answer (its master is down or failing
# over: refused, CLUSTERDOWN, TRYAGAIN, a slot on the move), MySQL answers
# instead, so an event on another master goes on for everyone. A Redis that
# does not answer at all (a timeout) is still a 503: asking MySQL after it
# would only add to the wait before the request meets Redis again.
FALL_BACK = tuple(e for e in REDIS_UNAVAILABLE if not issubclass(e, redis.exceptions.TimeoutError))


def key(user_id: int) -> str:
    """The person's own slot, never an event's: no event script touches it."""
    return f"{{user:{int(user_id)}}}:sgen"


def cached(user_id: int) -> int | None:
    """The generation as Redis has it; None when Redis lost it (one GET)."""
    value = redis_store.client.get(key(user_id))
    return None if value is None else int(value)


def current(user_id: int) -> int | None:
    """The person's generation (None: no such person), from MySQL when
    Redis lost it; SET NX, so a revocation written meanwhile is kept."""
    try:
        generation = cached(user_id)
    except FALL_BACK:
        return recorded(user_id)
    if generation is None:
        generation = recorded(user_id)
        if generation is not None:
            with contextlib.suppress(*FALL_BACK):
                redis_store.client.set(key(user_id), generation, nx=True)
    return generation


def recorded(user_id: int) -> int | None:
    """The generation in MySQL, the record (None: no such person)."""
    row = User.select(User.session_generation).where(User.id == user_id).first()
    return None if row is None else row.session_generation


def revoke(user_id: int) -> int | None:
    """End every session of this person; returns the new generation (None:
    no such person, nothing to end). The row
    lock orders concurrent revocations, and Redis is written before the
    commit, so it never holds an older number than MySQL once both are done."""
    with db.atomic():
        bumped = User.update(session_generation=User.session_generation + 1).where(
            User.id == user_id
        )
        if not bumped.execute():
            return None
        generation = User.get_by_id(user_id).session_generation
        redis_store.client.set(key(user_id), generation)
    return generation
