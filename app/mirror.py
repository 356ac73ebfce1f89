"""Redis's copy of MySQL.

MySQL is the system of record; the Lua scripts read Redis. Per event, Redis
holds a copy of the settings (the config hash), of the booked and blocked
seats, of the largest fencing token MySQL knows for each seat, and of the
sold-out flag. This module writes that copy and puts it right:

- `sync_config` after every settings change;
- `with_config` around every script that reads the config: a script that
  finds it missing (Redis restarted, flushed, failed over) answers
  "no_event", and the event is copied back from MySQL and the script run
  once more;
- `reconcile` when a sale opens, when Redis lost the event, and every minute
  (jobs/reconcile.py);
- the sold-out flag after anything that changes what is on sale.
"""

import logging
from collections import Counter

from app import bots, keys
from app.capacity import WINDOW_SHARE
from app.errors import not_found
from app.extensions import redis_store
from app.models import Event, Seat, epoch_ms

log = logging.getLogger(__name__)


class ConfigMissing(Exception):
    """A script found no config for the event, and the caller chose not to reload it."""


def config_present(result: list) -> list:
    """A script's answer, unless it says "no_event" (then ConfigMissing)."""
    if result[-1] == "no_event":
        raise ConfigMissing()
    return result


def with_config(event_id: int, call) -> list:
    """Run a script call; if it says "no_event", copy the event from MySQL
    into Redis (404 if there is no such event) and run it once more."""
    result = call()
    if result[-1] == "no_event":
        event = Event.get_or_none(Event.id == event_id)
        if event is None:
            raise not_found("event")
        sync_config(event)
        log.info("event %s: config reloaded into Redis", event_id)
        result = call()
    return result


def sync_config(event: Event) -> None:
    """Copy the event's settings into its Redis config hash. If the hash is
    missing, Redis lost the event: bring its seats back from MySQL first."""
    # 'state' rather than the hash: a sold-out update may have recreated it alone.
    if not redis_store.client.hexists(keys.event(event.id).config, "state"):
        reconcile(event.id)
    config = keys.event(event.id).config
    redis_store.client.hset(config, mapping=config_fields(event))
    # The poll intervals' stretch: the admit tick keeps it in step with the
    # crowd (app/waiting_room.py); until its first tick, the tier table.
    redis_store.client.hsetnx(config, "poll_scale", "1")


def config_fields(event: Event) -> dict[str, str]:
    """The config hash as MySQL's row says it should be (as Redis returns it)."""
    fields = {
        "state": event.admission,
        "max_active": event.max_active,
        "rate": event.admit_rate,
        "active_ttl_ms": event.active_ttl * 1000,
        "hold_ttl_ms": event.hold_ttl * 1000,
        "max_seats": event.max_seats_per_person,
        "opens_at_ms": epoch_ms(event.sale_opens_at),
        "prequeue_ms": epoch_ms(event.prequeue_opens_at),
        "drawn": int(event.drawn_at is not None),
        "poll_budget": event.poll_budget,
        # How long someone let in may go on not knowing it (app/capacity.py).
        "window_ms": int(WINDOW_SHARE * event.active_ttl * 1000),
        "sold_out": int(event.id in sold_out([event.id])),
        # join.lua asks newer accounts for a proof of work (0: protection off).
        "bot_cutoff_ms": epoch_ms(bots.cutoff(event)) if event.bot_protection else 0,
    }
    return {name: str(value) for name, value in fields.items()}


def restore_config(event_id: int) -> bool:
    """Write MySQL's settings into Redis where Redis's copy differs (a
    failover lost a settings change, e.g. the sale opening); True if it
    did. Read again after each write, so that a staff change committed
    meanwhile is the last one written."""
    restored = False
    for _ in range(3):
        event = Event.get_or_none(Event.id == event_id)
        if event is None:
            break
        wanted = config_fields(event)
        held = redis_store.client.hmget(keys.event(event_id).config, list(wanted))
        if held == list(wanted.values()):
            break
        sync_config(event)
        restored = True
    return restored


