"""The attention score: per observation, smoothing, absence as its own state; one score in every view."""

from __future__ import annotations

import csv
import io
import re
import time

import pytest
from classroom_contract import EMOTIONS
from classroom_dashboard import attention, records, timeline
from classroom_dashboard.timeline import class_timeline

from tests.support.frontend import result, write

T0 = 1_700_000_000.0
SETTINGS = dict(window=60, absent_after=30, offline_after=120, threshold=50, sparkline_seconds=600)


def assess(series, now=None, **overrides):
    latest = max(series, key=lambda r: r.captured_at)
    return attention.assess(
        latest, series, now=latest.processed_at if now is None else now, **{**SETTINGS, **overrides}
    )


def test_absent_observation_scores_zero():
    assert attention.observation_score(result(at=T0, present=False)) == 0.0


def test_facing_the_screen_with_a_neutral_face_is_near_full_attention():
    # 0.94 neutral + 0.01 of each other emotion; CI is normalised by the top weight (neutral, 0.9)
    ci = (0.94 * 0.9 + 0.01 * (0.25 + 0.2 + 0.3 + 0.6 + 0.3 + 0.6)) / 0.9
    expected = 100 * (0.6 * 1.0 + 0.4 * ci)
    assert attention.observation_score(result(at=T0, emotion="neutral", yaw=0, pitch=0)) == pytest.approx(expected)
    assert expected > 95


def test_head_pose_lowers_the_score_linearly():
    assert attention.head_pose_factor(0, 0) == 1.0
    assert attention.head_pose_factor(10, -10) == 1.0  # within 15 degrees
    assert attention.head_pose_factor(30, 0) == pytest.approx(0.5)  # halfway from 15 to 45
    assert attention.head_pose_factor(0, -60) == 0.0
    assert attention.head_pose_factor(None, None) is None
    turned = attention.observation_score(result(at=T0, yaw=90))
    assert turned < attention.observation_score(result(at=T0, yaw=30)) < attention.observation_score(result(at=T0))


def test_concentration_index_follows_the_emotion_weights():
    def ci(emotion):
        return attention.concentration_index([1.0 if e == emotion else 0.0 for e in EMOTIONS])

    assert ci("neutral") == 1.0
    assert ci("happy") == pytest.approx(0.6 / 0.9)
    assert ci("neutral") > ci("happy") > ci("sad") > ci("angry") > ci("disgust")
    assert attention.concentration_index(None) is None


def test_emotions_are_ignored_when_disabled():
    bored = result(at=T0, emotion="disgust", yaw=0)
    assert attention.observation_score(bored, use_emotions=True) < 80
    assert attention.observation_score(bored, use_emotions=False) == 100.0


def test_present_face_without_pose_or_emotions_scores_full():
    assert attention.observation_score(result(at=T0, emotion=None, yaw=None, pitch=None)) == 100.0


def test_smoothing_averages_the_window_only():
    series = [result(at=T0 - 120, yaw=90), result(at=T0 - 30, yaw=90), result(at=T0, yaw=0)]
    # the observation 120 s ago is outside the 60 s window
    score = attention.smoothed_score(series, end=T0, window=60)
    expected = (attention.observation_score(series[1]) + attention.observation_score(series[2])) / 2
    assert score == pytest.approx(expected)
    assert attention.smoothed_score(series, end=T0 + 1000, window=60) is None


def test_absence_is_not_averaged_into_the_score():
    series = [result(at=T0 - 20, yaw=0), result(at=T0 - 10, present=False), result(at=T0, yaw=0)]
    assert attention.smoothed_score(series, end=T0, window=60) == attention.observation_score(series[-1])
    assert attention.smoothed_score(series[1:2], end=T0 - 10, window=60) is None
    back = assess([*(result(at=T0 - 50 + i, present=False) for i in range(40)), result(at=T0, yaw=0)])
    assert back.state == "attentive"  # just came back: not "distracted" because of the absence


def test_short_absence_is_away_long_absence_is_absent():
    present = result(at=T0 - 100)
    short = [present, result(at=T0 - 10, present=False), result(at=T0, present=False)]
    long = [present, result(at=T0 - 40, present=False), result(at=T0, present=False)]
    assert assess(short).state == "away" and not assess(short).needs_attention
    a = assess(long)
    assert a.state == "absent" and a.needs_attention and a.absent_seconds == 40


def test_low_smoothed_score_is_distracted_and_flagged():
    series = [result(at=T0 - i * 5, yaw=80) for i in range(6)]
    a = assess(series)
    assert a.state == "distracted" and a.needs_attention and a.score < 50


def test_no_recent_processing_is_offline():
    series = [result(at=T0)]
    assert assess(series, now=T0 + 500).state == "offline"
    assert assess(series, now=T0 + 1).state == "attentive"


def test_sparkline_buckets_and_gaps():
    series = [result(at=T0 - 590, present=False), result(at=T0)]
    values = attention.sparkline(series, end=T0, span=600, buckets=10)
    assert len(values) == 10
    assert values[0] == 0.0 and values[-1] is not None and values[-1] > 90
    assert values[1:-1] == [None] * 8


