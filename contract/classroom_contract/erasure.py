"""Erasing one student: the one function the dashboard (and any admin tool) calls.

`erase_student` removes every record about a student of a class, wherever it is:
- results: the time series, the class's latest-result entry, the student set, the live stream;
- work not done yet: the queued batches' pending markers, their RQ jobs (queue list, job hash,
  every registry including the failed one, stored results and executions), their entries in the
  coalescing list, and their crops in the crop store;
- and it leaves a tombstone (`keys.erasure_generation`, incremented) in the same transaction that
  deletes the results: every job carries the generation read when its batch was accepted, and a
  worker stores a batch only if that generation is still current AND the batch's pending marker
  still exists, checked atomically with the write (WATCH + MULTI). A job already running when
  the erasure happens therefore stores nothing, and leaves (result_ttl=0) without trace.

Not erased, because they say nothing about the student: the per-observation `seen` markers
(an observation id -> an opaque batch id, for duplicate detection; they expire after
DEDUP_TTL_SECONDS). Like `store`, this module needs no Redis import (the capture agent installs
the contract too); RQ's key names are spelled out below (RQ 2.x, tested against the real RQ).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from classroom_contract import keys, store

#: The tombstone outlives any job of work queued before the erasure: failed jobs are kept 7 days.
TOMBSTONE_TTL_S = 8 * 24 * 3600

#: RQ's keys for the inference queue and its jobs (rq.Queue / rq.job.Job / rq.registry naming).
RQ_REGISTRIES = tuple(
    f"rq:{kind}:{keys.INFERENCE_QUEUE}" for kind in ("failed", "scheduled", "deferred", "canceled", "finished")
)


def rq_job_keys(job_id: str) -> tuple[str, ...]:
    """A job's hash, its stored results (failure tracebacks) and its execution records."""
    return (f"rq:job:{job_id}", f"rq:results:{job_id}", f"rq:executions:{job_id}")


@dataclass(frozen=True)
class Erasure:
    """What an erasure removed (for the audit log): counts only, never the data."""

    class_id: str
    student_id: str
    generation: int
    batches: int
    stream_entries: int
    crops_deleted: int


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def erase_student(client, crop_store, class_id: str, student_id: str) -> Erasure:
    """Erase everything about `student_id` of `class_id`; results of work queued before are dropped.

    `client` is the main Redis, `crop_store` the crop store (None: queued crops are left to expire
    after CROPS_TTL_SECONDS; nothing can read them any more, their jobs are gone). Safe to call
    while agents keep sending: observations accepted after the erasure are new data and are kept.
    """
    batches_key = keys.student_batches(class_id, student_id)
    tombstone = keys.erasure_generation(class_id, student_id)
    pipe = client.pipeline(transaction=True)
    pipe.incr(tombstone)
    pipe.expire(tombstone, TOMBSTONE_TTL_S)
    pipe.smembers(batches_key)
    pipe.delete(batches_key)
    pipe.delete(keys.student_series(class_id, student_id))
    pipe.hdel(keys.class_latest(class_id), student_id)
    pipe.srem(keys.class_students(class_id), student_id)
    generation, _, members, *_ = pipe.execute()
    batch_ids = sorted(_text(b) for b in members)
    _erase_jobs(client, batch_ids)
    _erase_pending_list(client, class_id, student_id)
    crops = crop_store.delete(*[keys.crops(b) for b in batch_ids]) if crop_store is not None and batch_ids else 0
    stream_entries = erase_stream_entries(client, class_id, student_id)
    return Erasure(class_id, student_id, int(generation), len(batch_ids), stream_entries, int(crops))


def _erase_jobs(client, batch_ids: list[str]) -> None:
    """Each batch's pending marker and RQ job (job id = batch id), wherever RQ keeps it.

    A job a worker is running right now keeps its hash until it ends: it finds its batch's pending
    marker gone, stores nothing and is deleted by RQ (result_ttl=0).
    """
    if not batch_ids:
        return
    pipe = client.pipeline(transaction=False)
    for batch_id in batch_ids:
        pipe.delete(keys.batch_pending(batch_id))
        pipe.lrem(keys.INFERENCE_QUEUE_KEY, 0, batch_id)
        for registry in RQ_REGISTRIES:
            pipe.zrem(registry, batch_id)
    pipe.execute()
    running = set()
    for batch_id in batch_ids:
        if client.zscore(f"rq:wip:{keys.INFERENCE_QUEUE}", batch_id) is not None:
            running.add(batch_id)
    doomed = [key for batch_id in batch_ids if batch_id not in running for key in rq_job_keys(batch_id)]
    if doomed:
        client.delete(*doomed)


def _erase_pending_list(client, class_id: str, student_id: str) -> None:
    """The student's entries in the coalescing list (job metadata: ids, times, head pose)."""
    for raw in client.lrange(keys.pending_batches(), 0, -1):
        try:
            meta = json.loads(raw)
        except ValueError:
            continue
        if meta.get("class_id") == class_id and meta.get("student_id") == student_id:
            client.lrem(keys.pending_batches(), 0, raw)


def erase_stream_entries(client, class_id: str, student_id: str) -> int:
    """The live stream also holds recent results; drop this student's entries from it."""
    stream, start, removed = keys.class_events(class_id), "-", 0
    while True:
        batch = client.xrange(stream, min=start, max="+", count=1000)
        doomed = [entry_id for entry_id, fields in batch if store.event_student(fields) == student_id]
        if doomed:
            removed += client.xdel(stream, *doomed)
        if len(batch) < 1000:
            return removed
        start = "(" + _text(batch[-1][0])
