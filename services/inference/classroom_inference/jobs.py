"""The RQ job `classroom_inference.queues.PREDICT_JOB`: predict one queued batch and store its results.

The crops are read from the crop store (CROP_STORE_URL, memory only); the results go to the main
Redis. The job is idempotent: a batch is stored only while its pending marker
(`keys.batch_pending`) exists, and the results commit in one transaction with the marker's
deletion, so a retry after a crash either redoes the whole batch or finds it stored and does
nothing. The crops are deleted right after that commit; a crash in between leaves them to expire
(CROPS_TTL_SECONDS), never to be stored twice. A batch whose crops are gone (the crop store
restarted, or the TTL passed) is still stored: presence and head pose, emotion None.
The same transaction checks the student's erasure tombstone: results of work queued before an
erasure are dropped. The predictor is the process's own (see `use_predictor`), never loaded per job.
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import redis
from classroom_contract import CROP_SIZE, EMOTIONS, ObservationResult, keys, store
from rq import get_current_job
from rq.job import Job

from classroom_inference import cropstore, metrics, redis_keys
from classroom_inference.connection import crop_store_client, worker_client
from classroom_inference.predictor import Predictor, build_predictor
from classroom_inference.settings import Settings

log = logging.getLogger(__name__)

#: How long a stored batch is remembered, so its own job (run later) knows it is not a loss.
DONE_MARKER_TTL_S = 600

#: The Redis list behind the inference queue (RQ's naming), where queued job ids wait.


#: Remove a job from the queue list and delete its hash, only if it was still waiting there (a job
#: that is running, failed or scheduled for a retry keeps its hash, so RQ's registries stay whole).
_WITHDRAW_QUEUED_JOB = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""

_predictor: Predictor | None = None
_settings: Settings | None = None
_crop_store: redis.Redis | None = None


def use_predictor(predictor: Predictor, settings: Settings) -> None:
    """Install the predictor (and settings) every job of this process will use."""
    global _predictor, _settings, _crop_store
    _predictor, _settings, _crop_store = predictor, settings, None


def _context() -> tuple[Predictor, Settings]:
    """The installed predictor, or one built now for a process that did not install one (plain `rq worker`)."""
    global _predictor, _settings
    if _settings is None:
        _settings = Settings()
    if _predictor is None:
        log.warning("no predictor installed in this process: loading one (run `classroom-worker` to load it once)")
        _predictor = build_predictor(_settings)
    return _predictor, _settings


def _crop_store_of(settings: Settings) -> redis.Redis:
    global _crop_store
    if _crop_store is None:
        _crop_store = crop_store_client(settings)
    return _crop_store


def _connection(settings: Settings) -> redis.Redis:
    job = get_current_job()
    return job.connection if job is not None else worker_client(settings)


def predict_batch(meta: dict) -> int:
    """Predict the crops of batch `meta["batch_id"]`, and of other queued batches; return results written.

    Many small batches (a classroom sends one or two crops per request) would each pay for a model
    call; instead this job takes up to COALESCE_MAX_BATCHES more batches from
    `keys.pending_batches()` and predicts them all in one call. Each batch commits separately and
    only if it is still pending (WATCH), so a batch predicted by two workers at once, or by a
    retried job, is stored exactly once. A batch taken here but never committed (the worker died)
    is still done by its own RQ job.
    """
    predictor, settings = _context()
    client = _connection(settings)
    batches = _still_pending(client, [meta, *_take_pending(client, meta["batch_id"], settings)])
    if not batches:
        _log_nothing_to_do(client, meta)
        return 0
    committed: set[str] = set()
    try:
        work = cropstore.load_crops(_crop_store_of(settings), batches)
        todo = [crop for m in batches for _, crop in work[m["batch_id"]] if crop is not None]
        probabilities = iter(_predict(predictor, _stack(todo), settings.max_model_batch) if todo else [])
        now, written = time.time(), 0
        for m in batches:
            observations = [(o, None if crop is None else next(probabilities)) for o, crop in work[m["batch_id"]]]
            own_job = m["batch_id"] == meta["batch_id"]
            written += _commit(client, m, observations, now, settings, own_job)
            committed.add(m["batch_id"])
    except Exception:
        _give_back(client, [m for m in batches if m["batch_id"] != meta["batch_id"] and m["batch_id"] not in committed])
        raise
    log.info(
        "batch %s: %d results (%d crops of %d batches in one model call)",
        meta["batch_id"],
        len(meta["observations"]),
        len(todo),
        len(batches),
    )
    return written


def _stack(crops: list[np.ndarray]) -> np.ndarray:
    return np.stack(crops).reshape(len(crops), CROP_SIZE, CROP_SIZE)


def _still_pending(client: redis.Redis, batches: list[dict]) -> list[dict]:
    """The batches not stored (nor erased) yet: their pending marker still exists."""
    pipe = client.pipeline(transaction=False)
    for m in batches:
        pipe.exists(keys.batch_pending(m["batch_id"]))
    return [m for m, pending in zip(batches, pipe.execute(), strict=True) if pending]


def _take_pending(client: redis.Redis, own_batch_id: str, settings: Settings) -> list[dict]:
    """Other queued batches' metadata, oldest first (this job's own entry is dropped when met)."""
    if settings.coalesce_max_batches <= 1:
        return []
    raw = client.lpop(keys.pending_batches(), settings.coalesce_max_batches) or []
    others = [json.loads(item) for item in raw]
    return [m for m in others if m["batch_id"] != own_batch_id]


def _give_back(client: redis.Redis, metas: list[dict]) -> None:
    """Return batches this job took but could not store to the front of the pending list.

    Without this they would wait for their own RQ job, which a retry puts at the back of the queue
    (the soak run measured 130-166 s for batches taken just as TF Serving went down). Best effort:
    if Redis itself is gone, their own jobs still do them.
    """
    if not metas:
        return
    try:
        client.lpush(keys.pending_batches(), *[json.dumps(m) for m in reversed(metas)])
        log.info("gave %d taken batches back to the pending list", len(metas))
    except redis.RedisError as exc:
        log.warning("could not give %d batches back (%s); their own jobs will do them", len(metas), exc)


def _log_nothing_to_do(client: redis.Redis, meta: dict) -> None:
    """A job whose batch is no longer pending: stored by another job, or its student was erased."""
    if client.exists(redis_keys.batch_done(meta["batch_id"])):
        log.debug("batch %s: already predicted with another batch", meta["batch_id"])
        return
    log.info("batch %s: nothing to do (stored earlier, or its student was erased)", meta["batch_id"])


def _predict(predictor: Predictor, crops: np.ndarray, max_batch: int) -> np.ndarray:
    started = time.perf_counter()
    parts = [predictor.predict(crops[i : i + max_batch]) for i in range(0, len(crops), max_batch)]
    metrics.PREDICT_SECONDS.observe(time.perf_counter() - started)
    metrics.CROPS_PREDICTED.inc(len(crops))
    return np.concatenate(parts)


def _result(meta: dict, o: dict, p, now: float) -> ObservationResult:
    """One observation's result; `p` None (its crop was lost) stores presence and head pose only."""
    return ObservationResult(
        observation_id=o["observation_id"],
        class_id=meta["class_id"],
        student_id=meta["student_id"],
        captured_at=o["captured_at"],
        processed_at=now,
        face_count=o["face_count"],
        emotion=None if p is None else EMOTIONS[int(np.argmax(p))],
        probabilities=None if p is None else [float(x) for x in p],
        head_yaw=o["head_yaw"],
        head_pitch=o["head_pitch"],
    )


