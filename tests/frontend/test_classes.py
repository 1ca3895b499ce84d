"""The class page, the JSON roster, the live stream, the student page, CSV export and erasure."""

from __future__ import annotations

import csv
import io
import json
import time

import pytest
from classroom_contract import EMOTIONS, keys, store
from classroom_dashboard import create_app

from tests.support.frontend import PASSWORD, csrf_from, login, result, write


def test_json_roster_has_the_latest_result_per_student(alice, redis_client):
    now = time.time()
    write(
        redis_client,
        result(student_id="s1", at=now - 90, emotion="sad"),  # outside the 60 s emotion window
        result(student_id="s1", at=now - 1, emotion="happy", yaw=3),
        result(student_id="s2", at=now - 2, present=False),
    )
    body = alice.get("/api/classes/7b/students").json
    assert body["class_id"] == "7b" and body["emotions_enabled"] is True
    assert body["emotions"] == list(EMOTIONS)
    by_id = {s["student_id"]: s for s in body["students"]}
    assert set(by_id) == {"s1", "s2"}

    s1 = by_id["s1"]
    assert s1["face_present"] is True
    assert s1["emotion"] == "happy"
    assert s1["probabilities"][EMOTIONS.index("happy")] == pytest.approx(0.94)
    assert s1["captured_at"] == pytest.approx(now - 1)
    assert s1["head_yaw"] == 3
    assert 0 <= s1["attention"]["score"] <= 100
    assert s1["attention"]["state"] == "attentive"

    s2 = by_id["s2"]
    assert s2["face_present"] is False and s2["emotion"] is None and s2["probabilities"] is None
    assert s2["attention"]["state"] == "away"  # no face, but not yet for ABSENT_AFTER_SECONDS


def test_students_needing_attention_come_first(alice, redis_client):
    now = time.time()
    write(
        redis_client,
        result(student_id="a-fine", at=now - 1),
        result(student_id="b-gone", at=now - 60, present=False),
        result(student_id="b-gone", at=now - 1, present=False),
        result(student_id="c-looks-away", at=now - 1, yaw=80),
    )
    students = alice.get("/api/classes/7b/students").json["students"]
    assert [s["student_id"] for s in students] == ["b-gone", "c-looks-away", "a-fine"]
    assert [s["attention"]["state"] for s in students] == ["absent", "distracted", "attentive"]
    assert [s["attention"]["needs_attention"] for s in students] == [True, True, False]

    page = alice.get("/classes/7b").get_data(as_text=True)
    assert page.index('id="tile-b-gone"') < page.index('id="tile-c-looks-away"') < page.index('id="tile-a-fine"')
    assert 'data-state="absent"' in page and "flagged" in page


def test_class_page_renders_tiles_with_sparklines(alice, redis_client):
    now = time.time()
    write(redis_client, *(result(student_id="s1", at=now - 300 + 10 * i) for i in range(30)))
    page = alice.get("/classes/7b").get_data(as_text=True)
    assert 'id="tile-s1"' in page
    assert 'href="/classes/7b/students/s1"' in page
    assert '<svg class="sparkline"' in page and "<polyline" in page
    assert "neutral" in page
    assert "data-events-url=" in page


def _sse_events(response, wanted: int) -> list[tuple[str, dict]]:
    events, buffer = [], ""
    for chunk in response.response:
        buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != ":")
            if "event" in fields:
                events.append((fields["event"], json.loads(fields["data"])))
        if len([e for e in events if e[0] != "hello"]) >= wanted:
            break
    response.close()
    return events


def test_event_stream_sends_a_tile_per_new_result(alice, redis_client):
    since = "0-0"
    write(redis_client, result(student_id="s1", emotion="surprise"), result(student_id="s1"))
    response = alice.get(f"/api/classes/7b/events?since={since}", buffered=False)
    assert response.mimetype == "text/event-stream"
    events = _sse_events(response, wanted=1)
    assert events[0][0] == "hello"
    kind, data = events[1]
    assert kind == "tile"  # two results of one student in one read: coalesced into one tile
    assert data["student"]["student_id"] == "s1"
    assert 'id="tile-s1"' in data["html"]


def test_event_stream_resumes_after_last_event_id(alice, redis_client):
    write(redis_client, result(student_id="old"))
    last = redis_client.xrevrange(keys.class_events("7b"), count=1)[0][0].decode()
    write(redis_client, result(student_id="new"))
    response = alice.get("/api/classes/7b/events", headers={"Last-Event-ID": last}, buffered=False)
    tiles = [d["student"]["student_id"] for k, d in _sse_events(response, wanted=1) if k == "tile"]
    assert tiles == ["new"]


def test_student_page_has_timeline_and_emotion_chart(alice, redis_client):
    now = time.time()
    write(
        redis_client,
        *(result(student_id="s1", at=now - 720 + 20 * i, emotion="happy" if i % 3 else "sad") for i in range(30)),
        result(student_id="s1", at=now - 60, present=False),
        result(student_id="s1", at=now - 5, present=False),
    )
    page = alice.get("/classes/7b/students/s1").get_data(as_text=True)
    assert '<svg class="timeline"' in page and 'class="band-absent"' in page
    # the current emotion as of each of the 30 with a face (window 60 s = the last 3): sad alone, then
    # sad+happy (a tie below 50%: uncertain), then always 2 happy + 1 sad (happy): 28 of 30
    assert '<svg class="distribution"' in page and "happy: 93%" in page and "uncertain: 3%" in page
    assert alice.get("/classes/7b/students/nobody").status_code == 404


