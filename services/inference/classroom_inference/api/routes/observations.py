"""POST /v1/observations: where capture agents deliver batches of one student's observations."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import redis
from classroom_contract import IngestResponse, ObservationBatch
from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel
from rq import Queue

from classroom_inference import metrics
from classroom_inference.api.deps import class_id, get_crop_store, get_queue, get_redis, get_settings
from classroom_inference.ingest import ingest
from classroom_inference.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["observations"])

#: How far in the future (server clock) a capture time may lie. A later one - or a JSON number that
#: overflows to infinity, such as 1e999 - would become the student's "latest" result forever (newer
#: captures never replace it) and break the dashboard's pages and CSV for the whole class.
MAX_CLOCK_SKEW_S = 24 * 3600


class Rejection(BaseModel):
    """Why a request was refused: a message, or (422 from validation) one entry per invalid field."""

    detail: str | list[dict[str, Any]]


def _retry_after(what: str) -> dict:
    return {"Retry-After": {"description": what, "schema": {"type": "integer", "minimum": 1}}}


ERRORS = {
    400: {"model": Rejection, "description": "Body is not JSON"},
    401: {
        "model": Rejection,
        "description": "Missing or unknown class token",
        "headers": {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    },
    413: {"model": Rejection, "description": "Body over MAX_BODY_BYTES"},
    422: {
        "model": Rejection,
        "description": "Body is not a valid ObservationBatch, carries too many crops, or a capture time that is "
        "not finite or more than a day ahead of the server clock",
    },
    429: {
        "model": Rejection,
        "description": "Over the class token's rate limit",
        "headers": _retry_after("Seconds until the next rate-limit window"),
    },
    503: {
        "model": Rejection,
        "description": "Redis or the crop store unavailable",
        "headers": _retry_after("Seconds to wait before resending the same batch"),
    },
}


@router.post("/observations", response_model=IngestResponse, responses=ERRORS)
def post_observations(
    batch: ObservationBatch,
    class_: str = Depends(class_id),
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
    latest_allowed = time.time() + MAX_CLOCK_SKEW_S
    if any(not math.isfinite(o.captured_at) or o.captured_at > latest_allowed for o in batch.observations):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"captured_at must be a finite Unix time at most {MAX_CLOCK_SKEW_S} s ahead of the server clock",
        )
    started = time.perf_counter()
    outcome = ingest(client, queue, class_, batch, settings, crop_store)
    metrics.INGEST_SECONDS.observe(time.perf_counter() - started)
    metrics.OBSERVATIONS.labels("accepted").inc(outcome.accepted)
    metrics.OBSERVATIONS.labels("duplicate").inc(outcome.duplicates)
    return IngestResponse(accepted=outcome.accepted, duplicates=outcome.duplicates)
