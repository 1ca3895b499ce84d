"""POST /v1/observations: where capture agents deliver batches of one student's observations;
GET /v1/me: whom the presented credential belongs to."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import redis
from classroom_contract import IngestResponse, ObservationBatch, StudentIdentity, store
from classroom_contract.messages import DEFAULT_SAMPLE_RATE_HZ
from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel
from rq import Queue

from classroom_inference import metrics
from classroom_inference.api.auth import student
from classroom_inference.api.deps import get_crop_store, get_queue, get_redis, get_settings
from classroom_inference.ingest import ingest
from classroom_inference.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["observations"])


class Rejection(BaseModel):
    """Why a request was refused: a message, or (422 from validation) one entry per invalid field."""

    detail: str | list[dict[str, Any]]


def _retry_after(what: str) -> dict:
    return {"Retry-After": {"description": what, "schema": {"type": "integer", "minimum": 1}}}


ERRORS = {
    400: {"model": Rejection, "description": "Body is not JSON"},
    401: {
        "model": Rejection,
        "description": "Missing, unknown or revoked student credential",
        "headers": {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    },
    413: {"model": Rejection, "description": "Body over MAX_BODY_BYTES"},
    422: {
        "model": Rejection,
        "description": "Body is not a valid ObservationBatch, carries too many crops, or a capture time that is "
        "not finite or more than MAX_CLOCK_SKEW_SECONDS (default 300) ahead of the server clock",
    },
    429: {
        "model": Rejection,
        "description": "Over this student's rate limit",
        "headers": _retry_after("Seconds until the next rate-limit window"),
    },
    503: {
        "model": Rejection,
        "description": "Redis or the crop store unavailable",
        "headers": _retry_after("Seconds to wait before resending the same batch"),
    },
}


@router.get("/me", response_model=StudentIdentity, responses={k: ERRORS[k] for k in (401, 429, 503)})
def me(
    who: store.Enrolment = Depends(student),
    client: redis.Redis = Depends(get_redis),
    settings: Settings = Depends(get_settings),
) -> StudentIdentity:
    """Whom the credential belongs to, the class's name and sampling rate, and whether emotions are off."""
    info = store.class_info(client, who.class_id) or {}
    enrolment = store.enrolment(client, who.class_id, who.student_id) or {}
    return StudentIdentity(
        class_id=who.class_id,
        class_name=info.get("name") or who.class_id,
        student_id=who.student_id,
        display_name=enrolment.get("display_name") or who.student_id,
        sample_rate_hz=float(info.get("sample_rate_hz") or DEFAULT_SAMPLE_RATE_HZ),
        attention_only=settings.attention_only,
    )


@router.post("/observations", response_model=IngestResponse, responses=ERRORS)
def post_observations(
    batch: ObservationBatch,
    who: store.Enrolment = Depends(student),
    client: redis.Redis = Depends(get_redis),
    queue: Queue = Depends(get_queue),
    settings: Settings = Depends(get_settings),
    crop_store: redis.Redis = Depends(get_crop_store),
) -> IngestResponse:
    """Accept a batch: faces are queued for the model, absences stored at once; resent ids are ignored."""
    crops = sum(1 for o in batch.observations if o.face_count > 0)
    if crops > settings.max_crops_per_request:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"{crops} crops in one request, at most {settings.max_crops_per_request}",
        )
    # A capture time from the future would stay the student's "latest" result until the clock caught
    # up (newer captures never replace it), freezing their tile; infinity (1e999) would do so forever.
    skew = settings.max_clock_skew_seconds
    latest_allowed = time.time() + skew
    if any(not math.isfinite(o.captured_at) or o.captured_at > latest_allowed for o in batch.observations):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"captured_at must be a finite Unix time at most {skew:g} s ahead of the server clock",
        )
    started = time.perf_counter()
    outcome = ingest(client, queue, who.class_id, who.student_id, batch, settings, crop_store)
    metrics.INGEST_SECONDS.observe(time.perf_counter() - started)
    metrics.OBSERVATIONS.labels("accepted").inc(outcome.accepted)
    metrics.OBSERVATIONS.labels("duplicate").inc(outcome.duplicates)
    return IngestResponse(accepted=outcome.accepted, duplicates=outcome.duplicates)
