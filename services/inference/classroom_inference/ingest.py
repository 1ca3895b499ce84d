"""Accepting a batch: dedup by observation id, park the crops, queue one job, all in one transaction.

The crops go to the crop store (a second Redis that never writes to disk), everything else to the
main Redis. The seen-markers, the batch's pending marker, the RQ job and the absence results
commit together in the main Redis (WATCH on the seen keys and the student's erasure tombstone,
then MULTI/EXEC); the crops are parked in the crop store just BEFORE that commit, with a TTL:
- a crash before parking or between parking and EXEC: nothing is committed, so the agent's
  resend is processed as new (under a new batch id); the parked crops are orphans nobody
  references and expire after CROPS_TTL_SECONDS (they are only ever in memory);
- a crash after EXEC leaves everything: the resend finds every id seen and is counted duplicate;
- two concurrent sends of the same id: the second EXEC fails on the WATCH, re-reads, re-parks
  only the crops still new and counts the rest as duplicates;
- the crop store down: 503 before anything is committed, the agent resends later;
- the crop store restarted after EXEC (crops gone): the worker stores the batch without emotion.
An observation is never lost nor counted twice.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass

import redis
from classroom_contract import ObservationBatch, ObservationResult, keys, store
from rq import Queue

from classroom_inference import cropstore, redis_keys
from classroom_inference.queues import enqueue_predict
from classroom_inference.settings import Settings

log = logging.getLogger(__name__)

#: Optimistic-lock retries; each failure means another request just claimed some of the same ids.
MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class Outcome:
    accepted: int
    duplicates: int
    batch_id: str | None  # the queued job's id; None when nothing needed the model


#: A batch's pending marker and its student's batch set outlive its job (failed jobs: 7 days).
PENDING_TTL_S = 8 * 24 * 3600


def _job_meta(batch_id: str, class_id: str, student_id: str, faces, generation: int) -> dict:
    """What the predict job needs besides the crops: no pixels, only ids, times and head pose.

    `generation` is the student's erasure tombstone as read at ingest: a worker drops the results
    if the student was erased since.
    """
    return {
        "batch_id": batch_id,
        "class_id": class_id,
        "student_id": student_id,
        "generation": generation,
        "observations": [
            {
                "observation_id": str(o.observation_id),
                "captured_at": o.captured_at,
                "face_count": o.face_count,
                "head_yaw": o.head_yaw,
                "head_pitch": o.head_pitch,
            }
            for o in faces
        ],
    }


def _direct_results(class_id: str, student_id: str, observations) -> list[ObservationResult]:
    """Results that need no model: absences, and every observation in attention-only mode.

    They carry presence and head pose only (emotion None); in attention-only mode the crop is
    dropped here, unread, so no emotion is ever inferred (EU AI Act Art. 5(1)(f)).
    """
    now = time.time()
    return [
        ObservationResult(
            observation_id=str(o.observation_id),
            class_id=class_id,
            student_id=student_id,
            captured_at=o.captured_at,
            processed_at=now,
            face_count=o.face_count,
            head_yaw=o.head_yaw,
            head_pitch=o.head_pitch,
        )
        for o in observations
    ]


def ingest(
    client: redis.Redis,
    queue: Queue,
    class_id: str,
    student_id: str,
    batch: ObservationBatch,
    settings: Settings,
    crop_store: redis.Redis,
) -> Outcome:
    """Store what is new in `batch` (of `student_id`, taken from the credential) and queue its faces;
    report new vs already-seen counts. Ids are deduplicated per student (redis_keys.seen).

    `client` is the main Redis, `crop_store` the crop store (CROP_STORE_URL): crops go only there.
    """
    unique = list({str(o.observation_id): o for o in reversed(batch.observations)}.values())[::-1]
    in_request_duplicates = len(batch.observations) - len(unique)
    seen_keys = [redis_keys.seen(class_id, student_id, str(o.observation_id)) for o in unique]
    tombstone = keys.erasure_generation(class_id, student_id)
    batch_id = uuid.uuid4().hex
    parked = False
    with client.pipeline(transaction=True) as pipe:
        for _ in range(MAX_ATTEMPTS):
            try:
                pipe.watch(tombstone, *seen_keys)
                flags = pipe.mget(seen_keys)
                generation = int(pipe.get(tombstone) or 0)
                new = [o for o, flag in zip(unique, flags, strict=True) if flag is None]
                faces = [o for o in new if o.face_count > 0 and not settings.attention_only]
                direct = [o for o in new if o.face_count == 0 or settings.attention_only]
                if faces:  # before the commit: a job must never exist without its crops parked
                    cropstore.park_crops(crop_store, batch_id, faces, settings.crops_ttl_seconds)
                    parked = True
                pipe.multi()
                for o in new:
                    pipe.set(
                        redis_keys.seen(class_id, student_id, str(o.observation_id)),
                        batch_id,
                        ex=settings.dedup_ttl_seconds,
                    )
                if faces:
                    _queue_job(pipe, queue, _job_meta(batch_id, class_id, student_id, faces, generation), settings)
                if direct:
                    results = _direct_results(class_id, student_id, direct)
                    store.add_results(pipe, results, settings.result_retention_seconds)
                if new:
                    pipe.execute()
                else:
                    pipe.reset()
                break
            except redis.WatchError:
                log.info("observation ids of batch %s claimed concurrently, re-checking", batch_id)
                continue
        else:
            if parked:
                cropstore.drop_crops(crop_store, batch_id)
            raise RuntimeError(f"could not commit batch {batch_id} after {MAX_ATTEMPTS} attempts")
    if parked and not faces:  # parked on an earlier try, then every face turned out a duplicate
        cropstore.drop_crops(crop_store, batch_id)
    duplicates = in_request_duplicates + len(unique) - len(new)
    log.debug("batch %s of %s/%s: %d new, %d duplicate", batch_id, class_id, student_id, len(new), duplicates)
    return Outcome(len(new), duplicates, batch_id if faces else None)


def _queue_job(pipe, queue: Queue, meta: dict, settings: Settings) -> None:
    """The batch's pending marker, its entry in the student's batch set, its RQ job (and coalescing entry)."""
    batch_id = meta["batch_id"]
    student_batches = keys.student_batches(meta["class_id"], meta["student_id"])
    pipe.set(keys.batch_pending(batch_id), 1, ex=PENDING_TTL_S)
    pipe.sadd(student_batches, batch_id)
    pipe.expire(student_batches, PENDING_TTL_S)
    enqueue_predict(queue, pipe, batch_id, meta, settings)
    if settings.coalesce_max_batches > 1:
        pipe.rpush(keys.pending_batches(), json.dumps(meta))
        pipe.expire(keys.pending_batches(), settings.crops_ttl_seconds)
