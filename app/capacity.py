"""The polling cost model (docs/DESIGN.md, "The poll interval"): the
requests/s a waiting crowd sends, per tier."""

from dataclasses import dataclass


@dataclass
class TierLoad:
    first: int  # first position in the tier
    last: int | None  # last position (None: and beyond)
    people: int
    interval: float
    requests_per_s: float


def tier_loads(waiting: int, tiers: list[dict]) -> list[TierLoad]:
    """How many of `waiting` people sit in each tier, and what they cost."""
    loads, lower = [], 0
    for tier in tiers:
        upper = tier["up_to"]
        people = max(0, (waiting if upper is None else min(waiting, upper)) - lower)
        loads.append(
            TierLoad(lower + 1, upper, people, tier["interval"], people / tier["interval"])
        )
        if upper is None:
            break
        lower = upper
    return loads


def total_rate(waiting: int, tiers: list[dict]) -> float:
    return sum(load.requests_per_s for load in tier_loads(waiting, tiers))


def report(waiting: int, tiers: list[dict], fixed_interval: float = 3.0) -> str:
    """The table the `capacity` command prints."""
    lines = [
        f"Polling cost for {waiting:,} people waiting",
        "",
        f"{'positions':<22}{'people':>12}{'poll every':>12}{'requests/s':>14}",
    ]
    for load in tier_loads(waiting, tiers):
        span = f"{load.first:,} - {load.last:,}" if load.last else f"{load.first:,} and beyond"
        lines.append(
            f"{span:<22}{load.people:>12,}{load.interval:>11g}s{load.requests_per_s:>14,.1f}"
        )
    tiered, fixed = total_rate(waiting, tiers), waiting / fixed_interval
    cut = (1 - tiered / fixed) * 100 if fixed else 0.0
    lines += [
        "",
        f"{'tiered total':<46}{tiered:>14,.1f}",
        f"{f'fixed {fixed_interval:g} s polling':<46}{fixed:>14,.1f}",
        f"tiered polling sends {cut:.1f} % fewer requests",
    ]
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
