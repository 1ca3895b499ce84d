"""Issue #14, finding 2: erasing a student removes everything, and nothing comes back afterwards.

Real processes: the session's Redis and crop store, `classroom-api`, later a `classroom-worker`.
A student's batches wait in every place work can wait - queued (RQ job, coalescing list, crops in
the crop store) and failed (RQ's failed registry, with its traceback) - next to results already
stored (series, latest, students set, live stream). Then `erase_student`, the one function the
dashboard calls. Then the worker runs the whole queue: the erased student must not come back
anywhere (series, latest, CSV rows, students set, stream, crops, jobs), while a classmate's data
is untouched and the student's own observations sent after the erasure are kept.
"""

from __future__ import annotations

import json
import secrets

import pytest
import redis
from classroom_contract import keys, store
from classroom_contract.erasure import erase_student
from classroom_dashboard import records
from classroom_inference import jobs, redis_keys
from classroom_inference.predictor import TFServingPredictor
from classroom_inference.queues import inference_queue
from classroom_inference.settings import Settings
from rq import SimpleWorker

from tests.support.inference import Api, Worker, crops_left, fer_faces, observation, post
from tests.support.procs import free_port, wait_until
from tests.support.redis_dump import decompressed, values_of

pytestmark = pytest.mark.slow


def _mentions(client: redis.Redis, crop_store: redis.Redis, needle: bytes) -> list[bytes]:
    """Every key of either Redis whose name or content mentions `needle` (RQ payloads decompressed)."""
    found = []
    for source in (client, crop_store):
        for key in source.scan_iter(count=1000):
            for part in [key, *values_of(source, key)]:
                plain = decompressed(part)
                if needle in (part if plain is None else plain):
                    found.append(key)
                    break
    return found


def _fail_one_job(redis_url: str) -> None:
    """Run the queue once in this process with TF Serving unreachable (a real gRPC channel to a
    closed port): the queued job fails for good (no retries) and lands in RQ's failed registry."""
    settings = Settings(redis_url=redis_url, job_retry_intervals=[])
    nowhere = TFServingPredictor(f"127.0.0.1:{free_port()}", timeout_s=1, attempts=1)
    saved = jobs._predictor, jobs._settings
    client = redis.Redis.from_url(redis_url)
    try:
        jobs.use_predictor(nowhere, settings)
        SimpleWorker([inference_queue(client)], connection=client).work(burst=True)
    finally:
        jobs._predictor, jobs._settings = saved
        nowhere.close()
        client.close()


