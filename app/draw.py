"""The fair start: everyone who joins before the sale opens gets a place
drawn at random at the opening, so arriving first by script gains nothing,
and anyone can check the draw afterwards (commit-reveal).

- Each event gets a secret seed when it is made; its SHA-256, the
  commitment, is published from then on (GET /api/events/{id}/draw). The
  seed never changes, so there is nothing to re-draw.
- At the opening, the admission job finds the draw due (app/lua/admit.lua)
  and calls `make`: the pre-queue's people get public pseudonymous ids
  (`public_id`), are written to MySQL (who took part), and are moved into
  the queue in the order `order` gives. Nobody is let in before that.
- Then the seed and the list are published; `verify` (and the
  `verify-draw` command) recomputes the order from the published data with
  hashlib alone. docs/DESIGN.md, "A fair start", has the procedure and what
  a dishonest operator could and could not do.
"""

import hashlib
import hmac
import logging
import secrets

from app import audit, keys, mirror
from app.errors import not_found
from app.extensions import db, redis_store
from app.models import DrawEntry, Event, iso, utcnow

log = logging.getLogger(__name__)

# People per second that `make` draws and moves: bench/scale10m.py (figure
# 15) measured 9,100 to 17,600/s with 1,000,000 in six runs on the shared
# 2-core machine (median about 13,000; MySQL's inserts take more than half of
# it), so a little under the slowest run. Polls from the pre-queue are aimed
# after it.
DRAW_SPEED = 9_000


def new_seed() -> str:
    return secrets.token_hex(32)


def commitment(seed: str) -> str:
    """What is published before the opening: hex SHA-256 of the seed's bytes."""
    return hashlib.sha256(bytes.fromhex(seed)).hexdigest()


def public_id(event_id: int, user_id: int, secret: str) -> str:
    """A person's id in one event's draw: stable, and telling nobody else
    who they are (an HMAC under the app's secret key)."""
    message = f"draw:{int(event_id)}:{int(user_id)}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:16]


def order(seed: str, participants: list[str]) -> list[str]:
    """The drawn order: the participants sorted by SHA-256(seed bytes +
    id). Whatever order they come in, the result is the same."""
    key = bytes.fromhex(seed)
    return sorted(participants, key=lambda p: hashlib.sha256(key + p.encode()).digest())


def verify(published: dict) -> list[str]:
    """What is wrong with a published draw (GET /api/events/{id}/draw);
    an empty list when the seed matches the commitment and the order follows
    from the seed and the participants."""
    seed, participants = published.get("seed"), published.get("participants")
    if seed is None or participants is None:
        return ["the draw has not been made yet (no seed published)"]
    ids = isinstance(participants, list) and all(isinstance(p, str) for p in participants)
    if not ids or not isinstance(seed, str) or not _is_hex(seed):
        return ["this is not a published draw (the seed is not hex, or the participants not ids)"]
    problems = []
    if commitment(seed) != published.get("commitment"):
        problems.append("the seed does not match the commitment")
    if participants != sorted(set(participants)):
        problems.append("the participants are not sorted, or someone is listed twice")
    if published.get("order") != order(seed, participants):
        problems.append("the order is not the one the seed gives")
    return problems


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


def expected_seconds(people: int) -> float:
    """About how long the draw of this many takes, from the opening."""
    return 1 + people / DRAW_SPEED


def make(event_id: int, secret: str, read_batch: int = 50_000, move_batch: int = 250) -> dict:
    """The draw, at the opening (idempotent: run again after a crash, it
    finishes the same draw). Returns {"participants", "moved"}."""
    k = keys.event(event_id)
    # One draw at a time (several workers may find it due at once); a run
    # that dies leaves the lock to expire (after twice the time it should
    # take), and the next tick finishes the draw.
    lock_s = 60 + int(2 * expected_seconds(redis_store.client.zcard(k.prequeue)))
    if not redis_store.client.set(k.draw_lock, "1", nx=True, ex=lock_s):
        return {"participants": 0, "moved": 0, "busy": True}
    try:
        return _make(event_id, secret, read_batch, move_batch)
    finally:
        redis_store.client.delete(k.draw_lock)


