"""`create_app(settings)`: the FastAPI application, its Redis client, queue, limits and error mapping."""

from __future__ import annotations

import logging

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import make_asgi_app

from classroom_inference import __version__, metrics
from classroom_inference.api.bodylimit import BodyLimit
from classroom_inference.api.join import mount_join_page
from classroom_inference.api.routes import health, observations
from classroom_inference.connection import crop_store_client, redis_client
from classroom_inference.queues import inference_queue
from classroom_inference.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(
        title="Classroom inference API",
        version=__version__,
        description="Capture agents post face crops here; results appear in Redis for the dashboard.",
    )
    app.state.settings = settings
    app.state.redis = redis_client(settings)
    app.state.crop_store = crop_store_client(settings)
    app.state.queue = inference_queue(app.state.redis)
    metrics.QUEUE.queue = app.state.queue

    @app.exception_handler(redis.ConnectionError)
    @app.exception_handler(redis.TimeoutError)
    async def redis_down(request: Request, exc: Exception) -> JSONResponse:
        """Redis unreachable: tell the agent to come back later; it keeps the batch and resends."""
        log.error("redis unavailable during %s %s: %s", request.method, request.url.path, exc)
        return JSONResponse(
            {"detail": "storage temporarily unavailable, retry later"},
            status_code=503,
            headers={"Retry-After": str(settings.retry_after_s)},
        )

    @app.exception_handler(redis.ResponseError)
    async def redis_refused(request: Request, exc: redis.ResponseError) -> JSONResponse:
        """Redis out of memory (maxmemory + noeviction) is an outage too: 503, the agent resends later."""
        if isinstance(exc, redis.exceptions.OutOfMemoryError):
            return await redis_down(request, exc)
        log.exception("redis error during %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        """A bug answers in the one error shape too (README "Error answers"), not as plain text;
        the traceback goes to the log (Starlette re-raises it to the server after this answer)."""
        return JSONResponse({"detail": "internal error"}, status_code=500)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        """400 when the body is not JSON at all (as the API docs promise), else 422 naming each
        invalid field; never echoing the input back: a value such as 1e999 (infinity) made
        FastAPI's default handler fail to render JSON (500), and a crop need not travel back."""
        errors = [{key: error[key] for key in ("type", "loc", "msg") if key in error} for error in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=400 if _not_json(exc.errors()) else 422)

    app.include_router(observations.router)
    app.include_router(health.router)
    app.mount("/metrics", make_asgi_app())
    mount_join_page(app, settings.join_page_dir)  # the browser capture page, same origin as the API
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    return app


def _not_json(errors) -> bool:
    """The body could not be parsed as JSON (or is missing): FastAPI's `json_invalid`, or `missing` at the body."""
    return any(
        e.get("type") == "json_invalid" or (e.get("type") == "missing" and tuple(e.get("loc", ())) == ("body",))
        for e in errors
    )
