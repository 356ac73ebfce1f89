"""Figure 19: one refresh of a fan's seat map for a 100,000-seat event, the
code before the bounded refresh (git BEFORE: the whole panel rendered from
every seat) against the code now (the changed block only), interleaved
rounds in one process, CPU time and wall time per refresh.

Also: one render of the staff map (now shared by all staff of a process,
for twice as long as it took), and the whole fan page.

The event: 5 sections of 100 x 200 seats; 10,000 seats sold, 1,000 held by
others, 2 held by the person refreshing. Between rounds one stranger holds
one more seat, so every refresh has something to show.

    cd bench && ../.venv/bin/python seatmap.py [--rounds 7]
"""

import argparse
import statistics
import subprocess
import time
from itertools import groupby

import common
from common import ROOT, Stack, admit_and_enter, bulk_people, create_event, result

common.BENCH_DB = "ticketdrop_bench_seatmap"  # a database of its own
BEFORE = "f271c28"  # the last commit that rendered the whole panel on each refresh
SECTIONS = [{"name": f"S{i}", "rows": 100, "seats_per_row": 200, "price": 900} for i in range(5)]


def before_template() -> str:
    return subprocess.run(
        ["git", "show", f"{BEFORE}:app/templates/booking/_panel.html"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def before_context(event_id: int) -> dict:
    """app/web/booking.py's _panel_context as it was at BEFORE."""
    from app import seats
    from app.web import identity

    user_id = identity.user_id()
    catalogue = seats.catalogue(event_id)
    now_ms, active_until_ms, states = seats.live_states(event_id, user_id, identity.session_id())
    cells = []
    for seat in catalogue.values():
        state = states.get(seat.id)
        kind = state.public if state else "available"
        if kind == "held" and state.holder == user_id and state.kind == "held":
            kind = "mine"
        cells.append(
            {
                "seat": seat,
                "state": kind,
                "expires_in": (state.until_ms - now_ms) // 1000 if kind == "mine" else 0,
            }
        )
    layout = [
        (
            section,
            [
                (row, list(row_cells))
                for row, row_cells in groupby(section_cells, key=lambda c: c["seat"].row)
            ],
        )
        for section, section_cells in groupby(cells, key=lambda c: c["seat"].section)
    ]
    mine = [c for c in cells if c["state"] == "mine"]
    return {
        "layout": layout,
        "mine": mine,
        "total": sum(c["seat"].price for c in mine),
        "window_left": max(0, (active_until_ms - now_ms) // 1000),
    }


def take_seats(stack: Stack, event_id: int, ids: list[int], me: int) -> None:
    """Sold, held by others and held by me, straight in Redis (as the scripts write them)."""
    from app import keys

    k = keys.event(event_id)
    until = int(stack.redis.time()[0]) * 1000 + 3_600_000
    states = {sid: "booked:999999:1" for sid in ids[:10_000]}
    states |= {sid: f"held:{900_000 + i}:1:{until}" for i, sid in enumerate(ids[10_000:11_000])}
    states |= {sid: f"held:{me}:1:{until}" for sid in ids[11_000:11_002]}
    stack.redis.hset(k.seats, mapping=states)
    stack.redis.sadd(k.holds(me), *ids[11_000:11_002])


def measure(call) -> tuple[float, float, int]:
    cpu, wall = time.process_time(), time.perf_counter()
    size = len(call())
    return time.process_time() - cpu, time.perf_counter() - wall, size


def spread(values: list[float]) -> str:
    return (
        f"{statistics.median(values) * 1000:,.1f} ms "
        f"({min(values) * 1000:,.1f}-{max(values) * 1000:,.1f})"
    )


def main(rounds: int) -> None:
    with Stack() as stack:
        event_id = create_event(stack, sections=SECTIONS, admit_rate=100_000, max_active=100_000)
        (me, sid, cookie) = bulk_people(stack, 1, prefix="seatmap")[0]
        admit_and_enter(stack, event_id, [(me, sid, cookie)])
        from flask import render_template_string

        from app import keys
        from app.models import Seat
        from app.web import admin, api, booking

        with stack.app.app_context():
            ids = [s.id for s in Seat.select(Seat.id).where(Seat.event == event_id)]
        take_seats(stack, event_id, ids, me)
        old = before_template()
        k = keys.event(event_id)
        url = f"/events/{event_id}/seats/panel"

        def in_request(call, **query):
            headers = {"Cookie": cookie, "HX-Request": "true"}
            with stack.app.test_request_context(url, headers=headers, query_string=query):
                return call()

        def before():
            return render_template_string(old, event_id=event_id, **before_context(event_id))

        def version() -> str:
            return booking._status(booking._map_view(event_id))["version"]

        def after():
            return booking._render_panel(event_id).get_data(as_text=True)

        # Every refresh reads Redis (no shared read): the worst case for "now".
        stack.app.config["SEAT_MAP_SNAPSHOT_MS"] = 0
        in_request(before), in_request(after)  # warm: catalogue, templates, skeletons
        figures = {
            k: [] for k in ("before", "after", "shared", "after_size", "before_size", "page")
        }
        cpu = {"before": [], "after": [], "shared": []}
        for i in range(rounds):
            v = in_request(version)
            stack.redis.hset(k.seats, ids[20_000 + i * 7_001], "held:888888:1:99999999999999")
            c, w, size = measure(lambda: in_request(before))
            cpu["before"].append(c)
            figures["before"].append(w)
            figures["before_size"].append(size)
            c, w, size = measure(lambda v=v: in_request(after, v=v))
            cpu["after"].append(c)
            figures["after"].append(w)
            figures["after_size"].append(size)
            # The common case: the process's shared read is fresh (the one just made).
            stack.app.config["SEAT_MAP_SNAPSHOT_MS"] = 60_000
            c, w, _ = measure(lambda v=v: in_request(after, v=v))
            stack.app.config["SEAT_MAP_SNAPSHOT_MS"] = 0
            cpu["shared"].append(c)
            figures["shared"].append(w)
            started = time.perf_counter()
            fan = stack.app.test_client()
            fan.set_cookie("session", cookie.split("=", 1)[1])
            page = fan.get(f"/events/{event_id}/seats")
            assert page.status_code == 200, (page.status_code, page.headers.get("Location"))
            figures["page"].append(time.perf_counter() - started)
        ratio = statistics.median(cpu["before"]) / statistics.median(cpu["after"])
        result(
            17,
            "one seat-map refresh, 100,000 seats (11,002 taken, one changed), CPU per refresh",
            f"before {spread(cpu['before'])}, now {spread(cpu['after'])} = {ratio:,.0f}x less",
            "no full render per refresh",
            ratio > 10,
            rounds=rounds,
        )
        result(
            17,
            "the same refresh, wall time and bytes",
            f"before {spread(figures['before'])} and "
            f"{statistics.median(figures['before_size']):,.0f} characters; "
            f"now {spread(figures['after'])} and "
            f"{statistics.median(figures['after_size']):,.0f} characters",
            "",
            None,
        )
        result(
            17,
            "the same refresh now, the process's shared read of the seats already fresh",
            f"CPU {spread(cpu['shared'])}, wall {spread(figures['shared'])}",
            "",
            None,
        )
        listing = [
            measure(lambda: in_request(lambda: api.list_seats(event_id).get_data()))
            for _ in range(3)
        ]
        result(
            17,
            "GET /api/events/{id}/seats, 100,000 seats, after a change (the full list)",
            f"CPU {spread([c for c, _, _ in listing])}, wall {spread([w for _, w, _ in listing])}, "
            f"{statistics.median(size for _, _, size in listing):,.0f} bytes; unchanged: 304",
            "",
            None,
        )
        staff, staff_cpu = [], []
        for _ in range(3):
            with stack.app.test_request_context(f"/admin/events/{event_id}/live"):
                c, w, _ = measure(lambda: admin._render_map(event_id)[1])
                staff_cpu.append(c)
                staff.append(w)
        result(
            17,
            "one render of the staff seat map, 100,000 seats (kept for twice that, shared)",
            f"CPU {spread(staff_cpu)}, wall {spread(staff)}",
            "",
            None,
        )
        result(
            17,
            "the whole seat page now (every seat, as on entering), wall time",
            spread(figures["page"]),
            "",
            None,
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    main(parser.parse_args().rounds)
