"""The virtual waiting room: join, poll, leave, admit, clean up.

Plain functions over Redis (no request objects), shared by the pages, the
JSON API and the RQ jobs. Each call from a person is one EVALSHA.
"""

import logging
import math
import random
import time
from dataclasses import dataclass

from flask import current_app
from flask_babel import lazy_gettext as _l

from app import entrance, keys, mirror
from app.errors import AppError
from app.extensions import redis_store

log = logging.getLogger(__name__)


@dataclass
class QueueStatus:
    status: str  # waiting | admitted | sold_out
    position: int | None = None  # 1 = next in; exact tiers only
    position_band: dict | None = None  # {from, to} in banded tiers (to None = and beyond)
    waiting_total: int = 0
    poll_after: float | None = None  # seconds, jittered
    eta_seconds: int | None = None
    eta_range: dict | None = None  # {from, to} seconds
    paused: bool = False
    token: str | None = None
    active_until: int | None = None  # epoch seconds

    def to_json(self) -> dict:
        return dict(vars(self))  # (dataclasses.asdict deep-copies: 50x slower)

    @property
    def retry_after(self) -> str | None:
        return None if self.poll_after is None else str(math.ceil(self.poll_after))


def join(event_id: int, user_id: int) -> QueueStatus:
    """Join the queue (idempotent). Already admitted: answers admitted."""
    k = keys.event(event_id)
    result = mirror.with_config(
        event_id,
        lambda: redis_store.scripts.join(
            keys=[k.config, k.queue, k.sequence, k.heartbeat, k.active, k.tick], args=[user_id]
        ),
    )
    if result[0] == "closed":
        raise AppError(409, "event_closed", _l("This event's waiting room is closed."))
    if result[0] == "sold_out":
        raise AppError(409, "sold_out", _l("Sold out: every seat has been sold."))
    if result[0] == "admitted":
        return poll(event_id, user_id)
    return _waiting_status(*result[1:], config=current_app.config)


def poll(event_id: int, user_id: int, config=None, reload: bool = True) -> QueueStatus:
    """Heartbeat and status in one round trip; mints the token once admitted.
    `config`: the app's settings (default: current_app's). With reload
    False, a config Redis has lost raises mirror.ConfigMissing instead of
    being copied back from MySQL (the hot path leaves that to Flask)."""
    config = config or current_app.config
    k = keys.event(event_id)

    def run():
        return redis_store.scripts.poll(
            keys=[k.config, k.queue, k.heartbeat, k.active, k.tick, k.entrance(user_id)],
            args=[user_id],
        )

    result = mirror.with_config(event_id, run) if reload else mirror.config_present(run())
    if result[0] == "sold_out":
        return QueueStatus("sold_out")  # poll_after None: nothing left to wait for
    if result[0] == "not_in_queue":
        raise AppError(404, "not_in_queue", _l("You are not in this event's queue; join it first."))
    if result[0] == "admitted":
        active_until = int(result[1]) // 1000
        return QueueStatus(
            "admitted",
            token=entrance.mint_token(event_id, user_id, result[2], active_until, config),
            active_until=active_until,
        )
    return _waiting_status(*result[1:], config=config)


@dataclass
class PageStatus:
    """What the waiting page shows: a status, or the problem that stands in
    its way ("login", "not_in_queue", "entered_elsewhere" with the
    entrance's message). `entered`: admitted and through the entrance."""

    status: QueueStatus | None = None
    problem: str | None = None
    message: str | None = None
    entered: bool = False


def poll_for_page(event_id: int, user_id: int | None, session_id: str | None) -> PageStatus:
    """The waiting page's poll: poll(), and once admitted the entrance on the
    person's behalf (the token consumed for this browser's session), so the
    page can go straight on to the seat map."""
    if not user_id:
        return PageStatus(problem="login")
    try:
        status = poll(event_id, user_id)
    except AppError as e:
        if e.code != "not_in_queue":
            raise
        return PageStatus(problem="not_in_queue")
    if status.status != "admitted":
        return PageStatus(status)
    try:
        entrance.enter(event_id, user_id, session_id, status.token)
    except AppError as e:
        return PageStatus(problem="entered_elsewhere", message=e.message)
    return PageStatus(status, entered=True)


