"""Figure 8: a crowd simulation against the real stack.

N virtual people (asyncio tasks, one shared aiohttp session, each person's
session cookie sent explicitly) join the waiting room over a ramp of a few
seconds, then poll exactly when the server's `poll_after` says; whoever is
admitted enters with the token, reads the seat map, holds a seat and buys it
with an Idempotency-Key. Everything runs against gunicorn, Redis, MySQL, the
RQ worker and the scheduler as in production (bench/common.py).

The tiered run uses the default poll tiers with their boundaries divided by
SCALE (intervals unchanged), so that N = 20,000 people spread over all five
tiers exactly as 200,000 would over the default table. Every second the
queue's size (ZCARD) gives the capacity model's prediction
(capacity.total_rate); over a window of one slowest-tier interval (60 s, a
multiple of every tier's interval, so each person counts once per interval
whatever their phase), after a warm-up of one slowest-tier interval past the
last join, the completed polls are compared with the predicted polls.

The fixed run is the same crowd polling every 3 s; its offered load
(N / 3 requests/s) is far above what a 2-core machine serves beside the
simulated clients, so achieved and offered are both reported.

Polls are counted client-side (completed 200 answers, by second). The loop is
closed (each person waits for the answer), so no latency percentiles are
reported. Writes docs/crowd-simulation.png.
"""

import argparse
import asyncio
import json
import random
import secrets
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
import common
from common import ROOT, Stack, create_event, machine, result

N = 20_000
SCALE = 10  # tier boundaries (and bands) divided by this; intervals unchanged
RAMP = 25.0  # joins spread evenly over this many seconds
WINDOW = 60.0  # measurement window (= the slowest tier's interval)
FIXED_INTERVAL = 3
FIXED_TIERS = [{"up_to": None, "interval": FIXED_INTERVAL, "band": 0}]
CONNECTIONS = 48  # client connection pool (gunicorn serves 2 workers x 8 threads)
WEB_WORKERS = 2
EVENT = {"max_active": 2_000, "admit_rate": 3, "active_ttl": 300, "hold_ttl": 300,
         "sections": [{"name": "A", "rows": 20, "seats_per_row": 50, "price": 100}]}
REQUEST_TIMEOUT = 60
PNG = ROOT / "docs" / "crowd-simulation.png"