# --- one score everywhere: the tile, the class timeline, the student page and the CSV ------------

BUCKET_TITLE = re.compile(r'<g class="bucket"><title>[^<]*: attention (\d+), \d+ present, \d+ absent</title>')
STUDENT_MEAN = re.compile(r"<div><b>(\d+)</b><span>mean attention</span></div>")


def _csv_scores(rows: list[dict], student_id: str) -> list[float]:
    """The CSV's attention column of one student's rows with a face."""
    return [float(r["attention"]) for r in rows if r["student_id"] == student_id and r["face_count"] != "0"]


def _mean(values):
    return sum(values) / len(values)


def test_tile_timeline_student_page_and_csv_show_one_score(alice, redis_client):
    """Two students, 50 s of mixed head poses and two absences: every view's number is the CSV's mean."""
    now = time.time()
    yaws = [0, 20, 30, 40, 25, 0, 35, 10, 45, 5]
    write(
        redis_client,
        *(result(student_id="s1", at=now - 50 + 5 * i, yaw=y, present=i not in (3, 6)) for i, y in enumerate(yaws)),
        *(result(student_id="s2", at=now - 50 + 5 * i, yaw=y / 2, emotion="sad") for i, y in enumerate(yaws)),
    )
    rows = list(csv.DictReader(io.StringIO(alice.get("/classes/7b/export.csv").get_data(as_text=True))))
    expected = {s: _mean(_csv_scores(rows, s)) for s in ("s1", "s2")}  # every row is in the 60 s window
    class_mean = _mean(list(expected.values()))
    assert abs(expected["s1"] - expected["s2"]) > 5  # the two students differ, so a mix-up would show

    body = alice.get("/api/classes/7b/students").json
    tiles = {s["student_id"]: s["attention"]["score"] for s in body["students"]}
    assert tiles == {s: pytest.approx(v, abs=0.1) for s, v in expected.items()}
    assert body["summary"]["mean_score"] == pytest.approx(class_mean, abs=0.15)

    timeline = alice.get("/classes/7b/timeline?minutes=10").get_data(as_text=True)
    assert int(BUCKET_TITLE.findall(timeline)[-1]) == pytest.approx(class_mean, abs=0.6)  # drawn rounded

    for student_id, score in expected.items():
        page = alice.get(f"/classes/7b/students/{student_id}?minutes=15").get_data(as_text=True)
        assert int(STUDENT_MEAN.search(page).group(1)) == pytest.approx(score, abs=0.6)


def test_every_view_takes_its_numbers_from_attention(redis_client):
    """The same observations through the functions behind each view, slice by slice, against the CSV."""
    now = time.time()
    series = [
        result(at=now - 597 + 7.3 * i, yaw=(13 * i) % 50, pitch=(7 * i) % 20, present=i % 9 not in (4, 5, 6))
        for i in range(80)
    ]
    write(redis_client, *series)
    rows = list(csv.DictReader(io.StringIO("".join(records.csv_chunks(redis_client, "7b", 0, use_emotions=True)))))
    score_of = {r["observation_id"]: float(r["attention"]) for r in rows}
    latest = series[-1]
    start, end = now - 600, latest.captured_at

    def csv_mean(lo, hi, absent_as_zero=False):
        """Mean CSV score of the rows captured in [lo, hi) (absent ones left out, or counted as 0)."""
        inside = [r for r in series if lo <= r.captured_at < hi and (absent_as_zero or r.face_count > 0)]
        return _mean([score_of[r.observation_id] for r in inside]) if inside else None

    tile = attention.assess(latest, series, now=latest.processed_at, **SETTINGS)
    assert tile.score == pytest.approx(csv_mean(end - 60 + 1e-6, end + 1e-6), abs=0.1)

    page = timeline.student_timeline(series, start, end, window=60, buckets=40)
    assert page["stats"]["mean_score"] == pytest.approx(csv_mean(start, end + 1e-6), abs=0.05)
    assert sum(b.absent for b in page["buckets"]) > 0
    for bucket in page["buckets"]:
        expected = csv_mean(bucket.t0, bucket.t1 if bucket.t1 < end else end + 1e-6)
        assert bucket.score == (None if expected is None else pytest.approx(expected, abs=0.05))

    sparkline = attention.sparkline(series, end, span=600, buckets=30)
    width = 600 / 30
    for i, value in enumerate(sparkline):
        t0 = end - 600 + i * width
        expected = csv_mean(t0, t0 + width if i < 29 else end + 1e-6, absent_as_zero=True)
        assert value == (None if expected is None else pytest.approx(expected, abs=0.1))

    rows = class_timeline({"s1": series}, start, end, 60, window=60)
    assert rows[-1]["score"] == pytest.approx(tile.score, abs=0.05)
    for row in rows:
        smoothed = attention.smoothed_score(series, row["t1"], 60)
        assert row["score"] == (None if smoothed is None else pytest.approx(smoothed, abs=1e-9))
