"""The RQ jobs and their schedules on a real (private) Redis server, and the
command line.

Tests that point the app at a private Redis or another database rebind the
global singletons (create_app does that); the `rebind` fixture binds them back
to the session app's settings afterwards, so later tests are unaffected.
"""

import json
import os
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from app import accounts, create_app, events, keys, waiting_room
from app.models import Event, User
from jobs import JSONJob
from jobs.commands import rq_connection
from jobs.schedule import PERIODIC, ensure_schedules, make_scheduler

ROOT = Path(__file__).resolve().parent.parent

# The test app's JWT_SECRET is short on purpose; pyjwt warns about it.


@pytest.fixture
def private_app(app, private_redis, database_url, monkeypatch, rebind):
    """The app on the private Redis; jobs.flask_app() builds the same from the
    environment inside the worker."""
    settings = dict(app.test_settings)
    for name in ("REDIS_URL", "DATABASE_URL", "SECRET_KEY", "JWT_SECRET"):
        monkeypatch.setenv(name, {**settings, "REDIS_URL": private_redis.url}[name])
    return create_app({**settings, "REDIS_URL": private_redis.url})


def job_data(conn: Redis, job_id: str) -> bytes:
    raw = conn.hget(f"rq:job:{job_id}", "data")
    assert raw, f"no data for job {job_id}"
    try:
        return zlib.decompress(raw)  # rq compresses the payload
    except zlib.error:
        return raw


# End to end: scheduler -> queue -> worker -> admission


def test_scheduler_and_worker_admit_people(private_app, private_redis):
    config = private_app.config
    with private_app.app_context():
        event = events.create(
            "Job show", [{"name": "A", "rows": 1, "seats_per_row": 5, "price": 10}], admit_rate=1
        )
        events.update(event.id, admission="open")
        person = accounts.register("queued@example.com", "password123")
        assert waiting_room.join(event.id, person.id).status == "waiting"
        # A ghost behind the person, who stopped polling long ago.
        k = keys.event(event.id)
        from app.extensions import redis_store

        redis_store.client.zadd(k.queue, {"999999": 10**9})
        redis_store.client.zadd(k.heartbeat, {"999999": 0})

    conn = rq_connection(private_redis.url)
    scheduler = make_scheduler(conn, config["RQ_QUEUE"], 1, config)
    assert set(ensure_schedules(scheduler, config)) == set(PERIODIC)
    assert ensure_schedules(scheduler, config) == []  # idempotent
    scheduler.run(burst=True)
    queue = Queue(config["RQ_QUEUE"], connection=conn, serializer=JSONSerializer)
    assert set(queue.job_ids) == set(PERIODIC)
    # The periodic jobs are scheduled again for their next run.
    for job_id in PERIODIC:
        assert conn.zscore(scheduler.scheduled_jobs_key, job_id) is not None

    worker = SimpleWorker([queue], connection=conn, serializer=JSONSerializer)
    assert worker.work(burst=True, with_scheduler=False)
    for job_id in PERIODIC:
        job = JSONJob.fetch(job_id, connection=conn)
        assert job.is_finished, (job_id, job.get_status(), job.latest_result())
    admission = JSONJob.fetch("ticketdrop-admit", connection=conn).return_value()
    assert str(event.id) in admission or event.id in admission
    assert queue.count == 0

    with private_app.app_context():
        status = waiting_room.poll(event.id, person.id)
        assert status.status == "admitted" and status.token
        from app.extensions import redis_store

        assert redis_store.client.zscore(k.queue, "999999") is None  # the ghost is gone
        assert redis_store.client.zscore(k.heartbeat, "999999") is None


def test_jobs_are_stored_as_json(private_app, private_redis):
    config = private_app.config
    conn = rq_connection(private_redis.url)
    scheduler = make_scheduler(conn, config["RQ_QUEUE"], 1, config)
    ensure_schedules(scheduler, config)
    for job_id, (func, _, _) in PERIODIC.items():
        data = job_data(conn, job_id)
        assert data[:1] in (b"[", b"{"), data[:20]
        assert not data.startswith(b"\x80")  # a pickle starts with PROTO
        decoded = json.loads(data)
        assert func in json.dumps(decoded)
    scheduler.run(burst=True)
    # Enqueued, they are still JSON, and a JSON worker can load them.
    for job_id in PERIODIC:
        json.loads(job_data(conn, job_id))
        job = JSONJob.fetch(job_id, connection=conn, serializer=JSONSerializer)
        assert job.func_name in {func for func, _, _ in PERIODIC.values()}


def test_a_job_enqueued_without_a_serializer_is_still_json(private_app, private_redis):
    """rq-scheduler creates jobs without passing a serializer: JSONJob keeps them JSON."""
    conn = rq_connection(private_redis.url)
    job = JSONJob.create("jobs.admit.tick", connection=conn, id="plain-job")
    job.save()
    assert json.loads(job_data(conn, "plain-job"))


