"""What happened over time: a class's timeline and a student's, computed from stored results (no Flask).

**The class timeline**: class attention, presence and (unless attention-only) the emotion mix.

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
with two pointers, so a page costs O(observations in the window + students x buckets). The page
itself is a view in classes.py; the scores come from attention.py, the current emotion from emotion.py.

**A student's timeline** (the student page): the score per slice (``attention.score_buckets``),
the mean score of the range (``attention.mean_score``) and the share of each current emotion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from classroom_contract import ObservationResult, store

from classroom_dashboard.attention import class_score, in_span, mean_score, score_buckets, smoothed_scores
from classroom_dashboard.emotion import LABELS, emotions_over

BUCKETS = 60
STUDENT_BUCKETS = 120


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
    ends = [start + (i + 1) * width for i in range(buckets)]
    horizon = max(window, width)
    rows = [{"t0": start + i * width, "t1": ends[i], "present": 0, "absent": 0} for i in range(buckets)]
    scores: list[list[float | None]] = []  # per student, per bucket
    mix = [dict.fromkeys(LABELS, 0) for _ in range(buckets)] if use_emotions else None
    for series in series_by_student.values():
        scores.append(smoothed_scores(series, ends, horizon, use_emotions))
        current = emotions_over(series, window, min_confidence) if mix is not None else None
        latest = 0  # how many observations were captured by the end of the bucket
        for i, row in enumerate(rows):
            while latest < len(series) and series[latest].captured_at <= row["t1"]:
                latest += 1
            if latest and row["t1"] - series[latest - 1].captured_at <= offline_after:
                row["present" if series[latest - 1].face_count > 0 else "absent"] += 1
                if current is not None and current[latest - 1] is not None:
                    mix[i][current[latest - 1].label] += 1
    for i, row in enumerate(rows):
        bucket_scores = [student[i] for student in scores]
        row["score"] = class_score(bucket_scores)
        row["scored"] = sum(s is not None for s in bucket_scores)
        row["emotions"] = None
        if mix is not None:
            labelled = sum(mix[i].values())
            row["emotions"] = {e: n / labelled for e, n in mix[i].items()} if labelled else {}
    return rows


def read_class_timeline(
    client, class_id: str, start: float, end: float, *, window: float, offline_after: float, **options
) -> tuple[list[dict], int]:
    """(`class_timeline` rows, observations in the range) of a class, read with the look-back it needs."""
    lookback = max(window, (end - start) / BUCKETS, offline_after)
    series = store.class_series(client, class_id, start - lookback, end)
    rows = class_timeline(series, start, end, BUCKETS, window=window, offline_after=offline_after, **options)
    return rows, sum(in_span(r, start, end) for s in series.values() for r in s)


def student_timeline(
    history: Sequence[ObservationResult],
    start: float,
    end: float,
    *,
    window: float,
    use_emotions: bool = True,
    min_confidence: float = 0.5,
    buckets: int = STUDENT_BUCKETS,
) -> dict:
    """A student's range (start, end]: {"stats", "buckets", "shares"} for the student page.

    `history` is oldest first and, with emotions, starts a `window` before `start`, so the first
    observations' current emotion is what the tile showed then. `shares` is [(label, share)] of the
    current emotions of the range's observations (None with `use_emotions` off).
    """
    series = [r for r in history if in_span(r, start, end)]
    shares = None
    if use_emotions:
        current = emotions_over(history, window, min_confidence)
        labelled = [e.label for r, e in zip(history, current, strict=True) if e and in_span(r, start, end)]
        shares = [(e, labelled.count(e) / len(labelled) if labelled else 0.0) for e in LABELS]
    present = sum(r.face_count > 0 for r in series)
    return {
        "stats": {
            "observations": len(series),
            "present_share": present / len(series) if series else None,
            "mean_score": mean_score(series, use_emotions),
        },
        "buckets": score_buckets(series, start, end, buckets, use_emotions),
        "shares": shares,
    }