def scaled_tiers(scale: int) -> list[dict]:
    from app.config import DEFAULT_POLL_TIERS

    return [{"up_to": None if t["up_to"] is None else t["up_to"] // scale,
             "interval": t["interval"],
             "band": t["band"] if not t["band"] else t["band"] // scale}
            for t in DEFAULT_POLL_TIERS]


def tier_table(tiers: list[dict]) -> str:
    parts, lower = [], 0
    for t in tiers:
        span = f"{lower + 1:,}+" if t["up_to"] is None else f"{lower + 1:,}-{t['up_to']:,}"
        parts.append(f"{span}: {t['interval']:g} s")
        lower = t["up_to"] or lower
    return ", ".join(parts)


def crowd_accounts(stack: Stack, people: int) -> list[tuple[int, str]]:
    """Insert the crowd's accounts in bulk (one precomputed password hash) and
    log each in by signing a session cookie as the app's login would."""
    from werkzeug.security import generate_password_hash

    from app.extensions import db
    from app.models import User

    app = stack.app
    password_hash = generate_password_hash("password123")
    points = app.config["STARTING_POINTS"]
    rows = [{"email": f"crowd{i}@example.com", "password_hash": password_hash,
             "points": points} for i in range(people)]
    with app.app_context():
        with db.atomic():
            for start in range(0, people, 1_000):
                User.insert_many(rows[start:start + 1_000]).execute()
        users = list(User.select(User.id, User.email)
                     .where(User.email.startswith("crowd")).order_by(User.id).tuples())
        db.close()
        signer = app.session_interface.get_signing_serializer(app)
        accounts = [(uid, signer.dumps({"uid": uid, "sid": secrets.token_urlsafe(16),
                                        "email": email, "staff": False, "_permanent": True}))
                    for uid, email in users]
    assert len(accounts) == people, len(accounts)
    return accounts


@dataclass
class Run:
    """One crowd against one stack: counters by second and outcomes."""

    base: str
    event_id: int
    cookie_name: str
    stop_at: float
    polls: Counter = field(default_factory=Counter)  # second -> completed polls
    joins: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)  # joined, admitted, entered, ...
    errors: Counter = field(default_factory=Counter)  # "kind status" -> count
    waiting: dict = field(default_factory=dict)  # second -> ZCARD of the queue
    t0: float = 0.0
    http: aiohttp.ClientSession | None = None

    def now(self) -> float:
        return time.monotonic() - self.t0

    async def call(self, kind: str, method: str, path: str, cookie: str,
                   body=None, headers=None) -> tuple[int | None, dict | list | None]:
        all_headers = {"Cookie": f"{self.cookie_name}={cookie}", **(headers or {})}
        # No body, no Content-Type (aiohttp would send application/octet-stream: 415).
        extra = {"json": body} if body is not None else {"skip_auto_headers": ["Content-Type"]}
        try:
            async with self.http.request(method, self.base + path, headers=all_headers,
                                         **extra) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as e:
            self.errors[f"{kind} {type(e).__name__}"] += 1
            return None, None
        if 200 <= status < 300:
            if kind == "poll":
                self.polls[int(self.now())] += 1
            elif kind == "join":
                self.joins[int(self.now())] += 1
        else:
            self.errors[f"{kind} {status}"] += 1
        return status, json.loads(raw) if raw[:1] in (b"{", b"[") else None

    async def person(self, cookie: str, join_at: float) -> None:
        queue = f"/api/events/{self.event_id}/queue"
        await asyncio.sleep(max(0.0, join_at - self.now()))
        kind, method, retry = "join", "POST", 3.0
        while self.now() < self.stop_at:
            status, answer = await self.call(kind, method, queue, cookie)
            if status != 200:  # an error: try again a little later
                await asyncio.sleep(retry)
                continue
            if kind == "join":
                self.outcomes["joined"] += 1
                kind, method = "poll", "GET"
            if answer["status"] == "admitted":
                self.outcomes["admitted"] += 1
                await self.buy(cookie, answer["token"])
                return
            if answer["status"] != "waiting" or answer["poll_after"] is None:
                self.outcomes[answer["status"]] += 1
                return
            retry = answer["poll_after"]
            await asyncio.sleep(retry)  # exactly what the server said

    async def buy(self, cookie: str, token: str) -> None:
        event = f"/api/events/{self.event_id}"
        status, _ = await self.call("enter", "POST", f"{event}/enter", cookie,
                                    headers={"Authorization": f"Bearer {token}"})
        if status != 200:
            return
        self.outcomes["entered"] += 1
        status, seats = await self.call("seats", "GET", f"{event}/seats", cookie)
        if status != 200:
            return
        free = [s["id"] for s in seats if s["status"] == "available"]
        for seat_id in random.sample(free, min(3, len(free))):
            status, hold = await self.call("hold", "POST", f"{event}/seats/{seat_id}/hold",
                                           cookie)
            if status == 201:
                break
        else:
            return
        self.outcomes["held"] += 1
        status, _ = await self.call(
            "checkout", "POST", f"{event}/checkout", cookie,
            body={"seats": [{"seat_id": seat_id, "token": hold["token"]}]},
            headers={"Idempotency-Key": uuid.uuid4().hex})
        if status == 201:
            self.outcomes["booked"] += 1

    async def sample(self, stack: Stack, queue_key: str) -> None:
        """The queue's size in the middle of every second."""
        second = 0
        while second < self.stop_at:
            await asyncio.sleep(max(0.0, second + 0.5 - self.now()))
            self.waiting[second] = await asyncio.to_thread(stack.redis.zcard, queue_key)
            second += 1

    async def go(self, stack: Stack, accounts: list[tuple[int, str]], ramp: float) -> None:
        from app import keys

        connector = aiohttp.TCPConnector(limit=CONNECTIONS)
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                         cookie_jar=aiohttp.DummyCookieJar()) as self.http:
            self.t0 = time.monotonic() + 1.0
            step = ramp / len(accounts)
            tasks = [asyncio.create_task(self.person(cookie, i * step))
                     for i, (_, cookie) in enumerate(accounts)]
            sampler = asyncio.create_task(self.sample(stack, keys.event(self.event_id).queue))
            await asyncio.sleep(self.stop_at + self.t0 - time.monotonic())
            for task in [*tasks, sampler]:
                task.cancel()
            await asyncio.gather(*tasks, sampler, return_exceptions=True)


