"""The fair start (docs/DESIGN.md, "A fair start"): joining opens at
prequeue_opens_at; everyone who joins before the sale opens gets a place
drawn at random at the opening, later arrivals go behind in arrival order;
the draw is committed to in advance and can be recomputed by anyone."""

import contextlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from helpers import members, seed_queue

from app import draw, events, keys, waiting_room
from app.extensions import redis_store
from app.models import Event
from jobs import admit as admit_job


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


@pytest.fixture
def staff_client(staff):
    return staff[1]


def pre_sale_event(make_event, **settings):
    """Admission open, the sale an hour away, the queue open since a minute."""
    return make_event(
        admission="open",
        sale_opens_at=now() + timedelta(hours=1),
        prequeue_opens_at=now() - timedelta(minutes=1),
        **settings,
    )


def open_the_sale(event_id: int) -> None:
    """Staff move the opening to now (the same as waiting for it)."""
    events.update(event_id, sale_opens_at=now() - timedelta(seconds=1))


def test_joining_before_the_queue_opens_is_refused_with_the_time(app, make_user, login, make_event):
    event = make_event(
        sale_opens_at=now() + timedelta(hours=2), prequeue_opens_at=now() + timedelta(hours=1)
    )
    person = make_user()
    client = app.test_client()
    login(client, person)
    response = client.post(f"/api/events/{event.id}/queue")
    assert response.status_code == 409
    assert response.json["error"] == "prequeue_not_open"
    assert "opens at" in response.json["message"] and "UTC" in response.json["message"]
    assert 3_500 <= int(response.headers["Retry-After"]) <= 3_600
    assert client.get(f"/api/events/{event.id}/queue").status_code == 404  # nothing half-made


def test_the_queue_must_open_before_the_sale(app, staff_client, make_event):
    later = now() + timedelta(hours=1)
    body = {
        "name": "Bad",
        "sections": [{"name": "A", "rows": 1, "seats_per_row": 1, "price": 1}],
        "sale_opens_at": (later.isoformat() + "Z"),
        "prequeue_opens_at": ((later + timedelta(minutes=1)).isoformat() + "Z"),
    }
    response = staff_client.post("/api/admin/events", json=body)
    assert (
        response.status_code == 422
        and "The queue must open before the sale" in response.json["message"]
    )
    no_sale = {**body, "sale_opens_at": None}
    assert staff_client.post("/api/admin/events", json=no_sale).status_code == 422
    event = make_event(sale_opens_at=later)
    bad = staff_client.patch(
        f"/api/admin/events/{event.id}", json={"prequeue_opens_at": body["prequeue_opens_at"]}
    )
    assert bad.status_code == 422
    with app.app_context():
        assert Event.get_by_id(event.id).prequeue_opens_at is None  # nothing written


def test_the_pre_queue_is_drawn_at_the_opening_and_later_arrivals_go_behind(app, r, make_event):
    event = pre_sale_event(make_event, admit_rate=100_000, max_active=100)
    k = keys.event(event.id)
    early = list(range(1, 201))  # arrived first, by script: 1, 2, 3, ...
    with app.app_context():
        for uid in early:
            status = waiting_room.join(event.id, uid)
            assert status.status == "waiting" and status.position is None and status.draw_id
        assert r.zcard(k.prequeue) == 200 and r.zcard(k.queue) == 0
        assert waiting_room.admit(event.id)["status"] == "paused"  # before the opening
        # The staff chart and numbers count the pre-queue as waiting.
        assert r.lrange(k.samples, -1, -1)[0].split()[1] == "200"
        assert waiting_room.counts([event.id])[event.id] == (200, 0)

        open_the_sale(event.id)
        late = [1_001, 1_002, 1_003]
        for uid in late:  # after the opening, before the draw: the queue, in arrival order
            waiting_room.join(event.id, uid)
        tick = waiting_room.admit(event.id)
        assert tick["status"] == "draw" and tick["admitted"] == 0  # nobody before the draw

        result = admit_job.admit_one(event.id)  # the admit job's work for one event
        assert result["draw"] == {"participants": 200, "moved": 200}
        published = draw.published(event.id)

    assert draw.verify(published) == []
    by_public = {draw.public_id(event.id, uid, "test"): uid for uid in early}
    drawn = [by_public[pid] for pid in published["order"]]
    assert members(r, k.queue) == drawn + late  # the drawn first, then arrival order
    assert sorted(drawn) == early and drawn != early
    assert len(set(drawn[:20]) & set(early[:20])) < 10  # arriving first gained nothing
    assert r.zcard(k.prequeue) == 0
    with app.app_context():
        # The next tick admits, from the head of the drawn order.
        assert waiting_room.admit(event.id)["admitted"] == 100
        assert waiting_room.poll(event.id, drawn[0]).status == "admitted"
        assert waiting_room.poll(event.id, drawn[150]).position == 51


