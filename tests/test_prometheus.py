"""deploy/prometheus/ and deploy/grafana/: promtool accepts the alert rules,
their unit tests (alerts.test.yml) pass and the example config is valid; the
rules and the dashboard name only the metrics of docs/OPERATIONS.md, and
watch every one of them; and against a live stack scraped by a real
Prometheus, every family, every alert's signal and every panel's query has
data. Debian's prometheus package brings promtool and prometheus (make test
installs it); without them these tests skip, except in CI, where they fail."""

import json
import os
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pymysql
import pytest
import requests
import yaml
from conftest import IN_CI, MYSQL, mysql_available

from app import launcher

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERT_TESTS = PROMETHEUS_DIR / "alerts.test.yml"
EXAMPLE_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "ticketdrop.json"
OPERATIONS = ROOT / "docs" / "OPERATIONS.md"

NAME = re.compile(r"ticketdrop_[a-z_]+")
# `<signal> <op> <number>`: the last comparison, a literal at the very end.
COMPARISON = re.compile(r"^(?P<signal>.*\S)\s*(?:==|!=|>=|<=|>|<)\s*-?[0-9.]+\s*$", re.DOTALL)
# What Grafana puts in for its own variables, as the live test asks Prometheus.
GRAFANA_VARIABLES = {"$event": ".*", "$__rate_interval": "1m", "$__interval": "15s"}
PER_EVENT = ("ticketdrop_event_", "ticketdrop_admission_seconds_since_tick")
DATABASE = "ticketdrop_prom"


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        message = f"no {name}: apt-get install prometheus (make test does)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


def documented() -> dict[str, str]:
    """{family: type} from docs/OPERATIONS.md's table (a row may name several)."""
    families = {}
    for line in OPERATIONS.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].startswith("`ticketdrop_"):
            for name in re.findall(r"`(ticketdrop_[a-z_]+)`", cells[0]):
                families[name] = cells[1]
    return families


def families_named(text: str) -> set[str]:
    """The metric families `text` names: a histogram's _bucket, _sum and
    _count series are its family."""
    histograms = {name for name, kind in documented().items() if kind == "histogram"}
    found = set()
    for name in NAME.findall(text):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        found.add(base if base in histograms else name)
    return found


def alert_rules() -> list[dict]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def signal(expr: str) -> str:
    """What an alert compares: its expr without the final `<op> <number>`."""
    match = COMPARISON.match(expr.strip())
    assert match, f"not `<signal> <op> <number>`: {expr}"
    return match["signal"]


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def panel_exprs() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel["targets"]]


