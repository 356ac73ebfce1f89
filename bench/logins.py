"""Figure 17: the poll while logins hammer the server (issue 14, item 7).

Each login runs a scrypt hash (~0.1 s of a core). Two web servers side by
side, the same code and settings but for PASSWORD_HASH_SLOTS: 0 (no bound:
as before this change) and 1 (the default: one hash at a time per process
on a lower-priority thread, one more waiting, the rest answered 503 busy at
once). In interleaved rounds, wrk measures the JSON poll's requests/s alone,
then again while logins arrive at a fixed rate (LOGINS_PER_S, an open loop:
"a few dozen anonymous requests a second"). The rate limits are raised
(bench/common.py): this measures the hashing, not the limits, which would
stop such a flood from one address much earlier.
"""

import json
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from common import Person, Stack, create_event, median, result

ROUNDS, SECONDS, CONNECTIONS, WORKERS, LOGINS_PER_S = 5, 4, 32, 2, 40
SETTINGS = {"no bound (before)": "0", "1 slot a process (after)": "1"}


def login_flood(url: str, email: str, seconds: float, statuses: list) -> None:
    """POST right-password logins at LOGINS_PER_S whatever the answers do
    (each on a thread of its own, started on time)."""
    body = json.dumps({"email": email, "password": "password123"}).encode()

    def one():
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                statuses.append(response.status)
        except urllib.error.HTTPError as e:
            statuses.append(e.code)
        except OSError:
            statuses.append(0)

    with ThreadPoolExecutor(max_workers=512) as pool:
        start = time.monotonic()
        for i in range(int(seconds * LOGINS_PER_S)):
            time.sleep(max(0.0, start + i / LOGINS_PER_S - time.monotonic()))
            pool.submit(one)


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
        pollers = {}
        for i, (name, base) in enumerate(bases.items()):
            person = Person(base, f"poller{i}@example.com")
            assert person.call("POST", poll)[0] == 200
            pollers[name] = person
        Person(bases[next(iter(bases))], "flood@example.com")
        alone = {name: [] for name in SETTINGS}
        flooded = {name: [] for name in SETTINGS}
        logins = {name: [] for name in SETTINGS}
        busy = {name: [] for name in SETTINGS}
        for _ in range(ROUNDS):
            for name, base in bases.items():
                cookie = ["-H", f"Cookie: {pollers[name].cookie}"]
                alone[name].append(wrk(base + poll, SECONDS, CONNECTIONS, *cookie)[0])
                statuses: list[int] = []
                flood = threading.Thread(
                    target=login_flood,
                    args=(base + "/api/auth/login", "flood@example.com", SECONDS + 2, statuses),
                )
                flood.start()
                time.sleep(1)  # the flood is under way
                flooded[name].append(wrk(base + poll, SECONDS, CONNECTIONS, *cookie)[0])
                flood.join()
                logins[name].append(statuses.count(200) / (SECONDS + 2))
                busy[name].append(statuses.count(503) / max(1, len(statuses)))
                time.sleep(2)  # the logins still queued drain
    for name in SETTINGS:
        ratio = median(flooded[name]) / median(alone[name])
        result(
            17,
            f"poll during a login flood, {name}",
            f"{median(flooded[name]):,.0f} polls/s ({min(flooded[name]):,.0f}-"
            f"{max(flooded[name]):,.0f}) against {median(alone[name]):,.0f} alone "
            f"({min(alone[name]):,.0f}-{max(alone[name]):,.0f}) = {ratio:.2f}x; logins "
            f"served {median(logins[name]):,.1f}/s of {LOGINS_PER_S}/s offered, "
            f"503 busy {median(busy[name]):.0%}",
            "the poll keeps most of its rate",
            None,
            rounds=ROUNDS,
        )


if __name__ == "__main__":
    main()
