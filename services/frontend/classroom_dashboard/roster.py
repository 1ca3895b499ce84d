"""What the dashboard shows about students: the latest result plus its attention assessment.

Shared by the class page, the live stream and the JSON API, so all three always agree. No Flask
here: the views pass their app's config (the settings named in config.py) in.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from classroom_contract import ObservationResult, store

from classroom_dashboard import attention, emotion


def _history_seconds(config: Mapping) -> float:
    return max(config["ATTENTION_WINDOW_SECONDS"], config["SPARKLINE_SECONDS"], 2 * config["ABSENT_AFTER_SECONDS"])


def student_view(client, latest: ObservationResult, config: Mapping, now: float | None = None) -> dict:
    """The JSON-ready record of one student (emotions are None in attention-only mode)."""
    now = time.time() if now is None else now
    use_emotions = not config["ATTENTION_ONLY"]
    since = latest.captured_at - _history_seconds(config)
    series = store.student_series(client, latest.class_id, latest.student_id, since=since)
    assessment = attention.assess(
        latest,
        series,
        now=now,
        window=config["ATTENTION_WINDOW_SECONDS"],
        absent_after=config["ABSENT_AFTER_SECONDS"],
        offline_after=config["OFFLINE_AFTER_SECONDS"],
        threshold=config["ATTENTION_THRESHOLD"],
        sparkline_seconds=config["SPARKLINE_SECONDS"],
        use_emotions=use_emotions,
    )
    current = (
        emotion.current_emotion(latest, series, config["ATTENTION_WINDOW_SECONDS"], config["EMOTION_MIN_CONFIDENCE"])
        if use_emotions
        else None
    )
    return {
        "student_id": latest.student_id,
        "observation_id": latest.observation_id,
        "face_present": latest.face_present,
        "face_count": latest.face_count,
        # the current emotion (emotion.py: window mean, "uncertain" below the threshold), not the crop's
        "emotion": current.label if current else None,
        "emotion_window": current.to_dict() if current else None,
        # the latest crop's own probabilities, as stored
        "probabilities": latest.probabilities if use_emotions else None,
        "head_yaw": latest.head_yaw,
        "head_pitch": latest.head_pitch,
        "captured_at": latest.captured_at,
        "processed_at": latest.processed_at,
        "attention": assessment.to_dict(),
    }


def sort_key(view: dict) -> tuple:
    """Students who need attention first (absent before distracted), offline last, then by id."""
    state = view["attention"]["state"]
    rank = {"absent": 0, "distracted": 1}.get(state, 3 if state == "offline" else 2)
    return (rank, view["student_id"])


def class_roster(client, class_id: str, config: Mapping, now: float | None = None) -> list[dict]:
    """Every student of a class with a result, in display order."""
    horizon = time.time() - config["RESULT_RETENTION_SECONDS"]
    latest = store.latest_results(client, class_id, since=horizon)
    return sorted((student_view(client, result, config, now) for result in latest.values()), key=sort_key)


def summary(views: list[dict]) -> dict:
    """Counts per state and the class's score (attention.class_score) over the tiles' scores."""
    counts = {state: 0 for state in attention.STATES}
    for view in views:
        counts[view["attention"]["state"]] += 1
    score = attention.class_score(v["attention"]["score"] for v in views)
    return {
        "students": len(views),
        "counts": counts,
        "needs_attention": sum(v["attention"]["needs_attention"] for v in views),
        "mean_score": None if score is None else round(score, 1),
    }
