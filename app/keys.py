"""Redis key names. Every key of one event shares the hash tag {evt:ID}, so each
Lua script touches one slot and runs unchanged on Redis Cluster."""


def event(event_id: int) -> "EventKeys":
    return EventKeys(event_id)


class EventKeys:
    __slots__ = ("tag",)

    def __init__(self, event_id: int):
        self.tag = f"{{evt:{int(event_id)}}}"

    @property
    def config(self) -> str:  # hash: admission state, cap, rate, opens_at_ms
        return f"{self.tag}:cfg"

    @property
    def queue(self) -> str:  # zset: user id -> join sequence number
        return f"{self.tag}:q"

    @property
    def sequence(self) -> str:  # counter scoring the queue (no ties, ever)
        return f"{self.tag}:seq"

    @property
    def heartbeat(self) -> str:  # zset: user id -> last poll, ms
        return f"{self.tag}:hb"

    @property
    def active(self) -> str:  # zset: user id -> end of the active window, ms
        return f"{self.tag}:active"

    @property
    def tick(self) -> str:  # hash: last tick, carry, admitted_total, observed rate
        return f"{self.tag}:tick"

    @property
    def samples(self) -> str:  # list: "ms waiting active admitted_total", for the chart
        return f"{self.tag}:samples"

    def entrance(self, user_id: int) -> str:  # hash: this window's token id, its end, who entered
        return f"{self.tag}:ent:{int(user_id)}"

    @property
    def seats(self) -> str:  # hash: seat id -> state (absent = available); see _prelude.lua
        return f"{self.tag}:seats"

    @property
    def fence(self) -> str:  # hash: seat id -> fencing-token counter (never expires)
        return f"{self.tag}:fence"

    def holds(self, user_id: int) -> str:  # set: seat ids this person holds or pays for
        return f"{self.tag}:holds:{int(user_id)}"
