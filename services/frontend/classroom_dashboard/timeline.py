"""The class timeline: class attention, presence and (unless attention-only) the emotion mix over time.

Per time bucket (``BUCKETS`` equal slices of the range: the last N minutes, or one lesson):

* **class attention**: the mean, over the students who have one, of each student's smoothed score at
  the end of the bucket - the mean score of their observations *with a face* in the last
  ``max(ATTENTION_WINDOW_SECONDS, bucket width)`` seconds (the tiles' smoothing, widened to the
  bucket so that every observation counts when buckets are wide);
* **present / absent**: students whose latest observation by the end of the bucket (and not older
  than ``OFFLINE_AFTER_SECONDS``) had a face / had none; students without recent data count as neither;
* **emotion mix**: the share of each current emotion (``emotion.py``: the tiles' definition, window
  mean or "uncertain") among the students with one at the end of the bucket (present, not offline).

Every student's series is read once for the range (plus the smoothing look-back) and walked once
with two pointers, so a page costs O(observations in the window + students x buckets).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from classroom_contract import ObservationResult, store
from flask import Blueprint, abort, current_app, render_template, request

from classroom_dashboard import charts, lessons
from classroom_dashboard.attention import observation_score
from classroom_dashboard.auth import login_required, require_class
from classroom_dashboard.db import get_redis
from classroom_dashboard.emotion import LABELS, emotions_over

bp = Blueprint("timeline", __name__)

BUCKETS = 60
RANGES = {10: "10 min", 30: "30 min", 60: "1 hour", 180: "3 hours", 360: "6 hours"}


def class_timeline(
    series_by_student: Mapping[str, Sequence[ObservationResult]],
    start: float,
    end: float,
    buckets: int = BUCKETS,
    *,
    window: float = 60.0,
    offline_after: float = 120.0,
    use_emotions: bool = True,
    min_confidence: float = 0.5,
) -> list[dict]:
    """One row per bucket: t0, t1, score (None without data), scored, present, absent, emotions.

    `emotions` is {label: share} of the students' current emotions at the end of the bucket (empty
    when no student had one), or None with `use_emotions` off. Each series must be oldest first.
    """
    width = max(end - start, 1e-9) / buckets
    horizon = max(window, width)
    rows = [
        {"t0": start + i * width, "t1": start + (i + 1) * width, "sum": 0.0, "scored": 0, "present": 0, "absent": 0}
        for i in range(buckets)
    ]
    mix = [dict.fromkeys(LABELS, 0) for _ in range(buckets)] if use_emotions else None
    for series in series_by_student.values():
        scores = [observation_score(r, use_emotions) if r.face_count > 0 else None for r in series]
        current = emotions_over(series, window, min_confidence) if mix is not None else None
        lo = hi = 0
        total, count = 0.0, 0
        for i, row in enumerate(rows):
            t1 = row["t1"]
            while hi < len(series) and series[hi].captured_at <= t1:  # enters the smoothing window
                if scores[hi] is not None:
                    total, count = total + scores[hi], count + 1
                hi += 1
            while lo < hi and series[lo].captured_at <= t1 - horizon:  # leaves it
                if scores[lo] is not None:
                    total, count = total - scores[lo], count - 1
                lo += 1
            if count:
                row["sum"] += total / count
                row["scored"] += 1
            if hi and t1 - series[hi - 1].captured_at <= offline_after:
                row["present" if series[hi - 1].face_count > 0 else "absent"] += 1
                if current is not None and current[hi - 1] is not None:
                    mix[i][current[hi - 1].label] += 1
    out = []
    for i, row in enumerate(rows):
        emotions = None
        if mix is not None:
            labelled = sum(mix[i].values())
            emotions = {e: n / labelled for e, n in mix[i].items()} if labelled else {}
        out.append(
            {
                "t0": row["t0"],
                "t1": row["t1"],
                "score": row["sum"] / row["scored"] if row["scored"] else None,
                "scored": row["scored"],
                "present": row["present"],
                "absent": row["absent"],
                "emotions": emotions,
            }
        )
    return out


@bp.get("/classes/<class_id>/timeline")
@login_required
def show(class_id):
    """Class attention with presence, and the emotion mix, over the last N minutes or one lesson."""
    info = require_class(class_id)
    config = current_app.config
    client = get_redis()
    lesson = None
    if request.args.get("lesson"):
        lesson = lessons.get_lesson(client, class_id, request.args["lesson"])
        if lesson is None:
            abort(404)
        start, end = lessons.lesson_range(lesson)
        minutes = None
    else:
        minutes = request.args.get("minutes", 60, type=int)
        if minutes not in RANGES:
            minutes = 60
        end = time.time()
        start = end - min(minutes * 60, config["RESULT_RETENTION_SECONDS"])
    use_emotions = not config["ATTENTION_ONLY"]
    window = config["ATTENTION_WINDOW_SECONDS"]
    lookback = max(window, (end - start) / BUCKETS, config["OFFLINE_AFTER_SECONDS"])
    series = store.class_series(client, class_id, start - lookback, end)
    rows = class_timeline(
        series,
        start,
        end,
        BUCKETS,
        window=window,
        offline_after=config["OFFLINE_AFTER_SECONDS"],
        use_emotions=use_emotions,
        min_confidence=config["EMOTION_MIN_CONFIDENCE"],
    )
    return render_template(
        "classes/timeline.html",
        info=info,
        lesson=lesson,
        minutes=minutes,
        ranges=RANGES,
        start=start,
        end=end,
        bucket_seconds=(end - start) / BUCKETS,
        observations=sum(r.captured_at >= start for s in series.values() for r in s),
        attention_chart=charts.class_attention_svg(rows, start, end, config["ATTENTION_THRESHOLD"]),
        emotion_chart=charts.emotion_mix_svg(rows, start, end) if use_emotions else None,
    )
