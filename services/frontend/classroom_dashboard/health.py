"""Probes: /healthz (liveness: the process serves HTTP) and /readyz (readiness: Redis answers).

Liveness stays cheap and never touches Redis: an orchestrator restarts a container whose liveness
fails, and restarting the dashboard does not bring Redis back. Readiness says whether a request
can be served right now: 503 while Redis is down, so a load balancer sends teachers elsewhere (or
nowhere) instead of to a page that will fail.
"""

from __future__ import annotations

import logging

import redis
from flask import Flask

from classroom_dashboard.db import get_redis

log = logging.getLogger(__name__)


def healthz():
    return {"status": "ok"}


def readyz():
    try:
        get_redis().ping()
    except redis.RedisError as exc:
        log.warning("not ready: Redis does not answer (%s)", exc.__class__.__name__)
        return {"status": "unavailable", "redis": "down"}, 503
    return {"status": "ready", "redis": "up"}


def init_app(app: Flask) -> None:
    app.add_url_rule("/healthz", "healthz", healthz)
    app.add_url_rule("/readyz", "readyz", readyz)