def reconcile(event_id: int, seat_ids: list[int] | None = None, batch: int = 500) -> dict:
    """Load MySQL's booked and blocked seats and its fencing tokens into Redis,
    in batches (reconcile.lua: the database wins for sold and blocked seats
    and for the largest token; live holds stay). Returns the seats read, the
    ones Redis had wrong (`changed`, `fence_raised`) and the lapsed holds
    cleared on the way (`lapsed`: routine, someone let a hold run out)."""
    k = keys.event(event_id)
    query = (
        Seat.select(Seat.id, Seat.status, Seat.holder, Seat.fencing_token)
        .where(Seat.event == event_id)
        .order_by(Seat.id)
    )
    if seat_ids is not None:
        query = query.where(Seat.id.in_(seat_ids))
    changed = raised = lapsed = 0
    rows = list(query.tuples())
    for start in range(0, len(rows), batch):
        args = []
        for seat_id, status, holder, token in rows[start : start + batch]:
            args += [seat_id, status, holder or 0, token]
        c, r, p = redis_store.scripts.reconcile(keys=[k.seats, k.fence], args=args)
        changed, raised, lapsed = changed + c, raised + r, lapsed + p
    if seat_ids is None:
        _copy_bought(k, rows)
        update_sold_out(event_id)
    return {"seats": len(rows), "changed": changed, "fence_raised": raised, "lapsed": lapsed}


def _copy_bought(k: keys.EventKeys, rows: list[tuple]) -> None:
    """Each person's count of seats bought, as MySQL's seats say, for
    hold.lua's per-person limit. A sale committing meanwhile may be counted
    late; the checkout's own check in MySQL still refuses a seat over the
    limit."""
    bought = Counter(holder for _, status, holder, _ in rows if status == "booked" and holder)
    held = redis_store.client.hgetall(k.bought)
    gone = [user for user in held if int(user) not in bought]
    if gone:
        redis_store.client.hdel(k.bought, *gone)
    if bought:
        redis_store.client.hset(k.bought, mapping=dict(bought))


# Sold out: MySQL has no seat left on sale (every one booked or blocked; a
# held seat is still on sale, as its hold may lapse). The waiting room reads
# the flag from the event's config hash: join refuses, poll tells everyone
# waiting (who may stay in line for returned seats), admission stops. Once an
# event has sold out (`returns`, kept in Redis only), admission is held to the
# seats on sale (`on_sale`) plus a margin: seats come back a few at a time.


def sold_out(event_ids: list[int]) -> set[int]:
    """The events among these with no seat left on sale, in MySQL's view."""
    on_sale = (
        Seat.select(Seat.event)
        .distinct()
        .where(Seat.event.in_(event_ids), Seat.status == "available")
    )
    return set(event_ids) - {event_id for (event_id,) in on_sale.tuples()}


def on_sale(event_id: int) -> int:
    """How many of the event's seats MySQL has on sale (held ones included),
    counted up to the event's max_active: admission's cap after a sell-out,
    min(max_active, on_sale + margin), needs no more, and every checkout
    asks (a full count took 13 ms of 100,000 seats, this one under 1 ms at a
    cap of 1,000). A raised max_active is counted to at the next call."""
    enough = Event.select(Event.max_active).where(Event.id == event_id).scalar() or 0
    available = Seat.select(Seat.id).where(Seat.event == event_id, Seat.status == "available")
    return available.limit(max(enough, 1)).count()


def update_sold_out(event_id: int, may_clear: bool = True) -> bool:
    """Copy the sold-out state and the count on sale from MySQL to Redis.
    Checkouts pass may_clear=False: they only take seats away, so a slow one
    must not clear the flag that a later one set; cancellations, unblock and
    reconcile may clear it. (A slow checkout's count may be a seat or two
    off until the next call or the reconcile job: it only moves the margin.)"""
    left = on_sale(event_id)
    gone = left == 0
    fields = {"on_sale": left}
    if gone or may_clear:
        fields["sold_out"] = int(gone)
    if gone:
        fields["returns"] = 1
        log.info("event %s: sold out", event_id)
    redis_store.client.hset(keys.event(event_id).config, mapping=fields)
    return gone


def note_sold_out(event_id: int, may_clear: bool = True) -> None:
    """update_sold_out for callers whose own change is already made (a sale,
    a block): a failure here must not turn it into an error, so it is logged,
    and the reconcile job puts the flag right within a minute."""
    try:
        update_sold_out(event_id, may_clear)
    except Exception:
        log.exception("event %s: could not update the sold-out flag", event_id)
