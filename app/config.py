"""Settings: every one the app reads, from the environment with embedded
defaults (the README's settings table lists them)."""

import contextlib
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

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


# LOG_FORMAT's choices: a line of text, or a JSON object, per record.
LOG_FORMATS = ("text", "json")

# The largest max_seats_per_person staff may set: no checkout is longer.
MOST_SEATS_PER_PERSON = 20


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
        # Log lines as text, or as one JSON object each (app/logs.py).
        "LOG_FORMAT": env("LOG_FORMAT", "text"),
        "LOG_LEVEL": env("LOG_LEVEL", "INFO"),
        # The bearer token /metrics asks for; unset, there is no /metrics
        # and requests are not timed (docs/OPERATIONS.md).
        "METRICS_TOKEN": env("METRICS_TOKEN") or None,
        # How long one count of an event's seats by state serves every
        # host's scrapes (figures.lua); 0: each scrape counts.
        "METRICS_SEAT_COUNT_MS": int(env("METRICS_SEAT_COUNT_MS", "5000")),
        "STARTING_POINTS": int(env("STARTING_POINTS", "100000")),
        "POLL_TIERS": json.loads(env("POLL_TIERS", "null")) or DEFAULT_POLL_TIERS,
        "POLL_JITTER": float(env("POLL_JITTER", "0.1")),
        "HEARTBEAT_TIMEOUT": int(env("HEARTBEAT_TIMEOUT", "300")),
        # After a sell-out: how many more people may be active than seats on sale
        "RETURNS_MARGIN": int(env("RETURNS_MARGIN", "5")),
        "CLEANUP_BATCH": int(env("CLEANUP_BATCH", "1000")),
        "CLEANUP_PAUSE": float(env("CLEANUP_PAUSE", "0.1")),
        "ADMIT_INTERVAL": int(env("ADMIT_INTERVAL", "1")),
        "CLEANUP_INTERVAL": int(env("CLEANUP_INTERVAL", "30")),
        "RECONCILE_INTERVAL": int(env("RECONCILE_INTERVAL", "60")),
        "RQ_QUEUE": env("RQ_QUEUE", "ticketdrop"),
        # The default of a new event's max_seats_per_person (each event has its own).
        "MAX_SEATS_PER_PERSON": int(env("MAX_SEATS_PER_PERSON", "4")),
        # Checkout: how long seats stay "being paid for", and MySQL's patience.
        "CHECKOUT_LEASE": int(env("CHECKOUT_LEASE", "30")),
        "LOCK_WAIT_TIMEOUT": int(env("LOCK_WAIT_TIMEOUT", "5")),
        "CHECKOUT_ATTEMPTS": int(env("CHECKOUT_ATTEMPTS", "4")),
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        # Bot protection (app/bots.py): PBKDF2 iterations per try of the
        # join's proof of work (about 256 tries: ~1 s in a browser).
        "BOT_CHALLENGE_COST": int(env("BOT_CHALLENGE_COST", "10000")),
        "ALTCHA_HMAC_KEY": env("ALTCHA_HMAC_KEY"),
        # Tickets' Ed25519 signing key, base64 of the raw 32 bytes; unset, one
        # is generated once into instance/ticket-signing-key (app/tickets.py).
        "TICKET_SIGNING_KEY": env("TICKET_SIGNING_KEY") or None,
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
            # Accounts (app/web/limits.py): login attempts per address; failed
            # logins per email from any address, each window a longer lockout;
            # new accounts (and register attempts) per address, low: each
            # account is points and a place in every queue.
            "login": env("LOGIN_LIMIT", "60/minute"),
            "login_failures": env("LOGIN_FAILURE_LIMIT", "5/minute;20/hour"),
            "register": env("REGISTER_LIMIT", "5/hour;20/day"),
        },
        # Password hashes (scrypt, ~0.1 s of a core each) run at most this many
        # at once per process; a login waits PASSWORD_HASH_WAIT seconds for a
        # slot, then answers 503 busy, so hashing never takes every thread
        # from the poll (0: no bound).
        "PASSWORD_HASH_SLOTS": int(env("PASSWORD_HASH_SLOTS", "1")),
        "PASSWORD_HASH_WAIT": float(env("PASSWORD_HASH_WAIT", "2")),
        # No X-RateLimit headers on every answer: a 429 gets its Retry-After from
        # app/web/errors.py, and a poll's Retry-After stays the poll interval.
        "RATELIMIT_HEADERS_ENABLED": False,
        "RATELIMIT_KEY_PREFIX": "ticketdrop-limits",
        "BABEL_DEFAULT_LOCALE": DEFAULT_LANGUAGE,
        "BABEL_DEFAULT_TIMEZONE": "UTC",  # times are stored in UTC
        "SESSION_COOKIE_SAMESITE": "Lax",
        # No fresh Set-Cookie on every poll: the hot path stays cheap.
        "SESSION_REFRESH_EACH_REQUEST": False,
        # How long the hot path believes a person's session generation
        # (app/sessions.py): an ended session's copies get poll answers for
        # at most this long; every other request is checked each time.
        "SESSION_CHECK_SECONDS": float(env("SESSION_CHECK_SECONDS", "2")),
        "SESSION_COOKIE_HTTPONLY": True,
        # Secure unless told (bin/run and bin/cluster serve plain http on
        # loopback and say 0): a cookie that could travel over plain http
        # could be read on the way.
        "SESSION_COOKIE_SECURE": env("SESSION_COOKIE_SECURE", "1") == "1",
        # HSTS on answers that came over HTTPS (directly or through a trusted
        # proxy's X-Forwarded-Proto): a year; 0 sends none.
        "HSTS_SECONDS": int(env("HSTS_SECONDS", "31536000")),
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        **(overrides or {}),
    }
    if settings["LOG_FORMAT"] not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT is {settings['LOG_FORMAT']!r}: it must be text or json")
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
    # The challenges' signing key: its own, derived from SECRET_KEY unless given.
    altcha_key = hmac.new(settings["SECRET_KEY"].encode(), b"altcha", hashlib.sha256).hexdigest()
    return {
        "ALTCHA_HMAC_KEY": settings.get("ALTCHA_HMAC_KEY") or altcha_key,
        "RQ_REDIS_URL": settings.get("RQ_REDIS_URL") or plain,
        "RATELIMIT_STORAGE_URI": settings.get("RATELIMIT_STORAGE_URI")
        or limits_storage_uri(redis_url),
        "RATELIMIT_STORAGE_OPTIONS": settings.get("RATELIMIT_STORAGE_OPTIONS")
        or {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            **({} if is_cluster(redis_url) else {"retry": redial_once()}),
        },
    }


def redial_once() -> Retry:
    """For a plain Redis client: a pooled connection that Redis dropped (a
    restart, an outage) fails its first command; dial again at once and
    send it once more, rather than fail the request after Redis is back. A
    Redis that does not answer (a timeout) is not tried twice: the 503
    comes as fast as before. A command sent twice is safe: each Lua script
    checks the state it changes first, and a rate-limit count one too high
    is harmless."""
    return Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,))


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
    # Write-then-link so two processes starting at once agree on one key.
    # Created 0600 (never readable by others, not for a moment), then set to
    # exactly 0600 whatever the umask took away.
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # left by a crash of an earlier process with this pid
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(fd, 0o600)
        out.write(json.dumps(keys))
    with contextlib.suppress(FileExistsError):
        os.link(tmp, path)
    tmp.unlink()
    return json.loads(path.read_text())
