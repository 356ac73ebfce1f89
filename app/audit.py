"""The audit log: every staff action, who, what, when, before and after."""

import json

from peewee import JOIN

from app.models import AuditLog, User


def record(actor_id: int | None, action: str, target: str, before, after) -> None:
    AuditLog.create(
        actor=actor_id,
        action=action,
        target=target,
        before=None if before is None else json.dumps(before),
        after=None if after is None else json.dumps(after),
    )


def recent(target_prefix: str | None = None, limit: int = 50) -> list[dict]:
    """Newest first, with the actor's email."""
    query = (
        AuditLog.select(AuditLog, User.email)
        .join(User, on=(AuditLog.actor == User.id), join_type=JOIN.LEFT_OUTER)
        .order_by(AuditLog.id.desc())
        .limit(limit)
    )
    if target_prefix:  # "event:1" means event 1 and its parts, not event 12
        query = query.where(
            (AuditLog.target == target_prefix) | AuditLog.target.startswith(target_prefix + ":")
        )
    return [
        {
            "at": entry.created_at,
            "actor": getattr(entry.actor, "email", None),
            "action": entry.action,
            "target": entry.target,
            "before": _load(entry.before),
            "after": _load(entry.after),
        }
        for entry in query
    ]


def _load(text: str | None):
    return None if text is None else json.loads(text)
