"""Bot protection, per event (staff turn it on; off by default, so the JSON
API works for outside clients as it always did).

With it on, a join by an account made after the event's cut-off (cutoff())
needs an ALTCHA proof of work: the client fetches a challenge signed with
ALTCHA_HMAC_KEY, finds the counter whose PBKDF2 key starts with the
challenge's prefix (about 256 tries of BOT_CHALLENGE_COST iterations: a
second in a browser, the same for every script), and sends the payload with
the join. Each solved challenge is good for one join of one event: spent
ones are kept in Redis (SET NX, in the event's hash tag) until they expire.
join.lua asks for it (the config's bot_cutoff_ms), so with protection off a
join costs nothing more.
"""

import time
from datetime import datetime

from altcha import Payload, create_challenge, verify_solution
from flask import current_app
from flask_babel import lazy_gettext as _l

from app import keys
from app.errors import AppError
from app.extensions import redis_store
from app.models import Event, User, epoch_ms

ALGORITHM = "PBKDF2/SHA-256"  # WebCrypto has it: the page solves it natively
CHALLENGE_TTL = 600  # s to solve and send it
CLOCK_MARGIN = 60  # s a spent challenge is kept past its expiry (web servers' clocks differ)

FAILED = _l("The check that you are not a bot did not pass or has expired: press Join again.")
USED = _l("This bot check was already used: press Join again for a new one.")


def cutoff(event: Event) -> datetime:
    """Accounts made before this join without a challenge: the pre-queue's
    opening, else the sale's, else the event's creation. Fans who signed up
    when the event was announced are not asked; accounts made in the rush are."""
    return event.prequeue_opens_at or event.sale_opens_at or event.created_at


def challenge(event_id: int) -> dict:
    """A new challenge for a join of this event (the ALTCHA v2 JSON)."""
    return create_challenge(
        ALGORITHM,
        current_app.config["BOT_CHALLENGE_COST"],
        expires_at=int(time.time()) + CHALLENGE_TTL,
        data={"event": event_id},
        hmac_secret=current_app.config["ALTCHA_HMAC_KEY"],
    ).to_dict()


def check(event_id: int, user_id: int, cutoff_ms: int, proof: str | None) -> None:
    """Let the join through (return) or refuse it with 403: an account
    older than the cut-off, or a solved challenge of this event never used."""
    user = User.get_or_none(User.id == user_id)
    if user is not None and epoch_ms(user.created_at) < cutoff_ms:
        return
    if not proof:
        raise AppError(
            403,
            "challenge_required",
            _l(
                "This event checks that joins come from people: turn on JavaScript and "
                "press Join again (apps: solve GET /api/events/%(event)s/challenge and "
                'send it as "altcha").',
                event=event_id,
            ),
        )
    payload = _solved(proof, event_id)
    if payload is None:
        raise AppError(403, "challenge_failed", FAILED)
    expires_at = payload.challenge.parameters.expires_at
    keep = max(1, int(expires_at - time.time()) + CLOCK_MARGIN)
    spent = keys.event(event_id).challenge_used(payload.challenge.signature)
    if not redis_store.client.set(spent, user_id, nx=True, ex=keep):
        raise AppError(403, "challenge_used", USED)


def _solved(proof: str, event_id: int) -> Payload | None:
    """The payload if it is a solution of a challenge we signed for this event."""
    try:
        payload = Payload.from_base64(proof)
        verdict = verify_solution(payload, current_app.config["ALTCHA_HMAC_KEY"])
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None  # not a payload at all
    if not verdict.verified or payload.challenge.parameters.data != {"event": event_id}:
        return None
    return payload
