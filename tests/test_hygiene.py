"""Hygiene (issue 14, item 11): Secure session cookies unless `make run` says
otherwise, HSTS over HTTPS (also behind a trusted proxy), a complete
Content-Security-Policy, no-store on what is about a person, and the
signing keys' file private from its first byte. Real Redis and database."""

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from helpers import admit_and_enter, hold, seat_ids

from app import config

pytestmark = pytest.mark.usefixtures("quick_passwords")

ROOT = Path(__file__).resolve().parents[1]


def test_session_cookies_are_secure_unless_turned_off(monkeypatch, tmp_path):
    monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    assert config.load(str(tmp_path))["SESSION_COOKIE_SECURE"] is True
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "0")
    assert config.load(str(tmp_path))["SESSION_COOKIE_SECURE"] is False


def test_make_run_and_the_local_cluster_serve_plain_http_so_they_turn_it_off():
    """bin/run and bin/cluster listen on plain http on loopback, where a
    Secure cookie would never come back (tests/test_run.py logs in there)."""
    for script in ("run", "cluster"):
        text = (ROOT / "bin" / script).read_text()
        assert 'setdefault("SESSION_COOKIE_SECURE", "0")' in text, script


@pytest.fixture
def proxied(make_app):
    return make_app(TRUSTED_PROXIES=1)


def hsts(response) -> str | None:
    return response.headers.get("Strict-Transport-Security")


def test_hsts_only_over_https(app, client, proxied, make_user, login, event):
    assert hsts(client.get("/")) is None
    assert "max-age=" in hsts(client.get("/", base_url="https://localhost"))
    assert "max-age=" in hsts(client.get("/api/events", base_url="https://localhost"))
    # Behind the trusted proxy, its X-Forwarded-Proto says how the request came.
    behind = proxied.test_client()
    assert "max-age=" in hsts(behind.get("/", headers={"X-Forwarded-Proto": "https"}))
    assert hsts(behind.get("/", headers={"X-Forwarded-Proto": "http"})) is None


def test_hsts_on_the_hot_path_poll_too(app, make_user, login, event):
    client = login(app.test_client(), make_user())
    client.post(f"/api/events/{event.id}/queue")
    poll = f"/api/events/{event.id}/queue"
    for _ in range(2):  # the second is the hot path's
        assert "max-age=" in hsts(client.get(poll, base_url="https://localhost"))
    assert hsts(client.get(poll)) is None


def csp(response) -> dict[str, list[str]]:
    directives = {}
    policy = response.headers["Content-Security-Policy"]
    for part in filter(None, (p.strip() for p in policy.split(";"))):
        name, *values = part.split()
        directives[name] = values
    return directives


def test_the_csp_is_complete(client):
    policy = csp(client.get("/"))
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'self'"]  # the waiting page's no-JS frame
    assert policy["img-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'"]


def test_what_is_about_a_person_is_never_stored(app, event, make_user, login):
    client = login(app.test_client(), make_user())
    admit_and_enter(app, client, event.id)
    hold(client, event.id, seat_ids(app, event.id)[0])  # so the checkout page shows it
    for url in (
        f"/events/{event.id}/seats",
        f"/events/{event.id}/checkout",
        "/bookings",
        "/api/me",
        "/api/me/bookings",
        f"/api/events/{event.id}/seats",
        f"/api/events/{event.id}/queue",
        "/",
    ):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        assert response.headers.get("Cache-Control") == "no-store", url
    # Nobody's: the public pages and static files may be cached.
    anonymous = app.test_client()
    assert anonymous.get("/api/events").headers.get("Cache-Control") != "no-store"
    static = anonymous.get("/static/htmx-2.0.11.min.js")
    assert "no-store" not in (static.headers.get("Cache-Control") or "")


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o277])
def test_the_secrets_file_is_private_from_its_first_byte(tmp_path, umask):
    """Every moment the file (or its temporary) exists, nobody else may read it."""
    instance = tmp_path / "instance"
    modes = []

    def watch(event, args):
        if watching and event in ("open", "os.chmod", "os.link") and instance.exists():
            for path in instance.iterdir():
                if path.name.startswith("secrets"):
                    modes.append((event, path.name, stat.S_IMODE(path.stat().st_mode)))

    watching = False
    sys.addaudithook(watch)  # stays for the process: gated by `watching`
    old = os.umask(umask)
    try:
        watching = True
        keys = config._instance_secrets(instance)
    finally:
        watching = False
        os.umask(old)
    assert modes, "the audit hook saw nothing"
    assert {mode for *_, mode in modes} <= {0o600, 0o400}, modes
    assert stat.S_IMODE((instance / "secrets.json").stat().st_mode) == 0o600
    assert json.loads((instance / "secrets.json").read_text()) == keys
    assert config._instance_secrets(instance) == keys  # read again, the same keys
