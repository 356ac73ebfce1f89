"""A model check of the whole sale: a Hypothesis state machine drives join,
poll, leave, admit, clean-up, the entrance, hold, release and checkout for six
people and six seats of one event (max_active 2) in random orders, with
random clock jumps, against the real Redis and the real database (MySQL, or
SQLite through BEGIN IMMEDIATE).

Clock jumps rewrite the times stored in Redis instead of sleeping: every
heartbeat, active window (with the entrance record that mirrors it) and
hold or payment lease moves back by the jump, which is what the scripts see
when the clock moves forward. Single jumps age one person's heartbeat, end
one person's window or one seat's hold.

After every step: live actives <= max_active; nobody both waiting and
active; queue positions are 1..N without gaps, in join order, nobody
overtakes; everyone waiting has a heartbeat (any other entry is an admitted
person's, until the clean-up takes it); no seat is held by two people
(and every live hold is in its holder's set); no seat is booked twice (one
live booking row, the same buyer in MySQL and Redis); no payment is left
half done; fencing tokens never go back; points are conserved.

Deterministic (derandomize, no example database) and bounded (80 examples of
up to 30 steps, ~10 s). The number of examples and steps is printed.
"""

import time
from collections import Counter

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from peewee import fn
from werkzeug.security import generate_password_hash

from app import checkout, entrance, events, keys, mirror, seats, waiting_room
from app.errors import AppError
from app.models import Booking, BookingSeat, Payment, Seat, User

pytestmark = [pytest.mark.attacks, pytest.mark.model]

PEOPLE = 6
POINTS = [3000, 1200, 900, 600, 5000, 400]  # some cannot afford what they hold
SECTIONS = [
    {"name": "A", "rows": 1, "seats_per_row": 3, "price": 1000},
    {"name": "B", "rows": 1, "seats_per_row": 3, "price": 400},
]
MAX_ACTIVE, ACTIVE_TTL, HOLD_TTL, HEARTBEAT_TIMEOUT = 2, 300, 120, 60
JUMPS = [1, 5, 30, 61, 121, 299, 301, 900]  # seconds, around each timeout
EXAMPLES, STEPS = 80, 30

# What each operation may refuse with (anything else, or a 5xx, is a failure).
REFUSALS = {
    "poll": {404},
    "enter": {401, 409},
    "hold": {403, 409, 422},
    "checkout": {402, 403, 409, 422},
}

STATS = Counter()


def now_ms(r) -> int:
    seconds, micros = r.time()
    return seconds * 1000 + micros // 1000


def parse(state: str) -> list[str]:
    return state.split(":")


