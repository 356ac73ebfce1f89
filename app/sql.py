"""The SQL dialect differences, in one place. Statements are written in the
SQL that MySQL, MariaDB and SQLite share (backquoted names, CASE, multi-row
VALUES), with PyMySQL's %s placeholders, and run through these: checkout,
cancellations and check-in."""

from app.extensions import db, is_mariadb, is_mysql


def run(sql: str, params):
    """One statement through peewee's cursor (its errors: peewee.OperationalError
    and IntegrityError). SQLite's driver wants ? placeholders."""
    if db.param != "%s":
        sql = sql.replace("%s", db.param)
    return db.execute_sql(sql, params)


def for_update(wait: int | None = None) -> str:
    """Lock the selected rows (MySQL). On MariaDB the seat rows wait at most
    `wait` seconds, so a contention storm cannot tie up every web worker (the
    session's innodb_lock_wait_timeout covers the rest). SQLite: nothing, the
    transaction already holds the write lock."""
    if not is_mysql():
        return ""
    if wait is not None and is_mariadb():
        return f" FOR UPDATE WAIT {int(wait)}"
    return " FOR UPDATE"


def write_transaction():
    """MySQL locks rows itself (FOR UPDATE); SQLite has no row locks, so it takes
    its write lock up front (BEGIN IMMEDIATE) and checkouts run one at a time."""
    return db.atomic() if is_mysql() else db.atomic(lock_type="IMMEDIATE")
