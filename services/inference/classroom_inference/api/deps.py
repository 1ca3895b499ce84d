"""Request dependencies: settings, Redis, the queue, and the class a bearer token belongs to."""

from __future__ import annotations

import redis
from classroom_contract import store
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from rq import Queue

from classroom_inference import ratelimit
from classroom_inference.settings import Settings

bearer = HTTPBearer(auto_error=False, description="The class token a teacher gave the agents.")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_redis(request: Request) -> redis.Redis:
    return request.app.state.redis


def get_crop_store(request: Request) -> redis.Redis:
    """The crop store (CROP_STORE_URL): the only place crops are kept, in memory."""
    return request.app.state.crop_store


def get_queue(request: Request) -> Queue:
    return request.app.state.queue


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def class_id(
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    client: redis.Redis = Depends(get_redis),
    settings: Settings = Depends(get_settings),
) -> str:
    """The class of the presented token; 401 when missing or unknown, 429 when over its rate limit."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise _unauthorized("missing bearer token")
    found = store.class_for_token(client, credentials.credentials)
    if found is None:
        raise _unauthorized("unknown or revoked class token")
    verdict = ratelimit.check(client, credentials.credentials, settings.rate_limit_per_minute)
    if not verdict.allowed:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"over {settings.rate_limit_per_minute} requests per minute for this class token",
            headers={"Retry-After": str(verdict.retry_after_s)},
        )
    return found
