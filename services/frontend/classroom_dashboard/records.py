"""A class's stored results as CSV rows, reading a time range of a class."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime, timezone

from classroom_contract import EMOTIONS, store

from classroom_dashboard.attention import observation_score
from classroom_dashboard.emotion import emotions_over

BASE_COLUMNS = [
    "class_id",
    "student_id",
    "observation_id",
    "captured_at_utc",
    "captured_at",
    "processed_at",
    "face_count",
    "head_yaw",
    "head_pitch",
    "attention",
]


#: Appended after the crop's own `emotion` and `p_*` columns: the student's current emotion as of
#: that row (emotion.py, the same value the tile showed then) and its top mean probability.
CURRENT_EMOTION_COLUMNS = ["current_emotion", "current_emotion_confidence"]


def csv_chunks(
    client,
    class_id: str,
    since: float,
    use_emotions: bool,
    until: float | None = None,
    *,
    window: float = 60.0,
    min_confidence: float = 0.5,
) -> Iterator[str]:
    """CSV text, one chunk per student (streamed: a big class never sits in memory at once).

    Results captured in [since, until] (until None: everything since `since`), e.g. one lesson's.
    With emotions, each row also carries the current emotion as of it, over `window` seconds (read
    from before `since` too, so the first rows match what the tile showed).
    """
    header = BASE_COLUMNS + (
        ["emotion", *(f"p_{e}" for e in EMOTIONS), *CURRENT_EMOTION_COLUMNS] if use_emotions else []
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for student_id in store.class_students(client, class_id):
        lookback = window if use_emotions else 0.0
        series = store.student_series(client, class_id, student_id, since=since - lookback, until=until)
        current = emotions_over(series, window, min_confidence) if use_emotions else [None] * len(series)
        for r, now in zip(series, current, strict=True):
            if r.captured_at < since:
                continue
            row = [
                r.class_id,
                r.student_id,
                r.observation_id,
                datetime.fromtimestamp(r.captured_at, timezone.utc).isoformat(timespec="seconds"),
                f"{r.captured_at:.3f}",
                f"{r.processed_at:.3f}",
                r.face_count,
                "" if r.head_yaw is None else r.head_yaw,
                "" if r.head_pitch is None else r.head_pitch,
                f"{observation_score(r, use_emotions):.1f}",
            ]
            if use_emotions:
                probabilities = r.probabilities or []
                row += [r.emotion or "", *(f"{p:.4f}" for p in probabilities)]
                row += [""] * (len(EMOTIONS) - len(probabilities))
                row += [now.label, f"{now.confidence:.4f}"] if now else ["", ""]
            writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.getvalue():
        yield buffer.getvalue()
