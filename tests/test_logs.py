"""Logs an operator can use (app/logs.py, app/web/observe.py): each request's
id on the lines written while it is answered, JSON lines, one handler
however many apps a process makes, and `make run` (bin/run) that starts
without a WARNING and stops on Ctrl-C without a traceback, Redis last."""

import contextvars
import json
import logging
import os
import re
import signal
import subprocess
import time
from datetime import datetime, timedelta

import pytest
from helpers import Browser, free_port, start_bin

from app import create_app, logs
from app.launcher import FLASK, ROOT

log = logging.getLogger("tests.logs")
LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (\w+) (\S+) \[(\S+)\]: (.*)")


@pytest.fixture
def logging_app(make_app):
    """An app of the test's own with a route that writes a line."""

    def make(**settings):
        app = make_app(**settings)

        @app.get("/test-log")
        def write_a_line():
            log.info("a line from inside the request")
            return "ok"

        return app

    return make


def text_lines(err: str) -> list[tuple[str, str, str, str]]:
    """(level, logger, request id, message) of each line in our text format."""
    return [LINE.fullmatch(line).groups() for line in err.splitlines() if LINE.fullmatch(line)]


def test_the_request_id_a_proxy_sent_is_on_the_lines_of_that_request(logging_app, capsys):
    client = logging_app().test_client()
    capsys.readouterr()

    response = client.get("/test-log", headers={"X-Request-Id": "nginx-id.42"})

    assert response.headers["X-Request-Id"] == "nginx-id.42"
    lines = text_lines(capsys.readouterr().err)
    assert ("INFO", "tests.logs", "nginx-id.42", "a line from inside the request") in lines
    access = [line for line in lines if line[1] == "ticketdrop.access"]
    assert len(access) == 1 and access[0][2] == "nginx-id.42"
    assert re.fullmatch(r"GET /test-log 200 \d+\.\dms", access[0][3]), access


@pytest.mark.parametrize("sent", ["", "two words", "x" * 65, "a;b", "é"])
def test_a_request_id_that_does_not_look_like_one_is_replaced(logging_app, capsys, sent):
    client = logging_app().test_client()
    capsys.readouterr()

    response = client.get("/test-log", headers={"X-Request-Id": sent})

    made = response.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{13,}", made) and made != sent  # a prefix of 12, a counter
    lines = text_lines(capsys.readouterr().err)
    assert ("INFO", "tests.logs", made, "a line from inside the request") in lines


def test_health_checks_that_went_well_write_no_line_and_the_id_ends_with_its_request(
    logging_app, capsys
):
    client = logging_app().test_client()
    capsys.readouterr()
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert client.get("/no/such/page").status_code == 404
    access = [line for line in text_lines(capsys.readouterr().err) if line[1].endswith("access")]
    assert [line[3].split()[:3] for line in access] == [["GET", "/no/such/page", "404"]]
    log.info("after the requests")
    assert text_lines(capsys.readouterr().err)[-1][2] == "-"  # no longer the last request's


def test_every_request_gets_an_id_of_its_own(logging_app):
    client = logging_app().test_client()
    ids = {client.get("/test-log").headers["X-Request-Id"] for _ in range(5)}
    assert len(ids) == 5


def test_json_lines_carry_the_fields_and_the_access_line_its_parts(logging_app, capsys):
    client = logging_app(LOG_FORMAT="json").test_client()
    capsys.readouterr()

    client.get("/test-log", headers={"X-Request-Id": "json-1"})

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    mine = next(line for line in lines if line["logger"] == "tests.logs")
    assert mine["level"] == "INFO" and mine["message"] == "a line from inside the request"
    assert mine["request_id"] == "json-1" and "exc" not in mine
    when = datetime.fromisoformat(mine["time"])
    assert when.utcoffset() == timedelta(0)
    assert abs(datetime.now(when.tzinfo) - when) < timedelta(minutes=1)
    (access,) = [line for line in lines if line["logger"] == "ticketdrop.access"]
    assert access["request_id"] == "json-1"
    assert access["message"] == f"GET /test-log 200 {access['ms']:.1f}ms"
    assert {k: access[k] for k in ("method", "path", "status", "route")} == {
        "method": "GET",
        "path": "/test-log",
        "status": 200,
        "route": "/test-log",
    }
    assert isinstance(access["ms"], float)


def test_a_json_line_carries_its_traceback_and_outside_a_request_no_id(logging_app, capsys):
    logging_app(LOG_FORMAT="json")
    capsys.readouterr()

    def fail():
        try:
            int("not a number")
        except ValueError:
            log.exception("the sum failed")

    contextvars.Context().run(fail)  # as a job would: no request

    (line,) = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert line["level"] == "ERROR" and line["message"] == "the sum failed"
    assert line["request_id"] == "-"
    assert line["exc"].startswith("Traceback") and "ValueError: invalid literal" in line["exc"]