def _make(event_id, secret, read_batch, move_batch) -> dict:
    k = keys.event(event_id)
    event = Event.get_or_none(Event.id == event_id)
    if event is None or event.drawn_at is not None:
        return {"participants": 0, "moved": 0}
    if not event.draw_seed:  # an event made before the fair start: no commitment was shown
        event.draw_seed = new_seed()
        event.save()
    users = [int(u) for u in _members(k.prequeue, read_batch)]
    rows = [
        {"event": event_id, "user_id": u, "public_id": public_id(event_id, u, secret)}
        for u in users
    ]
    # A transaction per chunk: a run stopped half-way keeps what it wrote.
    for start in range(0, len(rows), 2000):
        with db.atomic():
            DrawEntry.insert_many(rows[start : start + 2000]).on_conflict_ignore().execute()
    # Everyone who took part, also those an interrupted run wrote before.
    by_id = dict(
        DrawEntry.select(DrawEntry.public_id, DrawEntry.user_id)
        .where(DrawEntry.event == event_id).tuples()
    )  # fmt: skip
    if not set(users) <= set(by_id.values()):  # never draw without everyone
        raise RuntimeError(f"event {event_id}: the draw's participants were not all recorded")
    drawn = order(event.draw_seed, list(by_id))
    moved = 0  # 250 a call: a move of 2,000 held Redis for 15 ms (figure 15)
    for start in range(0, len(drawn), move_batch):
        args = []
        for place, pid in enumerate(drawn[start : start + move_batch], start=start):
            args += [place - len(drawn), by_id[pid]]  # -N .. -1: ahead of later arrivals
        moved += redis_store.scripts.draw_move(keys=[k.prequeue, k.queue], args=args)
    with db.atomic():
        event = Event.get_by_id(event_id)
        event.drawn_at = utcnow()
        event.save()
        audit.record(
            None,
            "event.draw",
            f"event:{event_id}",
            None,
            {"participants": len(drawn), "commitment": commitment(event.draw_seed)},
        )
    mirror.sync_config(event)  # "drawn": admission may start
    log.info("event %s: drew the order of %s people", event_id, len(drawn))
    return {"participants": len(drawn), "moved": moved}


def _members(key: str, batch: int) -> list[str]:
    """Every member of a sorted set, read in batches (no long command)."""
    members, start = [], 0
    while True:
        chunk = redis_store.client.zrange(key, start, start + batch - 1)
        members += chunk
        if len(chunk) < batch:
            return members
        start += batch


# A made draw never changes: its list and order are kept per process, by
# event and seed (a seed is never reused, an event id may be on SQLite).
_published: dict[tuple[int, str], dict] = {}


def published(event_id: int) -> dict:
    """The draw as GET /api/events/{id}/draw shows it: the commitment, and
    once the draw is made the seed, the participants (sorted) and the order."""
    event = Event.get_or_none(Event.id == event_id)
    if event is None:
        raise not_found("event")
    if event.drawn_at is not None and (event_id, event.draw_seed) in _published:
        return _published[(event_id, event.draw_seed)]
    data = {
        "commitment": commitment(event.draw_seed) if event.draw_seed else None,
        "seed": None,
        "participants": None,
        "order": None,
        "drawn_at": iso(event.drawn_at),
    }
    if event.drawn_at is not None:
        participants = sorted(
            pid for (pid,) in DrawEntry.select(DrawEntry.public_id)
            .where(DrawEntry.event == event_id).tuples()
        )  # fmt: skip
        data.update(
            seed=event.draw_seed,
            participants=participants,
            order=order(event.draw_seed, participants),
        )
        _published[(event_id, event.draw_seed)] = data
    return data
