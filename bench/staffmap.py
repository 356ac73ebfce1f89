"""The staff seat map of figure 19's event (bench/seatmap.py: 100,000 seats,
10,000 sold, 1,002 held), one render per variant, interleaved rounds in one
process, English and Korean: the seat names and tips put into words per
seat (as before 4da9337) against once per render (now); the pages must be
the same but for the seconds left on holds.

    cd bench && ../.venv/bin/python staffmap.py --rounds 7
"""

import argparse
import re
import statistics
import time

import common
import seatmap
from common import Stack, admit_and_enter, bulk_people, create_event

common.BENCH_DB = "ticketdrop_bench_seatmap"


def main(rounds: int) -> None:
    with Stack() as stack:
        event_id = create_event(
            stack, sections=seatmap.SECTIONS, admit_rate=100_000, max_active=100_000
        )
        (me, sid, cookie) = bulk_people(stack, 1, prefix="seatmap")[0]
        admit_and_enter(stack, event_id, [(me, sid, cookie)])
        from flask_babel import format_time, gettext

        from app.models import Seat
        from app.web import admin

        with stack.app.app_context():
            ids = [s.id for s in Seat.select(Seat.id).where(Seat.event == event_id)]
        seatmap.take_seats(stack, event_id, ids, me)

        def old_seat_name(seat):  # seat_name before: one gettext per seat
            return gettext(
                "%(section)s %(row)s%(number)s",
                section=seat.section,
                row=seat.row,
                number=seat.number,
            )

        def old_tip(cell):  # _tip before: one gettext per taken seat
            who, left = cell.who, cell.seconds_left
            if cell.state == "held":
                return gettext("held by %(who)s, %(seconds)s s left", who=who, seconds=left)
            if cell.state == "paying":
                return gettext(
                    "being paid for by %(who)s, %(seconds)s s left", who=who, seconds=left
                )
            if cell.state == "booked" and cell.sold_at:
                time = format_time(cell.sold_at, "HH:mm:ss")
                return gettext("booked by %(who)s at %(time)s UTC", who=who, time=time)
            if cell.state == "booked":
                return gettext("booked by %(who)s", who=who)
            return gettext("blocked") if cell.state == "blocked" else gettext("available")

        now_namer, now_tips = admin.seat_namer, admin._tips
        variants = {
            "before": (lambda: old_seat_name, lambda: old_tip),
            "names": (now_namer, lambda: old_tip),
            "now": (now_namer, now_tips),
        }
        url = f"/admin/events/{event_id}/live"
        html = {}

        def render(variant, language):
            admin.seat_namer, admin._tips = variants[variant]
            try:
                with stack.app.test_request_context(url, headers={"Accept-Language": language}):
                    cpu, wall = time.process_time(), time.perf_counter()
                    out = admin._render_map(event_id)[1]
                    return time.process_time() - cpu, time.perf_counter() - wall, out
            finally:
                admin.seat_namer, admin._tips = now_namer, now_tips

        for language in ("en", "ko"):  # warm: catalogue, skeletons
            for variant in variants:
                html[variant, language] = render(variant, language)[2]
            # the same but for the seconds left on holds, which tick between renders
            same = [re.sub(r"\d+ ?(s left|초)", "", html[v, language]) for v in variants]
            assert same[0] == same[1] == same[2], language
            names = re.findall(r'title="([^:"]*):', html["now", language])
            print(
                f"{language}: same html, {len(html['now', language]):,} characters, "
                f"{len(names):,} names, e.g. {names[0]!r}, {names[-1]!r}"
            )
        cpu = {(v, lang): [] for v in variants for lang in ("en", "ko")}
        wall = {k: [] for k in cpu}
        for i in range(rounds):
            order = list(variants)[i % 3 :] + list(variants)[: i % 3]  # each goes first by turns
            for language in ("en", "ko"):
                for variant in order:
                    c, w, out = render(variant, language)
                    cpu[variant, language].append(c)
                    wall[variant, language].append(w)

        def ms(values):
            return (
                f"{statistics.median(values) * 1000:,.0f} ms "
                f"({min(values) * 1000:,.0f}-{max(values) * 1000:,.0f})"
            )

        for language in ("en", "ko"):
            b = statistics.median(cpu["before", language])
            for v in variants:
                print(
                    f"staff map {language} {v:>6}, {rounds} rounds: CPU {ms(cpu[v, language])} "
                    f"= {b / statistics.median(cpu[v, language]):.2f}x less than before; "
                    f"wall {ms(wall[v, language])}"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    main(args.rounds)
