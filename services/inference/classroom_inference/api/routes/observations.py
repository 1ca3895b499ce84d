"""POST /v1/observations: where capture agents deliver batches of one student's observations."""

from __future__ import annotations

import logging
import time

import redis
from classroom_contract import IngestResponse, ObservationBatch
from fastapi import APIRouter, Depends, HTTPException, status
from rq import Queue

from classroom_inference import metrics
from classroom_inference.api.deps import class_id, get_queue, get_redis, get_settings
from classroom_inference.ingest import ingest
from classroom_inference.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["observations"])

ERRORS = {
    401: {"description": "Missing or unknown class token"},
    413: {"description": "Body over MAX_BODY_BYTES"},
    422: {"description": "Body is not a valid ObservationBatch, or carries too many crops"},
    429: {"description": "Over the class token's rate limit; see Retry-After"},
    503: {"description": "Redis unavailable; see Retry-After"},
}


@router.post("/observations", response_model=IngestResponse, responses=ERRORS)
def post_observations(
    batch: ObservationBatch,
    class_: str = Depends(class_id),
    client: redis.Redis = Depends(get_redis),
    queue: Queue = Depends(get_queue),
    settings: Settings = Depends(get_settings),
) -> IngestResponse:
    """Accept a batch: faces are queued for the model, absences stored at once; resent ids are ignored."""
    crops = sum(1 for o in batch.observations if o.face_count > 0)
    if crops > settings.max_crops_per_request:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"{crops} crops in one request, at most {settings.max_crops_per_request}",
        )
    started = time.perf_counter()
    outcome = ingest(client, queue, class_, batch, settings)
    metrics.INGEST_SECONDS.observe(time.perf_counter() - started)
    metrics.OBSERVATIONS.labels("accepted").inc(outcome.accepted)
    metrics.OBSERVATIONS.labels("duplicate").inc(outcome.duplicates)
    return IngestResponse(accepted=outcome.accepted, duplicates=outcome.duplicates)
