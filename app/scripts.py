"""The Lua scripts in app/lua/, read once and registered with a Redis client.

Each script is app/lua/_prelude.lua (the rules several scripts share: Redis's
clock, the seat-state fields, "entered and still active") followed by the
script's own file. `register_script` only hashes the text locally; every call
is one EVALSHA, and redis-py loads the script again by itself if Redis has
lost it.
"""

from pathlib import Path

from redis import Redis
from redis.commands.core import Script

LUA_DIR = Path(__file__).parent / "lua"
PRELUDE = (LUA_DIR / "_prelude.lua").read_text()
SOURCES = {
    path.stem: PRELUDE + path.read_text()
    for path in sorted(LUA_DIR.glob("*.lua"))
    if not path.name.startswith("_")
}


class Scripts:
    """One attribute per app/lua/<name>.lua, e.g. `scripts.poll(keys=..., args=...)`."""

    def __init__(self, client: Redis):
        for name, source in SOURCES.items():
            setattr(self, name, client.register_script(source))

    def __getattr__(self, name: str) -> Script:  # pragma: no cover - a typo guard
        raise AttributeError(f"no Lua script app/lua/{name}.lua")


def load(client: Redis) -> Scripts:
    return Scripts(client)