def machine_for(app, r, event_id: int, user_ids: list[int], seat_ids: list[int]):
    k = keys.event(event_id)
    total_points = sum(POINTS)
    max_seats = app.config["MAX_SEATS_PER_PERSON"]

    person = st.integers(0, PEOPLE - 1)
    seat = st.integers(0, len(seat_ids) - 1)

    class Sale(RuleBasedStateMachine):
        # People the walk saw admitted, entered, holding: drawn more often so that
        # the walk gets through the whole sale, not only its refusals. Entries go
        # stale (windows end, holds lapse): then the refusals are checked instead.
        admitted = Bundle("admitted")
        entered = Bundle("entered")
        holding = Bundle("holding")

        def __init__(self):
            super().__init__()
            STATS["examples"] += 1
            self.reset()
            self.tokens: dict[int, str] = {}  # person -> last admission token seen
            self.fence_seen: dict[str, int] = {}
            self.order: list[str] = []  # the queue as last seen, head first
            self.ever_admitted: set[str] = set()

        # Setup: a clean event for every example

        def reset(self):
            r.flushdb()  # the test Redis database only
            BookingSeat.delete().execute()
            Payment.delete().execute()
            Booking.delete().execute()
            Seat.update(status="available", holder=None, version=0, fencing_token=0).where(
                Seat.event == event_id
            ).execute()
            for uid, points in zip(user_ids, POINTS, strict=True):
                User.update(points=points).where(User.id == uid).execute()
            mirror.sync_config(events.get(event_id))

        @initialize()
        def start(self):
            self.check_all()

        # People

        def sid(self, p: int) -> str:
            return f"session-{user_ids[p]}"

        def refused(self, operation: str, e: AppError):
            assert e.status in REFUSALS[operation], (operation, e.status, e.code, e.message)
            STATS[f"{operation}:{e.status}"] += 1

        @rule(target=admitted, p=person)
        def join(self, p):
            uid = user_ids[p]
            status = waiting_room.join(event_id, uid)
            STATS[f"join:{status.status}"] += 1
            if status.status == "admitted":
                assert self.live_active().get(str(uid)), "admitted but not active"
                self.tokens[p] = status.token
                return p
            assert status.position == r.zrank(k.queue, str(uid)) + 1
            assert status.waiting_total == r.zcard(k.queue)
            return multiple()

        @rule(target=admitted, p=person)
        def poll(self, p):
            uid = str(user_ids[p])
            active, waiting = uid in self.live_active(), r.zscore(k.queue, uid) is not None
            try:
                status = waiting_room.poll(event_id, user_ids[p])
            except AppError as e:
                self.refused("poll", e)
                assert not active and not waiting, "in the room but told not_in_queue"
                return multiple()
            STATS[f"poll:{status.status}"] += 1
            assert status.status == ("admitted" if active else "waiting")
            if status.status == "admitted":
                self.tokens[p] = status.token
                return p
            assert status.position == r.zrank(k.queue, uid) + 1
            return multiple()

        @rule(target=entered, p=person)
        def arrive(self, p):
            """The common path in one step: join, an admission tick, the poll
            that finds the person in and the entrance (as the browser's status
            fragment does it), each checked as in its own rule."""
            self.join(p)
            self.admit()
            if self.poll(p) == p:
                return self.enter(p, elsewhere=False)
            return multiple()

        @rule(p=person)
        def leave(self, p):
            uid = str(user_ids[p])
            waiting_room.leave(event_id, user_ids[p])
            STATS["leave"] += 1
            assert r.zscore(k.queue, uid) is None and r.zscore(k.active, uid) is None
            assert r.zscore(k.heartbeat, uid) is None and not r.exists(k.entrance(uid))

        @rule(target=entered, p=admitted, elsewhere=st.sampled_from([False, False, True]))
        def enter(self, p, elsewhere):
            """Consume the last token seen, in this person's session or (a copied
            token) in another one."""
            token = self.tokens[p]
            sid = f"elsewhere-{user_ids[p]}" if elsewhere else self.sid(p)
            try:
                until = entrance.enter(event_id, user_ids[p], sid, token)
            except AppError as e:
                self.refused("enter", e)
                return multiple()
            STATS["enter:ok" if not elsewhere else "enter:elsewhere"] += 1
            assert r.hget(k.entrance(user_ids[p]), "session") == sid
            assert until == int(r.zscore(k.active, str(user_ids[p]))) // 1000
            return multiple() if elsewhere else p

        # The clock (scores and leases in Redis, moved instead of waited for)

        @rule(
            what=st.sampled_from(["jump", "jump", "stops_polling", "window_ends", "hold_lapses"]),
            seconds=st.sampled_from(JUMPS),
            p=person,
            s=seat,
        )
        def time_passes(self, what, seconds, p, s):
            """The whole clock jumps by `seconds`; or one person stops polling
            (their heartbeat ages), one window ends, one hold lapses."""
            STATS[f"time:{what}"] += 1
            uid = str(user_ids[p])
            if what == "jump":
                self.jump(seconds * 1000)
            elif what == "stops_polling" and r.zscore(k.heartbeat, uid) is not None:
                r.zadd(k.heartbeat, {uid: int(r.zscore(k.heartbeat, uid)) - seconds * 1000})
            elif what == "window_ends" and r.zscore(k.active, uid) is not None:
                self.move_window(uid, now_ms(r) - 1000)
            elif what == "hold_lapses":
                state = r.hget(k.seats, seat_ids[s])
                if state and state.startswith("held:"):
                    h = parse(state)
                    r.hset(k.seats, seat_ids[s], f"held:{h[1]}:{h[2]}:{now_ms(r) - 1000}")

        def jump(self, ms: int):
            for member, score in r.zrange(k.heartbeat, 0, -1, withscores=True):
                r.zadd(k.heartbeat, {member: int(score) - ms})
            for member, score in r.zrange(k.active, 0, -1, withscores=True):
                self.move_window(member, int(score) - ms, by=ms)
            for seat_id, state in r.hgetall(k.seats).items():
                h = parse(state)
                if h[0] == "held":
                    r.hset(k.seats, seat_id, f"held:{h[1]}:{h[2]}:{int(h[3]) - ms}")
                elif h[0] == "paying":
                    r.hset(
                        k.seats, seat_id, f"paying:{h[1]}:{h[2]}:{int(h[3]) - ms}:{int(h[4]) - ms}"
                    )

        def move_window(self, member: str, until: int, by: int | None = None):
            """Set an active window's end; the entrance record mirrors it."""
            r.zadd(k.active, {member: until})
            record = k.entrance(member)
            old = r.hget(record, "until")
            if old is not None:
                new = until if by is None else int(old) - by
                r.hset(record, "until", new)
                r.pexpireat(record, new)

        # The jobs

        @rule()
        def admit(self):
            before = self.queue()
            live_before = set(self.live_active())
            result = waiting_room.admit(event_id)
            STATS["admitted"] += result["admitted"]
            n = result["admitted"]
            live_after = set(self.live_active())
            assert n <= MAX_ACTIVE - len(live_before & live_after), (n, live_before)
            # First in, first out: exactly the head of the queue went in.
            assert self.queue() == before[n:]
            assert live_after - live_before == set(before[:n])
            self.ever_admitted |= set(before[:n])

        @rule(p=person, closed_tab=st.booleans())
        def clean_up(self, p, closed_tab):
            """The clean-up job; perhaps after someone waiting closed their tab
            (their heartbeat is older than the timeout)."""
            uid = str(user_ids[p])
            if closed_tab and r.zscore(k.heartbeat, uid) is not None:
                r.zadd(k.heartbeat, {uid: now_ms(r) - (HEARTBEAT_TIMEOUT + 1) * 1000})
            before = self.queue()
            # Only the waiting can be ghosts (admitted people's entries stay behind).
            beats = [
                (m, s) for m, s in r.zrange(k.heartbeat, 0, -1, withscores=True) if m in before
            ]
            first = now_ms(r) - HEARTBEAT_TIMEOUT * 1000
            count = waiting_room.clean_up(event_id, HEARTBEAT_TIMEOUT, batch=2, pause_s=0)
            STATS[f"clean_up with {len(before)} waiting"] += 1
            last = now_ms(r) - HEARTBEAT_TIMEOUT * 1000
            STATS["cleaned_up"] += count
            removed = set(before) - set(self.queue())
            assert count == len(removed)
            # Everyone silent for the timeout went, and nobody who polled since.
            assert {m for m, score in beats if score <= first} <= removed
            assert removed <= {m for m, score in beats if score <= last}
            assert self.queue() == [m for m in before if m not in removed]
            # Every stale entry went, the admitted people's too (uncounted).
            assert not r.zrangebyscore(k.heartbeat, "-inf", first)

        # Seats: the people who came in, and strangers

        @rule(target=holding, p=entered, s=seat, pay=st.sampled_from([False, False, True]))
        def hold(self, p, s, pay):
            """Hold a seat; sometimes pay for everything held at once."""
            held = self.try_hold(p, s)
            if pay and held == (p, s):
                self.try_checkout(p, self.held_by(p), stale=False, key="k1")
            return held

        def held_by(self, p) -> list[int]:
            index = {str(seat_id): i for i, seat_id in enumerate(seat_ids)}
            return [
                index[seat_id]
                for seat_id, state in r.hgetall(k.seats).items()
                if state.startswith(f"held:{user_ids[p]}:")
            ]

        @rule(
            held=holding,
            token=st.sampled_from(["none", "right", "wrong"]),
            someone_else=st.sampled_from([False, False, True]),
        )
        def release(self, held, token, someone_else):
            p, s = held
            self.try_release((p + someone_else) % PEOPLE, s, token)

        @rule(
            held=holding,
            what=st.sampled_from(["all mine", "all mine", "this", "and another"]),
            other=seat,
            stale=st.sampled_from([False, False, False, True]),
            key=st.sampled_from(["k1", "k1", "k2"]),
        )
        def checkout(self, held, what, other, stale, key):
            """Pay for every seat this person holds (as the checkout page does),
            for this one seat, or for it and another seat (perhaps not theirs)."""
            p, s = held
            picks = [s] if what == "this" else [s, other] if other != s else [s]
            if what == "all mine":
                picks = self.held_by(p) or [s]
            self.try_checkout(p, picks, stale, key)

        @rule(
            target=holding,
            action=st.sampled_from(["hold", "release", "checkout"]),
            p=person,
            picks=st.lists(seat, min_size=1, max_size=5, unique=True),
            token=st.sampled_from(["none", "right", "wrong"]),
        )
        def stranger(self, action, p, picks, token):
            """Anyone at all: mostly refused (not entered, someone else's seat)."""
            if action == "hold":
                return self.try_hold(p, picks[0])
            if action == "release":
                self.try_release(p, picks[0], token)
            else:
                self.try_checkout(p, picks, token == "wrong", "k3")
            return multiple()

        def try_hold(self, p, s):
            uid = user_ids[p]
            try:
                held = seats.hold(event_id, uid, self.sid(p), seat_ids[s])
            except AppError as e:
                self.refused("hold", e)
                return multiple()
            STATS["hold:ok"] += 1
            state = parse(r.hget(k.seats, seat_ids[s]))
            assert state[:3] == ["held", str(uid), str(held.token)], state
            assert int(state[3]) <= r.zscore(k.active, str(uid))  # never outlives the window
            return (p, s)

        def try_release(self, p, s, token):
            uid, seat_id = user_ids[p], seat_ids[s]
            state = r.hget(k.seats, seat_id)
            mine = bool(state) and parse(state)[:2] == ["held", str(uid)]
            given = None
            if token != "none":
                given = int(parse(state)[2]) if mine else 1
                given += token == "wrong"
            released = seats.release(event_id, uid, seat_id, given)
            STATS[f"release:{released}"] += 1
            assert released == (mine and token != "wrong")
            assert r.hget(k.seats, seat_id) == (None if released else state)

        def try_checkout(self, p, picks, stale, key):
            """Pay for seats: the tokens this person holds them with (one made
            stale on request), or a guess for seats they do not hold."""
            uid = user_ids[p]
            items = []
            for s in picks:
                state = r.hget(k.seats, seat_ids[s])
                h = parse(state) if state else []
                items.append((seat_ids[s], int(h[2]) if h[:2] == ["held", str(uid)] else 1))
            if stale:
                items[0] = (items[0][0], items[0][1] + 1)
            points_before = User.get_by_id(uid).points
            try:
                receipt, created = checkout.checkout(
                    event_id, uid, self.sid(p), items, f"{uid}-{key}"
                )
            except AppError as e:
                self.refused("checkout", e)
                assert User.get_by_id(uid).points == points_before
                return
            STATS[f"checkout:{'created' if created else 'replayed'}"] += 1
            if not created:
                assert User.get_by_id(uid).points == points_before
                return
            assert User.get_by_id(uid).points == points_before - receipt.amount
            for seat_id, token in items:
                assert r.hget(k.seats, seat_id) == f"booked:{uid}:{token}"
            # Buying ends the window, and the buyer's other holds go back on sale.
            assert r.zscore(k.active, str(uid)) is None
            assert not any(v.startswith(f"held:{uid}:") for v in r.hgetall(k.seats).values())

        # Invariants, after every step

        def queue(self) -> list[str]:
            return r.zrange(k.queue, 0, -1)

        def live_active(self) -> dict[str, int]:
            now = now_ms(r)
            return {
                m: int(score)
                for m, score in r.zrange(k.active, 0, -1, withscores=True)
                if score > now
            }

        @invariant()
        def check_all(self):
            STATS["steps"] += 1
            self.check_room()
            self.check_seats()
            self.check_money()

        def check_room(self):
            live = self.live_active()
            assert len(live) <= MAX_ACTIVE, live
            queue = r.zrange(k.queue, 0, -1, withscores=True)
            members = [m for m, _ in queue]
            assert not set(members) & set(live), ("waiting and active", members, live)
            # Positions 1..N without gaps, in join order (scores strictly increase).
            assert len(set(members)) == len(members) == r.zcard(k.queue)
            assert [r.zrank(k.queue, m) for m in members] == list(range(len(members)))
            scores = [score for _, score in queue]
            assert scores == sorted(set(scores)), scores
            # Nobody overtakes: those still waiting keep their order.
            still = [m for m in self.order if m in set(members)]
            assert [m for m in members if m in set(still)] == still
            self.order = members
            # Everyone waiting has a heartbeat; any other entry is an admitted
            # person's, left for the clean-up.
            beats = set(r.zrange(k.heartbeat, 0, -1))
            assert set(members) <= beats and beats - set(members) <= self.ever_admitted

        def check_seats(self):
            now = now_ms(r)
            states = r.hgetall(k.seats)
            live_holds = Counter()
            for seat, state in states.items():
                s = parse(state)
                assert s[0] != "paying", ("a payment was left half done", seat, state)
                if s[0] == "held" and int(s[3]) > now:
                    live_holds[s[1]] += 1
                    assert r.sismember(k.holds(s[1]), seat), ("hold not in the set", seat)
            assert all(n <= max_seats for n in live_holds.values()), live_holds
            fence = r.hgetall(k.fence)
            for seat, counter in fence.items():
                assert int(counter) >= self.fence_seen.get(seat, 0), ("fence went back", seat)
                self.fence_seen[seat] = int(counter)
            rows = {s.id: s for s in Seat.select().where(Seat.event == event_id)}
            live = dict(
                BookingSeat.select(BookingSeat.seat, fn.COUNT(BookingSeat.id))
                .where(BookingSeat.live == 1)
                .group_by(BookingSeat.seat)
                .tuples()
            )
            buyers = dict(
                BookingSeat.select(BookingSeat.seat, Booking.user)
                .join(Booking)
                .where(BookingSeat.live == 1)
                .tuples()
            )
            # The limit per person counts holds and seats bought alike.
            bought = Counter(str(row.holder_id) for row in rows.values() if row.status == "booked")
            for user in set(live_holds) | set(bought):
                assert live_holds[user] + bought[user] <= max_seats, (user, live_holds, bought)
            for seat_id, row in rows.items():
                assert live.get(seat_id, 0) <= 1, ("booked twice", seat_id)
                assert row.fencing_token <= int(fence.get(str(seat_id), 0)), seat_id
                redis_state = states.get(str(seat_id), "")
                if row.status == "booked":
                    assert live.get(seat_id) == 1 and buyers[seat_id] == row.holder_id
                    assert redis_state == f"booked:{row.holder_id}:{row.fencing_token}", (
                        seat_id,
                        redis_state,
                    )
                else:
                    assert row.status == "available" and seat_id not in live
                    assert not redis_state.startswith("booked"), (seat_id, redis_state)

        def check_money(self):
            points = User.select(fn.SUM(User.points)).where(User.id.in_(user_ids)).scalar()
            spent = Booking.select(fn.COALESCE(fn.SUM(Booking.amount), 0)).scalar()
            paid = Payment.select(fn.COALESCE(fn.SUM(Payment.amount), 0)).scalar()
            assert int(points) + int(spent) == total_points, (points, spent)
            assert int(paid) == int(spent)
            for booking in Booking.select():
                prices = [bs.price for bs in booking.booking_seats]
                assert booking.amount == sum(prices) and 1 <= len(prices) <= max_seats

    return Sale


