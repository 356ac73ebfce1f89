"""`make cluster` end to end: bin/cluster brings up the Redis Cluster, RQ's
Redis, two web servers, nginx, two workers and the scheduler; a person is
served and polls through nginx; SIGTERM leaves no process behind."""

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pymysql
import pytest
from conftest import MYSQL, MYSQL_DB, mysql_available
from helpers import Browser, free_port, start_bin

DATABASE = f"{MYSQL_DB}_cluster"

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (each child runs in its own session)."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        child, parent = map(int, line.split())
        children.setdefault(parent, []).append(child)
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    return {pid for pid in pids if Path(f"/proc/{pid}").exists()}


def kill(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_cluster_serves_through_nginx_and_stops_everything_on_sigterm(tmp_path):
    if not mysql_available():
        pytest.skip("bin/cluster needs MySQL")
    database_url = f"mysql://{MYSQL['user']}@{MYSQL['host']}:{MYSQL['port']}/{DATABASE}"
    with pymysql.connect(**MYSQL) as conn:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{DATABASE}`")
        conn.cursor().execute(f"CREATE DATABASE `{DATABASE}`")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "RQ_REDIS_URL")}
    env.update(PORT=str(port), INSTANCE_PATH=str(tmp_path / "i"), DATABASE_URL=database_url)
    proc = start_bin("cluster", env)
    started: set[int] = set()
    try:
        browser = Browser(f"http://127.0.0.1:{port}")
        if not browser.wait_ready(90):
            pytest.fail("bin/cluster did not become ready within 90 s")
        started = descendants(proc.pid)
        assert browser.call("GET", "/healthz")[0] == 200
        person = {"email": "walk-in@example.com", "password": "password123"}
        assert browser.call("POST", "/api/auth/register", person)[0] == 201
        assert browser.call("POST", "/api/auth/login", person)[0] == 200
        demo = next(e for e in browser.call("GET", "/api/events")[1] if e["name"] == "Demo concert")
        status, body = browser.call("POST", f"/api/events/{demo['id']}/queue")
        assert status == 200 and body["status"] in ("waiting", "admitted"), body
        status, body = browser.call("GET", f"/api/events/{demo['id']}/queue")
        assert status == 200 and body["status"] in ("waiting", "admitted"), body
        # 6 cluster nodes, RQ's Redis, 2 web servers (with workers), nginx
        # (master and worker), 2 RQ workers, the scheduler.
        assert len(started) >= 14, started
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            output, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            kill(alive(descendants(proc.pid)) | {proc.pid})
            output, _ = proc.communicate()
        deadline = time.monotonic() + 10
        while alive(started) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = alive(started)
        kill(left)
        with pymysql.connect(**MYSQL) as conn:
            conn.cursor().execute(f"DROP DATABASE IF EXISTS `{DATABASE}`")
    assert proc.returncode == 0, output[-2000:]
    assert not left, f"still running after SIGTERM: {left}"
    assert f"open http://127.0.0.1:{port}/" in output
