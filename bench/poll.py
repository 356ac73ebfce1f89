"""Figures 1, 2 and 9: what one poll costs.

1. requests/s of the poll (JSON and the htmx fragment) against /healthz (no
   I/O) and the floor for anything that consults Redis once (/bench/ping: one
   PING, a constant answer), same gunicorn settings, interleaved rounds, medians;
2. Redis round trips per poll, from MONITOR (commands a script runs inside
   Redis are not round trips and are told apart);
9. bytes of the status fragment, and that the waiting page is the same for
   everybody (cacheable).
"""

import hashlib
import re
import subprocess
import threading
import time
import urllib.request

from common import Person, Stack, create_event, median, result

ROUNDS, SECONDS, CONNECTIONS = 3, 5, 32


def wrk(url: str, cookie: str, headers: dict | None = None) -> float:
    args = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "-H", f"Cookie: {cookie}"]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, timeout=SECONDS + 30).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} error answers\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def round_trips_per_poll(stack: Stack, person: Person, event_id: int, polls: int = 200) -> dict:
    time.sleep(2)  # let requests wrk left in flight finish first
    seen: list[dict] = []
    ready = threading.Event()

    def watch():
        with stack.redis.monitor() as monitor:
            ready.set()
            for command in monitor.listen():
                if command["command"].startswith("ECHO stop-monitor"):
                    return
                seen.append(command)

    watcher = threading.Thread(target=watch)
    watcher.start()
    ready.wait(5)
    for _ in range(polls):
        assert person.call("GET", f"/api/events/{event_id}/queue")[0] == 200
    stack.redis.echo("stop-monitor")
    watcher.join(10)
    top_level = [c for c in seen if c.get("client_type") != "lua"]
    others = [c["command"][:60] for c in top_level if not c["command"].startswith("EVALSHA")]
    return {
        "polls": polls,
        "round_trips": len(top_level),
        "other_commands": others,
        "evalsha": sum(c["command"].startswith("EVALSHA") for c in top_level),
        "inside_scripts": len(seen) - len(top_level),
    }


def main() -> None:
    with Stack() as stack:
        event_id = create_event(stack)
        base = stack.start_web()
        people = [Person(base, f"poller{i}@example.com") for i in range(2)]
        for person in people:
            assert person.call("POST", f"/api/events/{event_id}/queue")[0] == 200
        person = people[0]
        targets = {
            "healthz": (f"{base}/healthz", {}),
            "redis PING floor": (f"{base}/bench/ping", {}),
            "poll (JSON)": (f"{base}/api/events/{event_id}/queue", {}),
            "poll (htmx fragment)": (
                f"{base}/events/{event_id}/waiting/status",
                {"HX-Request": "true"},
            ),
        }
        rates = {name: [] for name in targets}
        for _ in range(ROUNDS):
            for name, (url, headers) in targets.items():
                rates[name].append(wrk(url, person.cookie, headers))
        rps = {name: median(values) for name, values in rates.items()}
        floor = rps["redis PING floor"]
        for name in ("poll (JSON)", "poll (htmx fragment)"):
            ratio = rps[name] / floor
            result(
                1,
                f"{name} vs Redis floor",
                f"{rps[name]:,.0f} req/s = {ratio:.2f}x the "
                f"floor ({floor:,.0f} req/s); /healthz {rps['healthz']:,.0f} req/s",
                ">= 0.9x floor",
                ratio >= 0.9,
                rounds=rates,
            )

        trips = round_trips_per_poll(stack, person, event_id)
        per_poll = trips["evalsha"] / trips["polls"]
        upkeep = [
            c
            for c in trips["other_commands"]
            if c.split()[0] not in ("PING", "HELLO", "SCRIPT", "CLIENT")
        ]
        result(
            2,
            "Redis round trips per poll",
            f"{per_poll:g} EVALSHA per poll "
            f"({trips['polls']} polls; {trips['inside_scripts']} commands ran inside the "
            f"script; connection upkeep outside polls: {trips['other_commands'] or 'none'})",
            "exactly 1",
            per_poll == 1 and not upkeep,
            **trips,
        )

        request = urllib.request.Request(
            f"{base}/events/{event_id}/waiting/status",
            headers={"HX-Request": "true", "Cookie": person.cookie},
        )
        fragment = urllib.request.urlopen(request, timeout=10).read()
        pages = set()
        for cookie in (people[0].cookie, people[1].cookie, ""):
            page = urllib.request.Request(
                f"{base}/events/{event_id}/waiting", headers={"Cookie": cookie} if cookie else {}
            )
            pages.add(hashlib.sha256(urllib.request.urlopen(page, timeout=10).read()).hexdigest())
        result(
            9,
            "status fragment size",
            f"{len(fragment):,} bytes; the waiting page is "
            f"{'identical' if len(pages) == 1 else 'DIFFERENT'} for 2 people and anonymous",
            "small fragment, one cacheable page",
            len(pages) == 1,
        )


if __name__ == "__main__":
    main()
