"""Figure 10: what one poll costs the web process, in instructions.

valgrind's callgrind counts the instructions a process runs, not seconds, so
the figure does not move with whatever else this shared machine is doing.
Each kind of call runs in a process of its own under callgrind, called as a
web server calls a WSGI app (no network, no server): the floor
(bench/floor.py: one EVALSHA, a constant answer), the JSON poll and the htmx
fragment in English and Korean through the app's hot path, and /healthz
through Flask. Warm-up calls first; the counters are dumped before and after
the measured calls (at a getppid() call, which nothing else here makes), so
start-up is left out. What Redis does is not counted: only the web process.

    cd bench && ../.venv/bin/python instructions.py
"""

import io
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from common import Stack, result

WARM_UP, CALLS = 50, 200
HERE = Path(__file__).resolve().parent


def environ(path: str, cookie: str, **headers) -> dict:
    return {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""), "wsgi.errors": sys.stderr,
        "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
        "HTTP_HOST": "127.0.0.1:8000", "HTTP_COOKIE": cookie, "REMOTE_ADDR": "127.0.0.1",
        **headers,
    }  # fmt: skip


def calls(kind: str, setup: dict) -> None:
    """In the process callgrind watches: warm up, dump, CALLS calls, dump."""
    event, cookie = setup["event"], setup["cookie"]
    if kind == "floor":
        import floor

        wsgi_app, env = floor.app, environ("/", cookie)
    else:
        import wsgi

        wsgi_app = wsgi.app.wsgi_app
        env = {
            "JSON poll": environ(f"/api/events/{event}/queue", cookie),
            "fragment (en)": environ(f"/events/{event}/waiting/status", cookie,
                                     HTTP_HX_REQUEST="true", HTTP_ACCEPT_LANGUAGE="en"),
            "fragment (ko)": environ(f"/events/{event}/waiting/status", cookie,
                                     HTTP_HX_REQUEST="true", HTTP_ACCEPT_LANGUAGE="ko"),
            "/healthz (Flask)": environ("/healthz", cookie),
        }[kind]  # fmt: skip

    def start_response(status, headers, exc_info=None):
        assert status.startswith("200"), status

    for _ in range(WARM_UP):
        b"".join(wsgi_app(dict(env), start_response))
    os.getppid()
    for _ in range(CALLS):
        b"".join(wsgi_app(dict(env), start_response))
    os.getppid()


def instructions_per_call(kind: str, setup: dict, env: dict) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--dump-before=getppid",
             f"--callgrind-out-file={out}", sys.executable, __file__, kind, json.dumps(setup)],
            cwd=HERE, env=env, check=True, capture_output=True, timeout=900,
        )  # fmt: skip
        measured = Path(f"{out}.2").read_text()  # the second dump: the measured calls
        return int(re.search(r"^summary: (\d+)", measured, re.M)[1]) / CALLS


def main() -> None:
    with Stack() as stack:
        from app import accounts, events

        with stack.app.app_context():
            event = events.create(
                "Instructions", [{"name": "A", "rows": 1, "seats_per_row": 5, "price": 100}]
            )
            events.update(event.id, admission="open")
            user = accounts.register("counted@example.com", "password123", "Counted")
        client = stack.app.test_client()
        client.post(
            "/api/auth/login", json={"email": "counted@example.com", "password": "password123"}
        )
        client.post(f"/api/events/{event.id}/queue", json={})
        client.get(f"/events/{event.id}/waiting/status", headers={"HX-Request": "true"})
        setup = {"event": event.id, "cookie": f"session={client.get_cookie('session').value}"}
        env = dict(stack.env, FLOOR_EVENT=str(event.id), FLOOR_USER=str(user.id),
                   PYTHONPATH=str(HERE.parent))  # fmt: skip
        kinds = ["floor", "JSON poll", "fragment (en)", "fragment (ko)", "/healthz (Flask)"]
        counted = {kind: instructions_per_call(kind, setup, env) for kind in kinds}
        for kind in kinds[1:]:
            versus = "JSON poll" if kind.startswith("fragment") else "floor"
            result(
                10,
                f"instructions per call in the web process: {kind} vs the {versus}",
                f"{counted[kind]:,.0f} vs {counted[versus]:,.0f} = "
                f"{counted[kind] / counted[versus]:.2f}x (callgrind, {CALLS} calls after "
                f"{WARM_UP} warm-up calls)",
                "INFO",
                None,
                instructions=counted,
            )


if __name__ == "__main__":
    if len(sys.argv) == 3:
        calls(sys.argv[1], json.loads(sys.argv[2]))
    else:
        main()
