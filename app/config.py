"""Settings: every one the app reads, from the environment with embedded
defaults (the README's settings table lists them)."""

import contextlib
import json
import os
import secrets
from pathlib import Path

# The waiting room's poll tiers (docs/DESIGN.md): people at positions up to `up_to`
# poll again after `interval` seconds; `band` 0 shows the exact position, a
# band width N shows a range of N places, and the last tier ("and beyond")
# shows only its lower bound.
DEFAULT_POLL_TIERS = [
    {"up_to": 1_000, "interval": 1, "band": 0},
    {"up_to": 5_000, "interval": 5, "band": 0},
    {"up_to": 10_000, "interval": 10, "band": 1_000},
    {"up_to": 100_000, "interval": 30, "band": 10_000},
    {"up_to": None, "interval": 60, "band": None},
]

# The language of pages and messages when the reader asks for none we have.
DEFAULT_LANGUAGE = "en"

# Event defaults (docs/API.md); each event stores its own copy.
# poll_budget: polls/s one event's whole queue may send (docs/DESIGN.md):
# well under what one Redis core answers (BENCHMARKS.md), and enough for
# the front 1,000 to poll every second.
EVENT_DEFAULTS = {
    "max_active": 10_000,
    "admit_rate": 700,
    "active_ttl": 300,
    "hold_ttl": 300,
    "poll_budget": 5_000,
}


def instance_path() -> str | None:
    """Where the app keeps its files (secrets, SQLite, the embedded Redis):
    INSTANCE_PATH, else Flask's default (instance/ beside the code)."""
    return os.environ.get("INSTANCE_PATH") or None


def load(instance_path: str, overrides: dict | None = None) -> dict:
    """Every setting the app reads: the environment with embedded defaults,
    then `overrides` (tests), then the settings derived from those."""
    instance = Path(instance_path)
    env = os.environ.get
    keys = _instance_secrets(instance)
    settings = {
        "SECRET_KEY": env("SECRET_KEY") or keys["SECRET_KEY"],
        "JWT_SECRET": env("JWT_SECRET") or keys["JWT_SECRET"],
        "DATABASE_URL": env("DATABASE_URL") or f"sqlite:///{instance / 'ticketdrop.sqlite3'}",
        "DATABASE_POOL_SIZE": int(env("DATABASE_POOL_SIZE", "32")),  # MySQL, per process
        # redis://, unix://, or redis+cluster://host:port[,host:port...] (Redis Cluster).
        "REDIS_URL": env("REDIS_URL") or embedded_redis_url(instance),
        # RQ's jobs and schedules: a plain Redis (RQ cannot use a cluster);
        # REDIS_URL when that is a plain Redis (see _derived).
        "RQ_REDIS_URL": env("RQ_REDIS_URL"),
        # How many proxies in front set X-Forwarded-For (0: trust none of it).
        "TRUSTED_PROXIES": int(env("TRUSTED_PROXIES", "0")),
        # Seconds to wait for Redis before answering 503 (the app and its rate limits).
        "REDIS_TIMEOUT": float(env("REDIS_TIMEOUT", "3")),
        "LOG_LEVEL": env("LOG_LEVEL", "INFO"),
        "STARTING_POINTS": int(env("STARTING_POINTS", "100000")),
        "POLL_TIERS": json.loads(env("POLL_TIERS", "null")) or DEFAULT_POLL_TIERS,
        "POLL_JITTER": float(env("POLL_JITTER", "0.1")),
        "HEARTBEAT_TIMEOUT": int(env("HEARTBEAT_TIMEOUT", "300")),
        "CLEANUP_BATCH": int(env("CLEANUP_BATCH", "1000")),
        "CLEANUP_PAUSE": float(env("CLEANUP_PAUSE", "0.1")),
        "ADMIT_INTERVAL": int(env("ADMIT_INTERVAL", "1")),
        "CLEANUP_INTERVAL": int(env("CLEANUP_INTERVAL", "30")),
        "RECONCILE_INTERVAL": int(env("RECONCILE_INTERVAL", "60")),
        "RQ_QUEUE": env("RQ_QUEUE", "ticketdrop"),
        "MAX_SEATS_PER_PERSON": int(env("MAX_SEATS_PER_PERSON", "4")),
        # Checkout: how long seats stay "being paid for", and MySQL's patience.
        "CHECKOUT_LEASE": int(env("CHECKOUT_LEASE", "30")),
        "LOCK_WAIT_TIMEOUT": int(env("LOCK_WAIT_TIMEOUT", "5")),
        "CHECKOUT_ATTEMPTS": int(env("CHECKOUT_ATTEMPTS", "4")),
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        # The fans' seat maps share one read of an event's seat states per
        # process for this long (app/seat_map.py); 0: every request reads.
        "SEAT_MAP_SNAPSHOT_MS": int(env("SEAT_MAP_SNAPSHOT_MS", "1000")),
        # The staff seat map is rendered at most this often per event and
        # process, or half as often as it takes to render (app/web/admin.py).
        "STAFF_MAP_CACHE_MS": int(env("STAFF_MAP_CACHE_MS", "1000")),
        "RATE_LIMITS": {
            "join": env("JOIN_LIMIT", "10/minute"),
            "hold": env("HOLD_LIMIT", "30/minute"),
            "checkout": env("CHECKOUT_LIMIT", "10/minute"),
            "per_ip": env("PER_IP_LIMIT", "3000/minute"),
        },
        # No X-RateLimit headers on every answer: a 429 gets its Retry-After from
        # app/web/errors.py, and a poll's Retry-After stays the poll interval.
        "RATELIMIT_HEADERS_ENABLED": False,
        "RATELIMIT_KEY_PREFIX": "ticketdrop-limits",
        "BABEL_DEFAULT_LOCALE": DEFAULT_LANGUAGE,
        "BABEL_DEFAULT_TIMEZONE": "UTC",  # times are stored in UTC
        "SESSION_COOKIE_SAMESITE": "Lax",
        # No fresh Set-Cookie on every poll: the hot path stays cheap.
        "SESSION_REFRESH_EACH_REQUEST": False,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SECURE": env("SESSION_COOKIE_SECURE", "0") == "1",
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        **(overrides or {}),
    }
    return settings | _derived(settings)


