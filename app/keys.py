"""Redis key names. Every key of one event shares the hash tag {evt:ID}, so each
Lua script touches one slot and runs unchanged on Redis Cluster."""

from functools import lru_cache

# hash: the admission job's durations: a count per histogram bucket, and their sum (app/metrics.py)
ADMIT_TICKS = "{ticketdrop}:admit_ticks"


@lru_cache(maxsize=1024)
def event(event_id: int) -> "EventKeys":
    """The key names of one event (made once: every poll asks for them)."""
    return EventKeys(event_id)


class EventKeys:
    __slots__ = (
        "tag", "config", "queue", "sequence", "heartbeat", "active", "tick", "samples",
        "seats", "fence", "bought", "prequeue", "draw_lock", "seat_counts", "stay",
        "told",
    )  # fmt: skip

    def __init__(self, event_id: int):
        tag = self.tag = f"{{evt:{int(event_id)}}}"
        self.config = f"{tag}:cfg"  # hash: the event's settings as the scripts read them
        self.queue = f"{tag}:q"  # zset: user id -> join sequence number (drawn places < 0)
        self.prequeue = f"{tag}:preq"  # zset: user id -> join sequence, until the draw
        # set: people in the queue who chose to stay for returned seats once it sold out
        self.stay = f"{tag}:stay"
        # zset: people told it sold out who did not stay (yet) -> their place in the queue
        self.told = f"{tag}:told"
        self.sequence = f"{tag}:seq"  # counter scoring the queue (no ties, ever)
        self.heartbeat = f"{tag}:hb"  # zset: user id -> latest time the next poll is due, ms
        self.active = f"{tag}:active"  # zset: user id -> end of the active window, ms
        # hash: last tick, carry, observed rate; for /metrics and the staff page the
        # counts admitted, expired, removed by cleanup, repaired, and when a tick ran
        self.tick = f"{tag}:tick"
        self.samples = f"{tag}:samples"  # list: "ms waiting active admitted_total" (chart)
        self.seats = f"{tag}:seats"  # hash: seat id -> state (absent = available): _prelude.lua
        self.draw_lock = f"{tag}:drawing"  # string: a draw is being made (app/draw.py)
        self.fence = f"{tag}:fence"  # hash: seat id -> fencing-token counter (never expires)
        self.seat_counts = f"{tag}:seatcounts"  # hash: the last seat count for /metrics
        self.bought = f"{tag}:bought"  # hash: user id -> seats bought (a copy of MySQL's count)

    def entrance(self, user_id: int) -> str:  # hash: this window's token id, its end, who entered
        return f"{self.tag}:ent:{int(user_id)}"

    def challenge_used(self, signature: str) -> str:  # string: a solved challenge, spent
        return f"{self.tag}:pow:{signature}"

    def holds(self, user_id: int) -> str:  # set: seat ids this person holds or pays for
        return f"{self.tag}:holds:{int(user_id)}"
