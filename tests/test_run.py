"""`make run` end to end: bin/run on embedded Redis and SQLite, in a fresh
instance folder, serves the demo and admits a person with no manual step."""

import os
import signal
import subprocess
import time

import pytest
from helpers import Browser, free_port, start_bin


@pytest.mark.slow
def test_run_serves_the_demo_and_the_worker_admits_a_person(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(PORT=str(port), INSTANCE_PATH=str(tmp_path / "instance"), WEB_WORKERS="1")
    proc = start_bin("run", env)
    try:
        browser = Browser(f"http://127.0.0.1:{port}")
        if not browser.wait_ready(60):
            pytest.fail("bin/run did not become ready within 60 s")

        assert (
            browser.call(
                "POST",
                "/api/auth/register",
                {"email": "walk-in@example.com", "password": "password123"},
            )[0]
            == 201
        )
        assert (
            browser.call(
                "POST",
                "/api/auth/login",
                {"email": "walk-in@example.com", "password": "password123"},
            )[0]
            == 200
        )
        events = browser.call("GET", "/api/events")[1]
        demo = next(e for e in events if e["name"] == "Demo concert")
        assert demo["admission"] == "open"

        status, body = browser.call("POST", f"/api/events/{demo['id']}/queue")
        assert status == 200 and body["status"] in ("waiting", "admitted")
        deadline = time.monotonic() + 30
        while body["status"] != "admitted" and time.monotonic() < deadline:
            time.sleep(min(body["poll_after"] or 1, 1))
            status, body = browser.call("GET", f"/api/events/{demo['id']}/queue")
            assert status == 200
        assert body["status"] == "admitted", "the worker never admitted the person"
        assert body["token"]
        assert (tmp_path / "instance" / "redis.sock").exists()  # the embedded Redis
        assert (tmp_path / "instance" / "ticketdrop.sqlite3").exists()  # and SQLite
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            output, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
    assert "staff login: staff@example.com" in output
    assert f"open http://127.0.0.1:{port}/" in output
