"""One Redis client per app: redis-py's connection pool is thread-safe, so requests share it."""

from __future__ import annotations

import logging

import redis
from flask import Flask, current_app

log = logging.getLogger(__name__)

EXTENSION = "classroom_redis"
CROP_STORE_EXTENSION = "classroom_crop_store"


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


def get_crop_store() -> redis.Redis:
    """The crop store's client (CROP_STORE_URL), created on first use; only erasure uses it."""
    client = current_app.extensions.get(CROP_STORE_EXTENSION)
    if client is None:
        client = current_app.extensions[CROP_STORE_EXTENSION] = connect(current_app.config["CROP_STORE_URL"])
    return client


def crop_store_or_none() -> redis.Redis | None:
    """The crop store, or None when it cannot be reached: an erasure then leaves the student's
    queued crops to expire (CROPS_TTL_SECONDS) - their jobs are gone, nothing reads them."""
    client = get_crop_store()
    try:
        client.ping()
    except redis.RedisError as exc:
        log.warning("erasure: crop store unreachable (%s); queued crops will expire on their own", exc)
        return None
    return client


def init_app(app: Flask) -> None:
    app.extensions.setdefault(EXTENSION, None)
    app.extensions.setdefault(CROP_STORE_EXTENSION, None)
