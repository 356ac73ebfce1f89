"""The fans' live seat map at a bounded cost per refresh.

Every fan's map refreshes itself every 3 s. Reading and rendering every seat
each time costs seconds of CPU (and megabytes of HTML) for a 100,000-seat
event, so:

- what never changes (the seats, in map order) is cut once per event per
  process into blocks of consecutive seats (`Layout`);
- who holds what, as everyone sees it, is one `Snapshot` per event per
  process, read from Redis at most every SEAT_MAP_SNAPSHOT_MS and shared by
  all its readers; each person's own seats (and the seat an action touched)
  are read exactly on every request (app/lua/my_seats.lua), so "yours" is
  never stale;
- each block has a short digest of its seats as the person sees them. The
  page sends back the digests of what it shows (its `version`), and only
  the blocks whose digest differs are rendered and sent again;
- the seats left per section are counted once per snapshot (from the seats
  it already has, no other read) and put right for the person's own seats.
"""

import base64
import binascii
import hashlib
import math
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache

from flask import current_app

from app import seats
from app.seats import SeatInfo, SeatState

DIGEST = 4  # bytes per block: a changed block looks unchanged once in 4 billion
MAX_BLOCKS = 400  # so a version stays near 2 KB, well within a URL
MIN_BLOCK = 256  # seats; small events still get a few blocks


def cell(state: SeatState, user_id: int | None) -> str:
    """A seat as this person sees it: available, mine, held, booked or
    blocked (a payment in progress, even one's own, shows as held)."""
    if state.kind == "held" and state.holder == user_id:
        return "mine"
    return state.public


def _digest(cells: dict[int, str]) -> bytes:
    text = ";".join(f"{sid}:{c}" for sid, c in sorted(cells.items()) if c != "available")
    return hashlib.blake2b(text.encode(), digest_size=DIGEST).digest()


@dataclass(frozen=True)
class Section:
    """A section of the map: its name, how many seats, their price range."""

    name: str
    seats: int
    low: int  # points
    high: int


@dataclass(frozen=True)
class Layout:
    """The seats of an event in map order, cut into blocks."""

    seats: tuple[SeatInfo, ...]
    by_id: dict[int, SeatInfo]
    block_of: dict[int, int]  # seat id -> its block
    block_size: int
    sections: tuple[Section, ...] = ()  # in map order
    section_index: dict[str, int] = field(default_factory=dict)  # name -> place in sections

    @property
    def blocks(self) -> int:
        return max(1, math.ceil(len(self.seats) / self.block_size))

    def block(self, number: int) -> tuple[SeatInfo, ...]:
        return self.seats[number * self.block_size : (number + 1) * self.block_size]


