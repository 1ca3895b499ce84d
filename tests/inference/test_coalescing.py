"""A job predicts other queued batches in the same model call, and every observation is stored once.

Real Redis, the real ingest transaction and the real job function, called in this process with
the session's float32 model (the worker process does the same through RQ; see test_api_worker.py).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from classroom_contract import ObservationBatch, keys, store
from classroom_inference import cropstore, jobs
from classroom_inference.ingest import ingest
from classroom_inference.queues import inference_queue
from classroom_inference.settings import Settings
from rq.job import Job

from tests.support.inference import Worker, fer_faces, observation
from tests.support.procs import wait_until


@pytest.fixture
def installed(redis_url, local_predictor):
    """The job module's predictor and settings, as `classroom-worker` installs them; restored afterwards."""
    saved = jobs._predictor, jobs._settings

    def install(predictor=None, **overrides) -> Settings:
        settings = Settings(redis_url=redis_url, **overrides)
        jobs.use_predictor(predictor or local_predictor, settings)
        return settings

    yield install
    jobs._predictor, jobs._settings = saved


def _queue_batches(redis_client, crop_store, settings, n: int, crops_each: int = 2):
    queue = inference_queue(redis_client)
    faces, metas = {}, []
    for i in range(n):
        crops = fer_faces(crops_each, offset=20 + crops_each * i)
        batch = ObservationBatch(observations=[observation(c) for c in crops])
        outcome = ingest(redis_client, queue, "c1", f"s{i}", batch, settings, crop_store)
        metas.append(queue.fetch_job(outcome.batch_id).kwargs["meta"])
        faces.update({str(o.observation_id): c for o, c in zip(batch.observations, crops, strict=True)})
    return metas, faces


def _stored(redis_client, n: int) -> list:
    return [r for i in range(n) for r in store.student_series(redis_client, "c1", f"s{i}")]


def test_one_job_predicts_every_queued_batch_exactly_once(installed, redis_client, crop_store, local_predictor):
    settings = installed()
    metas, faces = _queue_batches(redis_client, crop_store, settings, n=6)
    assert redis_client.llen(keys.pending_batches()) == 6

    assert jobs.predict_batch(metas[0]) == 12  # its own 2 crops and the 10 of the five batches queued after it
    assert redis_client.llen(keys.pending_batches()) == 0
    assert not crop_store.keys(keys.crops("*"))
    # the other batches' jobs are withdrawn from the queue (their hashes too); this job was not
    # dequeued through RQ here, so it is still listed
    queue = inference_queue(redis_client)
    assert queue.job_ids == [metas[0]["batch_id"]]
    assert not any(redis_client.exists(Job.key_for(m["batch_id"])) for m in metas[1:])
    # a job of theirs that a worker had already taken finds the work done and writes nothing
    assert [jobs.predict_batch(m) for m in metas[1:]] == [0] * 5
    assert jobs.predict_batch(metas[0]) == 0  # a retry of the first job too

    results = _stored(redis_client, 6)
    assert sorted(r.observation_id for r in results) == sorted(faces)  # each once, none missing
    ids = [r.observation_id for r in results]
    expected = local_predictor.predict(np.stack([faces[i] for i in ids]))
    np.testing.assert_allclose([r.probabilities for r in results], expected, atol=1e-5)


def test_batches_predicted_twice_are_stored_once(installed, redis_client, crop_store):
    """Two workers that took the same batch (a retried job, a coalescing neighbour) race to commit."""
    settings = installed(coalesce_max_batches=0)
    metas, _ = _queue_batches(redis_client, crop_store, settings, n=1, crops_each=3)
    work = cropstore.load_crops(crop_store, metas)[metas[0]["batch_id"]]
    observations = [(o, np.full(7, 1 / 7, np.float32)) for o, _ in work]
    assert jobs._commit(redis_client, metas[0], observations, 1.0, settings) == 3
    assert jobs._commit(redis_client, metas[0], observations, 2.0, settings) == 0
    assert len(_stored(redis_client, 1)) == 3


def test_coalescing_off_queues_no_metadata_and_predicts_only_its_own_batch(installed, redis_client, crop_store):
    settings = installed(coalesce_max_batches=1)
    metas, _ = _queue_batches(redis_client, crop_store, settings, n=3)
    assert not redis_client.exists(keys.pending_batches())
    assert jobs.predict_batch(metas[1]) == 2
    assert len(_stored(redis_client, 3)) == 2
    assert crop_store.exists(keys.crops(metas[0]["batch_id"]), keys.crops(metas[2]["batch_id"])) == 2


def test_pending_list_holds_no_pixels(installed, redis_client, crop_store):
    settings = installed()
    _queue_batches(redis_client, crop_store, settings, n=2)
    for item in redis_client.lrange(keys.pending_batches(), 0, -1):
        assert b"crop" not in item and len(item) < 1000  # ids, times and head pose only


@pytest.mark.slow
def test_worker_process_drains_a_backlog_of_one_crop_requests(redis_url, redis_client, crop_store, tmp_path):
    """40 one-crop batches queued while no worker runs (a classroom's requests): a real worker stores
    each once, in far fewer model calls than jobs, and leaves no job, crop or pending entry behind."""
    settings = Settings(redis_url=redis_url)
    metas, faces = _queue_batches(redis_client, crop_store, settings, n=40, crops_each=1)
    worker = Worker(tmp_path, redis_url)
    try:
        wait_until(lambda: len(_stored(redis_client, 40)) >= 40, timeout=120, what="40 results")
        queue = inference_queue(redis_client)
        wait_until(lambda: queue.count == 0 and not queue.started_job_registry.count, timeout=60, what="empty queue")
        output = worker.proc.output()
    finally:
        worker.stop()
    assert sorted(r.observation_id for r in _stored(redis_client, 40)) == sorted(faces)
    calls = [int(n) for n in re.findall(r"crops of (\d+) batches in one model call", output)]
    assert sum(calls) == 40 and len(calls) < 40, f"model calls per batch count: {calls}"
    assert not queue.failed_job_registry.count
    assert not crop_store.keys(keys.crops("*")) and not redis_client.exists(keys.pending_batches())


def test_batches_taken_by_a_failing_job_go_back_to_the_front_of_the_pending_list(installed, redis_client, crop_store):
    """TF Serving unreachable (a real gRPC channel to a closed port): the job fails for RQ to retry,
    and the batches it took are handed back at once instead of waiting for their own jobs."""
    from classroom_inference.predictor import PredictorUnavailable, TFServingPredictor

    from tests.support.procs import free_port

    nowhere = TFServingPredictor(f"127.0.0.1:{free_port()}", timeout_s=1, attempts=1)
    settings = installed(predictor=nowhere)
    try:
        metas, _ = _queue_batches(redis_client, crop_store, settings, n=4)
        with pytest.raises(PredictorUnavailable):
            jobs.predict_batch(metas[0])
    finally:
        nowhere.close()
    pending = [json.loads(item)["batch_id"] for item in redis_client.lrange(keys.pending_batches(), 0, -1)]
    assert pending == [m["batch_id"] for m in metas[1:]]  # oldest first, the failed job's own batch excluded
    assert crop_store.exists(*[keys.crops(m["batch_id"]) for m in metas]) == 4  # nothing stored, nothing lost