def server(env) -> dict:
    """The web server's settings (read by app/launcher.py and gunicorn.conf.py):
    which server, where it listens, its processes and threads each, and
    whether it writes an access log (off: every poll would be a line)."""
    return {
        "WEB_SERVER": env.get("WEB_SERVER", "granian"),
        "HOST": env.get("HOST", "127.0.0.1"),
        "PORT": int(env.get("PORT", "8000")),
        "WEB_WORKERS": int(env.get("WEB_WORKERS", "2")),
        # Threads wait on Redis and MySQL; granian warns above 2 per core + 1.
        "WEB_THREADS": int(env.get("WEB_THREADS", str(2 * (os.cpu_count() or 1) + 1))),
        "ACCESS_LOG": env.get("ACCESS_LOG", "0") == "1",
    }


CLUSTER_SCHEME = "redis+cluster://"


def is_cluster(redis_url: str) -> bool:
    return redis_url.startswith(CLUSTER_SCHEME)


def cluster_nodes(redis_url: str) -> list[tuple[str, int]]:
    """redis+cluster://host:port[,host:port...] -> [(host, port), ...]."""
    nodes = []
    for node in redis_url[len(CLUSTER_SCHEME) :].split("/")[0].split(","):
        host, _, port = node.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"REDIS_URL: {node!r} is not host:port")
        nodes.append((host, int(port)))
    return nodes


def _derived(settings: dict) -> dict:
    """Settings that follow from others unless given: RQ shares a plain
    REDIS_URL; the rate limits live in the app's Redis (a cluster too) and
    give up as fast as the app's own client does."""
    redis_url, timeout = settings["REDIS_URL"], settings["REDIS_TIMEOUT"]
    plain = None if is_cluster(redis_url) else redis_url
    return {
        "RQ_REDIS_URL": settings.get("RQ_REDIS_URL") or plain,
        "RATELIMIT_STORAGE_URI": settings.get("RATELIMIT_STORAGE_URI")
        or limits_storage_uri(redis_url),
        "RATELIMIT_STORAGE_OPTIONS": settings.get("RATELIMIT_STORAGE_OPTIONS")
        or {"socket_timeout": timeout, "socket_connect_timeout": timeout},
    }


def limits_storage_uri(redis_url: str) -> str:
    """The limits library spells unix sockets redis+unix:// (and takes
    redis+cluster:// as it is)."""
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url[len("unix://") :]
    return redis_url


def embedded_redis_url(instance: Path) -> str:
    """Where `make run` starts its embedded Redis server (a unix socket)."""
    return f"unix://{instance / 'redis.sock'}"


def _instance_secrets(instance: Path) -> dict:
    """Signing keys generated on first start and kept under instance/."""
    path = instance / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    instance.mkdir(parents=True, exist_ok=True)
    keys = {"SECRET_KEY": secrets.token_hex(32), "JWT_SECRET": secrets.token_hex(32)}
    # Write-then-rename so two processes starting at once agree on one key.
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(keys))
    tmp.chmod(0o600)
    with contextlib.suppress(FileExistsError):
        os.link(tmp, path)
    tmp.unlink()
    return json.loads(path.read_text())
