"""Figure 20: what metrics cost the poll (docs/OPERATIONS.md).

Two web servers side by side (granian, 2 processes x the launcher's
threads), the same code, differing only in METRICS_TOKEN: set (each request
counted and timed by route in PROMETHEUS_MULTIPROC_DIR, shared by the two
processes, as in production) or unset (no counting; the request id and the
access-line rule still run). The JSON poll and the htmx fragment, interleaved
short wrk rounds (each server first in turn), medians and the spread
(min-max); then a scrape's own time with one event, and what figures.lua
(one event's figures, the seats hash counted inside Redis) costs Redis at
100,000 taken seats."""

import time
import urllib.request

from common import Person, Stack, create_event, median, result
from poll import spread, wrk

ROUNDS, WORKERS, TOKEN = 11, 2, "bench-metrics-token"


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
            # Each round's two runs are back to back: their ratio is what the
            # busy machine disturbs least.
            paired = [w / wo for w, wo in zip(rates["with"], rates["without"], strict=True)]
            ratio = median(paired)
            result(
                20,
                f"{name} with metrics against without",
                f"{median(rates['with']):,.0f} req/s ({spread(rates['with'])}) against "
                f"{median(rates['without']):,.0f} ({spread(rates['without'])}); per round "
                f"{ratio:.3f}x ({min(paired):.3f}-{max(paired):.3f})",
                ">= 0.95x",
                ratio >= 0.95,
                rounds=rates,
            )
        in_process(stack, person, polls["JSON poll"][0])
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
        for seats in (10_000, 100_000):
            seats_counted_in_redis(stack, seats)


def in_process(stack: Stack, person: Person, path: str, polls: int = 2000) -> None:
    """The JSON poll answered in this process (no web server, one thread):
    the hot path alone, inside app/web/observe.py counting nothing, and
    counting (the tally: what a request pays; its hand-over each second is
    off the request); interleaved rounds, µs per poll."""
    observe = stack.app.wsgi_app
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "HTTP_COOKIE": person.cookie,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
    }

    def per_poll(app, counting: bool) -> float:
        observe.counting = counting
        started = time.perf_counter()
        for _ in range(polls):
            b"".join(app(dict(environ), lambda *args: None))
        return (time.perf_counter() - started) / polls * 1e6

    runs = {"hot path alone": [], "observe, not counting": [], "observe, counting": []}
    for _ in range(11):
        runs["hot path alone"].append(per_poll(observe.wsgi_app, False))
        runs["observe, not counting"].append(per_poll(observe, False))
        runs["observe, counting"].append(per_poll(observe, True))
    base = min(runs["hot path alone"])
    for name, values in runs.items():
        result(
            20,
            f"JSON poll in-process, {name}",
            f"{min(values):.1f} µs per poll at best, median {median(values):.1f} "
            f"({min(values) / base:.3f}x the hot path alone, best against best)",
            "measured",
            None,
        )


def seats_counted_in_redis(stack: Stack, seats: int = 100_000) -> None:
    """figures.lua on an event whose seats hash has `seats` entries (the
    worst case: every seat taken), timed by Redis itself (SLOWLOG)."""
    from app import keys, scripts

    k = keys.event(900_000 + seats)  # an event of its own per size
    pipe = stack.redis.pipeline(transaction=False)
    for start in range(1, seats + 1, 10_000):
        pipe.hset(k.seats, mapping={
            seat: ("booked:7:3" if seat % 10 else "held:8:4:99999999999999")
            for seat in range(start, min(start + 10_000, seats + 1))
        })  # fmt: skip
    pipe.execute()
    figures = scripts.load(stack.redis).figures
    stack.redis.config_set("slowlog-log-slower-than", 0)
    stack.redis.slowlog_reset()
    for _ in range(7):
        counts = figures(keys=[k.config, k.queue, k.prequeue, k.active, k.tick, k.seats])
    entries = stack.redis.slowlog_get(100)
    took = [e["duration"] / 1000 for e in entries if "EVALSHA" in str(e["command"]).upper()]
    stack.redis.config_set("slowlog-log-slower-than", 10_000)
    assert counts[4:8] == [seats // 10, 0, seats - seats // 10, 0], counts[4:8]
    result(
        20,
        f"figures.lua with {seats:,} taken seats (Redis's own time per call)",
        f"{median(took):.1f} ms ({min(took):.1f}-{max(took):.1f})",
        "measured",
        None,
    )


if __name__ == "__main__":
    main()
