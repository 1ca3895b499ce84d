"""Redis clients with timeouts, so a stalled Redis fails a request fast instead of hanging it."""

from __future__ import annotations

import redis

from classroom_inference.settings import Settings


def _short_timeouts(url: str, settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=settings.redis_timeout_s,
        socket_timeout=settings.redis_timeout_s,
        health_check_interval=30,
    )


def redis_client(settings: Settings) -> redis.Redis:
    """A pooled client for the API: short connect/read timeouts, retried once on a broken socket."""
    return _short_timeouts(settings.redis_url, settings)


def worker_client(settings: Settings) -> redis.Redis:
    """A client for an RQ worker: RQ sets its own read timeout above its blocking dequeue wait."""
    return redis.Redis.from_url(settings.redis_url, socket_connect_timeout=settings.redis_timeout_s)


def crop_store_client(settings: Settings) -> redis.Redis:
    """A client of the crop store (CROP_STORE_URL), with the API's short timeouts."""
    return _short_timeouts(settings.crop_store_url, settings)
