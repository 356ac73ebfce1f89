"""GET /metrics: the Prometheus text format, for the metrics token only."""

import hmac

from flask import Blueprint, Response, abort, current_app, request
from flask_babel import lazy_gettext as _l
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4 as TEXT_FORMAT

from app import metrics
from app.errors import AppError

bp = Blueprint("exposition", __name__)
# The text format every Prometheus reads (2.x too); generate_latest writes it.
WRONG_TOKEN = _l("Send the metrics token: Authorization: Bearer <METRICS_TOKEN>.")


@bp.get("/metrics")
def exposition():
    token = current_app.config["METRICS_TOKEN"]
    if not token:
        abort(404)  # no metrics unless an operator asked for them
    sent = request.headers.get("Authorization", "")
    if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        raise AppError(403, "forbidden", WRONG_TOKEN)
    return Response(
        metrics.exposition(),
        content_type=TEXT_FORMAT,
        headers={"Cache-Control": "no-store"},
    )
