"""The crop store (CROP_STORE_URL): where a crop is parked, read and deleted, and the start-up check
that it keeps crops in memory only.

A crop lives only here, only until its batch is predicted: the API parks it (`park_crops`) before it
commits the job, a worker reads it (`load_crops`) and deletes it once the results are stored
(`drop_crops`); the API also deletes what it parked for a batch it could not commit. Erasing a
student deletes their queued crops too (`classroom_contract.erasure`, also used by the dashboard);
whatever is left expires after CROPS_TTL_SECONDS.

Crops are faces: the README promises none is ever written to disk. The main Redis persists (AOF
and RDB, rightly, for accounts and results), so crops live in a second Redis whose persistence is
off (`--save "" --appendonly no`, on tmpfs in containers). A misconfigured crop store would break
that promise silently, so the API and the workers refuse to start against one that persists,
unless CROP_STORE_ALLOW_PERSISTENCE=1 says the operator accepts it (a throwaway setup).
"""

from __future__ import annotations

import logging
import time

import numpy as np
import redis
from classroom_contract import decode_crop, keys

from classroom_inference import metrics
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


def park_crops(crop_store: redis.Redis, batch_id: str, faces, ttl_seconds: int) -> None:
    """Put a batch's crops in the crop store (replacing any earlier try of the same batch), with a TTL."""
    crops_key = keys.crops(batch_id)
    with crop_store.pipeline(transaction=True) as pipe:
        pipe.delete(crops_key)
        pipe.hset(crops_key, mapping={str(o.observation_id): decode_crop(o.crop) for o in faces})
        pipe.expire(crops_key, ttl_seconds)
        pipe.execute()


def load_crops(crop_store: redis.Redis, batches: list[dict]) -> dict[str, list[tuple[dict, np.ndarray | None]]]:
    """batch id -> [(observation, crop pixels or None when the crop store no longer has it)].

    A crop store that cannot be reached raises (RQ retries the job: the crops may still be there);
    one that answers without the crops (restarted, or the TTL passed) means they are gone for good.
    """
    pipe = crop_store.pipeline(transaction=False)
    for m in batches:
        pipe.hgetall(keys.crops(m["batch_id"]))
    work = {}
    for m, stored in zip(batches, pipe.execute(), strict=True):
        stored = {k.decode(): v for k, v in stored.items()}
        work[m["batch_id"]] = [
            (o, np.frombuffer(stored[o["observation_id"]], np.uint8) if o["observation_id"] in stored else None)
            for o in m["observations"]
        ]
        missing = sum(1 for o in m["observations"] if o["observation_id"] not in stored)
        if missing:
            log.warning("batch %s: %d crops gone from the crop store; stored without emotion", m["batch_id"], missing)
            metrics.CROPS_MISSING.inc(missing)
    return work


def drop_crops(crop_store: redis.Redis, batch_id: str) -> None:
    """Delete a batch's crops (predicted, or never committed); if the crop store cannot be reached
    they expire on their own after CROPS_TTL_SECONDS."""
    try:
        crop_store.delete(keys.crops(batch_id))
    except redis.RedisError as exc:
        log.warning("batch %s: crops not deleted (%s); they expire after CROPS_TTL_SECONDS", batch_id, exc)
