"""store.write_results keeps a student's `latest` at the newest capture, whatever order writers finish in."""

from __future__ import annotations

import time

from classroom_contract import ObservationResult, store


def _result(oid: str, captured_at: float, emotion: str | None) -> ObservationResult:
    return ObservationResult(
        observation_id=oid,
        class_id="c1",
        student_id="s1",
        captured_at=captured_at,
        processed_at=time.time(),
        face_count=0 if emotion is None else 1,
        emotion=emotion,
        probabilities=None if emotion is None else [1.0, 0, 0, 0, 0, 0, 0],
    )


def test_an_older_result_written_later_does_not_replace_latest(redis_client):
    now = time.time()
    store.write_results(redis_client, [_result("absent", now, None)], 3600)  # the API, at once
    store.write_results(redis_client, [_result("face", now - 5, "angry")], 3600)  # a worker, later
    assert store.latest_results(redis_client, "c1")["s1"].observation_id == "absent"
    assert [r.observation_id for r in store.student_series(redis_client, "c1", "s1")] == ["face", "absent"]
    store.write_results(redis_client, [_result("newer", now + 1, "angry")], 3600)
    assert store.latest_results(redis_client, "c1")["s1"].observation_id == "newer"