def test_the_draw_is_published_after_the_opening_only(app, r, make_event):
    event = pre_sale_event(make_event)
    client = app.test_client()
    before = client.get(f"/api/events/{event.id}/draw").json
    assert len(before["commitment"]) == 64
    assert before["seed"] is None and before["participants"] is None and before["order"] is None
    assert client.get(f"/api/events/{event.id}").json["draw_commitment"] == before["commitment"]
    with app.app_context():
        for uid in range(1, 31):
            waiting_room.join(event.id, uid)
        open_the_sale(event.id)
        admit_job.admit_one(event.id)
    after = client.get(f"/api/events/{event.id}/draw").json
    assert after["commitment"] == before["commitment"]  # committed before, kept after
    assert len(after["participants"]) == 30 and after["participants"] == sorted(
        after["participants"]
    )
    assert draw.verify(after) == []
    assert client.get("/api/events/999999/draw").status_code == 404
    page = client.get(f"/events/{event.id}").get_data(as_text=True)
    assert "The draw (JSON)" in page


def test_a_draw_recomputed_from_published_data_alone_and_tampering_is_caught(app, make_event):
    import hashlib

    event = pre_sale_event(make_event)
    with app.app_context():
        for uid in range(1, 51):
            waiting_room.join(event.id, uid)
        open_the_sale(event.id)
        admit_job.admit_one(event.id)
    published = app.test_client().get(f"/api/events/{event.id}/draw").json

    # The documented procedure (docs/DESIGN.md), hashlib only.
    seed = bytes.fromhex(published["seed"])
    assert hashlib.sha256(seed).hexdigest() == published["commitment"]
    order = sorted(
        published["participants"], key=lambda p: hashlib.sha256(seed + p.encode()).digest()
    )
    assert order == published["order"]

    swapped = dict(
        published, order=[published["order"][1], published["order"][0], *published["order"][2:]]
    )
    other_seed = dict(published, seed="00" * 32)
    added = dict(published, participants=sorted([*published["participants"], "ffffffffffffffff"]))
    dropped = dict(published, participants=published["participants"][1:])
    for tampered in (swapped, other_seed, added, dropped):
        assert draw.verify(tampered), tampered
    assert "commitment" in " ".join(draw.verify(other_seed))


def test_verify_draw_command(app, runner, make_event, tmp_path):
    event = pre_sale_event(make_event)
    pending = runner.invoke(args=["verify-draw", str(event.id)])
    assert pending.exit_code != 0 and "not been made" in pending.output
    with app.app_context():
        for uid in range(1, 11):
            waiting_room.join(event.id, uid)
        open_the_sale(event.id)
        admit_job.admit_one(event.id)
    result = runner.invoke(args=["verify-draw", str(event.id)])
    assert result.exit_code == 0, result.output
    assert "10 participants" in result.output and "verified" in result.output

    saved = app.test_client().get(f"/api/events/{event.id}/draw").json
    path = tmp_path / "draw.json"
    path.write_text(json.dumps(saved))
    assert runner.invoke(args=["verify-draw", str(event.id), "--file", str(path)]).exit_code == 0
    saved["order"] = list(reversed(saved["order"]))
    path.write_text(json.dumps(saved))
    tampered = runner.invoke(args=["verify-draw", str(event.id), "--file", str(path)])
    assert tampered.exit_code != 0 and "order" in tampered.output
    assert runner.invoke(args=["verify-draw", "999999"]).exit_code != 0
    for junk in ("not json", "[1, 2]", json.dumps({**saved, "seed": "zz"})):
        path.write_text(junk)
        bad = runner.invoke(args=["verify-draw", str(event.id), "--file", str(path)])
        assert (
            bad.exit_code == 1 and "Error:" in bad.output and bad.exception.__class__ is SystemExit
        )


def test_staff_cannot_redraw(app, r, staff_client, make_event):
    event = pre_sale_event(make_event)
    commitment = staff_client.get(f"/api/events/{event.id}").json["draw_commitment"]
    # The seed is not a setting: a PATCH naming it changes nothing.
    staff_client.patch(
        f"/api/admin/events/{event.id}", json={"draw_seed": "00" * 32, "admit_rate": 5}
    )
    assert staff_client.get(f"/api/events/{event.id}").json["draw_commitment"] == commitment
    with app.app_context():
        for uid in range(1, 21):
            waiting_room.join(event.id, uid)
        open_the_sale(event.id)
        admit_job.admit_one(event.id)
        order = draw.published(event.id)["order"]
        drawn_at = Event.get_by_id(event.id).drawn_at
        # Made again (a second worker, a retry): nothing changes.
        assert draw.make(event.id, "test") == {"participants": 0, "moved": 0}
        assert Event.get_by_id(event.id).drawn_at == drawn_at
        # A new opening time later does not open a second pre-queue.
        events.update(event.id, sale_opens_at=now() + timedelta(hours=1))
        assert waiting_room.join(event.id, 999).position == 21
    draw._published.clear()
    with app.app_context():
        assert draw.published(event.id)["order"] == order


