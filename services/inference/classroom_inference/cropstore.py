"""The start-up check that the crop store (CROP_STORE_URL) keeps crops in memory only.

Crops are faces: the README promises none is ever written to disk. The main Redis persists (AOF
and RDB, rightly, for accounts and results), so crops live in a second Redis whose persistence is
off (`--save "" --appendonly no`, on tmpfs in containers). A misconfigured crop store would break
that promise silently, so the API and the workers refuse to start against one that persists,
unless CROP_STORE_ALLOW_PERSISTENCE=1 says the operator accepts it (a throwaway setup).
"""

from __future__ import annotations

import logging
import time

import redis

from classroom_inference.connection import crop_store_client
from classroom_inference.settings import Settings

log = logging.getLogger(__name__)


class CropStorePersists(RuntimeError):
    """The crop store writes to disk; the message says what and how to fix it."""


def persistence(client: redis.Redis) -> list[str]:
    """What makes this Redis write its data to disk (empty: nothing does).

    CONFIG GET where allowed; where CONFIG is disabled (managed Redis, renamed command) INFO can
    show AOF but not the RDB save schedule, so that case counts as persisting too.
    """
    try:
        config = {**client.config_get("save"), **client.config_get("appendonly")}
    except redis.ResponseError:
        info = client.info("persistence")
        reasons = ["CONFIG GET is not allowed, so the RDB `save` schedule cannot be checked"]
        if int(info.get("aof_enabled", 0)):
            reasons.append("appendonly is yes")
        return reasons
    reasons = []
    save = config.get("save", config.get(b"save", ""))
    save = save.decode() if isinstance(save, bytes) else save
    appendonly = config.get("appendonly", config.get(b"appendonly", "no"))
    appendonly = appendonly.decode() if isinstance(appendonly, bytes) else appendonly
    if save and save.strip():
        reasons.append(f'RDB snapshots are on (save "{save}")')
    if appendonly.strip().lower() == "yes":
        reasons.append("appendonly is yes")
    return reasons


def check_crop_store(settings: Settings, client: redis.Redis | None = None, wait_s: float = 60.0) -> None:
    """Wait up to `wait_s` for the crop store to answer; raise CropStorePersists if it writes to disk."""
    client = client or crop_store_client(settings)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            reasons = persistence(client)
            break
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("waiting for the crop store at CROP_STORE_URL (%s)", exc)
            time.sleep(2)
    if not reasons:
        return
    message = (
        "the crop store (CROP_STORE_URL) writes to disk: " + "; ".join(reasons) + ". Crops are faces and must "
        'only ever be in memory: run it with `--save "" --appendonly no` (on tmpfs in containers), or set '
        "CROP_STORE_ALLOW_PERSISTENCE=1 to start anyway (throwaway setups only)."
    )
    if settings.crop_store_allow_persistence:
        log.warning("%s Starting anyway: CROP_STORE_ALLOW_PERSISTENCE is set.", message)
        return
    raise CropStorePersists(message)
