"""Figures 6 and 7: the fight for seats.

6. 1,000 admitted people press hold on one seat at the same moment, over
   HTTP: exactly one winner, and holds/s;
7. bookings/s through the full locked checkout transaction on MariaDB against
   a raw single-row UPDATE transaction loop on the same server, same
   concurrency, interleaved rounds: the ratio, and deadlocks surfaced.
"""

import asyncio
import hashlib
import threading
import time
import uuid

import aiohttp
import pymysql
from common import MYSQL, Stack, bulk_people, create_event, median, result

ROUNDS, SECONDS, THREADS = 2, 8, 4


def admit_and_enter(stack: Stack, event_id: int, people) -> None:
    """Through the real waiting room: join, one admission tick, poll for the
    token, consume it at the entrance for each person's session."""
    from app import entrance, events, waiting_room

    with stack.app.app_context():
        events.update(event_id, admit_rate=100_000, max_active=1_000_000)
        for user_id, _, _ in people:
            waiting_room.join(event_id, user_id)
        waiting_room.admit(event_id, max_batch=len(people))
        for user_id, sid, _ in people:
            status = waiting_room.poll(event_id, user_id)
            entrance.enter(event_id, user_id, sid, status.token)


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


def checkout_throughput(stack: Stack) -> None:
    if not stack.database_url.startswith("mysql://"):
        result(7, "checkout throughput", "skipped: needs MariaDB/MySQL", ">= 0.3x", None)
        return
    from app import checkout
    from app.extensions import db

    event_id = create_event(
        stack, sections=[{"name": "Hall", "rows": 100, "seats_per_row": 200, "price": 1}]
    )
    buyers = bulk_people(stack, THREADS * 2, prefix="buyer")
    with stack.app.app_context():
        from app.seats import catalogue

        free = list(catalogue(event_id))
    lock = threading.Lock()

    def book_loop(buyer_id: int, until: float, counts: list, errors: list):
        with stack.app.app_context():
            while time.monotonic() < until:
                with lock:
                    seat_id = free.pop()
                key = uuid.uuid4().hex
                try:
                    checkout._book(
                        event_id,
                        buyer_id,
                        [(seat_id, 1)],
                        key,
                        hashlib.sha256(key.encode()).hexdigest(),
                        int(time.time() * 1000) + 30_000,
                    )
                    counts.append(1)
                except Exception as e:  # any refusal here is a surfaced failure
                    errors.append(repr(e))
            db.close()

    def raw_loop(row: int, until: float, counts: list, errors: list):
        conn = pymysql.connect(database="ticketdrop_bench", autocommit=True, **MYSQL)
        with conn, conn.cursor() as cursor:
            while time.monotonic() < until:
                conn.begin()  # BEGIN; UPDATE one row; COMMIT
                cursor.execute("UPDATE bench_counter SET n = n + 1 WHERE id = %s", (row,))
                conn.commit()
                counts.append(1)

    with pymysql.connect(database="ticketdrop_bench", autocommit=True, **MYSQL) as conn:
        cursor = conn.cursor()
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_counter (id INT PRIMARY KEY, "
            "n BIGINT NOT NULL) ENGINE=InnoDB"
        )
        cursor.execute(
            "REPLACE INTO bench_counter VALUES " + ", ".join(f"({i}, 0)" for i in range(THREADS))
        )
        cursor.execute("SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'")
        deadlocks_before = int(cursor.fetchone()[1])

    def run(loop, args_for) -> tuple[float, list]:
        counts, errors = [], []
        until = time.monotonic() + SECONDS
        threads = [
            threading.Thread(target=loop, args=(*args_for(i), until, counts, errors))
            for i in range(THREADS)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return len(counts) / SECONDS, errors

    booked, raw, errors = [], [], []
    for _ in range(ROUNDS):
        rate, errs = run(book_loop, lambda i: (buyers[i][0],))
        booked.append(rate)
        errors += errs
        raw.append(run(raw_loop, lambda i: (i,))[0])
    with pymysql.connect(database="ticketdrop_bench", autocommit=True, **MYSQL) as conn:
        cursor = conn.cursor()
        cursor.execute("SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'")
        deadlocks = int(cursor.fetchone()[1]) - deadlocks_before
        cursor.execute("DROP TABLE bench_counter")
    ratio = median(booked) / median(raw)
    result(
        7,
        "checkout transaction vs raw UPDATE transaction",
        f"{median(booked):,.0f} bookings/s vs {median(raw):,.0f} raw/s = {ratio:.2f}x; "
        f"{len(errors)} errors surfaced, {deadlocks} InnoDB deadlocks "
        f"({THREADS} threads, {ROUNDS} interleaved rounds of {SECONDS} s)",
        ">= 0.3x, zero deadlocks surfaced",
        ratio >= 0.3 and not errors,
        booked=booked,
        raw=raw,
        errors=errors[:5],
    )


def main() -> None:
    with Stack() as stack:
        hold_contention(stack)
        checkout_throughput(stack)


if __name__ == "__main__":
    main()