def test_erased_student_never_comes_back(redis_url, redis_client, crop_store, klass, tmp_path):
    class_id = klass.class_id
    gone, stays = f"gone-{secrets.token_hex(3)}", f"stays-{secrets.token_hex(3)}"
    token, classmate = klass.credential(gone), klass.credential(stays)
    api = Api(tmp_path, redis_url, job_retry_intervals="[]")
    url = api.url + "/v1/observations"
    faces = fer_faces(8, offset=300)
    try:
        # a batch that fails (failed registry), then two queued batches and a stored absence
        assert post(url, {"observations": [observation(faces[0])]}, token).status == 200
        _fail_one_job(redis_url)
        failed = inference_queue(redis_client).failed_job_registry
        assert failed.count == 1
        for i in (1, 3):
            body = {"observations": [observation(faces[i]), observation(faces[i + 1])]}
            assert post(url, body, token).body == {"accepted": 2, "duplicates": 0}
        assert post(url, {"observations": [observation(None)]}, token).status == 200
        assert post(url, {"observations": [observation(faces[5])]}, classmate).status == 200
        before = _mentions(redis_client, crop_store, gone.encode())
        assert before and store.latest_results(redis_client, class_id)[gone]
        assert redis_client.llen(keys.pending_batches()) == 3 and redis_client.llen(keys.INFERENCE_QUEUE_KEY) == 3

        erased = erase_student(redis_client, crop_store, class_id, gone)
        tombstone = keys.erasure_generation(class_id, gone).encode()  # the tombstone: a count
        # the student stays enrolled (roster, credential: erasing data is not unenrolling), and the
        # seen markers (observation id -> opaque batch id, expiring after DEDUP_TTL_SECONDS) stay so a
        # resend of an erased observation is still a duplicate
        enrolled = {keys.enrolment(class_id, gone).encode(), keys.class_enrolled(class_id).encode()}
        enrolled |= {
            k
            for k in redis_client.scan_iter(keys.credential("*"))
            if redis_client.hget(k, "student_id") == gone.encode()
        }
        seen = redis_keys.seen(class_id, gone, "").encode()
        left = [
            k
            for k in _mentions(redis_client, crop_store, gone.encode())
            if k != tombstone and k not in enrolled and not k.startswith(seen)
        ]
        assert not left, f"left after erasure: {left} (before: {before})"
        assert failed.count == 0 and len(crops_left()) == 1  # only the classmate's crop waits
        assert erased.batches == 3 and erased.crops_deleted == 3 and erased.stream_entries == 1

        # sent after the erasure: new data, kept
        later = observation(faces[6])
        assert post(url, {"observations": [later]}, token).status == 200

        worker = Worker(tmp_path, redis_url)
        try:
            wait_until(
                lambda: (
                    {r.observation_id for r in store.student_series(redis_client, class_id, gone)}
                    == {later["observation_id"]}
                ),
                timeout=120,
                interval=0.3,
                what="the worker to run the whole queue",
            )
            queue = inference_queue(redis_client)
            wait_until(lambda: queue.count == 0 and not queue.started_job_registry.count, timeout=60, what="queue")
        finally:
            worker.stop()
    finally:
        api.stop()

    series = store.student_series(redis_client, class_id, gone)
    assert [r.observation_id for r in series] == [later["observation_id"]] and series[0].emotion
    assert store.latest_results(redis_client, class_id)[gone].observation_id == later["observation_id"]
    assert len(store.student_series(redis_client, class_id, stays)) == 1  # the classmate is untouched
    rows = "".join(records.csv_chunks(redis_client, class_id, 0, use_emotions=True)).splitlines()
    assert [row.split(",")[2] for row in rows[1:] if row.split(",")[1] == gone] == [later["observation_id"]]
    stream = [json.loads(f[b"result"]) for _, f in redis_client.xrange(keys.class_events(class_id))]
    assert [r["observation_id"] for r in stream if r["student_id"] == gone] == [later["observation_id"]]
    assert not crops_left() and failed.count == 0


def test_a_second_erasure_also_drops_what_came_in_between(redis_client, crop_store, klass):
    """The tombstone is a generation: each erasure counts, work queued before the last one is dropped."""
    from classroom_contract import ObservationBatch
    from classroom_inference.ingest import ingest

    class_id = klass.class_id
    settings = Settings(coalesce_max_batches=0)
    queue = inference_queue(redis_client)
    batch = ObservationBatch(observations=[observation(f) for f in fer_faces(2)])
    outcome = ingest(redis_client, queue, class_id, "twice", batch, settings, crop_store)
    meta = queue.fetch_job(outcome.batch_id).kwargs["meta"]
    assert meta["generation"] == 0
    assert erase_student(redis_client, crop_store, class_id, "twice").generation == 1
    # a worker that loaded the batch before the erasure commits after it: nothing is stored
    observations = [(o, [1 / 7] * 7) for o in meta["observations"]]
    redis_client.set(keys.batch_pending(meta["batch_id"]), 1)  # as if erased between its checks
    assert jobs._commit(redis_client, meta, observations, 1.0, settings) == 0
    assert not store.student_series(redis_client, class_id, "twice")
    assert not redis_client.exists(keys.batch_pending(meta["batch_id"]))
    assert erase_student(redis_client, crop_store, class_id, "twice").generation == 2
