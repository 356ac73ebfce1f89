"""Command line: flask --app wsgi <command> (docs/API.md lists them)."""

import json
import secrets
from pathlib import Path

import click
from flask import Flask, current_app
from playhouse.migrate import SchemaMigrator, migrate

from app import accounts, capacity, draw, events
from app import staff as staff_controls
from app.config import EVENT_DEFAULTS
from app.errors import AppError
from app.extensions import db, is_mysql
from app.models import MODELS, Event, User

SCHEMA = Path(__file__).resolve().parent.parent / "schema.sql"


def create_tables() -> None:
    """MySQL: the statements of schema.sql one by one (PyMySQL runs one per
    execute). SQLite: the same tables from the models. Then the columns a
    newer version added to a table that already existed."""
    if is_mysql():
        for statement in schema_statements():
            db.execute_sql(statement)
    else:
        db.create_tables(MODELS, safe=True)
    add_missing_columns()


def add_missing_columns() -> None:
    """A database made by an earlier version gets the columns it lacks (new
    columns have defaults or allow NULL, so existing rows stay valid)."""
    migrator = SchemaMigrator.from_database(db)
    for model in MODELS:
        table = model._meta.table_name
        present = {column.name for column in db.get_columns(table)}
        for field in model._meta.sorted_fields:
            if field.column_name not in present:
                migrate(migrator.add_column(table, field.column_name, field))


