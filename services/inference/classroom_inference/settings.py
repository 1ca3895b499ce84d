"""One Settings object, read from environment variables, shared by the API, the worker and the CLIs.

Every knob lives here so a deployment (compose, k8s) configures the service through env vars only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from classroom_contract import SIGNATURE
from classroom_contract import settings as shared
from classroom_contract.messages import MAX_OBSERVATIONS_PER_REQUEST
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DAY = 24 * 3600


def default_model_dir() -> Path:
    """./models/<model name>: a checkout's models when run from its root (the image sets MODEL_DIR)."""
    return Path.cwd() / "models" / SIGNATURE.model_name


def default_join_page_dir() -> Path:
    """./services/capture-web/dist (built by `npm ci && npm run build` there) when run from a checkout's
    root; the Docker image sets JOIN_PAGE_DIR to where it copied the built page."""
    return Path.cwd() / "services" / "capture-web" / "dist"


class Settings(BaseSettings):
    """Configuration of the inference service; each field is the env var of the same name, upper case."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", protected_namespaces=())

    redis_url: str = shared.DEFAULT_REDIS_URL
    redis_timeout_s: float = Field(2.0, gt=0, description="Socket timeout of the API's Redis calls.")
    crop_store_url: str = Field(
        shared.DEFAULT_CROP_STORE_URL,
        description="The crop store: a second Redis with persistence off, the only place crops are kept.",
    )
    crop_store_allow_persistence: bool = Field(
        False,
        description="Start even if the crop store writes to disk (RDB or AOF): only for a throwaway setup.",
    )

    predictor_backend: Literal["local", "tfserving"] = "local"
    model_dir: Path = Field(default_factory=default_model_dir, description="Folder of numbered SavedModels.")
    model_version: int | None = Field(None, ge=1, description="Pin a version; default: the highest number.")
    model_name: str = SIGNATURE.model_name
    predictor_bfloat16: Literal["auto", "on", "off"] = Field(
        "auto", description="local backend: run the model in bfloat16 (auto = where the CPU has native bfloat16)."
    )
    tfserving_address: str = "127.0.0.1:8500"
    tfserving_timeout_s: float = Field(5.0, gt=0, description="gRPC deadline of one Predict call.")
    tfserving_attempts: int = Field(5, ge=1, description="Tries of a Predict call while TF Serving is UNAVAILABLE.")
    tfserving_backoff_s: float = Field(0.2, ge=0, description="First retry delay; doubles each try (with jitter).")
    tfserving_max_message_bytes: int = Field(64 * 1024 * 1024, gt=0)

    result_retention_seconds: float = Field(
        shared.DEFAULT_RETENTION_SECONDS, gt=0, description="How long results are kept; the dashboard reads the same."
    )
    dedup_ttl_seconds: int = Field(DAY, gt=0, description="How long an observation id is remembered.")
    crops_ttl_seconds: int = Field(DAY, gt=0, description="Safety expiry of queued crops never predicted.")
    retention_sweep_interval_s: int = Field(
        300, ge=1, description="How often one worker trims every class's results to the retention window."
    )
    max_body_bytes: int = Field(512 * 1024, gt=0)
    max_crops_per_request: int = Field(
        MAX_OBSERVATIONS_PER_REQUEST, ge=1, description="Most face crops in one request (default: the batch limit)."
    )
    # Each student has their own credential and an agent posts about once a second (at most one
    # request per sample): 600 a minute is 10 a second, far above a working agent, and stops a
    # runaway or abusive one without touching the rest of the class.
    rate_limit_per_minute: int = Field(600, ge=0, description="Requests per student credential per minute; 0 = off.")
    max_clock_skew_seconds: float = Field(
        300,
        ge=0,
        description="Capture times further than this ahead of the server clock are refused (422): a future "
        "time would freeze the student's tile as their latest state.",
    )
    retry_after_s: int = Field(5, ge=1, description="Retry-After sent with a 503 when Redis is down.")

    coalesce_max_batches: int = Field(
        32,
        ge=0,
        description="A job also predicts up to this many other queued batches in the same model call; <=1 = off.",
    )
    max_model_batch: int = Field(256, ge=1, description="Most crops in one model call (larger work is split).")
    job_timeout_s: int = Field(60, ge=1, description="Longest one predict job may run before RQ kills it.")
    job_retry_intervals: list[int] = Field(
        default_factory=lambda: [2, 10, 30], description="Seconds before each retry of a failed/abandoned job."
    )
    abandoned_grace_s: int = Field(15, ge=1, description="After job timeout + this, a silent job is abandoned.")
    maintenance_interval_s: int = Field(30, ge=1, description="How often a worker sweeps abandoned jobs.")
    worker_metrics_port: int = Field(0, ge=0, description="Prometheus port of a worker; 0 = none.")
    worker_metrics_host: str = Field("0.0.0.0", description="Only used when WORKER_METRICS_PORT is set: for scraping.")

    attention_only: bool = Field(
        False, description="No emotion inference at all: crops are dropped unread, only presence and head pose kept."
    )
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    join_page_dir: Path = Field(
        default_factory=default_join_page_dir,
        description="Built browser capture page served at /join (services/capture-web/dist); absent = /join is 404.",
    )
    log_level: str = "INFO"

    @model_validator(mode="before")
    @classmethod
    def _retention_fallback(cls, data: Any) -> Any:
        """RESULT_RETENTION_SECONDS unset or empty: the deprecated RETENTION_SECONDS, else the shared default."""
        if isinstance(data, dict) and not str(data.get("result_retention_seconds") or "").strip():
            data = {key: value for key, value in data.items() if key != "result_retention_seconds"}
            raw = shared.retention_setting(os.environ)
            if raw is not None:
                data["result_retention_seconds"] = raw
        return data
