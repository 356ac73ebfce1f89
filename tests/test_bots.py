"""Bot protection per event (issue 14, item 5): with it on, a join by a new
account needs a solved ALTCHA proof of work, good once; an account older
than the cut-off joins without; off (the default), joins are unchanged."""

import json
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from altcha import Challenge, Payload, solve_challenge
from helpers import assert_error

from app import keys
from app.models import User, utcnow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def cheap_challenges(app, monkeypatch):
    """A few PBKDF2 iterations a try: the same protocol, solved in milliseconds."""
    monkeypatch.setitem(app.config, "BOT_CHALLENGE_COST", 10)


@pytest.fixture
def protected(make_event, staff):
    """An open event whose bot protection staff turned on (the staff API)."""
    event = make_event(admit_rate=100_000)
    response = staff[1].patch(f"/api/admin/events/{event.id}", json={"bot_protection": True})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["bot_protection"] is True
    return event


def solved(client, event_id) -> str:
    response = client.get(f"/api/events/{event_id}/challenge")
    assert response.status_code == 200, response.data[:300]
    assert response.headers["Cache-Control"] == "no-store"
    challenge = Challenge.from_dict(response.get_json())
    solution = solve_challenge(challenge, timeout=30)
    return Payload(challenge, solution).to_base64()


def join(client, event_id, altcha=None):
    body = {} if altcha is None else {"altcha": altcha}
    return client.post(f"/api/events/{event_id}/queue", json=body)


def test_a_join_without_a_solved_challenge_is_refused(app, protected, customer, r):
    user, client = customer
    body = assert_error(client.post(f"/api/events/{protected.id}/queue"), 403, "challenge_required")
    assert f"/api/events/{protected.id}/challenge" in body["message"]
    assert_error(join(client, protected.id, "not a payload"), 403, "challenge_failed")
    # A real challenge sent back unsolved (a made-up counter).
    challenge = client.get(f"/api/events/{protected.id}/challenge").get_json()
    unsolved = Payload.from_dict(
        {"challenge": challenge, "solution": {"counter": 7, "derivedKey": "00" * 32}}
    ).to_base64()
    assert_error(join(client, protected.id, unsolved), 403, "challenge_failed")
    # A challenge whose signed parameters were changed (an easier prefix).
    challenge["parameters"]["keyPrefix"] = ""
    easier = Challenge.from_dict(challenge)
    tampered = Payload(easier, solve_challenge(easier))
    assert_error(join(client, protected.id, tampered.to_base64()), 403, "challenge_failed")
    k = keys.event(protected.id)
    assert r.zscore(k.queue, user.id) is None and r.zscore(k.prequeue, user.id) is None


def test_a_solved_challenge_joins_once(protected, customer, make_user, login, app):
    user, client = customer
    proof = solved(client, protected.id)
    response = join(client, protected.id, proof)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] in ("waiting", "admitted")
    # Already in line: joining again needs nothing (idempotent, as always).
    assert client.post(f"/api/events/{protected.id}/queue").status_code == 200
    # The same solution again, by someone else: refused.
    other = login(app.test_client(), make_user())
    assert_error(join(other, protected.id, proof), 403, "challenge_used")
    assert join(other, protected.id, solved(other, protected.id)).status_code == 200


def test_a_challenge_of_another_event_is_refused(
    app, protected, make_event, make_user, login, staff
):
    second = make_event(admit_rate=100_000)
    patched = staff[1].patch(f"/api/admin/events/{second.id}", json={"bot_protection": True})
    assert patched.status_code == 200, patched.get_json()
    # An account made after both events (their cut-off is their creation):
    # made before the second one, it would join it without any challenge.
    client = login(app.test_client(), make_user())
    assert_error(join(client, second.id, solved(client, protected.id)), 403, "challenge_failed")