def test_student_page_is_404_once_the_latest_result_is_past_retention(redis_url, classes, redis_client):
    """The one lookup of the student's latest result applies the retention horizon, as the roster does."""
    app = create_app({"TESTING": True, "SECRET_KEY": "t", "REDIS_URL": redis_url, "RESULT_RETENTION_SECONDS": 60})
    client = app.test_client()
    login(client, "alice", PASSWORD)
    write(redis_client, result(student_id="old", at=time.time() - 120), result(student_id="new"))
    assert client.get("/classes/7b/students/new").status_code == 200
    assert client.get("/classes/7b/students/old").status_code == 404
    assert [s["student_id"] for s in client.get("/api/classes/7b/students").json["students"]] == ["new"]


def test_csv_export_has_every_result(alice, redis_client):
    now = time.time()
    write(redis_client, result(student_id="s1", at=now - 2, emotion="fear"), result(student_id="s2", at=now - 1))
    write(redis_client, result(student_id="s2", at=now, present=False))
    response = alice.get("/classes/7b/export.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["student_id"], r["face_count"]) for r in rows] == [("s1", "1"), ("s2", "1"), ("s2", "0")]
    assert rows[0]["emotion"] == "fear" and float(rows[0]["p_fear"]) == pytest.approx(0.94)
    assert rows[2]["attention"] == "0.0" and rows[2]["emotion"] == ""


def test_delete_student_erases_their_data(alice, redis_client):
    write(redis_client, result(student_id="s1"), result(student_id="s2"))
    page = alice.get("/classes/7b/students/s1").get_data(as_text=True)
    response = alice.post("/classes/7b/students/s1/delete", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 302
    assert store.student_series(redis_client, "7b", "s1") == []
    assert "s1" not in store.latest_results(redis_client, "7b")
    assert store.class_students(redis_client, "7b") == ["s2"]
    stream = redis_client.xrange(keys.class_events("7b"))
    assert [json.loads(fields[b"result"])["student_id"] for _, fields in stream] == ["s2"]
    assert [s["student_id"] for s in alice.get("/api/classes/7b/students").json["students"]] == ["s2"]


def test_delete_student_also_erases_their_queued_work(alice, redis_client, crop_store):
    """Issue #14: the dashboard's erase path is `erase_student`: queued crops, jobs and coalescing
    entries go too, not only the stored results."""
    import uuid

    import numpy as np
    from classroom_contract import Observation, ObservationBatch, encode_crop
    from classroom_inference.ingest import ingest
    from classroom_inference.queues import inference_queue
    from classroom_inference.settings import Settings

    write(redis_client, result(student_id="s1"))
    crop = encode_crop(np.full((48, 48), 7, np.uint8).tobytes())
    batch = ObservationBatch(
        observations=[
            Observation(observation_id=uuid.uuid4(), captured_at=time.time(), face_count=1, crop=crop) for _ in range(2)
        ],
    )
    queue = inference_queue(redis_client)
    outcome = ingest(redis_client, queue, "7b", "s1", batch, Settings(), crop_store)
    assert crop_store.exists(keys.crops(outcome.batch_id)) and queue.job_ids == [outcome.batch_id]
    page = alice.get("/classes/7b/students/s1").get_data(as_text=True)
    assert alice.post("/classes/7b/students/s1/delete", data={"csrf_token": csrf_from(page)}).status_code == 302
    assert not crop_store.exists(keys.crops(outcome.batch_id))
    assert queue.job_ids == [] and not redis_client.exists(f"rq:job:{outcome.batch_id}")
    assert not redis_client.exists(keys.pending_batches(), keys.batch_pending(outcome.batch_id))


def test_other_teacher_cannot_delete(client, classes, redis_client):
    write(redis_client, result(class_id="7b", student_id="s1"))
    login(client, "bob")
    token = csrf_from(client.get("/").get_data(as_text=True))
    assert client.post("/classes/7b/students/s1/delete", data={"csrf_token": token}).status_code == 403
    assert "s1" in store.latest_results(redis_client, "7b")


@pytest.fixture
def attention_only_client(redis_url, classes):
    app = create_app({"TESTING": True, "SECRET_KEY": "t", "REDIS_URL": redis_url, "ATTENTION_ONLY": True})
    client = app.test_client()
    login(client, "alice", PASSWORD)
    return client


def test_attention_only_mode_shows_no_emotions(attention_only_client, redis_client):
    client = attention_only_client
    write(redis_client, result(student_id="s1", emotion="disgust", yaw=0))
    body = client.get("/api/classes/7b/students").json
    assert body["emotions_enabled"] is False and body["emotions"] == []
    s1 = body["students"][0]
    assert s1["emotion"] is None and s1["probabilities"] is None
    assert s1["attention"]["score"] == 100.0  # head pose only: disgust does not lower it
    for page in (client.get("/classes/7b"), client.get("/classes/7b/students/s1")):
        html = page.get_data(as_text=True).lower()
        assert "disgust" not in html and "emotion" not in html.replace("no emotions", "")
    exported = client.get("/classes/7b/export.csv").get_data(as_text=True)
    assert "disgust" not in exported and "emotion" not in exported
