"""Cheap requests that must not cost a lot (issue 14, item 8): a request for
an event that does not exist, and the live seat map's refresh."""

import logging
from contextlib import contextmanager

from helpers import entered

from app import seats


@contextmanager
def queries_counted():
    """Every SQL statement peewee sends meanwhile (its DEBUG log, one record
    per query)."""
    sent: list[str] = []

    class Count(logging.Handler):
        def emit(self, record):
            sent.append(record.getMessage())

    logger, handler = logging.getLogger("peewee"), Count()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield sent
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_nonexistent_events_do_not_empty_the_seat_catalogue_cache(app, make_user, login, event):
    _, client = entered(app, make_user, login, event)
    assert client.get(f"/api/events/{event.id}/seats").status_code == 200  # the cache is warm
    for missing in range(event.id + 1000, event.id + 1050):
        response = client.get(f"/api/events/{missing}/seats")
        assert response.status_code == 404, response.get_json()
        assert response.get_json()["error"] == "not_found"
    with app.app_context(), queries_counted() as sent:
        seats.catalogue(event.id)
    assert sent == [], "the real event's catalogue was loaded again"
