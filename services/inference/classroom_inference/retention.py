"""The periodic retention sweep, run by the inference workers (every deployment has them).

Writes trim each class they touch (`classroom_contract.store.add_results`), but a class nobody
writes to any more - the course ended, a student left - would keep its latest tiles, student set
and stream forever. Every worker calls `maybe_sweep` from RQ's maintenance step (every
MAINTENANCE_INTERVAL_S); a Redis lock lets one of them sweep per RETENTION_SWEEP_INTERVAL_S.
"""

from __future__ import annotations

import logging

import redis
from classroom_contract import store

from classroom_inference import redis_keys
from classroom_inference.settings import Settings

log = logging.getLogger(__name__)


def maybe_sweep(client: redis.Redis, settings: Settings) -> int | None:
    """Sweep every class to the retention window unless another worker did recently; entries removed."""
    try:
        if not client.set(redis_keys.retention_sweep_lock(), 1, nx=True, ex=settings.retention_sweep_interval_s):
            return None
        removed = store.sweep_retention(client, settings.result_retention_seconds)
    except redis.RedisError as exc:
        log.warning("retention sweep skipped: %s", exc)
        return None
    if removed:
        log.info("retention sweep: %d expired entries removed", removed)
    return removed