def test_a_log_format_other_than_text_or_json_refuses_to_start(app):
    message = "LOG_FORMAT is 'xml': it must be text or json"
    with pytest.raises(ValueError, match=message):
        create_app({**app.test_settings, "LOG_FORMAT": "xml"})

    done = subprocess.run(
        [*FLASK, "init-db"],
        cwd=ROOT,
        env=dict(os.environ, LOG_FORMAT="xml"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert message in done.stderr.splitlines()[-1], done.stderr[-500:]


def test_every_create_app_keeps_one_handler_and_each_line_is_written_once(make_app, capsys):
    for log_format in ("text", "json", "text"):
        make_app(LOG_FORMAT=log_format)
    ours = [h for h in logging.getLogger().handlers if isinstance(h, logs.StderrHandler)]
    assert len(ours) == 1
    capsys.readouterr()

    log.warning("said once")

    assert capsys.readouterr().err.count("said once") == 1


# make run


def run_env(tmp_path) -> dict:
    """bin/run on its embedded Redis and SQLite, with the default log settings."""
    skip = ("REDIS_URL", "DATABASE_URL", "LOG_LEVEL", "LOG_FORMAT", "ACCESS_LOG")
    env = {k: v for k, v in os.environ.items() if k not in skip}
    env.update(PORT=str(free_port()), INSTANCE_PATH=str(tmp_path / "instance"), WEB_WORKERS="1")
    return env


def interrupt(proc: subprocess.Popen, again: bool = False) -> str:
    """Ctrl-C as a terminal sends it (to the whole process group), once or
    twice; its output once it has exited (killed after 20 s)."""
    os.killpg(proc.pid, signal.SIGINT)
    if again:
        time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.communicate(timeout=20)[0]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output = proc.communicate()[0]
        pytest.fail(f"bin/run did not stop within 20 s of Ctrl-C:\n{output[-3000:]}")


def redis_shutdown_at(instance) -> datetime:
    """When the embedded Redis began to shut down, from its own log."""
    text = (instance / "redis.log").read_text()
    found = re.search(r"(\d\d \w{3} \d{4} [\d:.]+) # User requested shutdown", text)
    assert found, text[-1000:]
    return datetime.strptime(found.group(1), "%d %b %Y %H:%M:%S.%f")


def last_line_at(output: str, logger: str) -> datetime:
    stamps = [line[:23] for line in output.splitlines() if f" {logger} [" in line]
    assert stamps, f"no line from {logger}"
    return datetime.strptime(stamps[-1], "%Y-%m-%d %H:%M:%S,%f")


@pytest.mark.slow
def test_make_run_starts_without_a_warning_and_stops_on_ctrl_c_redis_last(tmp_path):
    env = run_env(tmp_path)
    proc = start_bin("run", env)
    try:
        browser = Browser(f"http://127.0.0.1:{env['PORT']}")
        assert browser.wait_ready(25), "bin/run did not become ready within 25 s"
        person = {"email": "logs@example.com", "password": "password123"}
        assert browser.call("POST", "/api/auth/register", person)[0] == 201
        assert browser.call("POST", "/api/auth/login", person)[0] == 200
        (demo,) = [e for e in browser.call("GET", "/api/events")[1] if e["name"] == "Demo concert"]
        joined = browser.call(
            "POST", f"/api/events/{demo['id']}/queue", headers={"X-Request-Id": "run-join"}
        )
        assert joined[0] == 200
        for _ in range(4):
            time.sleep(0.5)
            assert browser.call("GET", f"/api/events/{demo['id']}/queue")[0] == 200
        time.sleep(1)  # a few admit ticks more
    finally:
        output = interrupt(proc, again=True)  # an impatient second Ctrl-C too

    lines = output.splitlines()
    assert proc.returncode == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert lines[-1] == "[run] stopped"
    assert [line for line in lines if re.search(r" (WARNING|ERROR|CRITICAL) ", line)] == []
    # A line per request, with the id nginx would send; none for a poll that went well.
    assert f"[run-join]: POST /api/events/{demo['id']}/queue 200 " in output
    assert f"GET /api/events/{demo['id']}/queue 200" not in output
    # The worker's start is there, its per-job lines (a job a second) are not.
    assert "*** Listening on ticketdrop" in output
    assert "Job OK" not in output and "jobs.admit.tick(" not in output
    # Redis went last: after the worker's and the scheduler's goodbyes, which
    # went through it (a Redis gone first would have been a traceback above).
    instance = tmp_path / "instance"
    stopped = redis_shutdown_at(instance)
    assert "Registering death" in output and "warm shut down requested" in output
    assert stopped >= last_line_at(output, "rq.worker")
    assert stopped >= last_line_at(output, "rq_scheduler.scheduler")
    assert not (instance / "redis.sock").exists()


def test_a_ctrl_c_while_make_run_sets_up_stops_it_cleanly(tmp_path):
    """Twice, during the setup (init-db, demo): no traceback, and no
    embedded Redis left running."""
    env = run_env(tmp_path)
    socket_path = tmp_path / "instance" / "redis.sock"
    proc = start_bin("run", env)
    deadline = time.monotonic() + 20
    while not socket_path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    output = interrupt(proc, again=True)

    assert proc.returncode == 0, output
    assert "Traceback" not in output and "Aborted" not in output, output
    assert output.splitlines()[-1] == "[run] stopped"
    assert "[run] started web" not in output  # stopped before it got that far
    assert "[run] embedded Redis at" in output
    assert not socket_path.exists()  # the embedded Redis stopped too
