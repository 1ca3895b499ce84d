"""Request dependencies: the settings, Redis, the crop store and the queue the app was started with.

Who the caller is (the student a bearer credential belongs to) is in `auth.py`.
"""

from __future__ import annotations

import redis
from fastapi import Request
from rq import Queue

from classroom_inference.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_redis(request: Request) -> redis.Redis:
    return request.app.state.redis


def get_crop_store(request: Request) -> redis.Redis:
    """The crop store (CROP_STORE_URL): the only place crops are kept, in memory."""
    return request.app.state.crop_store


def get_queue(request: Request) -> Queue:
    return request.app.state.queue