# Schedules heal themselves


def scheduled(scheduler) -> set[str]:
    return {m.decode() for m in scheduler.connection.zrange(scheduler.scheduled_jobs_key, 0, -1)}


def assert_schedules_present(scheduler):
    assert set(PERIODIC) <= scheduled(scheduler)
    for job_id in PERIODIC:
        assert JSONJob.exists(job_id, connection=scheduler.connection), job_id


def test_schedules_come_back_after_flushall(private_app, private_redis):
    config = private_app.config
    conn = rq_connection(private_redis.url)
    scheduler = make_scheduler(conn, config["RQ_QUEUE"], 1, config)
    scheduler.check_every = 0  # check on every pass (the default is every few seconds)
    ensure_schedules(scheduler, config)
    assert_schedules_present(scheduler)
    conn.flushall()  # our own server
    assert scheduled(scheduler) == set()
    scheduler.enqueue_jobs()
    assert_schedules_present(scheduler)
    # run(burst=True) heals too.
    conn.flushall()
    scheduler.run(burst=True)
    assert_schedules_present(scheduler)
    queue = Queue(config["RQ_QUEUE"], connection=conn, serializer=JSONSerializer)
    assert set(queue.job_ids) == set(PERIODIC)


def test_half_lost_schedule_is_repaired(private_app, private_redis):
    """The job hash gone but the zset entry left (or the other way round)."""
    config = private_app.config
    conn = rq_connection(private_redis.url)
    scheduler = make_scheduler(conn, config["RQ_QUEUE"], 1, config)
    ensure_schedules(scheduler, config)
    conn.delete("rq:job:ticketdrop-admit")
    conn.zrem(scheduler.scheduled_jobs_key, "ticketdrop-cleanup")
    assert sorted(ensure_schedules(scheduler, config)) == [
        "ticketdrop-admit",
        "ticketdrop-cleanup",
    ]
    assert_schedules_present(scheduler)
    assert ensure_schedules(scheduler, config) == []


def test_schedules_come_back_after_a_restart(private_app, private_redis):
    config = private_app.config
    conn = rq_connection(private_redis.url)
    scheduler = make_scheduler(conn, config["RQ_QUEUE"], 1, config)
    scheduler.check_every = 0
    ensure_schedules(scheduler, config)
    assert_schedules_present(scheduler)
    private_redis.restart()  # no persistence: the new server starts empty
    fresh = rq_connection(private_redis.url)
    assert fresh.dbsize() == 0
    # The same scheduler object (same client) carries on after the restart.
    scheduler.enqueue_jobs()
    assert_schedules_present(scheduler)


def test_admission_job_directly(private_app, private_redis):
    """jobs.admit.tick builds its app from the environment and admits."""
    from jobs import admit, cleanup

    with private_app.app_context():
        open_event = events.create(
            "Open", [{"name": "A", "rows": 1, "seats_per_row": 1, "price": 1}]
        )
        events.update(open_event.id, admission="open")
        closed = events.create("Closed", [{"name": "A", "rows": 1, "seats_per_row": 1, "price": 1}])
        person = accounts.register("direct@example.com", "password123")
        waiting_room.join(open_event.id, person.id)
        events.update(closed.id, admission="closed")
    result = admit.tick()
    assert set(result) == {open_event.id}
    assert result[open_event.id]["admitted"] == 1
    assert admit.tick()[open_event.id]["admitted"] == 0  # safe to run twice
    assert cleanup.clean_up() == {open_event.id: 0}


# The command line


def total_line(output: str) -> float:
    line = next(line for line in output.splitlines() if line.startswith("total"))
    return float(line.split()[-1].replace(",", ""))


def test_capacity_command(runner):
    result = runner.invoke(args=["capacity", "--waiting", "200000"])
    assert result.exit_code == 0, result.output
    assert "6,966.7" in result.output  # the tier table alone (docs/DESIGN.md)
    assert "66,666.7" in result.output  # fixed 3 s polling
    assert "200,000" in result.output
    assert 4_900 <= total_line(result.output) <= 5_000  # the default budget holds


def test_capacity_command_takes_the_budget_rate_and_window(runner, make_event):
    result = runner.invoke(args=["capacity", "--waiting", "1000000", "--budget", "20000"])
    assert result.exit_code == 0, result.output
    assert 19_800 <= total_line(result.output) <= 20_000
    event = make_event(poll_budget=3_000)
    result = runner.invoke(args=["capacity", "--waiting", "1000000", "--event", str(event.id)])
    assert 2_950 <= total_line(result.output) <= 3_000
    assert "poll budget 3,000/s" in result.output
    # A rate of 10/s leaves people far from their turn: the window does not bind.
    slow = runner.invoke(args=["capacity", "--waiting", "1000000", "--rate", "10"])
    assert 4_950 <= total_line(slow.output) <= 5_000
    # Too small a budget for a fast queue: said, not hidden.
    tight = runner.invoke(args=["capacity", "--waiting", "10000000", "--budget", "2000"])
    assert total_line(tight.output) > 2_000 and "over budget" in tight.output
    missing = runner.invoke(args=["capacity", "--waiting", "10", "--event", "999999"])
    assert missing.exit_code != 0 and "No event 999999" in missing.output


