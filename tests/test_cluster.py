"""The app on a live Redis Cluster of the test's own (3 masters, 3 replicas).

- An event's slot moves to another master (a reshard, key by key) while
  people poll and join: the client follows ASK and MOVED, waits out
  TRYAGAIN (a script whose keys are split between the two masters for a
  moment), and loads the scripts on the new master (NOSCRIPT). A quick move
  is invisible; while a slow one keeps the event's keys split for longer
  than redis-py's retries (about half a second), that event's calls are
  "Redis unavailable" (503 with Retry-After), never anything else; nobody's
  place changes either way.
- Several events spread over the masters, and the admit tick, the clean-up
  and the reconcile serve every one of them.
"""

import threading
import time

import pytest
from helpers import seed_queue

from app import events, keys, mirror, waiting_room
from app.extensions import REDIS_UNAVAILABLE, redis_store
from app.models import Seat
from jobs import admit, cleanup, reconcile

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

SECTIONS = [{"name": "A", "rows": 2, "seats_per_row": 5, "price": 1000}]


@pytest.fixture
def on_cluster(cluster, make_app, job_app, monkeypatch):
    """The app (and the jobs' app) on the test's own cluster."""
    monkeypatch.setenv("REDIS_URL", cluster.url)
    app = make_app(REDIS_URL=cluster.url)
    with app.app_context():
        yield app


def node_id(cluster, port: int) -> str:
    return cluster.node(port).execute_command("CLUSTER", "MYID")


def move_slot(cluster, slot: int, source: int, target: int, pause: float) -> int:
    """Move one slot from the master on `source` to the one on `target` as
    `redis-cli --cluster reshard` does, one key at a time with `pause`
    seconds between (so that requests meet the half-moved slot); returns
    the number of keys moved."""
    src, dst = cluster.node(source), cluster.node(target)
    src_id, dst_id = node_id(cluster, source), node_id(cluster, target)
    dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
    src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
    moved = 0
    while keys_left := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1):
        src.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys_left)
        moved += 1
        time.sleep(pause)
    for port in cluster.live_ports():  # every master learns the new owner
        if cluster.node(port).info("replication")["role"] == "master":
            cluster.node(port).execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
    return moved


@pytest.mark.parametrize(
    ("pause", "refusals"),
    [(0.0, "none"), (0.25, "only 503s")],
    ids=["quick-move", "slow-move"],
)
def test_a_slot_moving_to_another_master_mid_sale_loses_nobodys_place(
    cluster, on_cluster, pause, refusals
):
    r = redis_store.client
    event = events.create("Moving", SECTIONS)  # paused: nobody ahead leaves
    k = keys.event(event.id)
    seed_queue(r, event.id, range(1, 201))
    for uid in range(1, 201):
        waiting_room.poll(event.id, uid)  # the scripts are cached on the old master
    source = cluster.master_of(k.config)
    target = next(
        port for port in cluster.live_ports() if port != source and is_master(cluster, port)
    )
    slot = r.keyslot(k.config)

    answers, errors, stop = [], [], threading.Event()

    def person(uid: int):
        with on_cluster.app_context():
            while not stop.is_set():
                try:
                    answers.append((uid, waiting_room.poll(event.id, uid).position))
                    waiting_room.join(event.id, 1000 + uid)  # writes too, while the keys move
                except Exception as e:  # any error at all is what this test is about
                    errors.append((time.monotonic(), e))

    crowd = [threading.Thread(target=person, args=(uid,)) for uid in (1, 50, 120, 200)]
    for thread in crowd:
        thread.start()
    try:
        time.sleep(0.3)
        during = len(answers)
        moved = move_slot(cluster, slot, source, target, pause=pause)
        moved_at, moved_while_polling = time.monotonic(), len(answers) - during
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in crowd:
            thread.join(10)

    if refusals == "none":
        assert [e for _, e in errors] == []
    else:  # each one answers 503 with Retry-After (app/web/errors.py), and none after the move
        kinds = sorted({repr(e) for _, e in errors})
        print(f"\n[cluster] {len(errors)} refusals during a slow move: {kinds}")
        assert all(isinstance(e, REDIS_UNAVAILABLE) for _, e in errors), errors
        assert all(at <= moved_at for at, _ in errors), errors
    assert moved >= 4, "the config, queue, sequence and heartbeats all moved"
    assert moved_while_polling > 0, "people polled while the slot was half moved"
    assert cluster.master_of(k.config) == target
    # Nobody's place changed: each person saw one position all along (the
    # event is paused, so nobody ahead left), and the queue is whole.
    for uid in (1, 50, 120, 200):
        assert {position for who, position in answers if who == uid} == {uid}
    assert r.zcard(k.queue) == 200 + 4
    assert cluster.node(target).zcard(k.queue) == 204  # on the new master itself


def is_master(cluster, port: int) -> bool:
    return cluster.node(port).info("replication")["role"] == "master"


def test_events_spread_over_the_masters_and_the_jobs_serve_them_all(cluster, on_cluster):
    r = redis_store.client
    opened = [events.create(f"Event {i}", SECTIONS, admit_rate=5) for i in range(6)]
    opened = [events.update(event.id, admission="open") for event in opened]
    masters = {cluster.master_of(keys.event(event.id).config) for event in opened}
    assert len(masters) >= 2, "six events all on one master: the hash tags do not spread"

    stray = {}
    for event in opened:
        seed_queue(r, event.id, range(1, 21))
        stray[event.id] = Seat.select().where(Seat.event == event.id).first().id
        r.hset(keys.event(event.id).seats, stray[event.id], "blocked")  # MySQL: available

    ticked = admit.tick()
    cleaned = cleanup.clean_up()
    reconciled = reconcile.reconcile()

    ids = {event.id for event in opened}
    assert set(ticked) == set(cleaned) == set(reconciled) == ids
    for event in opened:
        k = keys.event(event.id)
        assert ticked[event.id]["admitted"] == 5  # a first tick: one second's worth
        assert r.zcard(k.active) == 5
        assert reconciled[event.id]["changed"] == 1  # the stray block is gone
        assert r.hget(k.seats, stray[event.id]) is None
        assert mirror.restore_config(event.id) is False  # Redis and MySQL agree
