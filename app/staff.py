"""Staff controls, each one audited. Views (the admin pages and the JSON API)
call these, so the rule "every staff action is in the audit log" lives here."""

from app import audit, capacity, events, seats, waiting_room
from app.models import User


def update_event(actor_id: int, event_id: int, **changes):
    return events.update(event_id, actor_id=actor_id, **changes)  # audited there


def block_seat(actor_id: int, event_id: int, seat_id: int) -> None:
    before, after = seats.block(event_id, seat_id)
    audit.record(actor_id, "seat.block", f"event:{event_id}:seat:{seat_id}", before, after)


def unblock_seat(actor_id: int, event_id: int, seat_id: int) -> None:
    before, after = seats.unblock(event_id, seat_id)
    audit.record(actor_id, "seat.unblock", f"event:{event_id}:seat:{seat_id}", before, after)


def release_hold(actor_id: int, event_id: int, seat_id: int) -> None:
    before, after = seats.release_any(event_id, seat_id)
    audit.record(actor_id, "seat.release", f"event:{event_id}:seat:{seat_id}", before, after)


def remove_from_queue(actor_id: int, event_id: int, user_id: int) -> bool:
    events.get(event_id)
    removed = waiting_room.leave(event_id, user_id)
    audit.record(
        actor_id,
        "queue.remove",
        f"event:{event_id}:user:{user_id}",
        "in the queue or active" if removed else "not in the queue",
        "removed",
    )
    return removed


def find_user(email_or_id: str) -> User | None:
    text = email_or_id.strip()
    if text.isdigit():
        return User.get_or_none(User.id == int(text))
    return User.get_or_none(User.email == text.lower())


def what_if(event_id: int, rate: int, cap: int) -> dict:
    """Predicted time to admit everyone waiting now, at this rate and cap."""
    event = events.get(event_id)
    stats = events.stats(event_id)
    prediction = capacity.time_to_admit(
        stats["waiting"], rate, cap, event.active_ttl, stats["active"]
    )
    if prediction["seconds"] == float("inf"):
        prediction["seconds"] = None
    return prediction | {"waiting": stats["waiting"], "rate": rate, "cap": cap}
