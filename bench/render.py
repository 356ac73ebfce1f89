"""Figure 10: the CPU one poll costs inside the app, without the network or
gunicorn: the JSON poll against the htmx status fragment in English and in
Korean (what the translation layer adds to the hottest page), in one process,
interleaved rounds, medians. The request-rate figure 1 swings with whatever
else this shared machine runs; this one does much less.
"""

import time

from common import Stack, median, result

ROUNDS, REQUESTS = 7, 300


def per_request_us(client, url: str, headers: dict) -> float:
    start = time.perf_counter()
    for _ in range(REQUESTS):
        assert client.get(url, headers=headers).status_code == 200
    return (time.perf_counter() - start) / REQUESTS * 1e6


def main() -> None:
    with Stack() as stack:
        from app import accounts, events

        with stack.app.app_context():
            event = events.create(
                "Render", [{"name": "A", "rows": 1, "seats_per_row": 5, "price": 100}]
            )
            accounts.register("render@example.com", "password123", "Render")
        client = stack.app.test_client()
        client.post(
            "/api/auth/login", json={"email": "render@example.com", "password": "password123"}
        )
        client.post(f"/api/events/{event.id}/queue")
        kinds = {
            "JSON": (f"/api/events/{event.id}/queue", {}),
            "fragment (en)": (
                f"/events/{event.id}/waiting/status",
                {"HX-Request": "true", "Accept-Language": "en"},
            ),
            "fragment (ko)": (
                f"/events/{event.id}/waiting/status",
                {"HX-Request": "true", "Accept-Language": "ko"},
            ),
        }
        for url, headers in kinds.values():  # warm up: caches, compiled templates
            per_request_us(client, url, headers)
        times = {kind: [] for kind in kinds}
        for _ in range(ROUNDS):
            for kind, (url, headers) in kinds.items():
                times[kind].append(per_request_us(client, url, headers))
        json_us = median(times["JSON"])
        for kind in ("fragment (en)", "fragment (ko)"):
            us = median(times[kind])
            result(
                10,
                f"in-process cost of the {kind} vs the JSON poll",
                f"{us:,.0f} us vs {json_us:,.0f} us = {us / json_us:.2f}x",
                "INFO",
                None,
                rounds=ROUNDS,
                requests=REQUESTS,
            )


if __name__ == "__main__":
    main()
