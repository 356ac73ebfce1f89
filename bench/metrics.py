"""Figure 20: what metrics cost the poll (docs/OPERATIONS.md).

Four web servers side by side (granian, 2 processes x the launcher's
threads), two of each kind, the same code, differing only in METRICS_TOKEN:
set (each request counted and timed by route in PROMETHEUS_MULTIPROC_DIR,
shared by the two processes, as in production) or unset (no counting; the request id and the
access-line rule still run). The JSON poll and the htmx fragment, interleaved
short wrk rounds (each server first in turn), medians and the spread
(min-max); then a scrape's own time with one event, and what figures.lua
(one event's figures, the seats hash counted inside Redis) costs Redis at
100,000 taken seats."""

import time
import urllib.request

from common import Person, Stack, create_event, median, result
from poll import spread, wrk

ROUNDS, WORKERS, TOKEN = 8, 2, "bench-metrics-token"


def main() -> None:
    with Stack() as stack:
        from app import launcher

        event_id = create_event(stack)
        # Two servers of each kind, started alternately: a server's own luck
        # (its processes' cores, its start) is not the setting's.
        servers = []
        for copy in range(2):
            for side in ("without", "with"):
                env = {}
                if side == "with":
                    env = launcher.metrics_directory(
                        {"METRICS_TOKEN": TOKEN}, stack.tmp / f"metrics-{copy}"
                    )
                servers.append((side, stack.start_web(WORKERS, "granian", **env)))
        bases = dict(servers)  # one of each, for what follows
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
            paired = []
            for i in range(ROUNDS):
                got = {"without": [], "with": []}
                for side, base in servers[i % 4 :] + servers[: i % 4]:  # each first in turn
                    got[side].append(wrk(base + path, person.cookie, headers))
                for side in got:
                    rates[side] += got[side]
                # A round's four runs are back to back: their ratio is what
                # the busy machine disturbs least.
                paired.append(sum(got["with"]) / sum(got["without"]))
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
        middleware_alone()
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


def in_process(stack: Stack, person: Person, path: str, polls: int = 3000) -> None:
    """The JSON poll answered in this process (no web server, one thread):
    the hot path alone, inside app/web/observe.py counting nothing, and
    counting (the tally: what a request pays; its hand-over each second is
    off the request); interleaved rounds, CPU µs per poll."""
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
        """CPU µs of this process per poll: its waits on Redis, and other
        programs' turns on the cores, left out."""
        observe.counting = counting
        started = time.process_time()
        for _ in range(polls):
            b"".join(app(dict(environ), lambda *args: None))
        return (time.process_time() - started) / polls * 1e6

    ways = {
        "hot path alone": (observe.wsgi_app, False),
        "observe, not counting": (observe, False),
        "observe, counting": (observe, True),
    }
    runs = {name: [] for name in ways}
    names = list(ways)
    for i in range(12):
        for name in names[i % 3 :] + names[: i % 3]:  # each first in turn
            runs[name].append(per_poll(*ways[name]))
    base = min(runs["hot path alone"])
    for name, values in runs.items():
        result(
            20,
            f"JSON poll in-process, {name}",
            f"{min(values):.1f} CPU µs per poll at best, median {median(values):.1f} "
            f"({min(values) / base:.3f}x the hot path alone, best against best)",
            "measured",
            None,
        )


def middleware_alone(requests: int = 200_000) -> None:
    """app/web/observe.py around a WSGI app that does nothing: what it adds
    to any request, counting and not (CPU µs per request)."""
    from app.web.observe import JSON_POLL, ROUTE, Observe

    def nothing(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b""]

    class Settings:
        config = {"METRICS_TOKEN": TOKEN}

    observe = Observe(Settings, nothing)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/api/events/1/queue", ROUTE: JSON_POLL}
    costs = {"not counting": [], "counting": []}
    for i in range(7):
        for name in ("counting", "not counting") if i % 2 else ("not counting", "counting"):
            observe.counting = name == "counting"
            started = time.process_time()
            for _ in range(requests):
                observe(dict(environ), lambda *args: None)
            costs[name].append((time.process_time() - started) / requests * 1e6)
    for name, values in costs.items():
        result(
            20,
            f"app/web/observe.py around an empty app, {name}",
            f"{median(values):.2f} CPU µs per request ({min(values):.2f}-{max(values):.2f})",
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
        counts = figures(
            keys=[k.config, k.queue, k.prequeue, k.active, k.tick, k.seats, k.seat_counts],
            args=[0],  # count every time: the cost of one count
        )
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
