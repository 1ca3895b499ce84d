"""How the ingest API authenticates: a student's own bearer credential, and their rate limit.

The credential is the only source of the class and the student (never the request body); Redis
holds only its SHA-256 (`classroom_contract.store.student_for_credential`).
"""

from __future__ import annotations

import redis
from classroom_contract import store
from classroom_contract.tokens import credential_sha256
from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from classroom_inference import ratelimit
from classroom_inference.api.deps import get_redis, get_settings
from classroom_inference.settings import Settings

bearer = HTTPBearer(
    auto_error=False,
    description="The student's own credential (16 characters, dashes optional) from the teacher's roster.",
)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def student(
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    client: redis.Redis = Depends(get_redis),
    settings: Settings = Depends(get_settings),
) -> store.Enrolment:
    """Class and student of the presented credential: the only source of either (never the body).

    401 when missing, malformed, unknown or revoked; 429 when this student is over their rate limit.
    """
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise _unauthorized("missing bearer credential")
    digest = credential_sha256(credentials.credentials)
    found = None if digest is None else store.student_for_credential(client, credentials.credentials)
    if found is None:
        raise _unauthorized("unknown or revoked student credential")
    verdict = ratelimit.check(client, digest, settings.rate_limit_per_minute)
    if not verdict.allowed:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"over {settings.rate_limit_per_minute} requests per minute for this student",
            headers={"Retry-After": str(verdict.retry_after_s)},
        )
    return found
