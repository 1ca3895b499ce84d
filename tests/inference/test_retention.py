"""Issue #14, finding 3: RESULT_RETENTION_SECONDS applies to every stored view, not just the series.

An observation 8 days old (retention 7 days) must be gone from the roster (student set), the
latest-result hash and the live stream: written long ago and never touched again (a quiet class,
cleaned by the workers' periodic sweep), and arriving late through the API (expired on arrival,
stored nowhere). Real processes: the session's Redis and crop store, `classroom-api`, and a
`classroom-worker` whose sweep runs every second.
"""

from __future__ import annotations

import time

import pytest
from classroom_contract import ObservationResult, keys, store

from tests.support.inference import Api, Worker, observation, post
from tests.support.procs import wait_until

pytestmark = pytest.mark.slow

DAY = 24 * 3600


def _old_result(class_id: str, student_id: str, age_s: float) -> ObservationResult:
    t = time.time() - age_s
    return ObservationResult(
        observation_id=f"old-{student_id}",
        class_id=class_id,
        student_id=student_id,
        captured_at=t,
        processed_at=t,
        face_count=0,
    )


def _write_as_of_then(client, result: ObservationResult) -> None:
    """Store `result` the way it was stored back then: stream entry id = its write time."""
    body = result.model_dump_json()
    client.zadd(keys.student_series(result.class_id, result.student_id), {body: result.captured_at})
    client.hset(keys.class_latest(result.class_id), result.student_id, body)
    client.sadd(keys.class_students(result.class_id), result.student_id)
    client.xadd(keys.class_events(result.class_id), {"result": body}, id=f"{int(result.captured_at * 1000)}-0")


def _everywhere(client, class_id: str, student_id: str) -> dict[str, bool]:
    stream = [f[b"result"] for _, f in client.xrange(keys.class_events(class_id))]
    return {
        "students set": student_id in store.class_students(client, class_id),
        "latest": client.hexists(keys.class_latest(class_id), student_id),
        "stream": any(f'"student_id":"{student_id}"'.encode() in entry for entry in stream),
        "series": bool(store.student_series(client, class_id, student_id)),
    }


def test_expired_results_leave_every_view(redis_url, redis_client, klass, tmp_path):
    class_id = klass.class_id
    quiet_class = "quiet-class"  # nobody writes to it any more: only the sweep can clean it
    _write_as_of_then(redis_client, _old_result(quiet_class, "left-school", 8 * DAY))
    _write_as_of_then(redis_client, _old_result(class_id, "old", 8 * DAY))
    _write_as_of_then(redis_client, _old_result(class_id, "recent", 6 * DAY))  # inside the window: kept
    retention = {"result_retention_seconds": 7 * DAY}

    api = Api(tmp_path, redis_url, **retention)
    try:
        url = api.url + "/v1/observations"
        late = observation(None, captured_at=time.time() - 8 * DAY)  # an outbox emptied 8 days late
        assert post(url, {"observations": [late]}, klass.credential("late")).status == 200
        assert post(url, {"observations": [observation(None)]}, klass.credential("now")).status == 200
        assert _everywhere(redis_client, class_id, "late") == dict.fromkeys(
            _everywhere(redis_client, class_id, "late"), False
        )

        worker = Worker(
            tmp_path, redis_url, maintenance_interval_s=1, retention_sweep_interval_s=1, **retention
        )  # fmt: skip
        try:
            wait_until(
                lambda: (
                    not any(_everywhere(redis_client, quiet_class, "left-school").values())
                    and not any(_everywhere(redis_client, class_id, "old").values())
                ),
                timeout=60,
                interval=0.3,
                what="the retention sweep to remove the 8-day-old results",
            )
        finally:
            worker.stop()
    finally:
        api.stop()
    for student in ("recent", "now"):
        assert all(_everywhere(redis_client, class_id, student).values()), student
    assert not redis_client.exists(keys.class_latest(quiet_class), keys.class_students(quiet_class))


def test_reads_skip_expired_latest_entries_between_sweeps(redis_client):
    _write_as_of_then(redis_client, _old_result("c-read", "old", 8 * DAY))
    assert "old" in store.latest_results(redis_client, "c-read")  # still stored: no sweep yet
    assert store.latest_results(redis_client, "c-read", since=time.time() - 7 * DAY) == {}
