"""Machine-readable views of a class: the JSON roster and the live Server-Sent Events stream.

Both need a logged-in teacher who owns the class: a session cookie, or HTTP Basic credentials
(for scripts; throttled like the login form).
"""

from __future__ import annotations

import json
import re
import time

from classroom_contract import EMOTIONS, keys, store
from flask import Blueprint, Response, current_app, jsonify, render_template, request, stream_with_context

from classroom_dashboard import roster, sessions
from classroom_dashboard.auth import login_required, require_class
from classroom_dashboard.db import get_redis

bp = Blueprint("api", __name__, url_prefix="/api")

STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
#: Most stream entries taken per XREAD; a burst is coalesced into one update per student.
READ_COUNT = 500


@bp.get("/classes/<class_id>/students")
@login_required
def students(class_id):
    """Per student the latest result and its attention assessment, flagged students first."""
    require_class(class_id)
    views = roster.class_roster(get_redis(), class_id, current_app.config)
    emotions_enabled = not current_app.config["ATTENTION_ONLY"]
    return jsonify(
        class_id=class_id,
        generated_at=time.time(),
        emotions_enabled=emotions_enabled,
        emotions=list(EMOTIONS) if emotions_enabled else [],
        summary=roster.summary(views),
        students=views,
    )


def _start_id(class_id: str) -> str:
    """Where the stream resumes: Last-Event-ID (reconnect), ?since= (page render), else 'now'."""
    for candidate in (request.headers.get("Last-Event-ID"), request.args.get("since")):
        if candidate and STREAM_ID.fullmatch(candidate):
            return candidate
    newest = get_redis().xrevrange(keys.class_events(class_id), count=1)
    return newest[0][0] if newest else "0-0"


def _sse(event: str, data: dict, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@bp.get("/classes/<class_id>/events")
@login_required
def events(class_id):
    """SSE: one `tile` event (JSON record + rendered tile HTML) per student with new results.

    Reads the class's capped event stream with XREAD BLOCK; sends a comment as heartbeat after each
    block timeout (so dead connections are noticed) and closes after SSE_MAX_SECONDS - the browser's
    EventSource reconnects by itself with Last-Event-ID, so nothing is missed and no server thread
    is held forever.
    """
    require_class(class_id)
    config = current_app.config
    client = get_redis()
    stream_key = keys.class_events(class_id)
    last_id = _start_id(class_id)
    session_alive = sessions.watcher(client)  # a logout or password change ends the stream too

    def generate():
        nonlocal last_id
        deadline = time.monotonic() + config["SSE_MAX_SECONDS"]
        yield f"retry: 2000\n{_sse('hello', {'class_id': class_id, 'since': last_id})}"
        while time.monotonic() < deadline and session_alive():
            reply = client.xread({stream_key: last_id}, count=READ_COUNT, block=config["SSE_BLOCK_MS"])
            if not reply:
                yield ": keepalive\n\n"
                continue
            entries = reply[0][1]
            last_id = entries[-1][0]
            latest = store.latest_results(client, class_id, since=time.time() - config["RESULT_RETENTION_SECONDS"])
            for student_id in dict.fromkeys(_student_ids(entries)):
                yield _tile_event(client, class_id, latest.get(student_id), student_id, last_id)

    return Response(
        stream_with_context(generate()),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _student_ids(entries) -> list[str]:
    return [sid for sid in (store.event_student(fields) for _, fields in entries) if sid]


def _tile_event(client, class_id: str, latest, student_id: str, event_id: str) -> str:
    if latest is None:  # erased meanwhile
        return _sse("removed", {"student_id": student_id}, event_id)
    view = roster.student_view(client, latest, current_app.config)
    html = render_template("classes/_tile.html", s=view, class_id=class_id)
    return _sse("tile", {"student": view, "html": html}, event_id)
