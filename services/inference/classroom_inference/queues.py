"""The inference queue and how a predict job is enqueued: options chosen once, used by the API.

- `result_ttl=0`: a finished job is deleted at once; jobs carry metadata only, crops live in
  `keys.crops(batch_id)` and are deleted by the job, so nothing about a face lingers.
- `job_id = batch_id`: the job and its crops share one id, which makes both easy to trace.
- `Retry`: a job that raises, or whose worker died (RQ marks it abandoned once its started-registry
  entry expires), is tried again after each of JOB_RETRY_INTERVALS; after the last it stays in
  the failed registry, where `classroom-jobs` lists and requeues it.
"""

from __future__ import annotations

from typing import Any

from classroom_contract import keys
from redis import Redis
from rq import Queue, Retry

from classroom_inference.settings import Settings

#: Dotted path of the RQ job function (`classroom_inference.jobs.predict_batch`): the API enqueues by
#: name, so it never imports the job's module and its TensorFlow.
PREDICT_JOB = "classroom_inference.jobs.predict_batch"
#: Failed jobs (metadata only) are kept a week for inspection and requeueing.
FAILURE_TTL_S = 7 * 24 * 3600


def inference_queue(connection: Redis) -> Queue:
    return Queue(keys.INFERENCE_QUEUE, connection=connection)


def retry_policy(settings: Settings) -> Retry | None:
    intervals = list(settings.job_retry_intervals)
    return Retry(max=len(intervals), interval=intervals) if intervals else None


def enqueue_predict(queue: Queue, pipeline, batch_id: str, meta: dict[str, Any], settings: Settings) -> None:
    """Add the predict job for one batch to `pipeline` (a MULTI the caller executes)."""
    queue.enqueue_call(
        PREDICT_JOB,
        kwargs={"meta": meta},
        job_id=batch_id,
        timeout=settings.job_timeout_s,
        result_ttl=0,
        failure_ttl=FAILURE_TTL_S,
        retry=retry_policy(settings),
        description=f"predict {len(meta['observations'])} crops of {meta['class_id']}/{meta['student_id']}",
        pipeline=pipeline,
    )
