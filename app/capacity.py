"""The poll model (docs/DESIGN.md, "The poll budget"): which interval each
waiting person gets, and the requests/s the whole queue then sends.

The tier table gives the shape: the front polls every second and sees its
exact place, people further back poll less often. The event's poll budget
gives the scale: the last tier's interval is stretched by the smallest
factor that keeps the modelled total within the budget (none while the
table alone fits), and the tiers between by a share of it that grows with
their distance from the front (tier k of K by factor^(k/K)), so that
people near their turn still see it move. One limit stands above both: nobody is told to
wait longer than their time to their turn plus most of an active window, so
that someone let in while polling slowly still looks again before their
slot lapses (`latest_poll`; app/lua/_prelude.lua applies the same rule to
the heartbeat).
"""

import math
from dataclasses import dataclass
from typing import NamedTuple

# The share of an active window a person may spend not yet knowing it is
# their turn: the rest covers jitter and a slow network.
WINDOW_SHARE = 0.8


class PollRule(NamedTuple):  # (a tuple: every poll makes one)
    tiers: list[dict]  # POLL_TIERS: the shape
    budget: float  # polls/s for the whole queue: the scale
    window: float  # seconds: WINDOW_SHARE of the event's active window
    rate: float  # admissions/s: how fast the queue moves at most

    @classmethod
    def of(cls, tiers, budget, active_ttl, rate) -> "PollRule":
        return cls(tiers, float(budget), WINDOW_SHARE * active_ttl, float(rate))


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


def latest_poll(position: int, rule: PollRule) -> float:
    """The longest anyone at this position may be told to wait: until their
    turn at the fastest admission, plus the window."""
    return rule.window + (position - 1) / rule.rate


def stretched(index: int, scale: float, tiers: list[dict]) -> float:
    """Tier `index`'s interval at this scale (the front's never changes)."""
    if scale == 1.0 or not index:  # the common case, without the power
        return tiers[index]["interval"]
    return tiers[index]["interval"] * scale ** (index / max(1, len(tiers) - 1))


def interval(position: int, scale: float, rule: PollRule) -> float:
    """Seconds until this person's next poll (before jitter)."""
    index, _ = tier_for(position, rule.tiers)
    return min(stretched(index, scale, rule.tiers), latest_poll(position, rule))


@dataclass
class TierLoad:
    first: int  # first position in the tier
    last: int | None  # last position (None: and beyond)
    people: int
    shortest: float  # the intervals its people get
    longest: float
    requests_per_s: float


def tier_loads(waiting: int, scale: float, rule: PollRule) -> list[TierLoad]:
    """How many of `waiting` people sit in each tier, and what they send.
    The sum over a tier's people of 1 / interval, in closed form: where
    the latest-poll limit applies (1 / a line in the position) by its
    integral over the positions' unit cells, which for a convex, falling
    function is never below the sum."""
    loads, lower = [], 0
    for index, tier in enumerate(rule.tiers):
        upper = tier["up_to"]
        last = waiting if upper is None else min(waiting, upper)
        people = max(0, last - lower)
        first = lower + 1
        every = stretched(index, scale, rule.tiers)
        rate = 0.0
        if people:
            # Positions before `bound_end` are held to their latest poll.
            bound_end = first - 1
            if every > rule.window:
                bound_end = min(last, math.ceil(1 + rule.rate * (every - rule.window)) - 1)
            if bound_end >= first:
                rate += rule.rate * math.log(
                    (rule.window + (bound_end - 0.5) / rule.rate)
                    / (rule.window + (first - 1.5) / rule.rate)
                )
            rate += (last - max(bound_end, first - 1)) / every
        loads.append(
            TierLoad(
                first,
                upper,
                people,
                interval(first, scale, rule) if people else every,
                interval(max(first, last), scale, rule) if people else every,
                rate,
            )
        )
        if upper is None or upper >= waiting:
            break
        lower = upper
    return loads