def as_grafana_sends(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def test_promtool_accepts_the_rules():
    result = subprocess.run(
        [tool("promtool"), "check", "rules", str(ALERTS)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_pass_their_unit_tests():
    result = subprocess.run(
        [tool("promtool"), "test", "rules", ALERT_TESTS.name],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_example_config_is_valid(tmp_path):
    """As an operator installs it: the rules beside it, the token file present."""
    token = tmp_path / "ticketdrop-metrics-token"
    token.write_text("a-token")
    config = EXAMPLE_CONFIG.read_text()
    assert "credentials_file: /etc/prometheus/ticketdrop-metrics-token" in config
    (tmp_path / "prometheus.yml").write_text(
        config.replace("/etc/prometheus/ticketdrop-metrics-token", str(token))
    )
    shutil.copy(ALERTS, tmp_path / "alerts.yml")
    result = subprocess.run(
        [tool("promtool"), "check", "config", "prometheus.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    scrape = yaml.safe_load(config)
    assert scrape["global"]["scrape_interval"] == "15s"
    assert scrape["rule_files"] == ["alerts.yml"]
    [job] = scrape["scrape_configs"]
    assert job["job_name"] == "ticketdrop"  # MetricsScrapeFailing asks for it
    assert job["authorization"]["type"] == "Bearer"


def test_every_alert_compares_a_signal_with_a_number_and_says_what_to_do():
    rules = alert_rules()
    assert len({rule["alert"] for rule in rules}) == len(rules)
    for rule in rules:
        signal(rule["expr"])
        assert rule.get("for"), rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_the_rules_and_the_dashboard_name_only_documented_metrics():
    names = documented()
    # The table was read (a family added there must be watched: the next test).
    assert {"ticketdrop_http_requests_total", "ticketdrop_redis_memory_max_bytes"} <= names.keys()
    for path in (ALERTS, ALERT_TESTS, DASHBOARD):
        unknown = families_named(path.read_text()) - names.keys()
        assert not unknown, f"{path.name} names metrics docs/OPERATIONS.md does not: {unknown}"


def test_every_documented_family_is_watched():
    """By an alert or a dashboard panel (what they compute, not their prose)."""
    watched = families_named(" ".join(rule["expr"] for rule in alert_rules()))
    watched |= families_named(" ".join(panel_exprs()))
    assert set(documented()) - watched == set()


def test_the_dashboard_has_its_variables_and_asks_per_event_figures_per_event():
    board = dashboard()
    assert 36 <= board["schemaVersion"] <= 41
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["event"]["query"] == "label_values(ticketdrop_event_waiting, event)"
    assert variables["event"]["includeAll"] and variables["event"]["allValue"] == ".*"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels():
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            if any(family in target["expr"] for family in PER_EVENT):
                assert '{event=~"$event"}' in target["expr"], target["expr"]


# The live stack ------------------------------------------------------------


class Prometheus:
    """Debian's prometheus scraping `target` every second with the metrics
    token, with alerts.yml loaded; on loopback, its data in `directory`."""

    def __init__(self, directory: Path, target: str, token: str):
        self.directory, self.target, self.token = directory, target, token
        self.url = f"http://127.0.0.1:{launcher.free_port()}"
        self.proc = None

    def start(self) -> "Prometheus":
        binary = tool("prometheus")
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "token").write_text(self.token)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ALERTS)],
            "scrape_configs": [
                {
                    "job_name": "ticketdrop",
                    "scrape_timeout": "1s",
                    "authorization": {
                        "type": "Bearer",
                        "credentials_file": str(self.directory / "token"),
                    },
                    "static_configs": [{"targets": [self.target]}],
                }
            ],
        }
        (self.directory / "prometheus.yml").write_text(yaml.safe_dump(config))
        command = [
            binary,
            f"--config.file={self.directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.directory / 'data'}",
            f"--web.listen-address={self.url.removeprefix('http://')}",
            "--log.level=warn",
        ]
        with (self.directory / "prometheus.log").open("w") as log:
            self.proc = launcher.start(command, os.environ, stdout=log, stderr=subprocess.STDOUT)
        launcher.wait_for(lambda: requests.get(f"{self.url}/-/ready", timeout=1).ok, "prometheus")
        return self

    def api(self, path: str, **params) -> dict:
        return requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=5).json()

    def query(self, expr: str) -> dict:
        return self.api("query", query=expr)

    def series(self, expr: str) -> list:
        answer = self.query(expr)
        assert answer["status"] == "success", (expr, answer)
        return answer["data"]["result"]

    def stop(self) -> None:
        if self.proc:
            launcher.stop([self.proc])


def fresh_database() -> str:
    with pymysql.connect(connect_timeout=2, **MYSQL) as conn:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{DATABASE}`")
        conn.cursor().execute(
            f"CREATE DATABASE `{DATABASE}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )
    password = f":{MYSQL['password']}" if MYSQL["password"] else ""
    return f"mysql://{MYSQL['user']}{password}@{MYSQL['host']}:{MYSQL['port']}/{DATABASE}"


