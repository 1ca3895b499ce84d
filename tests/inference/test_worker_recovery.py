"""Jobs survive worker trouble: a SIGKILLed worker's job is retried, a failed job can be requeued.

A slow stand-in TF Serving (tests/support/tfserving_server.py with a delay) keeps a job in flight long
enough to kill its worker, or makes it fail on its gRPC deadline.
"""

from __future__ import annotations

import signal
import subprocess

import numpy as np
import pytest
import redis
from classroom_contract import ObservationBatch, keys, store
from classroom_inference.ingest import ingest
from classroom_inference.queues import inference_queue
from classroom_inference.settings import Settings
from rq.registry import FailedJobRegistry

from tests.support.inference import Worker, fer_faces, observation, service_env
from tests.support.procs import BIN, free_port, wait_until
from tests.support.tfserving_server import FakeTFServing

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def slow_server():
    server = FakeTFServing(free_port(), delay_s=60).start()
    yield server
    server.stop()


def _submit(redis_url: str, class_id: str, n: int, **settings) -> tuple[list[str], str]:
    """Ingest one batch of `n` real faces the way the API does; return observation ids and job id."""
    client, settings = redis.Redis.from_url(redis_url), Settings(redis_url=redis_url, **settings)
    crop_store = redis.Redis.from_url(settings.crop_store_url)
    batch = ObservationBatch(observations=[observation(f) for f in fer_faces(n, offset=200)])
    outcome = ingest(client, inference_queue(client), class_id, "s1", batch, settings, crop_store)
    client.close()
    crop_store.close()
    return [str(o.observation_id) for o in batch.observations], outcome.batch_id


def _stored(client, class_id) -> set[str]:
    return {r.observation_id for r in store.student_series(client, class_id, "s1")}


def _jobs_cli(redis_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "classroom-jobs"), *args],
        env=service_env(redis_url),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_job_of_a_sigkilled_worker_is_retried(redis_url, redis_client, crop_store, slow_server, tmp_path):
    short = {"job_timeout_s": 6, "abandoned_grace_s": 1, "maintenance_interval_s": 1, "job_retry_intervals": "[0]"}
    stuck = Worker(
        tmp_path, redis_url, predictor_backend="tfserving", tfserving_address=slow_server.address,
        tfserving_timeout_s=60, **short,
    )  # fmt: skip
    ids, job_id = _submit(redis_url, "c-kill", 3, job_timeout_s=6, job_retry_intervals=[0])
    queue = inference_queue(redis_client)
    try:
        wait_until(lambda: job_id in queue.started_job_registry.get_job_ids(), timeout=20, what="job started")
        wait_until(lambda: slow_server.prediction.calls == 1, timeout=10, what="Predict in flight")
        stuck.proc.signal(signal.SIGKILL)
        stuck.proc.popen.wait(10)
    finally:
        stuck.stop()
    assert not _stored(redis_client, "c-kill")
    assert crop_store.hlen(keys.crops(job_id)) == 3  # crops wait for the retry

    rescuer = Worker(tmp_path, redis_url, **short)
    try:
        wait_until(lambda: _stored(redis_client, "c-kill") == set(ids), timeout=30, what="retried job's results")
        assert "enqueued for retry" in rescuer.proc.output()  # RQ's abandoned-job sweep, not a new enqueue
    finally:
        rescuer.stop()
    assert not crop_store.exists(keys.crops(job_id))
    assert FailedJobRegistry(queue=queue).count == 0


def test_failed_job_is_listed_and_requeued_by_classroom_jobs(
    redis_url, redis_client, crop_store, tmp_path, local_predictor
):
    server = FakeTFServing(free_port()).start()
    worker = Worker(
        tmp_path, redis_url, predictor_backend="tfserving", tfserving_address=server.address,
        tfserving_attempts=3, tfserving_backoff_s=0.05, job_retry_intervals="[]",
    )  # fmt: skip
    try:
        server.stop()  # TF Serving goes away after the worker started
        ids, job_id = _submit(redis_url, "c-fail", 2, job_retry_intervals=[])
        queue = inference_queue(redis_client)
        wait_until(lambda: FailedJobRegistry(queue=queue).count == 1, timeout=20, what="job failed")
        assert worker.proc.output().count("TF Serving UNAVAILABLE (try") == 2  # backoff retries before giving up
        listed = _jobs_cli(redis_url, "failed")
        assert listed.returncode == 0, listed.stderr
        assert job_id in listed.stdout and "PredictorUnavailable" in listed.stdout, listed.stdout
        assert "failed 1" in _jobs_cli(redis_url, "stats").stdout
        assert crop_store.hlen(keys.crops(job_id)) == 2  # the crops wait for a requeue

        server.start()  # back, on the same address: the worker's next call dials it at once
        # (TFServingPredictor replaces a channel that saw UNAVAILABLE, so no reconnect backoff to wait out)
        assert _jobs_cli(redis_url, "requeue").returncode == 2  # nothing named
        requeued = _jobs_cli(redis_url, "requeue", "--all")
        assert requeued.returncode == 0 and f"requeued {job_id}" in requeued.stdout
        wait_until(lambda: _stored(redis_client, "c-fail") == set(ids), timeout=30, what="requeued job's results")
        assert "failed 0" in _jobs_cli(redis_url, "stats").stdout
        # predicted through TF Serving, the same probabilities as the local model
        by_id = {r.observation_id: r.probabilities for r in store.student_series(redis_client, "c-fail", "s1")}
        expected = local_predictor.predict(fer_faces(2, offset=200))
        assert np.allclose([by_id[i] for i in ids], expected, atol=1e-5)
        assert not crop_store.exists(keys.crops(job_id))
    finally:
        worker.stop()
        server.stop()