@pytest.fixture
def sale(app, r):
    with app.app_context():
        event = events.create(
            "Model",
            SECTIONS,
            max_active=MAX_ACTIVE,
            admit_rate=100_000,
            active_ttl=ACTIVE_TTL,
            hold_ttl=HOLD_TTL,
        )
        events.update(event.id, admission="open")
        cheap = generate_password_hash("password123", method="pbkdf2:sha256:1")
        user_ids = [
            User.create(email=f"model{i}@example.com", password_hash=cheap, points=points).id
            for i, points in enumerate(POINTS)
        ]
        seat_ids = [
            s.id for s in Seat.select(Seat.id).where(Seat.event == event.id).order_by(Seat.id)
        ]
        yield machine_for(app, r, event.id, user_ids, seat_ids)


def test_the_sale_keeps_its_promises_in_any_order(app, sale, capsys):
    STATS.clear()
    started = time.monotonic()
    with app.app_context():
        run_state_machine_as_test(
            sale,
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    seconds = time.monotonic() - started
    with capsys.disabled():
        print(
            f"\n[model] {STATS['examples']} examples, {STATS['steps']} checked steps in "
            f"{seconds:.1f} s; "
            + ", ".join(
                f"{name} {n}"
                for name, n in sorted(STATS.items())
                if name not in ("examples", "steps")
            )
        )
    assert STATS["examples"] >= EXAMPLES // 2
    # The walk got through the whole sale, not only its refusals.
    for reached in (
        "admitted",
        "enter:ok",
        "hold:ok",
        "checkout:created",
        "cleaned_up",
        "time:jump",
    ):
        assert STATS[reached] > 0, (reached, dict(STATS))
