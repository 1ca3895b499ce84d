"""Per-student request limit (by credential hash): a fixed one-minute window counted in Redis (shared by replicas).

A fixed window is one INCR per request and lets a burst of up to twice the limit straddle a
window edge; for protecting the queue from a misbehaving agent that is precise enough.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from classroom_inference import redis_keys

WINDOW_S = 60


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_s: int


def check(client: redis.Redis, credential_sha256: str, limit_per_minute: int, now: float | None = None) -> Verdict:
    """Count one request of a credential; refuse it when the window's count passes the limit (0 = no limit).

    Per student, not per class: one runaway or abusive agent exhausts only its own allowance."""
    if limit_per_minute <= 0:
        return Verdict(True, 0)
    now = time.time() if now is None else now
    window = int(now // WINDOW_S)
    key = redis_keys.rate_limit(credential_sha256, window)
    pipe = client.pipeline(transaction=True)
    pipe.incr(key)
    pipe.expire(key, WINDOW_S * 2)
    count, _ = pipe.execute()
    retry_after = max(1, int((window + 1) * WINDOW_S - now) + 1)
    return Verdict(count <= limit_per_minute, 0 if count <= limit_per_minute else retry_after)