def counts(event_ids: list[int]) -> dict[int, tuple[int, int]]:
    """(waiting, active) per event, in one round trip."""
    pipe = redis_store.client.pipeline(transaction=False)
    for event_id in event_ids:
        k = keys.event(event_id)
        pipe.zcard(k.queue)
        pipe.zcard(k.active)
    numbers = pipe.execute()
    return {eid: (numbers[2 * i], numbers[2 * i + 1]) for i, eid in enumerate(event_ids)}


def leave(event_id: int, user_id: int) -> bool:
    """Leave the queue, or give back an active slot. True if the person was in."""
    k = keys.event(event_id)
    return bool(
        redis_store.scripts.leave(
            keys=[k.queue, k.heartbeat, k.active, k.entrance(user_id)], args=[user_id]
        )
    )


# The staff chart: one sample every 5 s, the last 15 minutes.
SAMPLE_EVERY_MS, SAMPLES_KEPT = 5_000, 180


def admit(event_id: int, max_batch: int = 5000, max_catch_up_ms: int = 60_000) -> dict:
    """One admission tick for one event (called every second by the RQ job).
    The admitted keep their heartbeat entries until `clean_up` takes them."""
    k = keys.event(event_id)
    admitted, expired, active, status = mirror.with_config(
        event_id,
        lambda: redis_store.scripts.admit(
            keys=[k.config, k.queue, k.active, k.tick, k.samples],
            args=[max_batch, max_catch_up_ms, SAMPLE_EVERY_MS, SAMPLES_KEPT],
        ),
    )
    return {"admitted": admitted, "expired": expired, "active": active, "status": status}


def clean_up(event_id: int, timeout_s: int, batch: int, pause_s: float) -> int:
    """Remove people who stopped polling, in batches; returns how many left the
    queue. Stale heartbeat entries of people admitted meanwhile go too, uncounted."""
    k = keys.event(event_id)
    removed = 0
    while True:
        stale, gone = redis_store.scripts.clean_up(
            keys=[k.heartbeat, k.queue, k.tick], args=[timeout_s * 1000, batch]
        )
        removed += gone
        if stale < batch:
            return removed
        time.sleep(pause_s)  # let other clients' commands through between batches


def tier_for(position: int, tiers: list[dict]) -> tuple[int, dict]:
    """(index, tier) of the first tier whose `up_to` covers the position."""
    for index, tier in enumerate(tiers):
        if tier["up_to"] is None or position <= tier["up_to"]:
            return index, tier
    return len(tiers) - 1, tiers[-1]


def band_for(position: int, tiers: list[dict]) -> dict | None:
    """None when the position is shown exactly, else the band {from, to} around it."""
    index, tier = tier_for(position, tiers)
    if tier["band"] == 0:
        return None
    lower = tiers[index - 1]["up_to"] if index else 0
    if tier["band"] is None or tier["up_to"] is None:
        return {"from": lower + 1, "to": None}
    start = lower + 1 + (position - lower - 1) // tier["band"] * tier["band"]
    return {"from": start, "to": min(start + tier["band"] - 1, tier["up_to"])}


def poll_interval(position: int, paused: bool, tiers: list[dict], jitter: float) -> float:
    """Seconds until the next poll: the tier's interval (slowest while paused),
    jittered so that people admitted together do not poll in lock-step."""
    interval = tiers[-1]["interval"] if paused else tier_for(position, tiers)[1]["interval"]
    return round(interval * random.uniform(1 - jitter, 1 + jitter), 1)


def _waiting_status(rank, total, paused, rate_observed, config) -> QueueStatus:
    tiers = config["POLL_TIERS"]
    position, paused, rate = int(rank) + 1, bool(int(paused)), float(rate_observed)
    band = band_for(position, tiers)
    eta = eta_range = None
    if not paused and rate > 0:
        eta = math.ceil(position / rate)
        # The observed rate moves with departures and cap changes: show a range.
        eta_range = {"from": math.floor(eta * 0.8), "to": math.ceil(eta * 1.25)}
    return QueueStatus(
        "waiting",
        position=None if band else position,
        position_band=band,
        waiting_total=int(total),
        poll_after=poll_interval(position, paused, tiers, config["POLL_JITTER"]),
        eta_seconds=eta,
        eta_range=eta_range,
        paused=paused,
    )
