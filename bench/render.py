"""Figure 10: the CPU one poll costs inside one process, without the network
or a web server: the floor (bench/floor.py's WSGI app: one EVALSHA), the JSON
poll and the htmx fragment in English and Korean through the app's hot path,
and /healthz through Flask, called as a web server would call them.
Interleaved rounds; each figure is the fastest round's CPU time per call (the
machine is shared: the minimum is what the code costs, the rest is its
neighbours), with the median beside it. Figure 1 measures the same through
the servers; this one is steadier.
"""

import io
import os
import sys
import time

from common import Stack, median, result

ROUNDS, CALLS = 15, 1000


def environ(path: str, cookie: str, **headers) -> dict:
    return {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""), "wsgi.errors": sys.stderr,
        "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
        "HTTP_HOST": "127.0.0.1:8000", "HTTP_COOKIE": cookie, "REMOTE_ADDR": "127.0.0.1",
        **headers,
    }  # fmt: skip


def cpu_us_per_call(wsgi_app, env: dict) -> float:
    def start_response(status, headers, exc_info=None):
        assert status.startswith("200"), status

    started = time.process_time()
    for _ in range(CALLS):
        b"".join(wsgi_app(dict(env), start_response))
    return (time.process_time() - started) / CALLS * 1e6


def main() -> None:
    with Stack() as stack:
        from app import accounts, events

        with stack.app.app_context():
            event = events.create(
                "Render", [{"name": "A", "rows": 1, "seats_per_row": 5, "price": 100}]
            )
            events.update(event.id, admission="open")
            user = accounts.register("render@example.com", "password123", "Render")
        client = stack.app.test_client()
        client.post(
            "/api/auth/login", json={"email": "render@example.com", "password": "password123"}
        )
        client.post(f"/api/events/{event.id}/queue")
        client.get(f"/events/{event.id}/waiting/status", headers={"HX-Request": "true"})
        cookie = f"session={client.get_cookie('session').value}"
        os.environ.update(FLOOR_EVENT=str(event.id), FLOOR_USER=str(user.id))
        import floor

        app = stack.app.wsgi_app
        kinds = {
            "floor": (floor.app, environ("/", cookie)),
            "JSON poll": (app, environ(f"/api/events/{event.id}/queue", cookie)),
            "fragment (en)": (
                app,
                environ(
                    f"/events/{event.id}/waiting/status",
                    cookie,
                    HTTP_HX_REQUEST="true",
                    HTTP_ACCEPT_LANGUAGE="en",
                ),
            ),
            "fragment (ko)": (
                app,
                environ(
                    f"/events/{event.id}/waiting/status",
                    cookie,
                    HTTP_HX_REQUEST="true",
                    HTTP_ACCEPT_LANGUAGE="ko",
                ),
            ),
            "/healthz (Flask)": (app, environ("/healthz", cookie)),
        }
        for wsgi_app, env in kinds.values():  # warm up: caches, skeletons, connections
            cpu_us_per_call(wsgi_app, env)
        times = {kind: [] for kind in kinds}
        for _ in range(ROUNDS):
            for kind, (wsgi_app, env) in kinds.items():
                times[kind].append(cpu_us_per_call(wsgi_app, env))
        best = {kind: min(values) for kind, values in times.items()}
        for kind in kinds:
            if kind == "floor":
                continue
            versus = "JSON poll" if kind.startswith("fragment") else "floor"
            result(
                10,
                f"in-process CPU of the {kind} vs the {versus}",
                f"{best[kind]:,.0f} us (median {median(times[kind]):,.0f}) vs "
                f"{best[versus]:,.0f} us (median {median(times[versus]):,.0f}) = "
                f"{best[versus] / best[kind]:.2f}x the speed",
                "INFO",
                None,
                rounds=ROUNDS,
                calls=CALLS,
                us=times[kind],
            )


if __name__ == "__main__":
    main()
