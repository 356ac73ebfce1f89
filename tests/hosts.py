"""Several web hosts on one machine behind nginx (tests/test_hosts.py).

Each host is a network namespace joined to the root namespace by a veth
pair, running the real web server command (launcher.web_command) under
`ip netns exec`. Namespaces share the filesystem, so every host reaches the
test's Redis and MySQL over their unix sockets. nginx (launcher.Nginx, with
deploy/nginx.conf as it is) runs in the root namespace on loopback; a client
picks its own source address in 127.0.0.0/8, so nginx sees distinct clients.
Everything started here is removed by `Hosts.close`, also after a failure.
"""

import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from http.cookies import SimpleCookie
from pathlib import Path

import pymysql

from app import launcher

MYSQL_SOCKET = "/run/mysqld/mysqld.sock"
WEB_PORT = 8000  # free inside each host's own namespace
RETRYABLE = (502, 503, 504)


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


def free_subnet() -> int:
    """A third octet x with no address of 10.231.x.0/24 on this machine yet."""
    used = ip("-o", "-4", "addr")
    for x in range(1 + os.getpid() % 200, 255):
        if f"10.231.{x}." not in used:
            return x
    raise RuntimeError("no free 10.231.x.0/24")


class Host:
    """A web host: namespace `name`, reached at 10.231.subnet.(4i+2) through
    a veth pair whose root end is .(4i+1)."""

    def __init__(self, name: str, subnet: int, index: int):
        self.name = name
        self.root_address = f"10.231.{subnet}.{4 * index + 1}"
        self.address = f"10.231.{subnet}.{4 * index + 2}"
        self.web: subprocess.Popen | None = None
        self.log: Path | None = None

    @property
    def upstream(self) -> str:
        return f"{self.address}:{WEB_PORT}"

    def create(self) -> None:
        ns = ["netns", "exec", self.name, "ip"]
        ip("netns", "add", self.name)
        ip("link", "add", self.name, "type", "veth", "peer", "name", f"{self.name}p")
        ip("link", "set", f"{self.name}p", "netns", self.name)
        ip("addr", "add", f"{self.root_address}/30", "dev", self.name)
        ip("link", "set", self.name, "up")
        ip(*ns, "addr", "add", f"{self.address}/30", "dev", f"{self.name}p")
        ip(*ns, "link", "set", f"{self.name}p", "up")
        ip(*ns, "link", "set", "lo", "up")

    def start_web(self, env: dict, log: Path) -> None:
        """The production web command, inside the namespace; its access log
        (ACCESS_LOG=1) is this host's own record of what it served."""
        env = dict(env, HOST=self.address, PORT=str(WEB_PORT), ACCESS_LOG="1")
        command = launcher.web_command(launcher.server_settings(env))
        self.log = log
        with log.open("ab") as out:
            self.web = launcher.start(
                ["ip", "netns", "exec", self.name, *command], env, stdout=out, stderr=out
            )
        launcher.wait_for(self.healthy, f"the web server on {self.name}", 30)

    def healthy(self) -> bool:
        conn = http.client.HTTPConnection(self.address, WEB_PORT, timeout=2)
        with contextlib.closing(conn):
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200

    def kill_web(self) -> None:
        """SIGKILL the web server and its workers: no goodbye to nginx."""
        os.killpg(self.web.pid, signal.SIGKILL)
        self.web.wait()

    def served(self, path_part: str) -> int:
        """Requests this host's web server logged whose line has `path_part`."""
        return sum(1 for line in self.log.read_text().splitlines() if path_part in line)

    def remove(self) -> None:
        if self.web:
            launcher.stop([self.web])
        with contextlib.suppress(subprocess.CalledProcessError):
            for pid in ip("netns", "pids", self.name).split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
        with contextlib.suppress(subprocess.CalledProcessError):
            ip("link", "del", self.name)  # takes its peer in the namespace with it
        with contextlib.suppress(subprocess.CalledProcessError):
            ip("netns", "del", self.name)


