"""The virtual waiting room: join, poll, leave, admit, clean up.

Plain functions over Redis (no request objects), shared by the pages, the
JSON API and the RQ jobs. Each call from a person is one EVALSHA.
"""

import logging
import math
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l

from app import bots, capacity, draw, entrance, i18n, keys, mirror
from app.capacity import PollRule
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
    draw_id: str | None = None  # in the pre-queue: this person's public id in the draw
    opens_in: int | None = None  # in the pre-queue: seconds until the sale opens
    # Sold out: in the queue, and may stay in line for returned seats (stay())
    can_stay: bool = False
    staying: bool = False  # sold out, and staying in line for returned seats

    def to_json(self) -> dict:
        return dict(vars(self))  # (dataclasses.asdict deep-copies: 50x slower)

    @property
    def retry_after(self) -> str | None:
        return None if self.poll_after is None else str(math.ceil(self.poll_after))


def join(event_id: int, user_id: int, proof: str | None = None) -> QueueStatus:
    """Join the queue (idempotent). Already admitted: answers admitted.
    `proof`: a solved challenge, for an event with bot protection (app/bots.py)."""
    k = keys.event(event_id)

    def run(checked: bool):
        return redis_store.scripts.join(
            keys=[
                k.config,
                k.queue,
                k.sequence,
                k.heartbeat,
                k.active,
                k.tick,
                k.prequeue,
                k.stay,
                k.told,
            ],
            args=[user_id, int(checked)],
        )

    result = mirror.with_config(event_id, lambda: run(False))
    if result[0] == "bot_check":
        bots.check(event_id, user_id, int(result[1]), proof)  # 403 unless it passes
        result = mirror.with_config(event_id, lambda: run(True))
    if result[0] == "prequeue_not_open":
        opens = datetime.now(UTC) + timedelta(milliseconds=int(result[1]))
        raise AppError(
            409,
            "prequeue_not_open",
            _l("The queue for this event opens at %(time)s UTC: join then.", time=i18n.when(opens)),
            {"Retry-After": str(math.ceil(int(result[1]) / 1000))},
        )
    if result[0] == "closed":
        raise AppError(409, "event_closed", _l("This event's waiting room is closed."))
    if result[0] == "sold_out":
        raise AppError(409, "sold_out", _l("Sold out: every seat has been sold."))
    if result[0] == "admitted":
        return poll(event_id, user_id)
    return _status(event_id, user_id, result, current_app.config)


def poll(event_id: int, user_id: int, config=None, reload: bool = True) -> QueueStatus:
    """Heartbeat and status in one round trip; mints the token once admitted.
    `config`: the app's settings (default: current_app's). With reload
    False, a config Redis has lost raises mirror.ConfigMissing instead of
    being copied back from MySQL (the hot path leaves that to Flask)."""
    config = config or current_app.config
    k = keys.event(event_id)

    def run():
        return redis_store.scripts.poll(
            keys=[
                k.config,
                k.queue,
                k.heartbeat,
                k.active,
                k.tick,
                k.entrance(user_id),
                k.prequeue,
                k.stay,
                k.told,
            ],
            args=[user_id],
        )

    result = mirror.with_config(event_id, run) if reload else mirror.config_present(run())
    if result[0] == "sold_out":  # poll_after None: nothing left to wait for, unless one stays
        return QueueStatus("sold_out", can_stay=result[1:] == ["may_stay"])
    if result[0] == "not_in_queue":
        raise AppError(404, "not_in_queue", _l("You are not in this event's queue; join it first."))
    if result[0] == "admitted":
        active_until = int(result[1]) // 1000
        return QueueStatus(
            "admitted",
            token=entrance.mint_token(event_id, user_id, result[2], active_until, config),
            active_until=active_until,
        )
    return _status(event_id, user_id, result, config)


@dataclass
class PageStatus:
    """What the waiting page shows: a status, or the problem that stands in
    its way ("login", "not_in_queue", "entered_elsewhere" with the
    entrance's message). `entered`: admitted and through the entrance."""

    status: QueueStatus | None = None
    problem: str | None = None
    message: str | None = None
    entered: bool = False
    # Entered elsewhere: seconds until the window ends, and how often to look again.
    window_left: int | None = None
    poll_after: int | None = None