def stack_env(tmp_path: Path, redis_url: str, token: str) -> dict:
    """The settings bin/run would give it, on our own Redis and database;
    generous account limits: the test makes a few accounts in a second."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("RQ_REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")
    }
    env.update(
        REDIS_URL=redis_url, DATABASE_URL=fresh_database(), METRICS_TOKEN=token,
        SESSION_COOKIE_SECURE="0", INSTANCE_PATH=str(tmp_path / "instance"),
        HOST="127.0.0.1", PORT=str(launcher.free_port()), WEB_WORKERS="2", WEB_THREADS="2",
        REGISTER_LIMIT="1000/minute", LOGIN_LIMIT="1000/minute", PYTHONUNBUFFERED="1",
    )  # fmt: skip
    return env


def demo_event(env: dict) -> int:
    """`flask init-db` and `flask demo` as bin/run runs them: the demo event's id."""
    for command in ("init-db", "demo"):
        done = subprocess.run(
            [*launcher.FLASK, command], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
    return int(re.search(r"Demo event (\d+)", done.stdout)[1])


def start_stack(tmp_path: Path, env: dict, procs: list) -> str:
    """The web server (its processes counting in a directory of their own),
    the worker and the scheduler, each logging to tmp_path/<name>.log, added
    to `procs` as they start; the web server's URL once it is ready."""
    web_env = launcher.metrics_directory(env, tmp_path / "metrics")
    for name, command in launcher.commands(launcher.server_settings(env)).items():
        with (tmp_path / f"{name}.log").open("w") as log:
            procs.append(
                launcher.start(command, web_env if name == "web" else env, stdout=log, stderr=log)
            )
    base = f"http://127.0.0.1:{env['PORT']}"
    launcher.wait_for(lambda: requests.get(f"{base}/readyz", timeout=1).ok, "the stack", 30)
    return base


@pytest.fixture
def live(tmp_path):
    """A private Redis (with a maxmemory, so that the memory ratio has a
    denominator), MySQL, granian with 2 processes, the worker and the
    scheduler, and the demo event; Prometheus scraping the web server.
    Everything stops afterwards, whatever happened.
    Yields (the web server's URL, the demo event's id, Prometheus)."""
    tool("prometheus")
    if not mysql_available():  # in CI, a missing MySQL fails there
        pytest.skip("the live stack needs MySQL/MariaDB")
    token = secrets.token_urlsafe(16)
    redis_server = launcher.RedisServer(
        tmp_path / "redis", port=launcher.free_port(), maxmemory="64mb"
    )
    procs, prometheus = [], None
    try:
        redis_server.start()
        env = stack_env(tmp_path, redis_server.url, token)
        event_id = demo_event(env)
        base = start_stack(tmp_path, env, procs)
        prometheus = Prometheus(tmp_path / "prometheus", f"127.0.0.1:{env['PORT']}", token)
        prometheus.start()
        yield base, event_id, prometheus
    finally:
        if prometheus:
            prometheus.stop()
        launcher.stop(procs)
        redis_server.stop()


def buy_a_seat(base: str, event_id: int, n: int) -> None:
    """One person's way through: register, join, poll (JSON and the htmx
    fragment) until admitted, enter, hold the n-th seat and pay for it."""
    with requests.Session() as person:
        # A connection per request: both of granian's processes answer some.
        person.headers["Connection"] = "close"
        account = {"email": f"buyer{n}@example.com", "password": "password123"}
        assert person.post(f"{base}/api/auth/register", json=account, timeout=10).status_code == 201
        assert person.post(f"{base}/api/auth/login", json=account, timeout=10).status_code == 200
        queue = f"{base}/api/events/{event_id}/queue"
        assert person.post(queue, json={}, timeout=5).status_code == 200
        fragment = f"{base}/events/{event_id}/waiting/status"
        deadline = time.monotonic() + 20
        while True:  # both polls at least once, whatever the admission's speed
            polled = person.get(fragment, headers={"HX-Request": "true"}, timeout=5)
            assert polled.status_code == 200
            status = person.get(queue, timeout=5).json()
            if status["status"] == "admitted" or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert status["status"] == "admitted", status
        entered = person.post(
            f"{base}/api/events/{event_id}/enter",
            headers={
                "Authorization": f"Bearer {status['token']}",
                "Content-Type": "application/json",
            },
            timeout=5,
        )
        assert entered.status_code == 200, entered.text
        seats = person.get(f"{base}/api/events/{event_id}/seats", timeout=5).json()
        seat = seats[n]["id"]
        held = person.post(f"{base}/api/events/{event_id}/seats/{seat}/hold", json={}, timeout=5)
        assert held.status_code == 201, held.text
        paid = person.post(
            f"{base}/api/events/{event_id}/checkout",
            json={"seats": [{"seat_id": seat, "token": held.json()["token"]}]},
            headers={"Idempotency-Key": secrets.token_hex(8)},
            timeout=10,
        )
        assert paid.status_code == 201, paid.text


@pytest.mark.slow
def test_a_live_prometheus_finds_every_metric_alert_and_panel_has_data(live):
    base, event_id, prometheus = live

    def scraped(expr: str) -> bool:
        return bool(prometheus.series(expr))

    # Scraped before, during and after the traffic: the rates are not all 0.
    launcher.wait_for(lambda: scraped('up{job="ticketdrop"} == 1'), "the target up", 20)
    for n in range(3):
        buy_a_seat(base, event_id, n)
    # The checkouts seen, then two more scrapes: every rate has two samples.
    booked = 'sum(ticketdrop_checkout_total{outcome="booked"}) >= 3'
    launcher.wait_for(lambda: scraped(booked), "the checkouts scraped", 20)
    time.sleep(2.5)

    missing = []
    for name, kind in documented().items():
        series = f"{name}_bucket" if kind == "histogram" else name
        if not scraped(series):
            missing.append(f"family {series}")
    for rule in alert_rules():
        answer = prometheus.query(rule["expr"])
        assert answer["status"] == "success", (rule["alert"], answer)
        if not scraped(signal(rule["expr"])):
            missing.append(f"alert {rule['alert']}: {signal(rule['expr'])}")
    for panel in panels():
        for target in panel["targets"]:
            if not scraped(as_grafana_sends(target["expr"])):
                missing.append(f"panel {panel['title']!r}: {target['expr']}")
    assert not missing, "no data:\n" + "\n".join(missing)

    events = prometheus.api("label/event/values", **{"match[]": "ticketdrop_event_waiting"})
    assert str(event_id) in events["data"]  # the dashboard's event variable

    def rules_loaded() -> dict:
        groups = prometheus.api("rules", type="alert")["data"]["groups"]
        return {rule["name"]: rule for group in groups for rule in group["rules"]}

    names = {rule["alert"] for rule in alert_rules()}
    launcher.wait_for(
        lambda: (
            rules_loaded().keys() == names
            and all(rule["health"] == "ok" for rule in rules_loaded().values())
        ),
        "every rule evaluated",
        10,
    )
    # A healthy stack: nothing fires (each needs its `for` first) nor is pending.
    alerts = prometheus.api("alerts")["data"]["alerts"]
    assert alerts == [], alerts