def schema_statements() -> list[str]:
    lines = [line for line in SCHEMA.read_text().splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def register(app: Flask) -> None:
    @app.cli.command("init-db")
    def init_db():
        """Create the tables if they are missing."""
        create_tables()
        click.echo(f"Tables ready ({'MySQL' if is_mysql() else 'SQLite'}).")

    @app.cli.command("create-user")
    @click.argument("email")
    @click.option("--password", required=True)
    @click.option("--staff", is_flag=True)
    @click.option("--points", type=int, default=None)
    @click.option("--name", default="")
    def create_user(email, password, staff, points, name):
        """Create an account."""
        try:
            user = accounts.register(email, password, name, is_staff=staff, points=points)
        except AppError as e:
            raise click.ClickException(e.message) from None
        click.echo(f"Created user {user.id} <{user.email}>{' (staff)' if staff else ''}.")

    @app.cli.command("revoke-sessions")
    @click.argument("email")
    def revoke_sessions(email):
        """Sign a person out everywhere: every copy of every session ends."""
        user = User.get_or_none(User.email == accounts.normalize_email(email))
        if user is None:
            raise click.ClickException(f"No account with the email {email}.")
        staff_controls.revoke_sessions(None, user.id)
        click.echo(f"Every session of {user.email} has ended.")

    @app.cli.command("demo")
    def demo():
        """A demo event (seat map, admission open) and a staff and a fan account,
        printed on screen. Run again, it keeps the event and the passwords
        (instance/demo-logins.json)."""
        print_demo(*make_demo())

    @app.cli.command("capacity")
    @click.option(
        "--waiting", type=click.IntRange(min=0), required=True, help="People in the queue."
    )
    @click.option("--event", "event_id", type=int, help="Take the budget, rate and window from it.")
    @click.option("--budget", type=click.IntRange(min=1), help="Poll budget, polls/s.")
    @click.option("--rate", type=click.IntRange(min=1), help="Admissions per second.")
    @click.option("--active-ttl", type=click.IntRange(min=1), help="Active window, s.")
    @click.option("--fixed", type=float, default=3.0, help="Fixed interval to compare with.")
    def capacity_command(waiting, event_id, budget, rate, active_ttl, fixed):
        """Print the poll intervals and load for a crowd (an event's
        settings, or the defaults, each overridable)."""
        settings = dict(EVENT_DEFAULTS)
        if event_id is not None:
            event = Event.get_or_none(Event.id == event_id)
            if event is None:
                raise click.ClickException(f"No event {event_id}.")
            settings.update(
                poll_budget=event.poll_budget, admit_rate=event.admit_rate,
                active_ttl=event.active_ttl,
            )  # fmt: skip
        rule = capacity.PollRule.of(
            current_app.config["POLL_TIERS"],
            budget or settings["poll_budget"],
            active_ttl or settings["active_ttl"],
            rate or settings["admit_rate"],
        )
        click.echo(capacity.report(waiting, rule, fixed))

    @app.cli.command("verify-draw")
    @click.argument("event_id", type=int)
    @click.option(
        "--file",
        "path",
        type=click.Path(exists=True, dir_okay=False),
        help="A saved GET /api/events/EVENT/draw answer, instead of this app's database.",
    )
    def verify_draw(event_id, path):
        """Check an event's draw: the seed against its commitment, and the
        order recomputed from the seed and the participants."""
        if path:
            try:
                published = json.loads(Path(path).read_text())
            except (ValueError, UnicodeDecodeError):
                raise click.ClickException(f"{path} is not JSON.") from None
            if not isinstance(published, dict):
                raise click.ClickException(f"{path} is not a published draw.")
        else:
            try:
                published = draw.published(event_id)
            except AppError as e:
                raise click.ClickException(e.message) from None
        problems = draw.verify(published)
        if problems:
            raise click.ClickException("; ".join(problems))
        click.echo(
            f"Draw of event {event_id} verified: {len(published['order']):,} participants, "
            f"seed matches commitment {published['commitment'][:16]}..., order recomputed."
        )


DEMO_EVENT = "Demo concert"
DEMO_STAFF = "staff@example.com"
DEMO_FAN = "fan@example.com"


DEMO_LOGINS = "demo-logins.json"  # under the instance folder


def make_demo() -> tuple[Event, dict]:
    """The demo event and its two accounts, with the passwords kept in
    instance/demo-logins.json: the same on every start (a fan's and a
    staff's of their own), new only when that file is gone."""
    passwords, fresh = _demo_passwords(Path(current_app.instance_path) / DEMO_LOGINS)
    for email, staff in ((DEMO_STAFF, True), (DEMO_FAN, False)):
        user = User.get_or_none(User.email == email)
        if user is None:
            accounts.register(
                email, passwords[email], "Demo " + ("staff" if staff else "fan"), is_staff=staff
            )
        elif fresh:  # (setting it ends the account's sessions: only when it changed)
            accounts.set_password(user, passwords[email])
    event = Event.get_or_none(Event.name == DEMO_EVENT)
    if event is None:
        event = events.create(
            DEMO_EVENT,
            [
                {"name": "Floor", "rows": 10, "seats_per_row": 20, "price": 12000},
                {"name": "Balcony", "rows": 6, "seats_per_row": 16, "price": 8000},
            ],
            max_active=100,
            admit_rate=5,
            venue="Demo Hall",
        )
        event = events.update(event.id, admission="open")
    return event, passwords


def _demo_passwords(path: Path) -> tuple[dict, bool]:
    """The demo logins' passwords from `path`, or new ones written there
    (readable by this user only); True if they are new."""
    try:
        kept = json.loads(path.read_text())
        if all(isinstance(kept.get(email), str) for email in (DEMO_STAFF, DEMO_FAN)):
            return kept, False
    except (OSError, ValueError, AttributeError):
        pass
    passwords = {email: secrets.token_urlsafe(9) for email in (DEMO_STAFF, DEMO_FAN)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(passwords, indent=2) + "\n")
    return passwords, True


def print_demo(event: Event, passwords: dict) -> None:
    click.echo(
        f"Demo event {event.id}: {event.name} (admission {event.admission}, "
        f"{event.admit_rate:,} people/s, {event.max_active:,} at once)"
    )
    click.echo(f"  staff login: {DEMO_STAFF} / {passwords[DEMO_STAFF]}")
    click.echo(f"  fan login:   {DEMO_FAN} / {passwords[DEMO_FAN]}")
    where = Path(current_app.instance_path) / DEMO_LOGINS
    click.echo(f"  (the same on every start: kept in {where}; delete it for new ones)")