# Entered in another session: look again this often (that session may
# leave, or this person press "Continue on this device").
ELSEWHERE_POLL_S = 30


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
        if e.code != "token_used":
            return PageStatus(problem="entrance", message=e.message)
        return PageStatus(
            problem="entered_elsewhere",
            message=e.message,
            window_left=max(0, status.active_until - int(time.time())),
            poll_after=ELSEWHERE_POLL_S,
        )
    return PageStatus(status, entered=True)


@dataclass
class Place:
    """Where a person stands in an event (place()): "here" (booking in this
    session), "elsewhere" (booking in another session), "not_entered"
    (their turn came; the waiting page takes them in), "queue" (with
    `position`, 1 = next), "prequeue" (waiting for the draw) or "none"."""

    kind: str
    position: int | None = None


def place(event_id: int, user_id: int, session_id: str | None) -> Place:
    """Where this person stands, read only (one round trip)."""
    k = keys.event(event_id)
    result = redis_store.scripts.place(
        keys=[k.entrance(user_id), k.active, k.queue, k.prequeue],
        args=[user_id, session_id or ""],
    )
    return Place(result[0], int(result[1]) + 1 if result[0] == "queue" else None)


def counts(event_ids: list[int]) -> dict[int, tuple[int, int]]:
    """(waiting, active) per event, in one round trip; waiting counts the
    pre-queue too."""
    pipe = redis_store.client.pipeline(transaction=False)
    for event_id in event_ids:
        k = keys.event(event_id)
        pipe.zcard(k.queue)
        pipe.zcard(k.prequeue)
        pipe.zcard(k.active)
    n = pipe.execute()
    return {eid: (n[3 * i] + n[3 * i + 1], n[3 * i + 2]) for i, eid in enumerate(event_ids)}


def stay(event_id: int, user_id: int) -> QueueStatus:
    """Stay in line for returned seats once the event has sold out (instead
    of leaving): the person keeps their place and polls on, slowly, until a
    cancellation or a staff unblock puts seats back on sale. Idempotent; when
    seats are on sale again meanwhile, this is an ordinary poll."""
    k = keys.event(event_id)
    result = mirror.with_config(
        event_id,
        lambda: redis_store.scripts.stay(
            keys=[k.config, k.queue, k.heartbeat, k.stay, k.told], args=[user_id]
        ),
    )
    if result[0] == "not_in_queue":
        raise AppError(404, "not_in_queue", _l("You are not in this event's queue; join it first."))
    if result[0] == "on_sale":
        return poll(event_id, user_id)
    return _status(event_id, user_id, result, current_app.config)


def leave(event_id: int, user_id: int) -> bool:
    """Leave the queue, or give back an active slot and the seats held in it.
    True if the person was in."""
    k = keys.event(event_id)
    return bool(
        redis_store.scripts.leave(
            keys=[
                k.queue,
                k.heartbeat,
                k.active,
                k.entrance(user_id),
                k.prequeue,
                k.seats,
                k.holds(user_id),
                k.stay,
                k.told,
            ],
            args=[user_id],
        )
    )


# The staff chart: one sample every 5 s, the last 15 minutes.
SAMPLE_EVERY_MS, SAMPLES_KEPT = 5_000, 180


def admit(event_id: int, max_batch: int = 5000, max_catch_up_ms: int = 60_000) -> dict:
    """One admission tick for one event (called every second by the RQ job),
    and the poll intervals rescaled to the crowd it leaves waiting. Status
    "draw": the sale has opened and its draw is due (jobs/admit.py queues it).
    The admitted keep their heartbeat entries until `clean_up` takes them."""
    k = keys.event(event_id)
    result = mirror.with_config(
        event_id,
        lambda: redis_store.scripts.admit(
            keys=[k.config, k.queue, k.active, k.tick, k.samples, k.prequeue, k.stay],
            args=[
                max_batch,
                max_catch_up_ms,
                SAMPLE_EVERY_MS,
                SAMPLES_KEPT,
                current_app.config["RETURNS_MARGIN"],
            ],
        ),
    )
    admitted, expired, active, status, waiting, budget, ttl_ms, rate, scale = result
    rescale(event_id, waiting, PollRule.of(current_app.config["POLL_TIERS"],
                                           float(budget), int(ttl_ms) / 1000, float(rate)),
            float(scale))  # fmt: skip
    return {"admitted": admitted, "expired": expired, "active": active, "status": status}