def test_capacity_command_other_numbers(runner):
    result = runner.invoke(args=["capacity", "--waiting", "0"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["capacity", "--waiting", "1000", "--fixed", "1"])
    assert result.exit_code == 0
    assert "1,000.0" in result.output
    assert runner.invoke(args=["capacity", "--waiting", "-5"]).exit_code != 0
    assert runner.invoke(args=["capacity"]).exit_code != 0


def test_capacity_through_the_real_flask_command(redis_url, database_url):
    env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": database_url}
    flask = Path(sys.executable).with_name("flask")
    result = subprocess.run(
        [str(flask), "--app", "wsgi", "capacity", "--waiting", "200000"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "6,966.7" in result.stdout and "66,666.7" in result.stdout
    assert total_line(result.stdout) <= 5_000


def test_init_db_twice_on_the_test_database(app, runner, make_user):
    user = make_user()
    for _ in range(2):
        result = runner.invoke(args=["init-db"])
        assert result.exit_code == 0, (result.output, result.exception)
        assert "Tables ready" in result.output
    with app.app_context():
        assert User.get_by_id(user.id).email == user.email  # nothing was dropped


def test_init_db_twice_on_sqlite(app, tmp_path, rebind):
    import sqlite3

    path = tmp_path / "fresh.sqlite3"
    sqlite_app = create_app({**dict(app.test_settings), "DATABASE_URL": f"sqlite:///{path}"})
    cli = sqlite_app.test_cli_runner()
    for _ in range(2):
        result = cli.invoke(args=["init-db"])
        assert result.exit_code == 0, (result.output, result.exception)
        assert "Tables ready (SQLite)" in result.output
    with sqlite3.connect(path) as conn:
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    assert {
        "users",
        "events",
        "seats",
        "bookings",
        "booking_seats",
        "payments",
        "audit_log",
    } <= tables
    result = cli.invoke(args=["create-user", "lite@example.com", "--password", "password123"])
    assert result.exit_code == 0, result.output
    assert cli.invoke(args=["init-db"]).exit_code == 0
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT email FROM users").fetchall() == [("lite@example.com",)]


def test_create_user_command(app, runner, client):
    result = runner.invoke(
        args=["create-user", "Boss@Example.com", "--password", "password123", "--staff"]
    )
    assert result.exit_code == 0, (result.output, result.exception)
    assert "boss@example.com" in result.output and "(staff)" in result.output
    result = runner.invoke(
        args=[
            "create-user",
            "fan@example.com",
            "--password",
            "password123",
            "--points",
            "5",
            "--name",
            "Fan",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "(staff)" not in result.output
    with app.app_context():
        boss = User.get(User.email == "boss@example.com")
        fan = User.get(User.email == "fan@example.com")
        assert boss.is_staff and boss.points == 100_000
        assert not fan.is_staff and fan.points == 5 and fan.name == "Fan"
    response = client.post(
        "/api/auth/login", json={"email": "boss@example.com", "password": "password123"}
    )
    assert response.status_code == 200 and response.json["is_staff"] is True
    # A staff account made on the command line can use the staff API.
    created = client.post(
        "/api/admin/events",
        json={
            "name": "CLI show",
            "sections": [{"name": "A", "rows": 1, "seats_per_row": 2, "price": 5}],
        },
    )
    assert created.status_code == 201


def test_create_user_command_refuses_a_taken_email(app, runner, make_user):
    make_user(email="taken@example.com")
    result = runner.invoke(args=["create-user", "taken@example.com", "--password", "x" * 8])
    assert result.exit_code != 0
    with app.app_context():
        assert User.select().where(User.email == "taken@example.com").count() == 1


def test_create_user_command_needs_a_password(runner):
    assert runner.invoke(args=["create-user", "nopw@example.com"]).exit_code != 0


def test_demo_command_twice(app, runner):
    """The same passwords on every start (kept under instance/), one for
    the fan and another for the staff; the banner prints the event's own
    settings; a new file only when that one is gone."""
    kept = Path(app.instance_path) / "demo-logins.json"
    kept.unlink(missing_ok=True)
    outputs = []
    for _ in range(2):
        result = runner.invoke(args=["demo"])
        assert result.exit_code == 0, (result.output, result.exception)
        outputs.append(result.output)
    assert outputs[0] == outputs[1]
    logins = dict(re.findall(r"login: +(\S+) / (\S+)", outputs[0]))
    assert logins.keys() == {"staff@example.com", "fan@example.com"}
    assert logins["staff@example.com"] != logins["fan@example.com"]
    assert json.loads(kept.read_text()) == logins
    assert kept.stat().st_mode & 0o077 == 0
    with app.app_context():
        event = Event.get(Event.name == "Demo concert")
        assert Event.select().where(Event.name == "Demo concert").count() == 1
        assert User.get(User.email == "staff@example.com").is_staff
        for email, password in logins.items():
            assert accounts.authenticate(email, password).email == email
    settings = f"{event.admit_rate:,} people/s, {event.max_active:,} at once"
    assert f"(admission {event.admission}, {settings})" in outputs[0]
    kept.unlink()
    again = runner.invoke(args=["demo"]).output
    assert dict(re.findall(r"login: +(\S+) / (\S+)", again)) != logins


NEW_EVENT_COLUMNS = (
    "poll_budget", "prequeue_opens_at", "draw_seed", "drawn_at", "max_seats_per_person",
    "bot_protection", "venue", "starts_at",
)  # fmt: skip


def test_init_db_adds_the_columns_a_newer_version_needs_on_sqlite(app, tmp_path, rebind):
    # A database made before the poll budget and the fair start: init-db
    # adds their columns, and the event made earlier keeps its row.
    import sqlite3

    path = tmp_path / "old.sqlite3"
    sqlite_app = create_app({**dict(app.test_settings), "DATABASE_URL": f"sqlite:///{path}"})
    assert sqlite_app.test_cli_runner().invoke(args=["init-db"]).exit_code == 0
    with sqlite3.connect(path) as conn:
        for column in NEW_EVENT_COLUMNS:
            conn.execute(f"ALTER TABLE events DROP COLUMN {column}")
        conn.execute(
            "INSERT INTO events (name, admission, max_active, admit_rate, active_ttl, hold_ttl,"
            " created_at) VALUES ('Old', 'paused', 10, 1, 60, 60, '2026-01-01 00:00:00')"
        )
    result = sqlite_app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0, (result.output, result.exception)
    with sqlite3.connect(path) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
        row = conn.execute(
            "SELECT name, poll_budget, draw_seed, drawn_at, max_seats_per_person, bot_protection,"
            " venue, starts_at FROM events"
        ).fetchone()
    assert set(NEW_EVENT_COLUMNS) <= columns
    assert row == ("Old", 5000, "", None, 4, 0, "", None)


def test_init_db_adds_missing_columns_on_mysql(app, runner, mysql, make_event):
    from app.extensions import db

    event = make_event()
    with app.app_context():
        for column in NEW_EVENT_COLUMNS:
            db.execute_sql(f"ALTER TABLE events DROP COLUMN {column}")
    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 0, (result.output, result.exception)
    with app.app_context():
        columns = {c.name for c in db.get_columns("events")}
        assert set(NEW_EVENT_COLUMNS) <= columns
        assert Event.get_by_id(event.id).poll_budget == 5000
        assert Event.get_by_id(event.id).max_seats_per_person == 4
        assert Event.get_by_id(event.id).bot_protection is False


def test_the_admit_tick_queues_the_draw_as_a_job_of_its_own(private_app, private_redis):
    # At the opening, the tick (run by a real worker) queues the draw, once;
    # the worker then makes it, and the next tick admits.
    from datetime import UTC, datetime, timedelta

    from app import draw

    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    with private_app.app_context():
        event = events.create(
            "Drawn", [{"name": "A", "rows": 1, "seats_per_row": 5, "price": 10}],
            sale_opens_at=now + timedelta(hours=1), admit_rate=100,
        )  # fmt: skip
        events.update(event.id, admission="open")
        for uid in range(1, 41):
            waiting_room.join(event.id, uid)
        events.update(event.id, sale_opens_at=now - timedelta(seconds=1))
    conn = rq_connection(private_redis.url)
    queue = Queue(private_app.config["RQ_QUEUE"], connection=conn, serializer=JSONSerializer)
    for _ in range(2):  # two ticks before any worker draws: one draw job
        queue.enqueue("jobs.admit.tick")
    worker = SimpleWorker([queue], connection=conn, serializer=JSONSerializer)
    assert worker.work(burst=True, with_scheduler=False)
    draw_job = JSONJob.fetch(f"draw-event-{event.id}", connection=conn)
    assert draw_job.is_finished and draw_job.return_value()["participants"] == 40
    assert draw_job.timeout > 600  # a million take minutes; a tick may take 30 s
    with private_app.app_context():
        published = draw.published(event.id)
        assert draw.verify(published) == [] and len(published["order"]) == 40
        from jobs import admit

        assert admit.tick()[event.id]["admitted"] == 40
