"""The RQ job `classroom_contract.keys.PREDICT_JOB`: predict one queued batch and store its results.

The job is idempotent: results and the deletion of the crops commit in one transaction, so a
retry after a crash either redoes the whole batch or finds the crops gone and does nothing.
The predictor is the process's own (see `use_predictor`), never loaded per job.
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import redis
from classroom_contract import CROP_SIZE, EMOTIONS, ObservationResult, keys, store
from rq import Queue, get_current_job
from rq.job import Job

from classroom_inference import metrics
from classroom_inference.connection import worker_client
from classroom_inference.predictor import Predictor, build_predictor
from classroom_inference.settings import Settings

log = logging.getLogger(__name__)

#: How long a stored batch is remembered, so its own job (run later) knows it is not a loss.
DONE_MARKER_TTL_S = 600

#: The Redis list behind the inference queue (RQ's naming), where queued job ids wait.
QUEUE_KEY = Queue.redis_queue_namespace_prefix + keys.INFERENCE_QUEUE

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


def use_predictor(predictor: Predictor, settings: Settings) -> None:
    """Install the predictor (and settings) every job of this process will use."""
    global _predictor, _settings
    _predictor, _settings = predictor, settings


def _context() -> tuple[Predictor, Settings]:
    """The installed predictor, or one built now for a process that did not install one (plain `rq worker`)."""
    global _predictor, _settings
    if _settings is None:
        _settings = Settings()
    if _predictor is None:
        log.warning("no predictor installed in this process: loading one (run `classroom-worker` to load it once)")
        _predictor = build_predictor(_settings)
    return _predictor, _settings


def _connection(settings: Settings) -> redis.Redis:
    job = get_current_job()
    return job.connection if job is not None else worker_client(settings)


def predict_batch(meta: dict) -> int:
    """Predict the crops of batch `meta["batch_id"]`, and of other queued batches; return results written.

    Many small batches (a classroom sends one or two crops per request) would each pay for a model
    call; instead this job takes up to COALESCE_MAX_BATCHES more batches from
    `keys.pending_batches()` and predicts them all in one call. Each batch commits separately and
    only if its crops are still there (WATCH), so a batch predicted by two workers at once, or
    by a retried job, is stored exactly once. A batch taken here but never committed (the worker
    died) is still done by its own RQ job.
    """
    predictor, settings = _context()
    client = _connection(settings)
    batches = [meta, *_take_pending(client, meta["batch_id"], settings)]
    work = _load_crops(client, batches)
    if not any(work.values()):
        _log_nothing_to_do(client, meta)
        return 0
    todo = [(m, o) for m in batches for o in work[m["batch_id"]]]
    crops = np.stack([crop for _, (_, crop) in todo]).reshape(len(todo), CROP_SIZE, CROP_SIZE)
    committed: set[str] = set()
    try:
        probabilities = _predict(predictor, crops, settings.max_model_batch)
        now, written, offset = time.time(), 0, 0
        for m in batches:
            observations = work[m["batch_id"]]
            if observations:
                batch_probabilities = probabilities[offset : offset + len(observations)]
                offset += len(observations)
                own_job = m["batch_id"] == meta["batch_id"]
                written += _commit(client, m, observations, batch_probabilities, now, settings, own_job)
                committed.add(m["batch_id"])
    except Exception:
        _give_back(client, [m for m in batches[1:] if m["batch_id"] not in committed and work[m["batch_id"]]])
        raise
    own = len(work[meta["batch_id"]])
    log.info(
        "batch %s: %d results (%d crops of %d batches in one model call)",
        meta["batch_id"],
        own,
        len(todo),
        sum(1 for v in work.values() if v),
    )
    return written


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


def _load_crops(client: redis.Redis, batches: list[dict]) -> dict[str, list[tuple[dict, np.ndarray]]]:
    """batch id -> [(observation, crop pixels)] for the crops still parked (empty: done or expired)."""
    pipe = client.pipeline(transaction=False)
    for m in batches:
        pipe.hgetall(keys.crops(m["batch_id"]))
    work = {}
    for m, stored in zip(batches, pipe.execute(), strict=True):
        stored = {k.decode(): v for k, v in stored.items()}
        todo = [(o, stored[o["observation_id"]]) for o in m["observations"] if o["observation_id"] in stored]
        if stored and len(todo) < len(m["observations"]):
            log.warning("batch %s: %d crops missing", m["batch_id"], len(m["observations"]) - len(todo))
            metrics.CROPS_MISSING.inc(len(m["observations"]) - len(todo))
        work[m["batch_id"]] = [(o, np.frombuffer(crop, np.uint8)) for o, crop in todo]
    return work


def _log_nothing_to_do(client: redis.Redis, meta: dict) -> None:
    """A job whose crops are gone: normal when another job predicted them, a loss when they expired."""
    if client.exists(keys.batch_done(meta["batch_id"])):
        log.debug("batch %s: already predicted with another batch", meta["batch_id"])
        return
    log.warning("batch %s: no crops (already predicted, or expired before a worker got to it)", meta["batch_id"])
    metrics.CROPS_MISSING.inc(len(meta["observations"]))


def _predict(predictor: Predictor, crops: np.ndarray, max_batch: int) -> np.ndarray:
    started = time.perf_counter()
    parts = [predictor.predict(crops[i : i + max_batch]) for i in range(0, len(crops), max_batch)]
    metrics.PREDICT_SECONDS.observe(time.perf_counter() - started)
    metrics.CROPS_PREDICTED.inc(len(crops))
    return np.concatenate(parts)


def _commit(
    client, meta: dict, observations, probabilities, now: float, settings: Settings, own_job: bool = True
) -> int:
    """Store one batch's results and delete its crops, in one transaction, unless already done.

    For another batch's work (not `own_job`) the same transaction also withdraws that batch's RQ
    job from the queue: left there, it would cost a worker a dequeue and a no-op run, and at a
    classroom's one-crop requests that per-job cost, not the model, would bound throughput (the
    soak run saw 17,000 such jobs queued). A job already taken by a worker is not in the list;
    it runs and finds the batch done.
    """
    crops_key = keys.crops(meta["batch_id"])
    results = [
        ObservationResult(
            observation_id=o["observation_id"],
            class_id=meta["class_id"],
            student_id=meta["student_id"],
            captured_at=o["captured_at"],
            processed_at=now,
            face_count=o["face_count"],
            emotion=EMOTIONS[int(np.argmax(p))],
            probabilities=[float(x) for x in p],
            head_yaw=o["head_yaw"],
            head_pitch=o["head_pitch"],
        )
        for (o, _), p in zip(observations, probabilities, strict=True)
    ]
    with client.pipeline(transaction=True) as pipe:
        try:
            pipe.watch(crops_key)
            if not pipe.exists(crops_key):  # another worker stored this batch meanwhile
                return 0
            pipe.multi()
            store.add_results(pipe, results, settings.result_retention_seconds)
            pipe.delete(crops_key)
            pipe.set(keys.batch_done(meta["batch_id"]), 1, ex=DONE_MARKER_TTL_S)
            if not own_job:
                pipe.eval(_WITHDRAW_QUEUED_JOB, 2, QUEUE_KEY, Job.key_for(meta["batch_id"]), meta["batch_id"])
            pipe.execute()
        except redis.WatchError:
            # redis-py raises WatchError for a connection lost while watching too: only a batch whose
            # crops are gone was stored by another worker; otherwise fail the job so RQ retries it
            if client.exists(crops_key):
                raise
            log.info("batch %s: stored by another worker first", meta["batch_id"])
            return 0
    return len(results)
