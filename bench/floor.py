"""The floor of figure 1: a bare WSGI app (no Flask) that does the one thing
no poll can avoid, one EVALSHA of app/lua/poll.lua through the same redis-py
client, and answers a constant JSON body. Served by the same web server with
the same settings as the app, it is what a poll would cost if it did
nothing else. Its event and person come from FLOOR_EVENT and FLOOR_USER."""

import os

from redis import Redis

from app import keys, scripts

client = Redis.from_url(
    os.environ["REDIS_URL"], decode_responses=True, socket_timeout=3, health_check_interval=30
)
poll = scripts.load(client).poll
USER = int(os.environ["FLOOR_USER"])
k = keys.event(int(os.environ["FLOOR_EVENT"]))
KEYS = [k.config, k.queue, k.heartbeat, k.active, k.tick, k.entrance(USER), k.prequeue]
BODY = b'{"status":"waiting"}\n'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    poll(keys=KEYS, args=[USER])
    start_response("200 OK", HEADERS)
    return [BODY]