class Hosts:
    """The topology: `count` web hosts, a Redis of the test's own (unix
    socket), the MySQL database `database` (created, and dropped at the
    end), the RQ worker and the scheduler, nginx in front on loopback."""

    def __init__(self, database: str, count: int = 2, **settings):
        # Short: the Redis socket's path must fit a unix socket address.
        self.tmp = Path(tempfile.mkdtemp(prefix="td-hosts-"))
        self.database = database
        tag = f"td{os.getpid() % 100_000}"
        subnet = free_subnet()
        self.hosts = [Host(f"{tag}h{i}", subnet, i) for i in range(count)]
        self.settings = settings
        self.procs: list[subprocess.Popen] = []
        self.redis = self.nginx = None

    def __enter__(self) -> "Hosts":
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type, *_) -> None:
        self.close()
        if exc_type is None:  # after a failure, the logs stay for a look
            shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self) -> None:
        self.redis = launcher.RedisServer(self.tmp / "redis", embedded=False).start()
        self.create_database()
        self.env = dict(
            os.environ,
            REDIS_URL=self.redis.url,
            DATABASE_URL=f"mysql://root@localhost/{self.database}?unix_socket={MYSQL_SOCKET}",
            INSTANCE_PATH=str(self.tmp / "instance"),
            SECRET_KEY="hosts-test",
            JWT_SECRET="hosts-test-jwt-secret-of-32-bytes",
            TRUSTED_PROXIES="1",
            WEB_WORKERS="1",
            LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
            PASSWORD_HASH_SLOTS="8",  # 30 people log in at once
            **self.settings,
        )
        self.flask("init-db")
        commands = launcher.commands(launcher.server_settings(self.env))
        for name in ("worker", "scheduler"):
            out = (self.tmp / f"{name}.log").open("ab")
            self.procs.append(launcher.start(commands[name], self.env, stdout=out, stderr=out))
        for host in self.hosts:
            host.create()
            host.start_web(self.env, self.tmp / f"{host.name}.log")
        listen = f"127.0.0.1:{launcher.free_port()}"
        upstreams = [host.upstream for host in self.hosts]
        self.nginx = launcher.Nginx(self.tmp / "nginx", upstreams, listen).start()

    def create_database(self) -> None:
        self.query(f"DROP DATABASE IF EXISTS `{self.database}`", database=None)
        self.query(
            f"CREATE DATABASE `{self.database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
            database=None,
        )

    def query(self, sql: str, *args, database: str | None = "") -> list[tuple]:
        """Rows of `sql` on the test's database (None: on no database)."""
        database = self.database if database == "" else database
        conn = pymysql.connect(unix_socket=MYSQL_SOCKET, user="root", database=database)
        with contextlib.closing(conn):
            cursor = conn.cursor()
            cursor.execute(sql, args)
            return list(cursor.fetchall())

    def flask(self, *args: str) -> None:
        subprocess.run(
            [*launcher.FLASK, *args], cwd=launcher.ROOT, env=self.env, check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip

    def close(self) -> None:
        if self.nginx:
            self.nginx.stop()
        for host in self.hosts:
            host.remove()
        launcher.stop(self.procs)
        if self.redis:
            self.redis.stop()
        with contextlib.suppress(pymysql.MySQLError):
            self.query(f"DROP DATABASE IF EXISTS `{self.database}`", database=None)

    def client(self, source: str) -> "Client":
        return Client(self.nginx.listen, source)

    def nginx_retries(self) -> int:
        """Requests nginx passed to a second upstream (its log: "a, b")."""
        lines = self.nginx.access_log_path.read_text().splitlines()
        return sum(1 for line in lines if ", " in line.split("[", 1)[1])


class Client:
    """A person's browser-less client from its own source address (so nginx
    sees it as its own client), with a session cookie, counting the
    retryable answers it met. `send` retries those (at most `tries`, a short
    pause instead of the whole Retry-After to keep the test short) and
    checks that each carried Retry-After."""

    def __init__(self, listen: str, source: str):
        self.host, port = listen.rsplit(":", 1)
        self.port, self.source = int(port), source
        self.cookies: dict[str, str] = {}
        self.requests = self.retryable = 0
        self.missing_retry_after: list[tuple] = []
        self.last_headers = None

    def call(self, method: str, path: str, body=None, headers=None) -> tuple[int, dict]:
        """One request: (status, the JSON body or {})."""
        data = json.dumps(body).encode() if body is not None else None
        # The API asks it of every unsafe request, body or not (docs/API.md).
        unsafe = method not in ("GET", "HEAD", "OPTIONS")
        all_headers = {"Content-Type": "application/json"} if unsafe else {}
        if self.cookies:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        all_headers.update(headers or {})
        conn = http.client.HTTPConnection(
            self.host, self.port, timeout=15, source_address=(self.source, 0)
        )
        with contextlib.closing(conn):
            conn.request(method, path, body=data, headers=all_headers)
            response = conn.getresponse()
            raw = response.read()
        self.requests += 1
        self.last_headers = response.headers
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        if response.status in RETRYABLE:
            self.retryable += 1
            if not response.headers.get("Retry-After"):
                self.missing_retry_after.append((method, path, response.status))
        is_json = response.headers.get("Content-Type", "").startswith("application/json")
        return response.status, json.loads(raw) if is_json and raw else {}

    def send(self, method: str, path: str, body=None, headers=None, tries: int = 10):
        for _ in range(tries):
            status, answer = self.call(method, path, body, headers)
            if status not in RETRYABLE:
                return status, answer
            time.sleep(0.2)
        return status, answer


def journey(client: Client, event_id: int, seats: list[int], email: str) -> dict:
    """Register, log in, join, wait until admitted, enter, hold the first
    free seat of `seats`, pay (one Idempotency-Key for every try). Returns
    what happened: the user id, the seat and the booking, or the step that
    was refused."""
    password = "password123"
    status, _ = client.send("POST", "/api/auth/register", {"email": email, "password": password})
    assert status in (201, 409), status  # 409: a retried register that had gone through
    status, me = client.send("POST", "/api/auth/login", {"email": email, "password": password})
    assert status == 200, (status, me)
    status, place = client.send("POST", f"/api/events/{event_id}/queue")
    assert status == 200, (status, place)
    deadline = time.monotonic() + 60
    while place.get("status") != "admitted" and time.monotonic() < deadline:
        time.sleep(min(place.get("poll_after") or 0.5, 0.5))
        status, place = client.send("GET", f"/api/events/{event_id}/queue")
        assert status == 200, (status, place)
    assert place.get("status") == "admitted", place
    bearer = {"Authorization": f"Bearer {place['token']}"}
    status, answer = client.send("POST", f"/api/events/{event_id}/enter", headers=bearer)
    assert status == 200, (status, answer)
    for seat in seats:
        status, held = client.send("POST", f"/api/events/{event_id}/seats/{seat}/hold")
        if status == 201:
            break
        assert status == 409, (status, held)  # someone else's: try the next
    else:
        return {"user": me["id"], "refused": "no free seat"}
    key = uuid.uuid4().hex
    items = {"seats": [{"seat_id": seat, "token": held["token"]}]}
    status, paid = client.send(
        "POST", f"/api/events/{event_id}/checkout", items, {"Idempotency-Key": key}
    )
    assert status in (200, 201), (status, paid)
    return {"user": me["id"], "seat": seat, "booking": paid["booking_id"]}
