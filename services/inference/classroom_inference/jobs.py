"""The RQ job `classroom_contract.keys.PREDICT_JOB`: predict one queued batch and store its results.

The job is idempotent: results and the deletion of the crops commit in one transaction, so a
retry after a crash either redoes the whole batch or finds the crops gone and does nothing.
The predictor is the process's own (see `use_predictor`), never loaded per job.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import redis
from classroom_contract import CROP_SIZE, EMOTIONS, ObservationResult, keys, store
from rq import get_current_job

from classroom_inference import metrics
from classroom_inference.connection import worker_client
from classroom_inference.predictor import Predictor, build_predictor
from classroom_inference.settings import Settings

log = logging.getLogger(__name__)

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
    """Predict the crops of batch `meta["batch_id"]`; return how many results were written."""
    predictor, settings = _context()
    client = _connection(settings)
    crops_key = keys.crops(meta["batch_id"])
    stored = client.hgetall(crops_key)
    if not stored:
        log.warning("batch %s: no crops (already predicted, or expired before a worker got to it)", meta["batch_id"])
        metrics.CROPS_MISSING.inc(len(meta["observations"]))
        return 0
    stored = {k.decode(): v for k, v in stored.items()}
    todo = [o for o in meta["observations"] if o["observation_id"] in stored]
    if len(todo) < len(meta["observations"]):
        log.warning("batch %s: %d crops missing", meta["batch_id"], len(meta["observations"]) - len(todo))
        metrics.CROPS_MISSING.inc(len(meta["observations"]) - len(todo))
    if not todo:
        client.delete(crops_key)
        return 0
    crops = np.stack([np.frombuffer(stored[o["observation_id"]], np.uint8) for o in todo])
    crops = crops.reshape(len(todo), CROP_SIZE, CROP_SIZE)

    started = time.perf_counter()
    probabilities = predictor.predict(crops)
    metrics.PREDICT_SECONDS.observe(time.perf_counter() - started)
    metrics.CROPS_PREDICTED.inc(len(todo))

    now = time.time()
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
        for o, p in zip(todo, probabilities, strict=True)
    ]
    pipe = client.pipeline(transaction=True)
    store.add_results(pipe, results, settings.result_retention_seconds)
    pipe.delete(crops_key)
    pipe.execute()
    log.info("batch %s: %d results for %s/%s", meta["batch_id"], len(results), meta["class_id"], meta["student_id"])
    return len(results)
