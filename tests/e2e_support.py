"""Browser tests: headless Chromium (Debian's package; Playwright drives it)
against the real stack that `make run` starts (bin/run: the web server, the RQ
worker and the scheduler), on a port of its own, with its own Redis database
and its own MySQL database (embedded Redis / SQLite when none answers).

Screenshots go to $E2E_SCREENSHOTS (default: a temporary folder); `make
screenshots` points it at docs/screenshots/. axe-core (npm, tests/e2e/
node_modules) is loaded into the pages to audit them. The fixtures here are
registered by tests/conftest.py (pytest_plugins); the tests are test_e2e_*.py.
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pymysql
import pytest
import redis
from conftest import IN_CI, MYSQL, mysql_available
from helpers import Browser, free_port

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
AXE = ROOT / "tests" / "e2e" / "node_modules" / "axe-core" / "axe.min.js"
E2E_REDIS_DB = int(os.environ.get("E2E_REDIS_DB", "14"))
E2E_MYSQL_DB = os.environ.get("E2E_MYSQL_DATABASE", "ticketdrop_e2e")
PASSWORD = "password123"
PHONE = {"width": 390, "height": 844}
METRICS_TOKEN = "e2e-metrics-token"


def _missing(what: str, how: str):
    message = f"browser tests need {what}: {how}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def screenshots() -> Path:
    folder = Path(os.environ.get("E2E_SCREENSHOTS") or tempfile.mkdtemp(prefix="e2e-shots-"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _stack_services() -> dict:
    """REDIS_URL and DATABASE_URL for the stack: the machine's servers when they
    answer (a database number and a MySQL database of the stack's own, emptied
    first), else nothing (bin/run starts an embedded Redis and uses SQLite)."""
    env = {}
    url = f"redis://127.0.0.1:6379/{E2E_REDIS_DB}"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).flushdb()
        env["REDIS_URL"] = url
    except redis.exceptions.ConnectionError:
        pass
    if mysql_available():
        with pymysql.connect(connect_timeout=2, **MYSQL) as conn:
            conn.cursor().execute(f"DROP DATABASE IF EXISTS `{E2E_MYSQL_DB}`")
            conn.cursor().execute(
                f"CREATE DATABASE `{E2E_MYSQL_DB}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
        password = f":{MYSQL['password']}" if MYSQL["password"] else ""
        env["DATABASE_URL"] = (
            f"mysql://{MYSQL['user']}{password}@{MYSQL['host']}:{MYSQL['port']}/{E2E_MYSQL_DB}"
        )
    return env


class Stack:
    def __init__(self, base_url: str, env: dict, log: Path):
        self.base_url, self.env, self.log = base_url, env, log
        self.staff_email = "e2e-staff@example.com"

    def flask(self, *args: str) -> str:
        return subprocess.run(
            [str(Path(sys.executable).parent / "flask"), "--app", "wsgi", *args],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def api(self, email: str | None = None) -> Browser:
        """A JSON API client, logged in as `email` when given."""
        client = Browser(self.base_url)
        if email:
            status, body = client.call(
                "POST", "/api/auth/login", {"email": email, "password": PASSWORD}
            )
            assert status == 200, body
        return client

    def new_user(self, prefix: str = "fan") -> str:
        email = f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"
        status, body = Browser(self.base_url).call(
            "POST", "/api/auth/register", {"email": email, "password": PASSWORD}
        )
        assert status == 201, body
        return email

    def new_event(
        self, name: str, sections: list[dict], admission: str = "open", **settings
    ) -> int:
        staff = self.api(self.staff_email)
        status, event = staff.call(
            "POST", "/api/admin/events", {"name": name, "sections": sections, **settings}
        )
        assert status == 201, event
        if admission != "paused":
            self.set_admission(event["id"], admission)
        return event["id"]

    def set_admission(self, event_id: int, admission: str) -> None:
        """Staff open, pause or close an event."""
        status, body = self.api(self.staff_email).call(
            "PATCH", f"/api/admin/events/{event_id}", {"admission": admission}
        )
        assert status == 200, body

    def buyer(self, event_id: int) -> Browser:
        """A new person through the JSON API: joined, admitted by the worker,
        entered; ready to hold and pay."""
        client = self.api(self.new_user("buyer"))
        status, body = client.call("POST", f"/api/events/{event_id}/queue")
        deadline = time.monotonic() + 30
        while body.get("status") != "admitted" and time.monotonic() < deadline:
            time.sleep(min(body.get("poll_after") or 0.5, 0.5))
            status, body = client.call("GET", f"/api/events/{event_id}/queue")
        assert body.get("status") == "admitted", body
        status, body = client.call(
            "POST",
            f"/api/events/{event_id}/enter",
            headers={"Authorization": f"Bearer {body['token']}"},
        )
        assert status == 200, body
        return client

    def buy(
        self, event_id: int, seat_ids: list[int], pay: bool = True, client: Browser | None = None
    ) -> None:
        """Someone else (`client`, else a new buyer) holds these seats, and pays
        for them when `pay`."""
        client = client or self.buyer(event_id)
        items = []
        for seat_id in seat_ids:
            status, body = client.call("POST", f"/api/events/{event_id}/seats/{seat_id}/hold")
            assert status == 201, body
            items.append({"seat_id": seat_id, "token": body["token"]})
        if pay:
            status, body = client.call(
                "POST",
                f"/api/events/{event_id}/checkout",
                {"seats": items},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            assert status == 201, body

    def seat_ids(self, event_id: int, client: Browser | None = None) -> list[int]:
        status, seats = (client or self.buyer(event_id)).call(
            "GET", f"/api/events/{event_id}/seats"
        )
        assert status == 200, seats
        return [seat["id"] for seat in seats]


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Stack:
    tmp = tmp_path_factory.mktemp("stack")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(
        _stack_services(),
        PORT=str(port),
        HOST="127.0.0.1",
        INSTANCE_PATH=str(tmp / "instance"),
        WEB_WORKERS="1",
        WEB_THREADS="16",
        ACCESS_LOG=str(tmp / "access.log"),
        # Every browser of the tests comes from 127.0.0.1, and each staff
        # helper call logs in again: roomier limits than one person's.
        PER_IP_LIMIT="20000/minute",
        JOIN_LIMIT="100/minute",
        HOLD_LIMIT="200/minute",
        LOGIN_LIMIT="1000/minute",
        REGISTER_LIMIT="1000/minute",
        PASSWORD_HASH_SLOTS="4",
        METRICS_TOKEN=METRICS_TOKEN,
    )
    log = tmp / "stack.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bin" / "run")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack = Stack(f"http://127.0.0.1:{port}", env, log)
    try:
        if not stack.api().wait_ready(90):
            pytest.fail(f"the stack did not start; see {log}:\n{log.read_text()[-3000:]}")
        stack.flask(
            "create-user", stack.staff_email, "--password", PASSWORD, "--staff", "--name", "Staff"
        )
        yield stack
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def chromium():
    if not Path(CHROMIUM).exists():
        _missing("Chromium", "make test installs Debian's chromium package with apt-get")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright", "make test installs it from requirements-dev.txt")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def new_context(chromium, stack):
    """Browser contexts (each its own cookies: one person each), closed after
    the test. Default: a laptop-sized English window with JavaScript on."""
    contexts = []

    def make(
        locale: str = "en-US", viewport: dict | None = None, javascript: bool = True, **options
    ):
        context = chromium.new_context(
            base_url=stack.base_url,
            locale=locale,
            viewport=viewport or {"width": 1280, "height": 900},
            java_script_enabled=javascript,
            **options,
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


def log_in(page, email: str, password: str = PASSWORD) -> None:
    page.goto("/auth/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("form.stack button[type=submit]")
    page.wait_for_load_state()


def enter_through_queue(page, event_id: int) -> None:
    """Join from the event page and wait until the browser is on the seat map."""
    page.goto(f"/events/{event_id}")
    page.click(f"form[action$='/events/{event_id}/join'] button")
    page.wait_for_url(re.compile(rf"/events/{event_id}/seats$"), timeout=30_000)


def shot(page, screenshots: Path, name: str, full_page: bool = True) -> None:
    page.screenshot(path=str(screenshots / f"{name}.png"), full_page=full_page)


def no_page_reloads(page) -> None:
    """Mark the document: the mark survives htmx swaps but not a reload."""
    page.evaluate("window.__e2eMark = 'still here'")


def still_same_document(page) -> bool:
    return page.evaluate("window.__e2eMark === 'still here'")


AXE_RESULTS: dict[str, dict] = {}


def axe_audit(page, name: str, screenshots: Path) -> list[dict]:
    """Run axe-core on the page; returns the serious and critical violations
    (and records every count, for the notes)."""
    if not AXE.exists():
        _missing("axe-core", "make test runs npm install in tests/e2e")
    page.evaluate(AXE.read_text())  # evaluated, not a <script>: the CSP forbids inline scripts
    report = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return {version: axe.version, passes: r.passes.length,
                incomplete: r.incomplete.map(v => v.id),
                violations: r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                    nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))};
    }""")
    result = report["violations"]
    counts = {
        impact: sum(1 for v in result if v["impact"] == impact)
        for impact in ("minor", "moderate", "serious", "critical")
    }
    AXE_RESULTS[name] = {
        "axe": report["version"],
        "rules_passed": report["passes"],
        "needs_review": report["incomplete"],
        "violations_by_impact": counts,
        "violations": result,
    }
    (screenshots / "axe-results.json").write_text(json.dumps(AXE_RESULTS, indent=2) + "\n")
    return [v for v in result if v["impact"] in ("serious", "critical")]


def wait_for(predicate, seconds: float = 15, every: float = 0.2):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return predicate()
