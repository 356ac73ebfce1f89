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


def recent(target_prefix: str | None = None, limit: int = 50, skip: int = 0) -> list[dict]:
    """Newest first, with the actor's email; `skip` the newest first."""
    query = (
        AuditLog.select(AuditLog, User.email)
        .join(User, on=(AuditLog.actor == User.id), join_type=JOIN.LEFT_OUTER)
        .order_by(AuditLog.id.desc())
        .limit(limit)
        .offset(skip)
    )
    if target_prefix:  # "event:1" means event 1 and its parts, not event 12
        query = query.where(
            (AuditLog.target == target_prefix) | AuditLog.target.startswith(target_prefix + ":")
        )
    return [
        {
            "id": entry.id,
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


def page(target_prefix: str, number: int = 1, per_page: int = 20) -> tuple[list[dict], bool]:
    """Page `number` (1: the newest) of the log, and whether older entries follow."""
    entries = recent(target_prefix, per_page + 1, (max(1, number) - 1) * per_page)
    return entries[:per_page], len(entries) > per_page
