"""One current emotion (classroom_dashboard.emotion) behind the tile, the live tile, the JSON roster,
the student page, the class timeline and the CSV; "uncertain" below the threshold; none attention-only."""

from __future__ import annotations

import csv
import io
import re
import time

import pytest
from classroom_contract import EMOTIONS
from classroom_dashboard import create_app
from classroom_dashboard.emotion import UNCERTAIN, current_emotion, emotions_over

from tests.support.frontend import login, result, write

TILE_EMOTION = re.compile(r'<div class="emotion emo-([a-z]+)"')
MIX_TITLE = re.compile(r'<g class="mix-bucket"><title>[^<]*: ([^<]*)</title>')


def _with(probabilities: dict[str, float], **kwargs):
    """A result whose probabilities are `probabilities` (the rest spread evenly), label its argmax."""
    rest = (1 - sum(probabilities.values())) / (len(EMOTIONS) - len(probabilities))
    r = result(**kwargs)
    return r.model_copy(
        update={
            "probabilities": [probabilities.get(e, rest) for e in EMOTIONS],
            "emotion": max(probabilities, key=probabilities.get),
        }
    )


def _everywhere(client, student_id: str = "s1") -> dict[str, str | None]:
    """The current emotion of `student_id` as each view of the dashboard shows it."""
    views = {}
    body = client.get("/api/classes/7b/students").json
    views["json"] = next(s for s in body["students"] if s["student_id"] == student_id)["emotion"]
    page = client.get("/classes/7b").get_data(as_text=True)
    tile = page[page.index(f'id="tile-{student_id}"') :]
    views["tile"] = TILE_EMOTION.search(tile).group(1)
    student = client.get(f"/classes/7b/students/{student_id}").get_data(as_text=True)
    views["student_page"] = re.search(r'<b class="emo-([a-z]+)">[a-z]+</b><span>emotion now</span>', student).group(1)
    timeline = client.get("/classes/7b/timeline?minutes=10").get_data(as_text=True)
    views["timeline"] = MIX_TITLE.findall(timeline)[-1].split(" ")[0]  # the last bucket, one student
    rows = list(csv.DictReader(io.StringIO(client.get("/classes/7b/export.csv").get_data(as_text=True))))
    views["csv"] = [r for r in rows if r["student_id"] == student_id][-1]["current_emotion"]
    return views


def test_every_view_shows_the_window_mean_not_the_latest_crop(alice, redis_client):
    """Ten sad crops then one happy one: the student is still "sad" everywhere (before: "happy")."""
    now = time.time()
    write(
        redis_client,
        *(result(student_id="s1", at=now - 50 + 4 * i, emotion="sad") for i in range(10)),
        result(student_id="s1", at=now - 1, emotion="happy"),
    )
    assert alice.get("/api/classes/7b/students").json["students"][0]["emotion"] == "sad"  # was the crop's "happy"
    tile = alice.get("/classes/7b").get_data(as_text=True)
    assert TILE_EMOTION.search(tile).group(1) == "sad"  # was "happy"
    views = _everywhere(alice)
    assert views == dict.fromkeys(views, "sad")
    rows = list(csv.DictReader(io.StringIO(alice.get("/classes/7b/export.csv").get_data(as_text=True))))
    assert rows[-1]["emotion"] == "happy"  # the crop's own label stays in its column
    assert float(rows[-1]["current_emotion_confidence"]) == pytest.approx((10 * 0.94 + 0.01) / 11, abs=1e-4)
    s1 = alice.get("/api/classes/7b/students").json["students"][0]
    assert s1["emotion_window"]["observations"] == 11
    assert s1["probabilities"][EMOTIONS.index("happy")] == pytest.approx(0.94)  # the latest crop's, as stored


def test_old_results_leave_the_window(alice, redis_client):
    """Sad long ago, happy within the window: happy everywhere (the window is ATTENTION_WINDOW_SECONDS)."""
    now = time.time()
    write(
        redis_client,
        *(result(student_id="s1", at=now - 200 + 10 * i, emotion="sad") for i in range(10)),
        *(result(student_id="s1", at=now - 30 + 10 * i, emotion="happy") for i in range(3)),
    )
    views = _everywhere(alice)
    assert views == dict.fromkeys(views, "happy")


def test_below_the_confidence_threshold_every_view_says_uncertain(alice, redis_client):
    """Crops split between happy and sad: no emotion reaches the threshold on average."""
    now = time.time()
    write(
        redis_client,
        *(result(student_id="s1", at=now - 40 + 4 * i, emotion="happy" if i % 2 else "sad") for i in range(10)),
    )
    views = _everywhere(alice)
    assert views == dict.fromkeys(views, UNCERTAIN)


def _client(redis_url: str, crop_store: str, **settings):
    app = create_app(
        {"TESTING": True, "SECRET_KEY": "t", "REDIS_URL": redis_url, "CROP_STORE_URL": crop_store, **settings}
    )
    client = app.test_client()
    assert login(client, "alice").status_code == 302
    return client


def test_the_threshold_is_one_setting(redis_url, crop_store_server, classes, redis_client):
    now = time.time()
    write(redis_client, *(_with({"fear": 0.45}, student_id="s1", at=now - 20 + 5 * i) for i in range(4)))
    for threshold, expected in ((0.5, UNCERTAIN), (0.4, "fear")):
        client = _client(redis_url, crop_store_server, EMOTION_MIN_CONFIDENCE=threshold)
        views = _everywhere(client)
        assert views == dict.fromkeys(views, expected), threshold


def test_attention_only_shows_no_current_emotion(redis_url, crop_store_server, classes, redis_client):
    attention_only_client = _client(redis_url, crop_store_server, ATTENTION_ONLY=True)
    now = time.time()
    write(redis_client, *(result(student_id="s1", at=now - 20 + 5 * i, emotion="sad") for i in range(4)))
    s1 = attention_only_client.get("/api/classes/7b/students").json["students"][0]
    assert s1["emotion"] is None and s1["emotion_window"] is None
    exported = attention_only_client.get("/classes/7b/export.csv").get_data(as_text=True)
    assert "current_emotion" not in exported and "sad" not in exported
    timeline = attention_only_client.get("/classes/7b/timeline?minutes=10").get_data(as_text=True)
    assert "sad" not in timeline and "uncertain" not in timeline


# --- the definition itself ----------------------------------------------------------------------


def test_absent_and_lost_crops():
    """No face now: no emotion. A face whose crop was lost (no probabilities) reuses the window."""
    now = 1000.0
    series = [
        result(at=now - 10, emotion="angry"),
        result(at=now - 5, emotion=None),  # crop store lost the crop: face, no probabilities
        result(at=now, present=False),
    ]
    current = emotions_over(series, 60, 0.5)
    assert current[0].label == "angry" and current[1].label == "angry" and current[1].observations == 1
    assert current[2] is None
    assert emotions_over([result(at=now, emotion=None)], 60, 0.5) == [None]


def test_tile_and_long_series_give_identical_numbers():
    """current_emotion (the tile, a short history) equals emotions_over on a long series (the CSV)."""
    now = 10_000.0
    series = [
        _with({EMOTIONS[i % 7]: 0.3 + 0.05 * (i % 5)}, at=now - 3000 + 2.5 * i, student_id="s1") for i in range(1201)
    ]
    long = emotions_over(series, 60, 0.5)
    for k in (30, 500, 1200):
        short = [r for r in series if r.captured_at > series[k].captured_at - 90]
        assert current_emotion(series[k], short, 60, 0.5) == long[k]
    assert {e.label for e in long} >= {UNCERTAIN}