def test_an_account_older_than_the_cutoff_joins_without(app, make_event, staff, customer):
    """The cut-off is the pre-queue's opening (else the sale's, else the event's creation)."""
    user, client = customer
    now = utcnow()
    event = make_event(
        admit_rate=100_000,
        prequeue_opens_at=now - timedelta(minutes=5),
        sale_opens_at=now + timedelta(hours=1),
    )
    staff[1].patch(f"/api/admin/events/{event.id}", json={"bot_protection": True})
    assert_error(client.post(f"/api/events/{event.id}/queue"), 403, "challenge_required")
    with app.app_context():
        User.update(created_at=now - timedelta(minutes=6)).where(User.id == user.id).execute()
    response = client.post(f"/api/events/{event.id}/queue")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["draw_id"]  # in the pre-queue


def test_off_by_default_the_join_is_unchanged(event, customer, client):
    assert client.get(f"/api/events/{event.id}").get_json()["bot_protection"] is False
    response = customer[1].post(f"/api/events/{event.id}/queue")
    assert response.status_code == 200, response.get_json()


def test_the_page_join_asks_for_the_check_and_takes_it(app, protected, customer):
    _, client = customer
    page = client.get(f"/events/{protected.id}").get_data(as_text=True)
    assert f'data-altcha="/api/events/{protected.id}/challenge"' in page
    assert "altcha-solver.js" in page and "<noscript>" in page
    refused = client.post(f"/events/{protected.id}/join", follow_redirects=True)
    assert "JavaScript" in refused.get_data(as_text=True)
    response = client.post(
        f"/events/{protected.id}/join", data={"altcha": solved(client, protected.id)}
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/events/{protected.id}/waiting")


def test_the_page_has_no_check_when_protection_is_off(event, customer):
    page = customer[1].get(f"/events/{event.id}").get_data(as_text=True)
    assert "data-altcha" not in page and "altcha-solver.js" not in page


def test_staff_turn_it_on_and_off(staff, make_event):
    _, client = staff
    section = {"name": "A", "rows": 1, "seats_per_row": 2, "price": 1}
    body = {"name": "Guarded", "sections": [section]}
    created = client.post("/api/admin/events", json={**body, "bot_protection": True})
    assert created.status_code == 201 and created.get_json()["bot_protection"] is True
    event_id = created.get_json()["id"]
    assert_error(client.patch(f"/api/admin/events/{event_id}", json={"bot_protection": "yes"}), 422)
    page = client.post(f"/admin/events/{event_id}/settings", data={"bot_protection": "off"})
    assert page.status_code == 302
    assert client.get(f"/api/events/{event_id}").get_json()["bot_protection"] is False
    client.post(f"/admin/events/{event_id}/settings", data={"bot_protection": "on"})
    assert client.get(f"/api/events/{event_id}").get_json()["bot_protection"] is True
    assert "Turn the bot check off" in client.get(f"/admin/events/{event_id}").get_data(True)
    form = {"name": "Form", "sections": "A, 1, 2, 10", "bot_protection": "on"}
    made = client.post("/admin/events", data=form)
    made_id = int(made.headers["Location"].rsplit("/", 1)[1])
    assert client.get(f"/api/events/{made_id}").get_json()["bot_protection"] is True


@pytest.mark.skipif(not shutil.which("node"), reason="needs node to run the page's solver")
def test_the_pages_solver_solves_a_real_challenge(app, protected, customer):
    """app/static/altcha-solver.js (WebCrypto, as in the browser) against
    the server's own challenge at the production cost; the server takes it."""
    _, client = customer
    app.config["BOT_CHALLENGE_COST"] = 10_000  # the default
    challenge = client.get(f"/api/events/{protected.id}/challenge").get_json()
    script = (
        "const {solve} = require(process.argv[1]);"
        "solve(JSON.parse(process.argv[2]).parameters)"
        ".then(s => console.log(JSON.stringify(s)));"
    )
    solver = str(ROOT / "app" / "static" / "altcha-solver.js")
    out = subprocess.run(
        ["node", "-e", script, solver, json.dumps(challenge)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    solution = json.loads(out)
    proof = Payload.from_dict({"challenge": challenge, "solution": solution}).to_base64()
    response = join(client, protected.id, proof)
    assert response.status_code == 200, response.get_json()
    print(f"\n[bots] the page's solver: counter {solution['counter']}, {solution['time']:.0f} ms")
