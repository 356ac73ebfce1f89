"""Shared pieces of the benchmarks: a private Redis server, a bench database,
the app served by the web server exactly as in production, people who are
logged in, and one result line per figure.

Everything runs on loopback, is bounded in time, and stops what it starts.
"""

import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pymysql
import redis

ROOT = Path(__file__).resolve().parent.parent

BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results.json"
# Its own MySQL database (BENCH_MYSQL_DATABASE: beside other runs on one server).
BENCH_DB = os.environ.get("BENCH_MYSQL_DATABASE", "ticketdrop_bench")
MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}

sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def result(number: int, name: str, value: str, target: str, passed: bool | None, **details) -> dict:
    """Print one figure's line and keep it for BENCHMARKS.md."""
    verdict = {True: "PASS", False: "MISS", None: "INFO"}[passed]
    print(f"[{number}] {name}: {value} (target {target}) {verdict}", flush=True)
    entry = {
        "figure": number,
        "name": name,
        "value": value,
        "target": target,
        "verdict": verdict,
        **details,
    }
    records = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    records = [r for r in records if (r["figure"], r["name"]) != (number, name)]
    RESULTS.write_text(
        json.dumps(sorted([*records, entry], key=lambda r: r["figure"]), indent=1, default=str)
    )
    return entry


def median(values) -> float:
    return statistics.median(values) if values else 0.0


