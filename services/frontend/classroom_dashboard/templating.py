"""Template helpers (filters, globals) and the error pages."""

from __future__ import annotations

import logging
import time

import redis
from flask import Flask, current_app, g, render_template, request

from classroom_dashboard import charts

STATE_LABELS = {
    "attentive": "attentive",
    "distracted": "distracted",
    "away": "looked away",
    "absent": "absent",
    "offline": "no data",
}


def ago(seconds_since_epoch: float | None) -> str:
    if not seconds_since_epoch:
        return "never"
    delta = max(0, time.time() - seconds_since_epoch)
    if delta < 60:
        return f"{delta:.0f} s ago"
    if delta < 3600:
        return f"{delta // 60:.0f} min ago"
    if delta < 86_400:
        return f"{delta // 3600:.0f} h ago"
    return time.strftime("%d %b %H:%M", time.localtime(seconds_since_epoch))


def duration(seconds: float | None) -> str:
    seconds = seconds or 0
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def clock(seconds_since_epoch: float | None) -> str:
    """Server-local wall time: "10:32" today, else "03 Mar 10:32"."""
    if not seconds_since_epoch:
        return "–"
    local = time.localtime(seconds_since_epoch)
    today = time.localtime()
    same_day = (local.tm_year, local.tm_yday) == (today.tm_year, today.tm_yday)
    return time.strftime("%H:%M" if same_day else "%d %b %H:%M", local)


def sparkline(values) -> str:
    return charts.sparkline_svg(values or [], current_app.config["ATTENTION_THRESHOLD"])


def json_error(detail: str) -> dict:
    """The one error body of both HTTP services (FastAPI's shape, see README "Error answers")."""
    return {"detail": detail}


def _error(code: int, title: str):
    def handler(error):
        if _wants_json():  # scripts get JSON, not a page
            return json_error(title), code
        return render_template(
            "error.html", code=code, title=title, description=getattr(error, "description", "")
        ), code

    return handler


log = logging.getLogger(__name__)
#: Seconds a browser or script should wait before retrying while Redis is unreachable.
RETRY_AFTER_SECONDS = 10


def _wants_json() -> bool:
    """An /api/ address (matched or not: an unknown path or method has no blueprint) or a live stream."""
    return request.path.startswith("/api/") or "text/event-stream" in request.headers.get("Accept", "")


def _redis_down(error):
    """503 while Redis is unreachable: a page that says so (JSON for the API and SSE), not a bare 500."""
    log.error("Redis unavailable during %s %s: %s", request.method, request.path, error)
    title, description = "Service unavailable", "The class data store does not answer. Try again in a minute."
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if _wants_json():
        return json_error(title), 503, headers
    page = render_template("error.html", code=503, title=title, description=description)
    return page, 503, headers


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(ago=ago, clock=clock, duration=duration, sparkline=sparkline)
    app.jinja_env.globals["state_label"] = STATE_LABELS.get

    @app.context_processor
    def _globals():
        return {"emotions_enabled": not current_app.config["ATTENTION_ONLY"], "user": g.get("user")}

    for code, title in (
        (400, "Bad request"),
        (401, "Login required"),
        (403, "Not your class"),
        (404, "Not found"),
        (405, "Method not allowed"),
        (500, "Internal error"),  # a bug: Flask logs the traceback; the answer keeps the one shape
    ):
        app.register_error_handler(code, _error(code, title))
    app.register_error_handler(redis.ConnectionError, _redis_down)
    app.register_error_handler(redis.TimeoutError, _redis_down)