def _commit(client, meta: dict, observations, now: float, settings: Settings, own_job: bool = True) -> int:
    """Store one batch's results and end its pending state, in one transaction, unless already done.

    Dropped instead when the student was erased after the batch was queued (tombstone changed).
    For another batch's work (not `own_job`) the same transaction also withdraws that batch's RQ
    job from the queue: left there, it would cost a worker a dequeue and a no-op run, and at a
    classroom's one-crop requests that per-job cost, not the model, would bound throughput (the
    soak run saw 17,000 such jobs queued). A job already taken by a worker is not in the list;
    it runs and finds the batch done. The crops are deleted after the commit (best effort).
    """
    batch_id = meta["batch_id"]
    pending = keys.batch_pending(batch_id)
    tombstone = keys.erasure_generation(meta["class_id"], meta["student_id"])
    results = [_result(meta, o, p, now) for o, p in observations]
    with client.pipeline(transaction=True) as pipe:
        try:
            pipe.watch(pending, tombstone)
            if not pipe.exists(pending):  # another worker stored this batch meanwhile, or it was erased
                return 0
            erased = int(pipe.get(tombstone) or 0) != int(meta.get("generation", 0))
            pipe.multi()
            if not erased:
                store.add_results(pipe, results, settings.result_retention_seconds)
                pipe.set(redis_keys.batch_done(batch_id), 1, ex=DONE_MARKER_TTL_S)
            pipe.delete(pending)
            pipe.srem(keys.student_batches(meta["class_id"], meta["student_id"]), batch_id)
            if not own_job:
                pipe.eval(_WITHDRAW_QUEUED_JOB, 2, keys.INFERENCE_QUEUE_KEY, Job.key_for(batch_id), batch_id)
            pipe.execute()
        except redis.WatchError:
            # redis-py raises WatchError for a connection lost while watching too: only a batch no
            # longer pending was stored (or erased) by someone else; otherwise fail so RQ retries it
            if client.exists(pending):
                raise
            log.info("batch %s: stored by another worker first", batch_id)
            return 0
    cropstore.drop_crops(_crop_store_of(settings), batch_id)
    if erased:
        log.info("batch %s: its student was erased after it was queued; results dropped", batch_id)
        return 0
    return len(results)
