"""Teacher-facing pages: the class list, a class's live tiles, its lessons and timeline, a student's
history, export, erase.

Views only: what they show is computed in plain modules - attention (attention.py), the timelines
(timeline.py), lessons (lessons.py), the CSV (records.py), the tiles (roster.py). Class creation
(manage.py) and the roster (enrolment.py) have their own blueprints.
"""

from __future__ import annotations

import logging
import time

from classroom_contract import ObservationResult, keys, store
from classroom_contract.erasure import erase_student
from flask import Blueprint, Response, abort, current_app, flash, g, redirect, render_template, request, url_for

from classroom_dashboard import accounts, charts, lessons, records, roster, security_log, timeline
from classroom_dashboard.auth import login_required, require_class
from classroom_dashboard.db import crop_store_or_none, get_redis

bp = Blueprint("classes", __name__)
log = logging.getLogger(__name__)

RANGES = {15: "15 min", 60: "1 hour", 360: "6 hours", 1440: "1 day", 10080: "7 days"}
TIMELINE_RANGES = {10: "10 min", 30: "30 min", 60: "1 hour", 180: "3 hours", 360: "6 hours"}


def _latest_or_404(class_id: str, student_id: str, since: float) -> ObservationResult:
    """The student's newest result, if it is not older than `since` (the retention horizon); else 404."""
    if not accounts.CLASS_ID_PATTERN.fullmatch(student_id):
        abort(404)
    raw = get_redis().hget(keys.class_latest(class_id), student_id)
    latest = None if raw is None else ObservationResult.model_validate_json(raw)
    if latest is None or latest.captured_at < since:
        abort(404)
    return latest


def _settings(config) -> dict:
    """The attention and emotion settings that the plain modules take, from the app's config."""
    return {
        "window": config["ATTENTION_WINDOW_SECONDS"],
        "use_emotions": not config["ATTENTION_ONLY"],
        "min_confidence": config["EMOTION_MIN_CONFIDENCE"],
    }


def _lesson_or_404(class_id: str, lesson_id: str) -> dict:
    lesson = lessons.get_lesson(get_redis(), class_id, lesson_id)
    if lesson is None:
        abort(404)
    return lesson


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
    views = roster.class_roster(client, class_id, current_app.config)
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
    config = current_app.config
    latest = _latest_or_404(class_id, student_id, since=time.time() - config["RESULT_RETENTION_SECONDS"])
    minutes = request.args.get("minutes", 60, type=int)
    if minutes not in RANGES:
        minutes = 60
    client = get_redis()
    end = max(time.time(), latest.captured_at)
    start = end - min(minutes * 60, config["RESULT_RETENTION_SECONDS"])
    settings = _settings(config)
    # read one window further back, so the first observations' current emotion is the tile's then
    lookback = settings["window"] if settings["use_emotions"] else 0.0
    history = store.student_series(client, class_id, student_id, since=start - lookback)
    page = timeline.student_timeline(history, start, end, **settings)
    return render_template(
        "classes/student.html",
        info=info,
        student_id=student_id,
        view=roster.student_view(client, latest, config),
        minutes=minutes,
        ranges=RANGES,
        stats=page["stats"],
        timeline=charts.timeline_svg(page["buckets"], start, end, config["ATTENTION_THRESHOLD"]),
        distribution=charts.distribution_svg(page["shares"]) if page["shares"] else None,
    )


@bp.get("/classes/<class_id>/timeline")
@login_required
def timeline_page(class_id):
    """Class attention with presence, and the emotion mix, over the last N minutes or one lesson."""
    info = require_class(class_id)
    config = current_app.config
    lesson = None
    if request.args.get("lesson"):
        lesson = _lesson_or_404(class_id, request.args["lesson"])
        start, end = lessons.lesson_range(lesson)
        minutes = None
    else:
        minutes = request.args.get("minutes", 60, type=int)
        if minutes not in TIMELINE_RANGES:
            minutes = 60
        end = time.time()
        start = end - min(minutes * 60, config["RESULT_RETENTION_SECONDS"])
    settings = _settings(config)
    rows, observations = timeline.read_class_timeline(
        get_redis(), class_id, start, end, offline_after=config["OFFLINE_AFTER_SECONDS"], **settings
    )
    return render_template(
        "classes/timeline.html",
        info=info,
        lesson=lesson,
        minutes=minutes,
        ranges=TIMELINE_RANGES,
        start=start,
        end=end,
        bucket_seconds=(end - start) / timeline.BUCKETS,
        observations=observations,
        attention_chart=charts.class_attention_svg(rows, start, end, config["ATTENTION_THRESHOLD"]),
        emotion_chart=charts.emotion_mix_svg(rows, start, end) if settings["use_emotions"] else None,
    )


@bp.post("/classes/<class_id>/lessons/start")
@login_required
def start_lesson(class_id):
    """Start a lesson for the class (owner or admin; CSRF-checked like every POST)."""

    def start(client) -> str:
        lesson = lessons.start_lesson(client, class_id, g.user["username"])
        return f"Lesson started at {time.strftime('%H:%M', time.localtime(lesson['started_at']))}."

    return _lesson_action(class_id, start)


@bp.post("/classes/<class_id>/lessons/stop")
@login_required
def stop_lesson(class_id):
    """Stop the class's running lesson."""

    def stop(client) -> str:
        lessons.stop_lesson(client, class_id)
        return "Lesson stopped. Its CSV is listed under past lessons."

    return _lesson_action(class_id, stop)


def _lesson_action(class_id: str, action) -> Response:
    """Run a lesson action for the class and flash its message (or why the class's state refused it)."""
    require_class(class_id)
    try:
        flash(action(get_redis()), "info")
    except lessons.LessonError as exc:
        flash(str(exc), "error")
    return redirect(url_for("classes.detail", class_id=class_id))


@bp.get("/classes/<class_id>/export.csv")
@login_required
def export_csv(class_id):
    """Every stored result of the class as CSV (no emotion columns in attention-only mode).

    ``?lesson=ID``: only the results captured during that lesson (until now while it runs).
    """
    require_class(class_id)
    config = current_app.config
    since = time.time() - config["RESULT_RETENTION_SECONDS"]
    settings = _settings(config)
    if request.args.get("lesson"):
        lesson = _lesson_or_404(class_id, request.args["lesson"])
        start, end = lessons.lesson_range(lesson)
        chunks = records.csv_chunks(get_redis(), class_id, max(start, since), until=end, **settings)
        filename = f"class-{class_id}-lesson-{lesson['lesson_id']}.csv"
    else:
        chunks = records.csv_chunks(get_redis(), class_id, since, **settings)
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
