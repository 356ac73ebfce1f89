"""Unbound singletons, bound to one app by create_app()."""

import peewee
import redis.exceptions
from flask_babel import Babel
from flask_wtf.csrf import CSRFProtect
from playhouse.db_url import connect as connect_url
from redis import Redis
from redis.backoff import ConstantBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

from app import config
from app import scripts as lua

db = peewee.DatabaseProxy()
csrf = CSRFProtect()
babel = Babel()  # app/i18n.py binds it with the locale selector


# What "Redis cannot answer right now" looks like: a 503 with Retry-After
# (app/web/errors.py), never a 500. The cluster ones come and go with a
# failover or a slot being moved: CLUSTERDOWN, TRYAGAIN, a slot no master
# serves for a moment, and ClusterError("TTL exhausted") when redis-py gives
# up following redirects (an event's keys split between two masters for
# longer than its retries, about half a second).
REDIS_UNAVAILABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterError,  # ClusterDownError, MasterDownError too
    redis.exceptions.TryAgainError,
    redis.exceptions.RedisClusterException,
)


def connect_redis(url: str, timeout: float) -> Redis | RedisCluster:
    """A client for the app's state: a plain Redis (redis://, unix://) or
    Redis Cluster (redis+cluster://host:port,...). Each call waits at most
    `timeout` seconds per try; the cluster client tries once more after
    refreshing its map of the slots (a master that failed over)."""
    if not config.is_cluster(url):
        return Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=30,
            retry=config.redial_once(),
        )
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in config.cluster_nodes(url)],
        decode_responses=True,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(ConstantBackoff(0.1), retries=1),
        # Serve the slots that have a master while another one fails over.
        require_full_coverage=False,
    )


class RedisStore:
    """The app's Redis client and its Lua scripts, registered once per process."""

    client: Redis | RedisCluster | None = None
    scripts: lua.Scripts | None = None

    def init_app(self, app):
        # A short socket timeout so an unreachable Redis gives a clear 503 fast.
        self.client = connect_redis(app.config["REDIS_URL"], app.config["REDIS_TIMEOUT"])
        self.scripts = lua.load(self.client)
        app.extensions["redis"] = self


redis_store = RedisStore()


def init_db(app):
    """Bind the peewee proxy to DATABASE_URL; connections open lazily per request."""
    url = app.config["DATABASE_URL"]
    if url.startswith("mysql://"):
        # A pool, so that a request reuses a connection instead of dialing one.
        url = "mysql+pool://" + url[len("mysql://") :]
        # A request waits up to 10 s for a free connection, then answers 503.
        # InnoDB's lock wait is set once per connection: a stuck lock surfaces
        # fast (checkout retries it) instead of tying up a web worker.
        # A silent server (frozen host, partition) must not hang a request:
        # reads give up a little after the longest lock wait.
        io_timeout = int(app.config["LOCK_WAIT_TIMEOUT"]) + 2
        database = connect_url(
            url,
            charset="utf8mb4",
            max_connections=app.config["DATABASE_POOL_SIZE"],
            stale_timeout=300,
            timeout=10,
            connect_timeout=3,
            read_timeout=io_timeout,
            write_timeout=io_timeout,
            init_command=f"SET SESSION innodb_lock_wait_timeout = "
            f"{int(app.config['LOCK_WAIT_TIMEOUT'])}",
        )
    else:
        database = connect_url(
            url, pragmas={"journal_mode": "wal", "busy_timeout": 5000, "foreign_keys": 1}
        )
    db.initialize(database)

    @app.teardown_appcontext
    def close_db(exc):
        if not db.is_closed():
            db.close()


def is_mysql() -> bool:
    return isinstance(db.obj, peewee.MySQLDatabase)


_flavours: dict[int, bool] = {}


def is_mariadb() -> bool:
    """MariaDB (not MySQL): it has `SELECT ... FOR UPDATE WAIT n`."""
    if not is_mysql():
        return False
    if id(db.obj) not in _flavours:
        _flavours[id(db.obj)] = "mariadb" in db.connection().get_server_info().lower()
    return _flavours[id(db.obj)]