def simulate(tiers: list[dict], people: int, ramp: float, settle: float, window: float) -> dict:
    """One stack, one event, one crowd; returns the counts by second."""
    # A database of its own: Stack drops and recreates its tables, which must
    # not pull them from under another benchmark running at the same time.
    common.BENCH_DB = "ticketdrop_bench_crowd"
    with Stack(POLL_TIERS=json.dumps(tiers)) as stack:
        started = time.monotonic()
        accounts = crowd_accounts(stack, people)
        setup = time.monotonic() - started
        event_id = create_event(stack, **EVENT)
        base = stack.start_web(WEB_WORKERS)
        stack.start_jobs()
        cookie_name = stack.app.config["SESSION_COOKIE_NAME"]
        run = Run(base, event_id, cookie_name, stop_at=ramp + settle + window)
        cpu = time.process_time()
        asyncio.run(run.go(stack, accounts, ramp))
        cpu = time.process_time() - cpu
        from app import keys

        admitted_total = stack.redis.hget(keys.event(event_id).tick, "admitted_total")
    return {"polls": run.polls, "joins": run.joins, "waiting": run.waiting,
            "outcomes": dict(run.outcomes), "errors": dict(run.errors),
            "window": (ramp + settle, ramp + settle + window), "ramp": ramp, "accounts_s": setup,
            "admitted_total": int(admitted_total or 0), "tiers": tiers,
            "client_cpu_s": round(cpu, 1), "seconds": run.stop_at}


def window_totals(run: dict, model) -> tuple[float, float, float]:
    """(measured polls, model polls, seconds) over the run's measurement window."""
    start, end = (int(x) for x in run["window"])
    seconds = range(start, end)
    measured = sum(run["polls"][s] for s in seconds)
    predicted = sum(model(run["waiting"].get(s, 0)) for s in seconds)
    return measured, predicted, len(seconds)


