"""Figures 6 and 7: the fight for seats.

6. 1,000 admitted people press hold on one seat at the same moment, over
   HTTP: exactly one winner, and holds/s;
7. bookings/s through the full locked checkout transaction on MariaDB against
   a raw single-row UPDATE transaction loop on the same server, from the same
   number of worker processes, interleaved rounds: the ratio, and deadlocks
   surfaced.
"""

import asyncio
import hashlib
import multiprocessing
import os
import time
import uuid

import aiohttp
import pymysql
from common import MYSQL, Stack, admit_and_enter, bulk_people, create_event, median, result


async def press_together(base: str, event_id: int, seat_id: int, people) -> list[int]:
    url = f"{base}/api/events/{event_id}/seats/{seat_id}/hold"
    connector = aiohttp.TCPConnector(limit=len(people))
    async with aiohttp.ClientSession(connector=connector) as session:

        async def press(cookie):
            async with session.post(
                url, headers={"Cookie": cookie, "Content-Type": "application/json"}
            ) as response:
                await response.read()
                return response.status

        return await asyncio.gather(*(press(cookie) for _, _, cookie in people))


def hold_contention(stack: Stack) -> None:
    event_id = create_event(stack, admission="open")
    base = stack.start_web()
    people = bulk_people(stack, 1000, prefix="presser")
    admit_and_enter(stack, event_id, people)
    from app.seats import catalogue

    with stack.app.app_context():
        seat_id = next(iter(catalogue(event_id)))
    started = time.monotonic()
    statuses = asyncio.run(press_together(base, event_id, seat_id, people))
    seconds = time.monotonic() - started
    winners = statuses.count(201)
    tally = {code: statuses.count(code) for code in sorted(set(statuses))}
    result(
        6,
        "1,000 holds on one seat over HTTP",
        f"{winners} winner, answers {tally}, {len(statuses) / seconds:,.0f} holds/s",
        "exactly one winner",
        winners == 1 and set(tally) <= {201, 409},
        answers=tally,
    )


# Figure 7 runs in worker processes, as the web server does: each has its own
# interpreter (no GIL shared with the others) and its own DB connection.
PROCESSES, ROUNDS, SECONDS = 4, 5, 8
SEATS_EACH = 4  # the event's max_seats_per_person
_worker: dict = {}  # in each worker process: its app, its raw connection, the start line


def _start_worker(barrier, database: str) -> None:
    """Pool initializer: everything a loop needs, made before any clock starts.
    The app finds the bench's database and Redis in the environment."""
    from app import create_app

    _worker["app"] = create_app({"RATELIMIT_ENABLED": False})
    _worker["raw"] = pymysql.connect(database=database, autocommit=True, **MYSQL)
    _worker["barrier"] = barrier


def _on_your_marks() -> float:
    """Wait until every process of the round is ready; returns when to stop."""
    _worker["barrier"].wait(60)
    return time.monotonic() + SECONDS


