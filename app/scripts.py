"""The Lua scripts in app/lua/, read once and registered with a Redis client.

`register_script` only hashes the text locally; every call is one EVALSHA,
and redis-py loads the script again by itself if Redis has lost it.
"""

from pathlib import Path

from redis import Redis
from redis.commands.core import Script

LUA_DIR = Path(__file__).parent / "lua"
_SOURCES = {path.stem: path.read_text() for path in sorted(LUA_DIR.glob("*.lua"))}


class Scripts:
    """One attribute per app/lua/<name>.lua, e.g. `scripts.poll(keys=..., args=...)`."""

    def __init__(self, client: Redis):
        for name, source in _SOURCES.items():
            setattr(self, name, client.register_script(source))

    def __getattr__(self, name: str) -> Script:  # pragma: no cover - a typo guard
        raise AttributeError(f"no Lua script app/lua/{name}.lua")


def load(client: Redis) -> Scripts:
    return Scripts(client)
