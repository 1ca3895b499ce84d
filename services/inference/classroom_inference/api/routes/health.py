"""Liveness and readiness probes for orchestrators (k8s, compose healthchecks).

/healthz says the process serves HTTP; /readyz says it can do its job: Redis and the crop store
answer and the model can be reached (TF Serving reports a version AVAILABLE, or a local SavedModel version exists).
"""

from __future__ import annotations

import logging

import redis
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from classroom_inference import modelstatus
from classroom_inference.api.deps import get_crop_store, get_redis, get_settings
from classroom_inference.settings import Settings
from classroom_inference.versions import available_versions

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


def _redis_ok(client: redis.Redis, what: str = "redis") -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError as exc:
        log.warning("readiness: %s unreachable: %s", what, exc)
        return False


def _model_versions(settings: Settings) -> list[int]:
    if settings.predictor_backend == "tfserving":
        return modelstatus.available_versions(
            settings.tfserving_address, settings.model_name, settings.model_version, settings.tfserving_timeout_s
        )
    versions = available_versions(settings.model_dir)
    return [v for v in versions if settings.model_version in (None, v)]


@router.get("/readyz", responses={503: {"description": "Not ready: Redis, the crop store or the model is unavailable"}})
def readyz(
    client: redis.Redis = Depends(get_redis),
    crop_store: redis.Redis = Depends(get_crop_store),
    settings: Settings = Depends(get_settings),
) -> JSONResponse:
    versions = _model_versions(settings)
    body = {
        "redis": _redis_ok(client),
        "crop_store": _redis_ok(crop_store, "crop store"),
        "model": bool(versions),
        "model_versions": versions,
    }
    body["ready"] = body["redis"] and body["crop_store"] and body["model"]
    return JSONResponse(body, status_code=200 if body["ready"] else 503)