def rescale(event_id: int, waiting: int, rule: PollRule, scale_now: float) -> None:
    """Keep the event's poll stretch in step with its crowd (written only
    when it moves by more than 1 %: every poll reads it)."""
    scale = capacity.scale_for(waiting, rule)
    if abs(scale - scale_now) > 0.01 * scale_now:
        redis_store.client.hset(keys.event(event_id).config, "poll_scale", f"{scale:.6g}")


def clean_up(event_id: int, timeout_s: int, batch: int, pause_s: float) -> int:
    """Remove people who stopped polling, in batches; returns how many left the
    queue. Stale heartbeat entries of people admitted meanwhile go too, uncounted."""
    k = keys.event(event_id)
    removed = 0
    while True:
        stale, gone = redis_store.scripts.clean_up(
            keys=[k.heartbeat, k.queue, k.tick, k.prequeue, k.stay, k.told],
            args=[timeout_s * 1000, batch],
        )
        removed += gone
        if stale < batch:
            return removed
        time.sleep(pause_s)  # let other clients' commands through between batches


def jittered(seconds: float, jitter: float) -> float:
    """Spread so that people admitted together do not poll in lock-step."""
    return round(seconds * random.uniform(1 - jitter, 1 + jitter), 1)


def _status(event_id: int, user_id: int, answer: list, config) -> QueueStatus:
    """A join's or poll's "waiting", "prequeue" or "staying" answer, as a status."""
    if answer[0] == "staying":
        return _staying_status(*answer[1:], config=config)
    if answer[0] == "prequeue":
        return _prequeue_status(event_id, user_id, *answer[1:], config=config)
    return _waiting_status(*answer[1:], config=config)


def _waiting_status(rank, total, paused, rate_observed, scale, window_ms, rate, config):
    tiers = config["POLL_TIERS"]
    position, paused, rate_observed = int(rank) + 1, bool(int(paused)), float(rate_observed)
    band = capacity.band_for(position, tiers)
    eta = eta_range = None
    if not paused and rate_observed > 0:
        eta = math.ceil(position / rate_observed)
        # The observed rate moves with departures and cap changes: show a range.
        eta_range = {"from": math.floor(eta * 0.8), "to": math.ceil(eta * 1.25)}
    rule = PollRule(tiers, math.inf, int(window_ms) / 1000, float(rate))
    return QueueStatus(
        "waiting",
        position=None if band else position,
        position_band=band,
        waiting_total=int(total),
        poll_after=jittered(capacity.interval(position, float(scale), rule), config["POLL_JITTER"]),
        eta_seconds=eta,
        eta_range=eta_range,
        paused=paused,
    )


def _staying_status(rank, staying, budget, window_ms, config):
    """Sold out, staying in line: the place (exact or banded, as while
    waiting), and polls that share the budget evenly, as in the pre-queue."""
    position, tiers = int(rank) + 1, config["POLL_TIERS"]
    band = capacity.band_for(position, tiers)
    rule = PollRule(tiers, float(budget), int(window_ms) / 1000, math.inf)
    return QueueStatus(
        "sold_out",
        position=None if band else position,
        position_band=band,
        waiting_total=int(staying),
        poll_after=jittered(capacity.prequeue_interval(int(staying), rule), config["POLL_JITTER"]),
        staying=True,
    )


def _prequeue_status(event_id, user_id, size, ms_until, budget, window_ms, config):
    """In the pre-queue: no place until the draw. Polls share the budget;
    one that would come after the opening lands after the draw instead,
    spread over one interval, so the crowd looks again soon after the
    opening but not all in the same second."""
    size, until = int(size), int(ms_until) / 1000
    rule = PollRule(config["POLL_TIERS"], float(budget), int(window_ms) / 1000, math.inf)
    every = capacity.prequeue_interval(size, rule)
    poll_after = jittered(every, config["POLL_JITTER"])
    if poll_after >= until:
        drawn_by = max(until, 0) + min(rule.window, draw.expected_seconds(size))
        poll_after = round(drawn_by + random.uniform(0, every), 1)
    return QueueStatus(
        "waiting",
        waiting_total=size,
        poll_after=poll_after,
        paused=True,
        draw_id=draw.public_id(event_id, user_id, config["SECRET_KEY"]),
        opens_in=max(0, math.ceil(until)),
    )
