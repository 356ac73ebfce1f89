"""Figures 1, 2 and 9: what one poll costs, and which web server serves it best.

1. requests/s of the poll (JSON, and the htmx fragment) against /healthz (no
   I/O) and against the floor (bench/floor.py: a bare WSGI app doing one
   EVALSHA of the same script), under granian and under gunicorn (gthread,
   reuse_port), same settings (2 processes x 8 threads), all in one run:
   interleaved short rounds, medians and the spread (min-max); and how evenly
   each server spreads the load over its processes (CPU time per process);
2. Redis round trips per poll, from MONITOR (commands a script runs inside
   Redis are not round trips and are told apart);
9. bytes of the status fragment, and that the waiting page is the same for
   everybody (cacheable).
"""

import hashlib
import os
import re
import subprocess
import threading
import time
import urllib.request

from common import Person, Stack, create_event, median, result

ROUNDS, SECONDS, CONNECTIONS, WORKERS = 7, 3, 32, 2
SERVERS = ("granian", "gunicorn")
TICKS = os.sysconf("SC_CLK_TCK")


def wrk(url: str, cookie: str, headers: dict | None = None) -> float:
    args = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "-H", f"Cookie: {cookie}"]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, timeout=SECONDS + 30).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} error answers\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (a web server's workers)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    found, frontier = [], [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    times = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            times[pid] = (int(fields[11]) + int(fields[12])) / TICKS
        except OSError:
            continue
    return times


def busiest_share(before: dict[int, float], after: dict[int, float]) -> float:
    """The share of the processes' CPU time that the busiest one used
    (1 / processes: even; 1.0: one process did everything)."""
    used = [after[p] - before.get(p, 0.0) for p in after]
    return max(used) / sum(used) if sum(used) > 0 else 0.0


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


def spread(values: list[float]) -> str:
    return f"{min(values):,.0f}-{max(values):,.0f}"


def main() -> None:
    with Stack() as stack:
        event_id = create_event(stack)
        bases = {server: stack.start_web(WORKERS, server) for server in SERVERS}
        people = [Person(bases["granian"], f"poller{i}@example.com") for i in range(2)]
        person = people[0]
        for someone in people:
            assert someone.call("POST", f"/api/events/{event_id}/queue")[0] == 200
        # The first fragment puts the progress bar's start into the cookie.
        assert person.call("GET", f"/events/{event_id}/waiting/status", raw=True)[0] == 200
        floors = {
            server: stack.start_web(
                WORKERS,
                server,
                "bench.floor:app",
                FLOOR_EVENT=str(event_id),
                FLOOR_USER=str(person.user_id),
            )
            for server in SERVERS
        }
        servers = {server: stack.procs[i] for i, server in enumerate(SERVERS)}
        paths = {
            "healthz": ("/healthz", {}),
            "poll (JSON)": (f"/api/events/{event_id}/queue", {}),
            "poll (htmx fragment)": (f"/events/{event_id}/waiting/status", {"HX-Request": "true"}),
        }
        rates = {(s, name): [] for s in SERVERS for name in [*paths, "floor"]}
        shares = {s: [] for s in SERVERS}
        for _ in range(ROUNDS):
            for server in SERVERS:
                workers = descendants(servers[server].pid)
                for name, (path, headers) in paths.items():
                    before = cpu_seconds(workers)
                    rates[(server, name)].append(wrk(bases[server] + path, person.cookie, headers))
                    if name == "poll (JSON)":
                        shares[server].append(busiest_share(before, cpu_seconds(workers)))
                rates[(server, "floor")].append(wrk(floors[server] + "/", person.cookie))

        rps = {key: median(values) for key, values in rates.items()}
        for server in SERVERS:
            floor = rps[(server, "floor")]
            for name in ("poll (JSON)", "poll (htmx fragment)"):
                ratio = rps[(server, name)] / floor
                result(
                    1,
                    f"{name} vs the floor, {server}",
                    f"{rps[(server, name)]:,.0f} req/s ({spread(rates[(server, name)])}) = "
                    f"{ratio:.2f}x the floor ({floor:,.0f} req/s, "
                    f"{spread(rates[(server, 'floor')])}); /healthz "
                    f"{rps[(server, 'healthz')]:,.0f} ({spread(rates[(server, 'healthz')])})",
                    ">= 0.9x the floor",
                    ratio >= 0.9 if name == "poll (JSON)" else None,
                    rounds=rates[(server, name)],
                    floor_rounds=rates[(server, "floor")],
                )
            fragment = rps[(server, "poll (htmx fragment)")] / rps[(server, "poll (JSON)")]
            result(
                1,
                f"fragment vs JSON poll, {server}",
                f"{fragment:.2f}x",
                ">= 0.9x",
                fragment >= 0.9,
            )
            result(
                1,
                f"load on the busiest of {WORKERS} processes, {server}",
                f"median {median(shares[server]):.0%} of the CPU time (rounds: "
                f"{', '.join(f'{s:.0%}' for s in shares[server])})",
                f"{1 / WORKERS:.0%} is even",
                None,
            )
        for name in paths:
            ratio = rps[("granian", name)] / rps[("gunicorn", name)]
            result(
                1,
                f"granian vs gunicorn, {name}",
                f"{ratio:.2f}x",
                "the faster is the default",
                None,
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
            f"{per_poll:g} EVALSHA per poll ({trips['polls']} polls; "
            f"{trips['inside_scripts']} commands ran inside the script; connection upkeep "
            f"outside polls: {trips['other_commands'] or 'none'})",
            "exactly 1",
            per_poll == 1 and not upkeep,
            **trips,
        )

        base = bases["granian"]
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
