"""Cross-site requests from a real browser (issue 14, item 4): a fan and a
staff member logged in in Chromium open a page of another origin on the
same site (another port on loopback, as a sibling subdomain would be). It
fires what any page may send without a CORS preflight, each with the
person's cookies: bodiless and text/plain `fetch(..., {mode: 'no-cors',
credentials: 'include'})` and form posts, at join, hold, logout and staff
block/unblock. Afterwards Redis and MySQL show that nothing changed."""

import http.server
import json
import threading
from urllib.parse import parse_qs, urlsplit

import pymysql
import pytest
import redis
from conftest import MYSQL
from e2e_support import E2E_MYSQL_DB, enter_through_queue, log_in, wait_for
from helpers import free_port

from app import keys

pytestmark = pytest.mark.e2e

SECTIONS = [{"name": "A", "rows": 1, "seats_per_row": 4, "price": 1000}]

# The attacker's page: every simple request at every target, then the form
# posts (each into its own frame, so the page stays), then "done" in the title.
ATTACK_PAGE = """<!doctype html><html><head><title>prize</title></head><body>
<script src="/attack.js"></script></body></html>"""
ATTACK_SCRIPT = """
(async () => {
  const targets = %s;
  for (const url of targets) {
    await fetch(url, {method: 'POST', credentials: 'include', mode: 'no-cors'}).catch(() => {});
    await fetch(url, {method: 'POST', credentials: 'include', mode: 'no-cors',
                      headers: {'Content-Type': 'text/plain'}, body: '{}'}).catch(() => {});
  }
  let loaded = 0;
  const forms = [];
  const enctypes = ['application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data'];
  for (const [i, url] of targets.entries()) {
    for (const enctype of enctypes) {
      const name = 'f' + i + enctype.length;
      const frame = document.createElement('iframe');
      frame.name = name;
      frame.onload = () => { loaded += 1; };
      document.body.appendChild(frame);
      const form = document.createElement('form');
      Object.assign(form, {method: 'post', action: url, target: name, enctype});
      const field = document.createElement('input');
      Object.assign(field, {name: '{"a":"', value: '1"}'});
      form.appendChild(field);
      document.body.appendChild(form);
      forms.push(form);
    }
  }
  forms.forEach(form => form.submit());
  const deadline = Date.now() + 10000;
  while (loaded < forms.length && Date.now() < deadline) await new Promise(r => setTimeout(r, 100));
  document.title = 'done';
})();
"""


@pytest.fixture
def attacker():
    """A web server of another origin on the same site: serves the page and
    the script with the targets given in the page's query string."""
    state = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            parts = urlsplit(self.path)
            if parts.path == "/attack.js":
                body, kind = ATTACK_SCRIPT % json.dumps(state["targets"]), "text/javascript"
            elif parts.path == "/":
                state["targets"] = parse_qs(parts.query)["t"]
                body, kind = ATTACK_PAGE, "text/html"
            else:
                self.send_error(404)
                return
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def attack(page, attacker: str, targets: list[str], home: str) -> None:
    """The person visits the attacker's page, then comes back to ours."""
    query = "&".join(f"t={t}" for t in targets)
    page.goto(f"{attacker}/?{query}")
    page.wait_for_function("document.title === 'done'", timeout=30_000)
    page.goto(home)


def seat_status(seat_id: int) -> str:
    with pymysql.connect(database=E2E_MYSQL_DB, **MYSQL) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT status FROM seats WHERE id = %s", (seat_id,))
        return cursor.fetchone()[0]


def me(page) -> int:
    """The status of GET /api/me from the page's own origin (its cookies)."""
    return page.evaluate("fetch('/api/me').then(r => r.status)")


def test_another_origin_cannot_act_for_a_fan_or_staff(stack, new_context, attacker):
    if "DATABASE_URL" not in stack.env or "REDIS_URL" not in stack.env:
        pytest.skip("needs the machine's Redis and MySQL to look at")
    r = redis.Redis.from_url(stack.env["REDIS_URL"], decode_responses=True)
    inside = stack.new_event("Cross-site, inside", SECTIONS, admit_rate=100)
    outside = stack.new_event("Cross-site, not joined", SECTIONS)
    seat, blocked, free = stack.seat_ids(inside)[:3]
    staff_api = stack.api(stack.staff_email)
    assert staff_api.call("POST", f"/api/admin/events/{inside}/seats/{blocked}/block")[0] == 200

    fan = new_context().new_page()
    fan_email = stack.new_user("cross-site")
    log_in(fan, fan_email)
    enter_through_queue(fan, inside)  # the fan may hold seats now
    fan_id = stack.api(fan_email).call("GET", "/api/me")[1]["id"]
    staff = new_context().new_page()
    log_in(staff, stack.staff_email)
    assert me(fan) == 200 and me(staff) == 200

    base = stack.base_url
    attack(
        fan,
        attacker,
        [
            f"{base}/api/events/{outside}/queue",
            f"{base}/api/events/{inside}/seats/{seat}/hold",
            f"{base}/api/auth/logout",
        ],
        f"{base}/bookings",
    )
    attack(
        staff,
        attacker,
        [
            f"{base}/api/admin/events/{inside}/seats/{free}/block",
            f"{base}/api/admin/events/{inside}/seats/{blocked}/unblock",
            f"{base}/api/auth/logout",
        ],
        f"{base}/admin/",
    )

    k = keys.event(outside)
    changed = {
        "the fan joined a queue": r.zscore(k.queue, fan_id) or r.zscore(k.active, fan_id),
        "the fan held a seat": r.hget(keys.event(inside).seats, str(seat)),
        "staff blocked a seat": seat_status(free) != "available",
        "staff unblocked a seat": seat_status(blocked) != "blocked",
        "the fan was logged out": not wait_for(lambda: me(fan) == 200, seconds=3),
        "staff were logged out": me(staff) != 200,
    }
    assert {what: how for what, how in changed.items() if how} == {}
    # And the fan's own page still can (same origin, JSON): the test is not blind.
    held = fan.evaluate(
        f"""fetch('/api/events/{inside}/seats/{seat}/hold',
                  {{method: 'POST', headers: {{'Content-Type': 'application/json'}}}})
              .then(r => r.status)"""
    )
    assert held == 201
