"""Figure 18: what checking the session's generation (app/sessions.py) costs
the poll.

Three web servers side by side (granian, 2 processes x the launcher's
threads), the same code, differing only in SESSION_CHECK_SECONDS:
- "never again": 1e9 s, the generation is read once and then believed (the
  check is a dict look-up: the poll as it was before generations);
- "2 s" (the default): a person polling every second reads it every other
  poll or so; here wrk's one cookie reads it once per 2 s per process;
- "every poll": 0 s, a GET before every EVALSHA (the worst case: people far
  back, who poll less often than the bound).
Interleaved short wrk rounds (each setting first in turn), medians and the
spread (min-max); then the
Redis round trips of 200 polls under the default, from MONITOR."""

import time

from common import Person, Stack, create_event, median, result
from poll import round_trips_per_poll, spread, wrk

ROUNDS, WORKERS = 7, 2
SETTINGS = {"never again": "1e9", "2 s (default)": "2", "every poll": "0"}


def main() -> None:
    with Stack() as stack:
        event_id = create_event(stack)
        bases = {
            name: stack.start_web(WORKERS, "granian", SESSION_CHECK_SECONDS=seconds)
            for name, seconds in SETTINGS.items()
        }
        person = Person(bases["2 s (default)"], "generation@example.com")
        assert person.call("POST", f"/api/events/{event_id}/queue")[0] == 200
        path = f"/api/events/{event_id}/queue"
        rates = {name: [] for name in SETTINGS}
        names = list(SETTINGS)
        for i in range(ROUNDS):
            for name in names[i % 3 :] + names[: i % 3]:  # each goes first in turn
                rates[name].append(wrk(bases[name] + path, person.cookie))
        rps = {name: median(values) for name, values in rates.items()}
        base = rps["never again"]
        for name in SETTINGS:
            result(
                17,
                f"JSON poll, session generation read {name}",
                f"{rps[name]:,.0f} req/s ({spread(rates[name])}) = {rps[name] / base:.2f}x "
                f"the poll that never reads it again",
                ">= 0.9x" if name == "2 s (default)" else "measured",
                rps[name] / base >= 0.9 if name == "2 s (default)" else None,
                rounds=rates[name],
            )
        time.sleep(2.1)  # past the bound: the first of the 200 polls reads it
        trips = round_trips_per_poll(stack, person, event_id)
        gets = [c for c in trips["other_commands"] if c.startswith("GET")]
        result(
            17,
            "Redis round trips of 200 polls, the default bound",
            f"{trips['evalsha']} EVALSHA + {len(gets)} GET of the generation "
            f"({trips['round_trips']} round trips in all)",
            "1 EVALSHA per poll, a GET at most per 2 s per process",
            trips["evalsha"] == trips["polls"],
        )


if __name__ == "__main__":
    main()
