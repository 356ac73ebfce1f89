"""Small helpers shared by the test files (fixtures live in conftest.py)."""

import threading
import time
import uuid

from app import waiting_room
from app.models import Seat


def in_background(call):
    """Run call() in a thread; returns (thread, result dict with 'value' or 'error')."""
    result = {}

    def run():
        try:
            result["value"] = call()
        except Exception as e:  # pragma: no cover - reported by the test
            result["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result



def admit_and_enter(app, client, event_id) -> str:
    """Join through the API, run admission ticks until the person is in, and
    enter with the token; returns the token. The person may now hold and pay."""
    assert client.post(f"/api/events/{event_id}/queue").status_code == 200
    status = {}
    for _ in range(50):
        with app.app_context():
            waiting_room.admit(event_id)
        status = client.get(f"/api/events/{event_id}/queue").get_json()
        if status["status"] == "admitted":
            break
        time.sleep(0.02)
    assert status["status"] == "admitted", status
    response = client.post(f"/api/events/{event_id}/enter",
                           headers={"Authorization": f"Bearer {status['token']}"})
    assert response.status_code == 200, response.get_json()
    return status["token"]


def entered(app, make_user, login, event, points=None):
    """A new, logged-in person who came through the waiting room: (user, client)."""
    user = make_user(points=points)
    client = login(app.test_client(), user)
    admit_and_enter(app, client, event.id)
    return user, client


def seat_ids(app, event_id) -> list[int]:
    with app.app_context():
        return [s.id for s in Seat.select(Seat.id).where(Seat.event == event_id)
                .order_by(Seat.id)]


def hold(client, event_id, seat_id) -> int:
    response = client.post(f"/api/events/{event_id}/seats/{seat_id}/hold")
    assert response.status_code == 201, response.get_json()
    return response.get_json()["token"]


def pay(client, event_id, items, key=None):
    return client.post(f"/api/events/{event_id}/checkout",
                       json={"seats": [{"seat_id": s, "token": t} for s, t in items]},
                       headers={"Idempotency-Key": key or uuid.uuid4().hex})
