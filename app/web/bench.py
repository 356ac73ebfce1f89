"""Bench-only endpoints (BENCH_ENDPOINTS=1): the floor the poll is measured
against, under the same server settings: one Redis PING, a constant answer."""

from flask import Blueprint, jsonify

from app.extensions import redis_store

bp = Blueprint("bench", __name__, url_prefix="/bench")


@bp.get("/ping")
def ping():
    redis_store.client.ping()
    return jsonify(status="ok")