@lru_cache(maxsize=64)
def layout(event_id: int) -> Layout:
    """Seats never change after an event is created: cut once per process
    (a missing event raises 404, and lru_cache keeps no exception)."""
    by_id = seats.catalogue(event_id)
    in_order = tuple(by_id.values())
    size = max(MIN_BLOCK, math.ceil(len(in_order) / MAX_BLOCKS))
    prices: dict[str, list[int]] = {}
    for seat in in_order:
        prices.setdefault(seat.section, []).append(seat.price)
    sections = tuple(Section(name, len(p), min(p), max(p)) for name, p in prices.items())
    return Layout(
        in_order,
        by_id,
        {s.id: i // size for i, s in enumerate(in_order)},
        size,
        sections,
        {section.name: i for i, section in enumerate(sections)},
    )


@dataclass(frozen=True)
class Snapshot:
    """The taken seats of an event as a stranger sees them, at one moment."""

    at: float  # time.monotonic() of the read
    states: dict[int, SeatState]  # seats that are not available
    by_block: dict[int, list[int]]  # block -> its taken seat ids
    holders: dict[int, list[int]]  # user id -> the seats they hold
    digests: tuple[bytes, ...]  # per block
    taken: tuple[int, ...] = ()  # per section (Layout.sections): seats not available


_snapshots: dict[int, Snapshot] = {}
_reading: dict[int, threading.Lock] = defaultdict(threading.Lock)  # one reader per event
_storing = threading.Lock()  # one writer of _snapshots
reads = 0  # snapshots read from Redis by this process (the tests count them)


def snapshot(event_id: int) -> Snapshot:
    """The event's shared snapshot, read again when older than
    SEAT_MAP_SNAPSHOT_MS; one thread reads, the others wait and share it."""
    fresh = current_app.config["SEAT_MAP_SNAPSHOT_MS"] / 1000
    snap = _snapshots.get(event_id)
    if snap and time.monotonic() - snap.at < fresh:
        return snap
    with _reading[event_id]:
        snap = _snapshots.get(event_id)
        if snap and time.monotonic() - snap.at < fresh:
            return snap
        snap = _read(event_id)
        with _storing:
            if len(_snapshots) >= 64:  # old events' snapshots go first
                del _snapshots[next(iter(_snapshots))]
            _snapshots.pop(event_id, None)
            _snapshots[event_id] = snap
        return snap


def _read(event_id: int) -> Snapshot:
    global reads
    reads += 1
    plan = layout(event_id)
    _, _, states = seats.live_states(event_id)
    states = {sid: s for sid, s in states.items() if sid in plan.block_of}
    by_block, holders = defaultdict(list), defaultdict(list)
    taken_in = [0] * len(plan.sections)
    for sid, state in states.items():
        by_block[plan.block_of[sid]].append(sid)
        taken_in[plan.section_index[plan.by_id[sid].section]] += 1
        if state.kind == "held":
            holders[state.holder].append(sid)
    empty = _digest({})
    digests = [empty] * plan.blocks
    for block, taken in by_block.items():
        digests[block] = _digest({sid: cell(states[sid], None) for sid in taken})
    return Snapshot(
        time.monotonic(), states, dict(by_block), dict(holders), tuple(digests), tuple(taken_in)
    )


@dataclass
class View:
    """One person's seat map: the shared snapshot with their own seats exact."""

    layout: Layout
    user_id: int
    now_ms: int
    active_until_ms: int
    unbought: int  # seats the limit per person leaves them, before their holds
    snapshot: Snapshot
    exact: dict[int, SeatState]  # read now: their own seats, and those asked for
    digests: tuple[bytes, ...]
    listed: frozenset[int] = frozenset()  # their holds set, lapsed holds included

    def seats_left(self) -> list[tuple[Section, int]]:
        """Each section with its seats available now: the snapshot's count,
        put right for the seats read exactly."""
        taken = list(self.snapshot.taken) or [0] * len(self.layout.sections)
        for sid, state in self.exact.items():
            was = self.snapshot.states.get(sid, AVAILABLE).kind != "available"
            now = state.kind != "available"
            if was != now:
                taken[self.layout.section_index[self.layout.by_id[sid].section]] += now - was
        return [(s, max(0, s.seats - t)) for s, t in zip(self.layout.sections, taken, strict=True)]

    def lapsed(self) -> list[tuple[SeatInfo, str]]:
        """Seats whose hold by this person ran out (still in their holds
        set), each with what it is now: "available" or another cell."""
        return [
            (self.layout.by_id[sid], self.cell(sid))
            for sid in sorted(self.listed)
            if sid in self.layout.by_id and self.state(sid).holder != self.user_id
        ]

    def state(self, seat_id: int) -> SeatState:
        return self.exact.get(seat_id) or self.snapshot.states.get(seat_id) or AVAILABLE

    def cell(self, seat_id: int) -> str:
        return cell(self.state(seat_id), self.user_id)

    def seconds_left(self, state: SeatState) -> int:
        """Of a hold or a payment lease, by Redis's clock."""
        return max(0, (state.until_ms - self.now_ms) // 1000)

    def mine(self) -> list[tuple[SeatInfo, SeatState]]:
        """The seats this person holds, in map order."""
        return [
            (self.layout.by_id[sid], s)
            for sid, s in sorted(self.exact.items())
            if cell(s, self.user_id) == "mine"
        ]

    @property
    def version(self) -> str:
        """The digests of every block, as the page keeps them."""
        return base64.urlsafe_b64encode(b"".join(self.digests)).decode().rstrip("=")

    def changed_blocks(self, version: str | None) -> list[int]:
        """The blocks a page showing `version` has wrong (all, for no version)."""
        try:
            theirs = base64.urlsafe_b64decode((version or "") + "=" * (-len(version or "") % 4))
        except (ValueError, binascii.Error):
            theirs = b""
        if len(theirs) != len(self.digests) * DIGEST:
            return list(range(len(self.digests)))
        return [b for b, d in enumerate(self.digests) if theirs[b * DIGEST : (b + 1) * DIGEST] != d]


AVAILABLE = SeatState("available")


def view(event_id: int, user_id: int, session_id: str, also: tuple[int, ...] = ()) -> View:
    """This person's map (403 unless entered and still active). `also`: seats
    to read exactly, such as the one an action just touched."""
    plan = layout(event_id)
    snap = snapshot(event_id)
    # Seats the snapshot says are theirs are read exactly too: they may have
    # been released or paid for since.
    ask = {s for s in also if s in plan.block_of} | set(snap.holders.get(user_id, ()))
    own = seats.own_states(event_id, user_id, session_id, tuple(sorted(ask)))
    exact = {sid: s for sid, s in own.states.items() if sid in plan.block_of}
    digests = list(snap.digests)
    for block in {plan.block_of[sid] for sid in exact}:
        taken = {sid: cell(snap.states[sid], user_id) for sid in snap.by_block.get(block, ())}
        taken.update(
            (sid, cell(s, user_id)) for sid, s in exact.items() if plan.block_of[sid] == block
        )
        digests[block] = _digest(taken)
    return View(
        plan,
        user_id,
        own.now_ms,
        own.active_until_ms,
        own.unbought,
        snap,
        exact,
        tuple(digests),
        own.listed,
    )


def held_by(state: SeatState, user_id: int) -> bool:
    """The JSON API's held_by_me: held or being paid for by this person."""
    return state.kind in ("held", "paying") and state.holder == user_id


def seat_list(mine: View) -> list[dict]:
    """The seat map as the JSON API shows it."""
    listing = []
    for seat in mine.layout.seats:
        state = mine.state(seat.id)
        item = {
            "id": seat.id,
            "label": seat.label,
            "section": seat.section,
            "row": seat.row,
            "number": seat.number,
            "price": seat.price,
            "status": state.public,
            "held_by_me": held_by(state, mine.user_id),
        }
        if item["held_by_me"]:
            item["token"] = state.token
            item["expires_in"] = mine.seconds_left(state)
        listing.append(item)
    return listing


def etag(mine: View) -> str:
    """Changes whenever seat_list(mine) would (so it is found without it)."""
    own = ",".join(
        f"{sid}:{s.token}:{mine.seconds_left(s)}"
        for sid, s in sorted(mine.exact.items())
        if held_by(s, mine.user_id)
    )
    return hashlib.blake2b(b"".join(mine.digests) + own.encode(), digest_size=12).hexdigest()
