"""GET /metrics (docs/OPERATIONS.md): only for the metrics token; what it
counts agrees with what happened and with the staff numbers; it answers
while a store is down; with several web processes one scrape sums them."""

import os
import subprocess
import time
import uuid

import pytest
import requests
from helpers import admit_and_enter, hold, pay, seat_ids
from prometheus_client.parser import text_string_to_metric_families
from redis.cluster import RedisCluster

from app import dashboard, launcher
from app.web import observe

TOKEN = "metrics-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def metered(make_app):
    """The app with METRICS_TOKEN set."""
    return make_app(METRICS_TOKEN=TOKEN)


def scrape(client) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of one scrape."""
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.content_type.startswith("text/plain; version=0.0.4")
    return samples(response.text)


def samples(text: str) -> dict[tuple, float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_no_token_set_means_no_metrics(client):
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers=AUTH).status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", TOKEN])
def test_only_the_token_reads_them(metered, header):
    headers = {"Authorization": header} if header else {}
    response = metered.test_client().get("/metrics", headers=headers)
    assert response.status_code == 403
    assert "METRICS_TOKEN" in response.text


def test_the_figures_agree_with_the_staff_numbers_and_with_what_happened(
    metered, make_user, login, make_event
):
    event = make_event(admit_rate=100_000, max_active=7)
    client = metered.test_client()
    before = scrape(client)

    buyer = login(metered.test_client(), make_user())
    token = admit_and_enter(metered, buyer, event.id)
    entrance = f"/api/events/{event.id}/enter"
    again = buyer.post(entrance, headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 200  # the same session once more: a replay
    first, second, third = seat_ids(metered, event.id)[:3]
    held_first = hold(buyer, event.id, first)
    hold(buyer, event.id, second)
    # Someone else's hold on the held seat is refused: counted by its code.
    other = login(metered.test_client(), make_user())
    admit_and_enter(metered, other, event.id)
    assert other.post(f"/api/events/{event.id}/seats/{second}/hold").status_code == 409
    hold(other, event.id, third)
    assert pay(buyer, event.id, [(first, held_first)]).status_code == 201
    for _ in range(3):
        login(metered.test_client(), make_user()).post(f"/api/events/{event.id}/queue")

    after = scrape(client)
    with metered.app_context():
        staff = dashboard.stats(event.id)
    e = {"event": str(event.id)}
    assert value(after, "ticketdrop_event_waiting", **e) == staff["waiting"] == 3
    assert value(after, "ticketdrop_event_active", **e) == staff["active"]
    assert value(after, "ticketdrop_event_booked", **e) == staff["booked"] == 1
    assert value(after, "ticketdrop_event_held", **e) == staff["held"] >= 1
    assert value(after, "ticketdrop_event_cap", **e) == 7
    assert value(after, "ticketdrop_event_admitted_total", **e) == staff["admitted_total"] == 2
    assert value(after, "ticketdrop_event_admitting", **e) == 1
    assert value(after, "ticketdrop_event_sold_out", **e) == 0

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("ticketdrop_checkout_total", outcome="booked") == 1
    assert grew("ticketdrop_hold_total", outcome="held") == 3
    assert grew("ticketdrop_hold_total", outcome="seat_taken") == 1
    assert grew("ticketdrop_entrance_total", outcome="entered") == 2
    assert grew("ticketdrop_entrance_total", outcome="replay") == 1
    holds = {"route": "/api/events/<int:event_id>/seats/<int:seat_id>/hold", "method": "POST"}
    assert grew("ticketdrop_http_requests_total", **holds, status="201") == 3
    assert grew("ticketdrop_http_requests_total", **holds, status="409") == 1
    assert value(after, "ticketdrop_redis_up") == value(after, "ticketdrop_database_up") == 1
    nodes = [dict(labels)["node"] for name, labels in after if name.endswith("memory_used_bytes")]
    with metered.app_context():
        from app.extensions import redis_store

        cluster = isinstance(redis_store.client, RedisCluster)
    # The suite's cluster has 3 masters (and 3 replicas, which ignore maxmemory).
    assert len(nodes) == (3 if cluster else 1), nodes


def test_a_forged_token_and_a_retried_checkout_key_are_counted(
    metered, make_user, login, make_event
):
    event = make_event(admit_rate=100_000)
    client = metered.test_client()
    buyer = login(metered.test_client(), make_user())
    admit_and_enter(metered, buyer, event.id)
    before = scrape(client)
    forged = buyer.post(f"/api/events/{event.id}/enter", headers={"Authorization": "Bearer x.y.z"})
    assert forged.status_code == 401
    seat = seat_ids(metered, event.id)[0]
    items, key = [(seat, hold(buyer, event.id, seat))], uuid.uuid4().hex
    assert pay(buyer, event.id, items, key).status_code == 201
    assert pay(buyer, event.id, items, key).status_code == 200  # the same key: the same receipt
    after = scrape(client)
    for outcome, grown in (("forged", 1), ("entered", 0)):
        name = "ticketdrop_entrance_total"
        assert value(after, name, outcome=outcome) - value(before, name, outcome=outcome) == grown
    for outcome in ("booked", "replay"):
        name = "ticketdrop_checkout_total"
        assert value(after, name, outcome=outcome) - value(before, name, outcome=outcome) == 1


def test_the_poll_is_counted_under_its_route_and_carries_a_request_id(
    metered, make_user, login, make_event
):
    event = make_event(admission="paused")
    fan = login(metered.test_client(), make_user())
    assert fan.post(f"/api/events/{event.id}/queue").status_code == 200
    before = scrape(metered.test_client())
    polls = [fan.get(f"/api/events/{event.id}/queue") for _ in range(5)]
    assert all(p.status_code == 200 and p.json["status"] == "waiting" for p in polls)
    ids = {p.headers["X-Request-Id"] for p in polls}
    assert len(ids) == 5  # one each
    sent = fan.get(f"/api/events/{event.id}/queue", headers={"X-Request-Id": "from-nginx-1"})
    assert sent.headers["X-Request-Id"] == "from-nginx-1"
    after = scrape(metered.test_client())
    labels = {"route": observe.JSON_POLL, "method": "GET", "status": "200"}
    assert (
        value(after, "ticketdrop_http_requests_total", **labels)
        - value(before, "ticketdrop_http_requests_total", **labels)
        == 6
    )
    timed = {"route": observe.JSON_POLL, "method": "GET"}
    count = "ticketdrop_http_request_duration_seconds_count"
    assert value(after, count, **timed) - value(before, count, **timed) == 6
    e = {"event": str(event.id)}
    assert value(after, "ticketdrop_event_waiting", **e) == 1
    assert value(after, "ticketdrop_event_admitting", **e) == 0  # paused
    assert value(after, "ticketdrop_event_queue_clear_seconds", **e) != value(
        after, "ticketdrop_event_queue_clear_seconds", **e
    )  # NaN: a paused queue does not clear


def test_one_seat_count_serves_the_scrapes_for_a_while(make_app, make_event, r):
    """Counting the seats hash holds the event's master (figures.lua): one
    count serves every host's scrapes for METRICS_SEAT_COUNT_MS; the sets'
    sizes are read each time."""
    from app import keys

    shared = make_app(METRICS_TOKEN=TOKEN, METRICS_SEAT_COUNT_MS=60_000)
    event = make_event(admission="paused")
    e = {"event": str(event.id)}
    assert value(scrape(shared.test_client()), "ticketdrop_event_blocked", **e) == 0
    seat = seat_ids(shared, event.id)[0]
    k = keys.event(event.id)
    r.hset(k.seats, seat, "blocked")
    r.zadd(k.queue, {"999": 1})
    found = scrape(shared.test_client())
    assert value(found, "ticketdrop_event_blocked", **e) == 0  # the shared count
    assert value(found, "ticketdrop_event_waiting", **e) == 1  # read each time
    r.delete(k.seat_counts)  # as when it runs out
    assert value(scrape(shared.test_client()), "ticketdrop_event_blocked", **e) == 1


def test_made_up_methods_and_paths_do_not_grow_the_labels(metered):
    client = metered.test_client()
    for i in range(3):
        client.open(f"/no/such/page/{i}", method=f"BREW{i}")
    found = scrape(client)
    methods = {dict(labels).get("method") for name, labels in found if "http_requests" in name}
    assert "OTHER" in methods and not any(m and m.startswith("BREW") for m in methods)
    routes = {dict(labels).get("route") for name, labels in found if "http_requests" in name}
    assert not any(r and r.startswith("/no/such") for r in routes)


def test_an_admission_tick_is_timed_and_dated(app, job_app, make_event, monkeypatch):
    monkeypatch.setenv("METRICS_TOKEN", TOKEN)
    event = make_event()
    from jobs import admit

    client = job_app.flask_app().test_client()
    before = scrape(client)
    admit.tick()
    admit.tick()
    after = scrape(client)
    count = "ticketdrop_admission_tick_seconds_count"
    assert value(after, count) - value(before, count) == 2
    assert value(after, "ticketdrop_admission_tick_seconds_bucket", le="+Inf") == value(
        after, count
    )
    since = value(after, "ticketdrop_admission_seconds_since_tick", event=str(event.id))
    assert 0 <= since < 5


def test_a_store_that_does_not_answer_is_reported_not_a_500(make_app):
    down = make_app(METRICS_TOKEN=TOKEN, REDIS_URL=f"redis://127.0.0.1:{launcher.free_port()}/0")
    found = scrape(down.test_client())
    assert value(found, "ticketdrop_redis_up") == 0
    assert value(found, "ticketdrop_database_up") == 1
    assert not any(name.startswith("ticketdrop_event_") for name, _ in found)


@pytest.mark.slow
def test_several_web_processes_are_summed_in_one_scrape(tmp_path, redis_url, database_url):
    """granian with 2 workers: each counts in the shared directory, and every
    scrape (whichever worker answers it) has all the requests, a second on."""
    port = launcher.free_port()
    multiproc = tmp_path / "metrics"
    multiproc.mkdir()
    env = dict(
        os.environ, REDIS_URL=redis_url, DATABASE_URL=database_url, METRICS_TOKEN=TOKEN,
        PROMETHEUS_MULTIPROC_DIR=str(multiproc), INSTANCE_PATH=str(tmp_path),
        HOST="127.0.0.1", PORT=str(port), WEB_WORKERS="2", WEB_THREADS="2",
    )  # fmt: skip
    web = launcher.start(launcher.commands(launcher.server_settings(env))["web"], env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        launcher.wait_for(lambda: requests.get(f"{base}/healthz", timeout=1).ok, "granian", 30)
        with requests.Session() as session:  # one connection per request: both workers answer
            for _ in range(40):
                assert requests.get(f"{base}/healthz", timeout=5).status_code == 200
            pids = {p.name.split("_")[-1] for p in multiproc.glob("*.db")}
            assert len(pids) >= 2, pids  # both workers counted something
            labels = {"route": "/healthz", "method": "GET", "status": "200"}
            time.sleep(1.5)  # each process hands its tally over every second (metrics.TALLY)
            for _ in range(4):
                text = session.get(f"{base}/metrics", headers=AUTH, timeout=10).text
                # The wait_for probe counted too, once or more: at least the 41.
                assert value(samples(text), "ticketdrop_http_requests_total", **labels) >= 41
    finally:
        launcher.stop([web])