def test_an_interrupted_draw_finishes_the_same_draw(app, r, make_event, monkeypatch):
    event = pre_sale_event(make_event)
    k = keys.event(event.id)
    with app.app_context():
        for uid in range(1, 101):
            waiting_room.join(event.id, uid)
        open_the_sale(event.id)
        real_move = redis_store.scripts.draw_move
        calls = []

        def dies_after_one_batch(**kwargs):
            if calls:
                raise ConnectionError("the worker died")
            calls.append(1)
            return real_move(**kwargs)

        monkeypatch.setattr(redis_store.scripts, "draw_move", dies_after_one_batch)
        with contextlib.suppress(ConnectionError):
            draw.make(event.id, "test", move_batch=30)
        assert r.zcard(k.queue) == 30 and r.zcard(k.prequeue) == 70
        assert waiting_room.admit(event.id)["status"] == "draw"  # still nobody let in
        monkeypatch.setattr(redis_store.scripts, "draw_move", real_move)
        assert admit_job.admit_one(event.id)["draw"]["participants"] == 100
        published = draw.published(event.id)
    assert draw.verify(published) == []
    by_public = {draw.public_id(event.id, uid, "test"): uid for uid in range(1, 101)}
    assert members(r, k.queue) == [by_public[p] for p in published["order"]]


def test_the_pre_queue_looks_again_just_after_the_opening(app, r, make_event):
    # 300,000 in the pre-queue at 5,000 polls/s: one poll a minute each. With
    # the sale 30 s away, the next poll lands after the opening and the draw,
    # spread over one interval (not all in the same second).
    event = make_event(admission="open", sale_opens_at=now() + timedelta(seconds=30))
    k = keys.event(event.id)
    pipe = r.pipeline(transaction=False)
    for start in range(0, 300_000, 10_000):
        pipe.zadd(k.prequeue, {70_000_000 + i: i + 1 for i in range(start, start + 10_000)})
    pipe.execute()
    with app.app_context():
        told = [waiting_room.join(event.id, uid).poll_after for uid in range(1, 201)]
        opens_in = waiting_room.poll(event.id, 1).opens_in
    assert 25 <= opens_in <= 30
    draw_time = draw.expected_seconds(300_200)
    assert all(opens_in - 1 <= t <= opens_in + draw_time + 61 for t in told), told
    assert max(told) - min(told) > 20  # spread


def test_leaving_and_ghosts_leave_the_pre_queue_too(app, r, make_event):
    event = pre_sale_event(make_event)
    k = keys.event(event.id)
    with app.app_context():
        for uid in (1, 2, 3):
            waiting_room.join(event.id, uid)
        assert waiting_room.leave(event.id, 2) is True
        r.zadd(k.heartbeat, {3: 0})  # long past due
        assert waiting_room.clean_up(event.id, timeout_s=300, batch=100, pause_s=0) == 1
    assert members(r, k.prequeue) == [1]


def test_an_event_without_a_sale_time_has_no_draw(ctx, r, make_event):
    event = make_event(admission="open")
    seed_queue(r, event.id, [5, 6])
    assert waiting_room.join(event.id, 7).position == 3
    assert waiting_room.admit(event.id)["status"] == "ok"
    assert draw.published(event.id)["seed"] is None


def test_the_staff_form_sets_the_queue_opening_and_refuses_one_after_the_sale(app, staff):
    _, client = staff
    form = {"name": "Drop", "sections": "Floor, 1, 4, 100", "sale_opens_at": "2030-01-01T19:00"}
    bad = client.post("/admin/events", data={**form, "prequeue_opens_at": "2030-01-01T20:00"})
    assert bad.status_code == 302 and bad.headers["Location"] == "/admin/"
    assert "The queue must open before the sale does" in client.get("/admin/").get_data(
        as_text=True
    )
    good = client.post("/admin/events", data={**form, "prequeue_opens_at": "2030-01-01T18:00"})
    event_id = int(good.headers["Location"].rstrip("/").split("/")[-1])
    event = app.test_client().get(f"/api/events/{event_id}").json
    assert event["prequeue_opens_at"] == "2030-01-01T18:00:00Z"
    assert event["sale_opens_at"] == "2030-01-01T19:00:00Z"
