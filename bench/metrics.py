"""Figure 20: what metrics cost the poll (docs/OPERATIONS.md).

Two web servers side by side (granian, 2 processes x the launcher's
threads), the same code, differing only in METRICS_TOKEN: set (each request
counted and timed by route in PROMETHEUS_MULTIPROC_DIR, shared by the two
processes, as in production) or unset (no counting; the request id and the
access-line rule still run). The JSON poll and the htmx fragment, interleaved
short wrk rounds (each server first in turn), medians and the spread
(min-max); then a scrape's own time with one event."""

import time
import urllib.request

from common import Person, Stack, create_event, median, result
from poll import spread, wrk

ROUNDS, WORKERS, TOKEN = 7, 2, "bench-metrics-token"


def main() -> None:
    with Stack() as stack:
        from app import launcher

        event_id = create_event(stack)
        metered = launcher.metrics_directory({"METRICS_TOKEN": TOKEN}, stack.tmp / "metrics")
        bases = {
            "without": stack.start_web(WORKERS, "granian"),
            "with": stack.start_web(WORKERS, "granian", **metered),
        }
        person = Person(bases["with"], "metered@example.com")
        assert person.call("POST", f"/api/events/{event_id}/queue")[0] == 200
        polls = {
            "JSON poll": (f"/api/events/{event_id}/queue", {}),
            "htmx fragment": (f"/events/{event_id}/waiting/status", {"HX-Request": "true"}),
        }
        # The first fragment puts the progress bar's start into the cookie.
        assert person.call("GET", polls["htmx fragment"][0], raw=True)[0] == 200
        for name, (path, headers) in polls.items():
            rates = {"without": [], "with": []}
            for i in range(ROUNDS):
                for side in ("without", "with") if i % 2 else ("with", "without"):
                    rates[side].append(wrk(bases[side] + path, person.cookie, headers))
            ratio = median(rates["with"]) / median(rates["without"])
            result(
                20,
                f"{name} with metrics against without",
                f"{median(rates['with']):,.0f} req/s ({spread(rates['with'])}) against "
                f"{median(rates['without']):,.0f} ({spread(rates['without'])}) = {ratio:.3f}x",
                ">= 0.95x",
                ratio >= 0.95,
                rounds=rates,
            )
        took = []
        for _ in range(10):
            request = urllib.request.Request(
                bases["with"] + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=10) as answer:
                size = len(answer.read())
            took.append((time.perf_counter() - started) * 1000)
        result(
            20,
            "one scrape of /metrics (one event)",
            f"{median(took):.1f} ms ({min(took):.1f}-{max(took):.1f}), {size:,} bytes",
            "measured",
            None,
        )


if __name__ == "__main__":
    main()
