"""Teacher-facing pages: the class list, a class's live tiles, a student's history, export, erase.

Lessons (lessons.py), class creation (manage.py), the roster (enrolment.py) and the class timeline
(timeline.py) have their own blueprints.
"""

from __future__ import annotations

import logging
import time

from classroom_contract import keys, store
from classroom_contract.erasure import erase_student
from flask import Blueprint, Response, abort, current_app, flash, g, redirect, render_template, request, url_for

from classroom_dashboard import accounts, charts, lessons, records, roster, security_log
from classroom_dashboard.attention import observation_score
from classroom_dashboard.auth import login_required, require_class
from classroom_dashboard.db import crop_store_or_none, get_redis
from classroom_dashboard.emotion import LABELS, emotions_over

bp = Blueprint("classes", __name__)
log = logging.getLogger(__name__)

RANGES = {15: "15 min", 60: "1 hour", 360: "6 hours", 1440: "1 day", 10080: "7 days"}


def _student_or_404(class_id: str, student_id: str):
    if not accounts.CLASS_ID_PATTERN.fullmatch(student_id):
        abort(404)
    latest = get_redis().hget(keys.class_latest(class_id), student_id)
    if latest is None:
        abort(404)
    return latest


def _last_event_id(class_id: str) -> str:
    """Id of the newest live event, so the page's stream resumes exactly after what it rendered."""
    newest = get_redis().xrevrange(keys.class_events(class_id), count=1)
    return newest[0][0] if newest else "0-0"


@bp.get("/")
@login_required
def index():
    """The classes of the logged-in teacher (every class for an admin)."""
    classes = accounts.classes_of(get_redis(), g.user["username"], admin=g.user["admin"])
    return render_template("classes/index.html", classes=classes)


@bp.get("/classes/<class_id>")
@login_required
def detail(class_id):
    """One tile per student, flagged students first; static/dashboard.js keeps it live via SSE.

    Also the running lesson (start/stop), the last 10 lessons and a link to the roster.
    """
    info = require_class(class_id)
    client = get_redis()
    since = _last_event_id(class_id)
    views = roster.class_roster(client, class_id)
    return render_template(
        "classes/detail.html",
        info=info,
        views=views,
        summary=roster.summary(views),
        since=since,
        now=time.time(),
        lesson=lessons.current_lesson(client, class_id),
        past_lessons=lessons.recent_lessons(client, class_id, 10),
    )


@bp.get("/classes/<class_id>/students/<student_id>")
@login_required
def student(class_id, student_id):
    """A student's attention timeline and (unless attention-only) emotion distribution."""
    info = require_class(class_id)
    _student_or_404(class_id, student_id)
    config = current_app.config
    minutes = request.args.get("minutes", 60, type=int)
    if minutes not in RANGES:
        minutes = 60
    client = get_redis()
    retention = config["RESULT_RETENTION_SECONDS"]
    latest = store.latest_results(client, class_id, since=time.time() - retention).get(student_id)
    if latest is None:
        abort(404)
    end = max(time.time(), latest.captured_at)
    start = end - min(minutes * 60, retention)
    window = config["ATTENTION_WINDOW_SECONDS"]
    use_emotions = not config["ATTENTION_ONLY"]
    # read one window further back, so the first observations' current emotion is the tile's then
    history = store.student_series(client, class_id, student_id, since=start - window if use_emotions else start)
    series = [r for r in history if r.captured_at >= start]
    rows = charts.timeline_buckets(series, start, end, buckets=120, use_emotions=use_emotions)
    present = [r for r in series if r.face_count > 0]
    shares = None
    if use_emotions:  # the current emotion as of each observation: what the tile showed then
        current = emotions_over(history, window, config["EMOTION_MIN_CONFIDENCE"])
        labelled = [e.label for r, e in zip(history, current, strict=True) if e and r.captured_at >= start]
        shares = [(e, labelled.count(e) / len(labelled) if labelled else 0.0) for e in LABELS]
    stats = {
        "observations": len(series),
        "present_share": len(present) / len(series) if series else None,
        "mean_score": sum(observation_score(r, use_emotions) for r in present) / len(present) if present else None,
    }
    return render_template(
        "classes/student.html",
        info=info,
        student_id=student_id,
        view=roster.student_view(client, latest),
        minutes=minutes,
        ranges=RANGES,
        stats=stats,
        timeline=charts.timeline_svg(rows, start, end, config["ATTENTION_THRESHOLD"]),
        distribution=charts.distribution_svg(shares) if shares else None,
    )


@bp.get("/classes/<class_id>/export.csv")
@login_required
def export_csv(class_id):
    """Every stored result of the class as CSV (no emotion columns in attention-only mode).

    ``?lesson=ID``: only the results captured during that lesson (until now while it runs).
    """
    require_class(class_id)
    config = current_app.config
    use_emotions = not config["ATTENTION_ONLY"]
    since = time.time() - config["RESULT_RETENTION_SECONDS"]
    emotion_settings = {
        "window": config["ATTENTION_WINDOW_SECONDS"],
        "min_confidence": config["EMOTION_MIN_CONFIDENCE"],
    }
    if request.args.get("lesson"):
        lesson = lessons.lesson_or_404(class_id, request.args["lesson"])
        start, end = lessons.lesson_range(lesson)
        chunks = records.csv_chunks(
            get_redis(), class_id, max(start, since), use_emotions, until=end, **emotion_settings
        )
        filename = f"class-{class_id}-lesson-{lesson['lesson_id']}.csv"
    else:
        chunks = records.csv_chunks(get_redis(), class_id, since, use_emotions, **emotion_settings)
        filename = f"class-{class_id}-{time.strftime('%Y%m%d-%H%M%S')}.csv"
    return Response(chunks, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.post("/classes/<class_id>/students/<student_id>/delete")
@login_required
def delete_student(class_id, student_id):
    """Erase everything stored about one student of the class (`classroom_contract.erasure`)."""
    require_class(class_id)
    if not accounts.CLASS_ID_PATTERN.fullmatch(student_id):
        abort(404)
    erased = erase_student(get_redis(), crop_store_or_none(), class_id, student_id)
    log.info(
        "erasure class=%s student=%s batches=%d generation=%d", class_id, student_id, erased.batches, erased.generation
    )
    security_log.event(
        "student_erased", class_id=class_id, student_id=student_id, batches=erased.batches, generation=erased.generation
    )
    flash(f"All data of student {student_id} was deleted.", "info")
    return redirect(url_for("classes.detail", class_id=class_id))
