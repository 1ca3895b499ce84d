"""`classroom-worker`: an RQ worker on the inference queue that loads the model once per process.

Why `SimpleWorker` (job runs in the worker process) and not RQ's default `Worker` (fork per job):
- TensorFlow and gRPC keep thread pools that do not survive fork(); a forked job would have to
  load the SavedModel again (≈1-2 s here) or open a new channel for every job;
- with SimpleWorker the predictor built at start-up serves every job, and a job costs only the
  model call. Scale out with more `classroom-worker` processes (replicas), not with forks.
Measured on the 2-CPU dev box (20 queued jobs of 16 real crops, burst mode): this worker did them
in 1.9 s (95 ms a job, Redis bookkeeping included); RQ's fork `Worker` with the model loaded in
the parent completed none of them in 360 s (the forked work-horses never return from TensorFlow).

RQ's SimpleWorker does not heartbeat while a job runs, so it registers each job as started for
`job timeout + 60 s` and only then may a crashed worker's job be called abandoned (and retried).
`InferenceWorker` shortens that to `job timeout + ABANDONED_GRACE_S` and sweeps registries every
MAINTENANCE_INTERVAL_S (RQ's default: 10 minutes, and an idle worker only sweeps when its blocking
dequeue times out), so a SIGKILLed worker's job is retried within about
JOB_TIMEOUT_S + ABANDONED_GRACE_S + MAINTENANCE_INTERVAL_S (60 + 15 + 30 s by default).
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
from classroom_contract import CROP_SIZE
from rq import SimpleWorker
from rq.defaults import DEFAULT_WORKER_TTL
from rq.executions import Execution

from classroom_inference import jobs, retention
from classroom_inference.cli import crop_store_ok
from classroom_inference.connection import worker_client
from classroom_inference.logconfig import configure_logging
from classroom_inference.predictor import build_predictor
from classroom_inference.queues import inference_queue
from classroom_inference.settings import Settings

log = logging.getLogger(__name__)


class InferenceWorker(SimpleWorker):
    """SimpleWorker whose started jobs count as abandoned `abandoned_grace_s` after their timeout."""

    abandoned_grace_s = 15
    settings: Settings | None = None

    def run_maintenance_tasks(self):
        """RQ's registry sweep, then the retention sweep (one worker per RETENTION_SWEEP_INTERVAL_S)."""
        super().run_maintenance_tasks()
        if self.settings is not None:
            retention.maybe_sweep(self.connection, self.settings)

    def get_heartbeat_ttl(self, job) -> int:
        if job.timeout == -1:
            return DEFAULT_WORKER_TTL
        return int(job.timeout or DEFAULT_WORKER_TTL) + self.abandoned_grace_s

    def execute_job(self, job, queue):
        self._forget_dead_executions(job)
        return super().execute_job(job, queue)

    def _forget_dead_executions(self, job) -> None:
        """Drop execution ids whose record expired (their worker died) from the job's execution registry.

        Works around RQ 2.12: a dead execution's id outlives its record by 60 s in
        `rq:executions:<job>`; when a retried job then succeeds, RQ's cleanup fetches every listed
        execution, raises "Execution ... not found in Redis", and files the finished job as failed.
        """
        registry = job.execution_registry
        dead = [
            execution_id
            for execution_id in registry.get_execution_ids()
            if not self.connection.exists(Execution(execution_id, job.id, self.connection).key)
        ]
        if dead:
            log.info("job %s: forgetting %d execution(s) of dead workers", job.id, len(dead))
            self.connection.zrem(registry.key, *dead)


def warm_up(predictor) -> float:
    """One tiny prediction so the first real job does not pay for graph tracing / channel setup."""
    started = time.perf_counter()
    predictor.predict(np.zeros((1, CROP_SIZE, CROP_SIZE), np.uint8))
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="classroom-worker", description=__doc__.splitlines()[0])
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--name", help="worker name (default: RQ's, unique per process)")
    args = parser.parse_args(argv)

    settings = Settings()
    configure_logging(settings.log_level)
    if not crop_store_ok(settings):
        return 2
    connection = worker_client(settings)
    queue = inference_queue(connection)

    predictor = build_predictor(settings)
    if settings.predictor_backend == "tfserving":
        while not predictor.ready():  # start only once the model answers; jobs wait in the queue meanwhile
            log.warning("waiting for TF Serving at %s", settings.tfserving_address)
            time.sleep(2)
    else:  # trace the graph now; TF Serving warms its own models (assets.extra/tf_serving_warmup_requests)
        log.info("warm-up prediction took %.2fs", warm_up(predictor))
    jobs.use_predictor(predictor, settings)

    if settings.worker_metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_host)

    InferenceWorker.abandoned_grace_s = settings.abandoned_grace_s
    InferenceWorker.settings = settings
    worker = InferenceWorker(
        [queue],
        connection=connection,
        name=args.name,
        maintenance_interval=settings.maintenance_interval_s,
        # An idle RQ worker blocks in dequeue for worker_ttl - 15 s and sweeps registries only between
        # waits; this keeps the sweep (which retries abandoned jobs) on MAINTENANCE_INTERVAL_S.
        worker_ttl=settings.maintenance_interval_s + 15,
    )
    try:
        # The scheduler (for retries with a delay) forks a small Redis-only process; it never touches TF.
        worker.work(burst=args.burst, with_scheduler=True, logging_level=settings.log_level)
    finally:
        predictor.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
