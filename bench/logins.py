"""Figure 17: the poll while logins hammer the server (issue 14, item 7).

Each login runs a scrypt hash (~0.1 s of a core). Two web servers side by
side, the same code and settings but for PASSWORD_HASH_SLOTS: 0 (no bound:
as before this change) and 1 (the default: one hash at a time per process,
one more waiting, the rest answered 503 busy at once). In interleaved rounds,
wrk measures the JSON poll's requests/s alone, then again while a second wrk
sends right-password logins as fast as the server answers them. The rate
limits are raised (bench/common.py): this measures the hashing, not the
limits, which would stop such a flood from one address much earlier.
"""

import re
import subprocess
import tempfile
import time
from pathlib import Path

from common import Person, Stack, create_event, median, result

ROUNDS, SECONDS, CONNECTIONS, FLOOD_CONNECTIONS, WORKERS = 5, 4, 32, 32, 2
SETTINGS = {"no bound (before)": "0", "1 slot a process (after)": "1"}

LOGIN_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"email": "%s", "password": "password123"}'
wrk.headers["Content-Type"] = "application/json"
"""


def wrk(url: str, seconds: int, connections: int, *extra: str) -> tuple[float, int, int]:
    """(requests/s, requests, non-2xx answers)."""
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", *extra, url]
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, total, int(errors.group(1)) if errors else 0


def main() -> None:
    with Stack() as stack:
        event_id = create_event(stack)
        bases = {
            name: stack.start_web(WORKERS, PASSWORD_HASH_SLOTS=slots)
            for name, slots in SETTINGS.items()
        }
        poll = f"/api/events/{event_id}/queue"
        pollers, scripts = {}, {}
        for i, (name, base) in enumerate(bases.items()):
            person = Person(base, f"poller{i}@example.com")
            assert person.call("POST", poll)[0] == 200
            pollers[name] = person
            Person(base, f"flood{i}@example.com")
            script = Path(tempfile.mkstemp(suffix=".lua")[1])
            script.write_text(LOGIN_SCRIPT % f"flood{i}@example.com")
            scripts[name] = script
        alone = {name: [] for name in SETTINGS}
        flooded = {name: [] for name in SETTINGS}
        logins = {name: [] for name in SETTINGS}
        busy = {name: [] for name in SETTINGS}
        for _ in range(ROUNDS):
            for name, base in bases.items():
                cookie = ["-H", f"Cookie: {pollers[name].cookie}"]
                alone[name].append(wrk(base + poll, SECONDS, CONNECTIONS, *cookie)[0])
                flood = subprocess.Popen(
                    ["wrk", "-t1", f"-c{FLOOD_CONNECTIONS}", f"-d{SECONDS + 2}s",
                     "-s", str(scripts[name]), base + "/api/auth/login"],
                    stdout=subprocess.PIPE, text=True,
                )  # fmt: skip
                time.sleep(1)  # the flood is under way
                flooded[name].append(wrk(base + poll, SECONDS, CONNECTIONS, *cookie)[0])
                out = flood.communicate(timeout=SECONDS + 60)[0]
                total = int(re.search(r"(\d+) requests in", out).group(1))
                errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
                refused = int(errors.group(1)) if errors else 0
                logins[name].append((total - refused) / (SECONDS + 2))
                busy[name].append(refused / max(1, total))
                time.sleep(1)
        for script in scripts.values():
            script.unlink()
    for name in SETTINGS:
        ratio = median(flooded[name]) / median(alone[name])
        result(
            17,
            f"poll during a login flood, {name}",
            f"{median(flooded[name]):,.0f} polls/s ({min(flooded[name]):,.0f}-"
            f"{max(flooded[name]):,.0f}) against {median(alone[name]):,.0f} alone "
            f"({min(alone[name]):,.0f}-{max(alone[name]):,.0f}) = {ratio:.2f}x; logins "
            f"served {median(logins[name]):,.1f}/s, refused busy {median(busy[name]):.0%}",
            "the poll keeps most of its rate",
            None,
            rounds=ROUNDS,
        )


if __name__ == "__main__":
    main()