def book_loop(
    event_id: int, buyer_ids: list[int], seat_ids: list[int], count_limit: bool = True
) -> tuple[int, list[str]]:
    """One seat per checkout through the real transaction (checkout._book),
    each buyer buying the event's limit (4) and no more, as real ones do.
    count_limit=False leaves out the count of the seats the buyer bought
    before (the per-person limit's query), to show what it costs."""
    from app import checkout
    from app.extensions import db

    checkout_limit = checkout._check_limit
    if not count_limit:
        checkout._check_limit = lambda *args: None

    done, errors = 0, []
    with _worker["app"].app_context():
        db.connection()  # connected before the clock starts, like a warm web worker
        until = _on_your_marks()
        for i, seat_id in enumerate(seat_ids):
            if time.monotonic() >= until:
                break
            key = uuid.uuid4().hex
            try:
                checkout._book(
                    event_id,
                    buyer_ids[i // SEATS_EACH],
                    [(seat_id, 1)],
                    key,
                    hashlib.sha256(key.encode()).hexdigest(),
                    time.monotonic() + 30,  # the payment lease's end
                )
                done += 1
            except Exception as e:  # any refusal here is a surfaced failure
                errors.append(repr(e))
        else:
            errors.append("ran out of seats before the round ended")
        db.close()
    checkout._check_limit = checkout_limit
    return done, errors


def raw_loop(row: int) -> tuple[int, list[str]]:
    """BEGIN; UPDATE one row (this process's own); COMMIT."""
    conn, done, errors = _worker["raw"], 0, []
    until = _on_your_marks()
    with conn.cursor() as cursor:
        while time.monotonic() < until:
            try:
                conn.begin()
                cursor.execute("UPDATE bench_counter SET n = n + 1 WHERE id = %s", (row,))
                conn.commit()
                done += 1
            except Exception as e:
                errors.append(repr(e))
    return done, errors


def innodb_deadlocks(cursor) -> int:
    cursor.execute("SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'")
    return int(cursor.fetchone()[1])


def checkout_throughput(stack: Stack) -> None:
    if not stack.database_url.startswith("mysql://"):
        result(7, "checkout throughput", "skipped: needs MariaDB/MySQL", ">= 0.3x", None)
        return
    from app.seats import catalogue

    # Enough seats that no process runs out: 2 x ROUNDS x PROCESSES slices of 5,000.
    event_id = create_event(
        stack, sections=[{"name": "Hall", "rows": 1000, "seats_per_row": 200, "price": 1}]
    )
    with stack.app.app_context():
        free = list(catalogue(event_id))
    database = stack.database_url.rsplit("/", 1)[-1]
    per_slice = len(free) // (2 * ROUNDS * PROCESSES)
    slices = iter(free[i : i + per_slice] for i in range(0, len(free), per_slice))
    # A buyer for every SEATS_EACH seats of a slice: none passes the limit.
    people = [user_id for user_id, _, _ in bulk_people(stack, len(free) // SEATS_EACH, "buyer")]
    buyers = iter(
        people[i : i + per_slice // SEATS_EACH]
        for i in range(0, len(people), per_slice // SEATS_EACH)
    )

    with pymysql.connect(database=database, autocommit=True, **MYSQL) as conn:
        cursor = conn.cursor()
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_counter (id INT PRIMARY KEY, "
            "n BIGINT NOT NULL) ENGINE=InnoDB"
        )
        cursor.execute(
            "REPLACE INTO bench_counter VALUES " + ", ".join(f"({i}, 0)" for i in range(PROCESSES))
        )
        deadlocks_before = innodb_deadlocks(cursor)

    # spawn, not fork: no child inherits the parent's pooled connections.
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(PROCESSES)
    booked, uncounted, raw, errors, load = [], [], [], [], []

    def run(pool, loop, args) -> float:
        """One round: PROCESSES loops at once (each waits at the barrier, so
        each pool process takes exactly one); returns operations per second."""
        outcomes = pool.starmap(loop, args, chunksize=1)
        for _, errs in outcomes:
            errors.extend(errs)
        return sum(done for done, _ in outcomes) / SECONDS

    with spawn.Pool(PROCESSES, initializer=_start_worker, initargs=(barrier, database)) as pool:
        for _ in range(ROUNDS):
            booked.append(
                run(
                    pool,
                    book_loop,
                    [(event_id, next(buyers), next(slices)) for _ in range(PROCESSES)],
                )
            )
            uncounted.append(
                run(
                    pool,
                    book_loop,
                    [(event_id, next(buyers), next(slices), False) for _ in range(PROCESSES)],
                )
            )
            raw.append(run(pool, raw_loop, [(i,) for i in range(PROCESSES)]))
            load.append(os.getloadavg()[0])  # the machine is shared: say how busy it was

    with pymysql.connect(database=database, autocommit=True, **MYSQL) as conn:
        cursor = conn.cursor()
        deadlocks = innodb_deadlocks(cursor) - deadlocks_before
        cursor.execute("DROP TABLE bench_counter")
    ratio = median(booked) / median(raw)
    result(
        7,
        "checkout transaction vs raw UPDATE transaction",
        f"{median(booked):,.0f} bookings/s (rounds {min(booked):,.0f}-{max(booked):,.0f}) vs "
        f"{median(raw):,.0f} raw/s ({min(raw):,.0f}-{max(raw):,.0f}) = {ratio:.2f}x; "
        f"without the per-person limit's count {median(uncounted):,.0f} bookings/s "
        f"({min(uncounted):,.0f}-{max(uncounted):,.0f}): with it "
        f"{median(booked) / median(uncounted):.2f}x; "
        f"{len(errors)} errors surfaced, {deadlocks} InnoDB deadlocks (server-wide) "
        f"({PROCESSES} processes, {ROUNDS} interleaved rounds of {SECONDS} s)",
        ">= 0.3x, zero deadlocks surfaced",
        ratio >= 0.3 and not errors,
        booked=[round(r) for r in booked],
        without_the_limits_count=[round(r) for r in uncounted],
        count_cost=round(median(booked) / median(uncounted), 3),
        raw=[round(r) for r in raw],
        ratios=[round(b / r, 2) for b, r in zip(booked, raw, strict=True)],
        load_1min=load,
        errors=errors[:5],
        deadlocks=deadlocks,
        processes=PROCESSES,
    )


def main() -> None:
    with Stack() as stack:
        hold_contention(stack)
        checkout_throughput(stack)


if __name__ == "__main__":
    main()
