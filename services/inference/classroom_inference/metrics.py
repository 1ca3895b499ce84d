"""Prometheus metrics of the API and the workers (each process exports its own registry)."""

from __future__ import annotations

import redis
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

OBSERVATIONS = Counter(
    "classroom_observations_total", "Observations received by the API", ["outcome"]
)  # outcome: accepted | duplicate
INGEST_SECONDS = Histogram("classroom_ingest_seconds", "Time to validate, dedup and queue one request")
CROPS_PREDICTED = Counter("classroom_crops_predicted_total", "Crops the worker ran through the model")
CROPS_MISSING = Counter("classroom_crops_missing_total", "Queued crops that were gone when the job ran")
PREDICT_SECONDS = Histogram(
    "classroom_predict_seconds",
    "Model time of one batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


class QueueCollector(Collector):
    """Jobs of the inference queue by state, read from Redis at scrape time (backlog = scale signal)."""

    def __init__(self):
        self.queue = None

    def collect(self):
        if self.queue is None:
            return
        try:
            counts = {
                "queued": self.queue.count,
                "started": self.queue.started_job_registry.count,
                "scheduled": self.queue.scheduled_job_registry.count,
                "failed": self.queue.failed_job_registry.count,
            }
        except redis.RedisError:
            return  # a scrape must not fail because Redis does; /readyz reports that
        family = GaugeMetricFamily("classroom_inference_jobs", "Inference jobs by state", labels=["state"])
        for state, count in counts.items():
            family.add_metric([state], count)
        yield family


#: Registered once per process; `create_app` points it at its queue.
QUEUE = QueueCollector()
REGISTRY.register(QUEUE)
