"""Liveness and readiness probes for load balancers and process managers."""

from flask import Blueprint, jsonify

from app.extensions import db, redis_store

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process answers; touches nothing else."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """200 only when both Redis and the database answer."""
    checks = {}
    try:
        redis_store.client.ping()
        checks["redis"] = "ok"
    except Exception as e:  # any failure means not ready
        checks["redis"] = f"error: {type(e).__name__}"
    try:
        db.execute_sql("SELECT 1")
        checks["database"] = "ok"
    except Exception as e:
        checks["database"] = f"error: {type(e).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if ready else "unavailable", **checks), 200 if ready else 503
