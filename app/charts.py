"""Server-rendered SVG sparklines for the staff page (no JavaScript library):
waiting, active and admissions per second over the last 15 minutes, from the
samples the admission job keeps in Redis."""

from flask_babel import gettext

from app import keys
from app.extensions import redis_store

WIDTH, HEIGHT = 300, 60


def for_event(event_id: int, admit_rate: int, now: dict | None = None) -> list[dict]:
    """The three sparklines; `now` (ms, waiting, active, admitted_per_s: the
    numbers on the cards) ends each line, so that it agrees with the cards
    between two samples (one every 5 s)."""
    samples = [
        tuple(int(float(v)) for v in line.split())
        for line in redis_store.client.lrange(keys.event(event_id).samples, 0, -1)
    ]
    times = [s[0] for s in samples]
    admitted_per_s = [0.0] * min(1, len(samples)) + [
        (b[3] - a[3]) * 1000 / (b[0] - a[0]) if b[0] > a[0] else 0.0
        for a, b in zip(samples, samples[1:], strict=False)
    ]
    waiting, active = [s[1] for s in samples], [s[2] for s in samples]
    if now and (not times or now["ms"] > times[-1]):
        times.append(now["ms"])
        waiting.append(now["waiting"])
        active.append(now["active"])
        admitted_per_s.append(now["admitted_per_s"])
    return [
        series(gettext("Waiting"), times, waiting),
        series(gettext("Active"), times, active),
        series(gettext("Admitted per second"), times, admitted_per_s, reference=admit_rate),
    ]


def series(
    title: str, times: list[int], values: list[float], reference: float | None = None
) -> dict:
    """One sparkline: the SVG polyline points, the last value and the scale."""
    top = max([*values, reference or 0, 1])
    span = (times[-1] - times[0]) if len(times) > 1 else 1
    points = " ".join(
        f"{(t - times[0]) / span * WIDTH:.1f},{HEIGHT - v / top * HEIGHT:.1f}"
        for t, v in zip(times, values, strict=True)
    )
    return {
        "title": title,
        "points": points,
        "last": values[-1] if values else 0,
        "top": top,
        "minutes": round(span / 60000, 1),
        "seconds": span / 1000 if len(times) > 1 else 0,
        "width": WIDTH,
        "height": HEIGHT,
        "reference_y": None if reference is None else HEIGHT - reference / top * HEIGHT,
        "reference": reference,
    }
