"""The admission token: minted by the poll that finds a person active, and
consumed once at the booking entrance, which binds it to one session.

The token is a JWT (HS256) naming the person, the event, a token id recorded
in Redis (the person's entrance record), and the end of the active window.
The queue never "uses up" the token; the entrance does, atomically in Lua.
After that, "this session entered and its window is still open" is checked
inside each booking script itself (`entered_until` in app/lua/_prelude.lua:
the seat map, hold and checkout), in the same round trip that acts.
"""

import jwt
from flask import current_app
from flask_babel import lazy_gettext as _l

from app import keys, metrics
from app.errors import AppError
from app.extensions import redis_store

ALGORITHM = "HS256"
NOT_ENTERED = (
    403,
    "not_entered",
    _l("You need to come through the waiting room first, or your time is over."),
)


def mint_token(event_id: int, user_id: int, jti: str, active_until: int, config=None) -> str:
    claims = {"sub": str(user_id), "evt": int(event_id), "jti": jti, "exp": active_until}
    secret = (config or current_app.config)["JWT_SECRET"]
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(token: str, event_id: int, user_id: int) -> dict:
    """The claims of a valid token for this event and person, else 401."""
    try:
        claims = jwt.decode(
            token,
            current_app.config["JWT_SECRET"],
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub", "jti", "evt"]},
        )
    except jwt.ExpiredSignatureError:
        raise _unauthorized(
            "expired", _l("Your admission token has expired; please join the queue again.")
        ) from None
    except jwt.InvalidTokenError:
        raise _unauthorized("forged", _l("This admission token is not valid.")) from None
    if claims["evt"] != event_id or claims["sub"] != str(user_id):
        raise _unauthorized(
            "forged", _l("This admission token is for another event or another person.")
        )
    return claims


def enter(event_id: int, user_id: int, session_id: str, token: str) -> int:
    """Consume the token for this session; returns the end of the active window
    (epoch seconds). The same session may enter again; another gets 409."""
    claims = verify_token(token, event_id, user_id)
    k = keys.event(event_id)
    try:
        result = redis_store.scripts.enter(
            keys=[k.entrance(user_id), k.active], args=[user_id, claims["jti"], session_id]
        )
    except metrics.UNAVAILABLE:
        metrics.ENTRANCES.labels("unavailable").inc()
        raise
    if result[0] == "used_elsewhere":
        metrics.ENTRANCES.labels("other_session").inc()
        raise AppError(
            409, "token_used", _l("This admission token was already used in another session.")
        )
    if result[0] == "unknown":
        raise _unauthorized("stale", _l("This admission token was not issued by the waiting room."))
    if result[0] == "expired":
        raise _unauthorized(
            "expired", _l("Your time to book is over; please join the queue again.")
        )
    metrics.ENTRANCES.labels("entered" if result[0] == "entered" else "replay").inc()
    return int(result[1]) // 1000


def move_here(event_id: int, user_id: int, session_id: str) -> int:
    """ "Continue on this device": the person's open window moves to this
    session (logged in again, or on another device); the session that had
    it can no longer book, and the seats held in it come along (holds are
    the person's). Returns the window's end (epoch seconds); 403 if no
    window is open."""
    k = keys.event(event_id)
    result = redis_store.scripts.move_entrance(
        keys=[k.entrance(user_id), k.active], args=[user_id, session_id]
    )
    if result[0] != "moved":
        raise AppError(*NOT_ENTERED)
    metrics.ENTRANCES.labels("moved").inc()
    return int(result[1]) // 1000


def _unauthorized(outcome: str, message) -> AppError:
    """A token refused (401), counted under `outcome` (forged, stale, expired)."""
    metrics.ENTRANCES.labels(outcome).inc()
    return AppError(401, "invalid_token", message)
