"""Staff controls, each one audited. Views (the admin pages and the JSON API)
call these, so the rule "every staff action is in the audit log" lives here."""

from flask_babel import lazy_gettext as _l

from app import accounts, audit, events, seats, sessions, waiting_room
from app.errors import AppError


def create_event(actor_id: int, name: str, sections: list[dict], **settings):
    """A new event with its seats (admission paused); audited there."""
    return events.create(name, sections, actor_id=actor_id, **settings)


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


def block_seats(
    actor_id: int, event_id: int, section: str, row: str | None, blocked: bool = True
) -> dict:
    """Block the free seats of a section or of one of its rows (or unblock its
    blocked ones): one audit entry, with how many changed and were skipped."""
    result = seats.set_blocked_many(event_id, section, row, blocked)
    audit.record(
        actor_id,
        "seats.block" if blocked else "seats.unblock",
        f"event:{event_id}:seats",
        {"section": section, "row": row},
        {name: len(ids) for name, ids in result.items()},
    )
    return result


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


def revoke_sessions(actor_id: int | None, user_id: int) -> None:
    """Sign a person out everywhere (a stolen cookie, a shared computer)."""
    if accounts.find(user_id) is None:
        raise AppError(404, "not_found", _l("There is no such person."))
    generation = sessions.revoke(user_id)
    audit.record(actor_id, "sessions.revoke", f"user:{user_id}", None, f"generation {generation}")
