"""Accepting a batch: dedup by observation id, park the crops, queue one job, all in one transaction.

The seen-markers, the crops, the RQ job and the absence results commit together (WATCH on the
seen keys, then MULTI/EXEC), so:
- a crash before EXEC leaves nothing: the agent's resend is processed as new;
- a crash after EXEC leaves everything: the resend finds every id seen and is counted duplicate;
- two concurrent sends of the same id: the second EXEC fails on the WATCH, re-reads, and
  counts it as a duplicate. An observation is never lost nor counted twice.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass

import redis
from classroom_contract import ObservationBatch, ObservationResult, decode_crop, keys, store
from rq import Queue

from classroom_inference.queues import enqueue_predict
from classroom_inference.settings import Settings

log = logging.getLogger(__name__)

#: Optimistic-lock retries; each failure means another request just claimed some of the same ids.
MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class Outcome:
    accepted: int
    duplicates: int
    faces: int
    direct: int  # stored without the model: absences, or everything in attention-only mode
    batch_id: str | None


def _job_meta(batch_id: str, class_id: str, student_id: str, faces) -> dict:
    """What the predict job needs besides the crops: no pixels, only ids, times and head pose."""
    return {
        "batch_id": batch_id,
        "class_id": class_id,
        "student_id": student_id,
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
    client: redis.Redis, queue: Queue, class_id: str, student_id: str, batch: ObservationBatch, settings: Settings
) -> Outcome:
    """Store what is new in `batch` (of `student_id`, taken from the credential) and queue its faces;
    report new vs already-seen counts. Ids are deduplicated per student (keys.seen)."""
    unique = list({str(o.observation_id): o for o in reversed(batch.observations)}.values())[::-1]
    in_request_duplicates = len(batch.observations) - len(unique)
    seen_keys = [keys.seen(class_id, student_id, str(o.observation_id)) for o in unique]
    batch_id = uuid.uuid4().hex
    with client.pipeline(transaction=True) as pipe:
        for _ in range(MAX_ATTEMPTS):
            try:
                pipe.watch(*seen_keys)
                flags = pipe.mget(seen_keys)
                new = [o for o, flag in zip(unique, flags, strict=True) if flag is None]
                faces = [o for o in new if o.face_count > 0 and not settings.attention_only]
                direct = [o for o in new if o.face_count == 0 or settings.attention_only]
                pipe.multi()
                for o in new:
                    pipe.set(
                        keys.seen(class_id, student_id, str(o.observation_id)), batch_id, ex=settings.dedup_ttl_seconds
                    )
                if faces:
                    crops_key = keys.crops(batch_id)
                    pipe.hset(crops_key, mapping={str(o.observation_id): decode_crop(o.crop) for o in faces})
                    pipe.expire(crops_key, settings.crops_ttl_seconds)
                    meta = _job_meta(batch_id, class_id, student_id, faces)
                    enqueue_predict(queue, pipe, batch_id, meta, settings)
                    if settings.coalesce_max_batches > 1:
                        pipe.rpush(keys.pending_batches(), json.dumps(meta))
                        pipe.expire(keys.pending_batches(), settings.crops_ttl_seconds)
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
            raise RuntimeError(f"could not commit batch {batch_id} after {MAX_ATTEMPTS} attempts")
    duplicates = in_request_duplicates + len(unique) - len(new)
    log.debug("batch %s of %s/%s: %d new, %d duplicate", batch_id, class_id, student_id, len(new), duplicates)
    return Outcome(len(new), duplicates, len(faces), len(direct), batch_id if faces else None)