def plot(tiered: dict, fixed: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from app.capacity import total_rate

    fig, ax = plt.subplots(figsize=(10, 5.5), dpi=110)
    for run, label, colour in ((fixed, f"fixed {FIXED_INTERVAL} s polling: measured", "tab:red"),
                               (tiered, "tiered polling: measured", "tab:blue")):
        end = int(run["window"][1])
        ax.plot(range(end), [run["polls"][s] for s in range(end)], color=colour, lw=1,
                label=label)
        ax.axvspan(*run["window"], color=colour, alpha=0.06)
    end = int(tiered["window"][1])
    ax.plot(range(end), [total_rate(tiered["waiting"].get(s, 0), tiered["tiers"])
                         for s in range(end)], color="black", lw=1.5, ls="--",
            label="tiered polling: capacity model (from the queue size each second)")
    end = int(fixed["window"][1])
    ax.plot(range(end), [fixed["waiting"].get(s, 0) / FIXED_INTERVAL for s in range(end)],
            color="tab:red", lw=1.5, ls=":", label=f"fixed {FIXED_INTERVAL} s: offered load "
            "(model)")
    ax.axvline(tiered["ramp"], color="grey", lw=0.8)
    ax.text(tiered["ramp"], ax.get_ylim()[1] * 0.97, " last join", color="grey", va="top",
            fontsize=8)
    ax.set_yscale("log")
    ax.set_ylim(bottom=10)
    ax.set_xlabel("seconds since the first join (shaded: measurement windows)")
    ax.set_ylabel("completed polls per second (log scale)")
    people = sum(tiered["joins"].values())
    ax.set_title(f"Crowd simulation: {people:,} people, tier boundaries / {SCALE} "
                 "(intervals unchanged), real stack on 2 cores")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def describe_outcomes(outcome: dict) -> str:
    return ", ".join(f"{what} {outcome.get(what, 0):,}"
                     for what in ("admitted", "entered", "held", "booked"))


def describe_errors(errors: dict) -> str:
    return ", ".join(f"{k}: {v:,}" for k, v in sorted(errors.items())) or "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=N)
    parser.add_argument("--scale", type=int, default=SCALE)
    parser.add_argument("--window", type=float, default=WINDOW)
    parser.add_argument("--ramp", type=float, default=RAMP)
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds after the last join (default: the slowest interval)")
    args = parser.parse_args()

    from app.capacity import total_rate

    began = time.monotonic()
    tiers = scaled_tiers(args.scale)
    slowest = max(t["interval"] for t in tiers) if args.warmup is None else args.warmup
    print(f"crowd: {args.people:,} people; tiers (boundaries / {args.scale}, intervals "
          f"unchanged): {tier_table(tiers)}; joins over {args.ramp:g} s, warm-up {slowest:g} s "
          f"after the last join, window {args.window:g} s; {machine()}", flush=True)
    tiered = simulate(tiers, args.people, args.ramp, slowest, args.window)
    measured, predicted, seconds = window_totals(tiered, lambda w: total_rate(w, tiers))
    print(f"crowd: tiered run done at {time.monotonic() - began:.0f} s: {measured:,} polls "
          f"measured, {predicted:,.0f} modelled over {seconds} s", flush=True)

    fixed = simulate(FIXED_TIERS, args.people, args.ramp, 2 * FIXED_INTERVAL, args.window)
    f_measured, f_offered, f_seconds = window_totals(fixed, lambda w: w / FIXED_INTERVAL)
    plot(tiered, fixed, PNG)
    runtime = time.monotonic() - began

    ratio = measured / predicted if predicted else 0.0
    waiting = [tiered["waiting"].get(s, 0) for s in range(*(int(x) for x in tiered["window"]))]
    joined = sum(tiered["joins"].values())
    outcome = tiered["outcomes"]
    result(8, "crowd: measured vs model",
           f"{measured / seconds:,.1f} polls/s measured vs {predicted / seconds:,.1f} modelled "
           f"= {ratio:.3f}x ({joined:,} of {args.people:,} people joined over {args.ramp:g} s; "
           f"tiers with boundaries / {args.scale}, intervals unchanged: {tier_table(tiers)}; "
           f"warm-up {slowest:g} s after the last join, window {seconds} s with "
           f"{max(waiting):,} -> {min(waiting):,} waiting; {describe_outcomes(outcome)}; "
           f"non-2xx/failed requests: {describe_errors(tiered['errors'])})",
           "within 10 %", abs(ratio - 1) <= 0.10,
           people=args.people, tiers=tiers, ramp_s=args.ramp, warmup_s=slowest, window_s=seconds,
           measured_polls=measured, model_polls=round(predicted), outcomes=outcome,
           errors=tiered["errors"], admitted_total=tiered["admitted_total"],
           web_workers=WEB_WORKERS, connections=CONNECTIONS, runtime_s=round(runtime),
           machine=machine())

    tiered_rate, fixed_rate = measured / seconds, f_measured / f_seconds
    offered_rate = f_offered / f_seconds
    model_tiered = predicted / seconds
    cut_measured = 1 - tiered_rate / fixed_rate if fixed_rate else 0.0
    cut_offered = 1 - tiered_rate / offered_rate if offered_rate else 0.0
    cut_model = 1 - model_tiered / offered_rate if offered_rate else 0.0
    achieved = fixed_rate / offered_rate if offered_rate else 0.0
    saturated = achieved < 0.9
    f_outcome = fixed["outcomes"]
    f_joined = sum(fixed["joins"].values())
    verdict = None if saturated else 0.75 <= cut_measured <= 0.92
    result(8, "crowd: tiered vs fixed 3 s",
           f"measured cut {cut_measured:.1%} against what the fixed run achieved "
           f"({tiered_rate:,.0f} vs {fixed_rate:,.0f} polls/s); {cut_offered:.1%} against the "
           f"fixed run's offered load ({offered_rate:,.0f} req/s = waiting / 3); model "
           f"{cut_model:.1%}. Fixed run: {f_joined:,} of {args.people:,} joined, achieved "
           f"{achieved:.0%} of its offered load"
           + (" - the server (2 cores shared with the simulated clients) saturated, so the "
              "measured cut understates the saving" if saturated else "")
           + f"; admitted {f_outcome.get('admitted', 0):,}, booked "
           f"{f_outcome.get('booked', 0):,}; non-2xx/failed requests: "
           f"{describe_errors(fixed['errors'])}",
           "~78-90 % cut", verdict,
           tiered_polls_per_s=round(tiered_rate, 1), fixed_polls_per_s=round(fixed_rate, 1),
           fixed_offered_per_s=round(offered_rate, 1), cut_measured=round(cut_measured, 4),
           cut_vs_offered=round(cut_offered, 4), cut_model=round(cut_model, 4),
           fixed_outcomes=f_outcome, fixed_errors=fixed["errors"],
           fixed_warmup_s=2 * FIXED_INTERVAL, window_s=f_seconds)
    print(f"crowd: plot written to {PNG.relative_to(ROOT)}; total runtime {runtime:.0f} s",
          flush=True)


if __name__ == "__main__":
    main()