class Stack:
    """A private Redis (no persistence), the bench database (MariaDB when it
    answers, else SQLite), and on request the web server, the worker and the
    scheduler: all started by app/launcher.py, as `make run` starts them."""

    def __init__(self, **settings):
        self.tmp = Path(tempfile.mkdtemp(prefix="ticketdrop-bench-"))
        self.procs: list[subprocess.Popen] = []
        self.jobs: list[subprocess.Popen] = []
        self.settings = settings

    def __enter__(self) -> "Stack":
        from app import launcher

        self.redis_server = launcher.RedisServer(
            self.tmp / "redis", port=free_port(), embedded=False
        ).start()
        self.redis_url = self.redis_server.url
        self.redis = redis.Redis.from_url(self.redis_url, decode_responses=True)
        self.database_url = self._database()
        self.env = dict(
            os.environ,
            REDIS_URL=self.redis_url,
            DATABASE_URL=self.database_url,
            INSTANCE_PATH=str(self.tmp / "instance"),
            SECRET_KEY="bench",
            JWT_SECRET="bench-jwt-secret-of-32-bytes-length",
            PER_IP_LIMIT="1000000/minute",
            JOIN_LIMIT="1000000/minute",
            HOLD_LIMIT="1000000/minute",
            CHECKOUT_LIMIT="1000000/minute",
            LOGIN_LIMIT="1000000/minute",
            REGISTER_LIMIT="1000000/minute",
            LOG_LEVEL="WARNING",
            SESSION_COOKIE_SECURE="0",  # plain http on loopback
            **{k: str(v) for k, v in self.settings.items()},
        )
        os.environ.update(
            {
                k: self.env[k]
                for k in (
                    "REDIS_URL",
                    "DATABASE_URL",
                    "INSTANCE_PATH",
                    "SECRET_KEY",
                    "JWT_SECRET",
                    "LOG_LEVEL",
                )
            }
        )
        from app import create_app
        from app.cli import create_tables
        from app.extensions import db
        from app.models import MODELS

        self.app = create_app({"RATELIMIT_ENABLED": False})
        with self.app.app_context():
            db.drop_tables(MODELS, safe=True)
            create_tables()
            db.close()
        return self

    def _database(self) -> str:
        try:
            conn = pymysql.connect(connect_timeout=2, **MYSQL)
        except pymysql.MySQLError:
            return f"sqlite:///{self.tmp / 'bench.sqlite3'}"
        with conn:
            conn.cursor().execute(
                f"CREATE DATABASE IF NOT EXISTS {BENCH_DB} "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
        return f"mysql://root@127.0.0.1:3306/{BENCH_DB}"

    def start_web(
        self,
        workers: int | None = None,
        server: str | None = None,
        target: str = "wsgi:app",
        **env,
    ) -> str:
        """The web server (`server`, default the launcher's: granian) with
        the production settings, serving `target`; returns its base URL."""
        from app import launcher

        port = free_port()
        env = dict(self.env, PORT=str(port), HOST="127.0.0.1", **env)
        if workers:
            env["WEB_WORKERS"] = str(workers)
        if server:
            env["WEB_SERVER"] = server
        command = launcher.web_command(launcher.server_settings(env), target)
        proc = launcher.start(command, env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        wait_for(
            lambda: urllib.request.urlopen(base + "/healthz", timeout=1).status == 200,
            f"the web server ({' '.join(command[:1])})",
        )
        self.web = proc
        return base

    def start_jobs(self) -> None:
        from app import launcher

        named = launcher.commands(launcher.server_settings(self.env))
        self.jobs = [
            launcher.start(
                named[name], self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            for name in ("worker", "scheduler")
        ]
        self.procs += self.jobs

    def stop_jobs(self) -> None:
        from app import launcher

        launcher.stop(self.jobs)
        self.procs = [p for p in self.procs if p not in self.jobs]
        self.jobs = []

    def stop(self, proc: subprocess.Popen) -> None:
        from app import launcher

        launcher.stop([proc])
        self.procs.remove(proc)

    def __exit__(self, *exc):
        from app import launcher

        launcher.stop(self.procs)
        self.redis_server.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def wait_for(check, what: str, seconds: float = 30) -> None:
    from app import launcher

    launcher.wait_for(check, what, seconds)


class Person:
    """One logged-in person talking to the server over HTTP (standard library)."""

    def __init__(self, base: str, email: str, password: str = "password123"):
        self.base, self.jar = base, CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.call("POST", "/api/auth/register", {"email": email, "password": password})
        status, me = self.call("POST", "/api/auth/login", {"email": email, "password": password})
        assert status == 200, status
        self.user_id = me["id"]

    def call(self, method: str, path: str, body=None, headers=None, raw=False) -> tuple:
        """(status, the JSON body as a dict), or with `raw` (status, bytes)."""
        data = json.dumps(body).encode() if body is not None else None
        # The API asks it of every unsafe request, body or not (docs/API.md).
        unsafe = method not in ("GET", "HEAD", "OPTIONS")
        all_headers = {"Content-Type": "application/json"} if unsafe else {}
        all_headers.update(headers or {})
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers=all_headers
        )
        try:
            with self.opener.open(request, timeout=30) as response:
                status, answer = response.status, response.read()
        except urllib.error.HTTPError as e:
            status, answer = e.code, e.read()
        if raw:
            return status, answer
        return status, json.loads(answer) if answer.startswith(b"{") else {}

    @property
    def cookie(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)


def create_event(stack: Stack, **settings) -> int:
    from app import events

    with stack.app.app_context():
        admission = settings.pop("admission", "open")
        event = events.create(
            "Bench",
            settings.pop(
                "sections", [{"name": "A", "rows": 10, "seats_per_row": 20, "price": 100}]
            ),
            **settings,
        )
        return events.update(event.id, admission=admission).id


def bulk_people(stack: Stack, count: int, prefix: str = "crowd") -> list[tuple[int, str, str]]:
    """Create `count` accounts straight in the database (one password hash for
    all: hashing is deliberately slow) and sign a session cookie for each, as
    a login would. Returns [(user id, session id, cookie header)]."""
    import secrets

    from peewee import fn
    from werkzeug.security import generate_password_hash

    from app.extensions import db
    from app.models import User

    password_hash = generate_password_hash("password123")
    with stack.app.app_context():
        start = (User.select(fn.MAX(User.id)).scalar() or 0) + 1
        rows = [
            {
                "email": f"{prefix}{start + i}@example.com",
                "password_hash": password_hash,
                "points": 10_000_000,
            }
            for i in range(count)
        ]
        for chunk in range(0, count, 1000):
            User.insert_many(rows[chunk : chunk + 1000]).execute()
        ids = [
            u.id
            for u in User.select(User.id).where(User.email.startswith(prefix)).order_by(User.id)
        ][-count:]
        serializer = stack.app.session_interface.get_signing_serializer(stack.app)
        people = []
        for user_id in ids:
            sid = secrets.token_urlsafe(16)
            cookie = serializer.dumps({"uid": user_id, "sid": sid, "_permanent": True})
            people.append((user_id, sid, f"session={cookie}"))
        db.close()
    return people


async def constant_rate(
    requests: list[tuple[str, dict]], rate: float, seconds: float
) -> list[float]:
    """Send requests at a fixed rate whatever the answers do (an open loop, so a
    slow server cannot hide its tail), cycling through `requests` [(url,
    headers)]. Latency counts from when each request was due."""
    import asyncio

    import aiohttp

    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:

        async def one(url, headers, due):
            async with session.get(url, headers=headers) as response:
                await response.read()
                if response.status == 200:
                    latencies.append(loop.time() - due)

        start, tasks = loop.time(), []
        for i in range(int(rate * seconds)):
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - loop.time()))
            url, headers = requests[i % len(requests)]
            tasks.append(asyncio.ensure_future(one(url, headers, due)))
        await asyncio.gather(*tasks, return_exceptions=True)
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else 0.0


def slowlog_durations(client, command: str = "evalsha") -> list[int]:
    """Microseconds of every logged call of `command` (SLOWLOG set to log all)."""
    entries = client.slowlog_get(10_000)
    return [
        e["duration"]
        for e in entries
        if bytes(e["command"]).decode(errors="replace").lower().startswith(command)
    ]


def admit_and_enter(stack: Stack, event_id: int, people) -> None:
    """Through the real waiting room: join, one admission tick, poll for the
    token, consume it at the entrance for each person's session."""
    from app import entrance, events, waiting_room

    with stack.app.app_context():
        events.update(event_id, admit_rate=100_000, max_active=1_000_000)
        for user_id, _, _ in people:
            waiting_room.join(event_id, user_id)
        waiting_room.admit(event_id, max_batch=len(people))
        for user_id, sid, _ in people:
            status = waiting_room.poll(event_id, user_id)
            entrance.enter(event_id, user_id, sid, status.token)
