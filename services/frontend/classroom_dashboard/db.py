"""One Redis client per app: redis-py's connection pool is thread-safe, so requests share it."""

from __future__ import annotations

import redis
from flask import Flask, current_app

EXTENSION = "classroom_redis"


def connect(url: str) -> redis.Redis:
    # A connect timeout, so an unreachable Redis gives a 503 in seconds instead of hanging a thread
    # (no read timeout: the live stream blocks in XREAD on purpose).
    return redis.Redis.from_url(url, decode_responses=True, health_check_interval=30, socket_connect_timeout=5)


def get_redis() -> redis.Redis:
    """The app's Redis client, created on first use."""
    client = current_app.extensions.get(EXTENSION)
    if client is None:
        client = current_app.extensions[EXTENSION] = connect(current_app.config["REDIS_URL"])
    return client


def init_app(app: Flask) -> None:
    app.extensions.setdefault(EXTENSION, None)