def load(waiting: int, scale: float, rule: PollRule) -> float:
    """Polls/s that `waiting` people send at this scale (an upper bound)."""
    return sum(t.requests_per_s for t in tier_loads(waiting, scale, rule))


def scale_for(waiting: int, rule: PollRule) -> float:
    """The smallest stretch (>= 1) that keeps `waiting` people within the
    budget. Where even the longest intervals allowed cannot (the front and
    the people near their turn alone send more), the largest stretch that
    still changes anything."""
    if load(waiting, 1.0, rule) <= rule.budget or len(rule.tiers) == 1:
        return 1.0  # (a table of one tier is all front: nothing to stretch)
    # Beyond `most`, every interval behind the front is at its latest poll.
    last = len(rule.tiers) - 1
    most = max(
        (latest_poll(max(1, min(waiting, t["up_to"] or waiting)), rule) / t["interval"])
        ** (last / k)
        for k, t in enumerate(rule.tiers[1:], start=1)
    )
    if load(waiting, most, rule) > rule.budget:
        return most
    low, high = 1.0, most
    while high - low > 1e-3 * low:
        middle = (low + high) / 2
        low, high = (low, middle) if load(waiting, middle, rule) <= rule.budget else (middle, high)
    return high


def prequeue_interval(size: int, rule: PollRule) -> float:
    """Before the draw nobody's place is known: the pre-queue shares the
    budget evenly, each at most a window apart (any of them may be first).
    The same holds for people staying in line for returned seats after a
    sell-out: nobody moves until a seat comes back."""
    front = rule.tiers[0]["interval"]
    return min(max(front, size / rule.budget), max(front, rule.window))


def report(waiting: int, rule: PollRule, fixed_interval: float = 3.0) -> str:
    """The table the `capacity` command prints."""
    scale = scale_for(waiting, rule)
    lines = [
        f"Polling cost for {waiting:,} people waiting, poll budget {rule.budget:,.0f}/s",
        "",
        f"{'positions':<24}{'people':>12}{'poll every':>16}{'requests/s':>14}",
    ]
    for t in tier_loads(waiting, scale, rule):
        span = f"{t.first:,} - {t.last:,}" if t.last else f"{t.first:,} and beyond"
        every = f"{t.shortest:,.0f}s" if t.longest - t.shortest < 0.5 else (
            f"{t.shortest:,.0f}-{t.longest:,.0f}s"
        )  # fmt: skip
        lines.append(f"{span:<24}{t.people:>12,}{every:>16}{t.requests_per_s:>14,.1f}")
    total = load(waiting, scale, rule)
    table = load(waiting, 1.0, PollRule(rule.tiers, math.inf, math.inf, rule.rate))
    fixed = waiting / fixed_interval
    lines += [
        "",
        f"{f'total (the last tier stretched x {scale:.2f})':<52}{total:>14,.1f}",
        f"{'the tier table alone':<52}{table:>14,.1f}",
        f"{f'fixed {fixed_interval:g} s polling':<52}{fixed:>14,.1f}",
    ]
    if total > rule.budget * 1.001:
        lines.append("over budget: the front and the people near their turn alone send more")
    return "\n".join(lines)


def time_to_admit(
    waiting: int, rate: float, cap: int, active_ttl: float, active_now: int = 0
) -> dict:
    """How long until everyone waiting now has been let in.

    The free slots fill at `rate`; after that people get in only as others
    leave. A window lasts at most `active_ttl`, so the cap sustains at least
    cap / active_ttl admissions per second: the estimate is an upper bound
    (buyers who finish early free their slots sooner)."""
    free = max(0, cap - active_now)
    sustained = min(rate, cap / active_ttl) if active_ttl else rate
    first = min(waiting, free)
    seconds = first / rate if rate else float("inf")
    rest = waiting - first
    if rest:
        seconds += rest / sustained if sustained else float("inf")
    return {
        "seconds": seconds,
        "sustained_rate": sustained,
        "limited_by": "rate" if rate <= sustained else "cap",
    }
