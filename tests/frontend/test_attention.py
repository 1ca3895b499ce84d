"""The attention score: per observation, smoothing, absence as its own state."""

from __future__ import annotations

import pytest
from classroom_contract import EMOTIONS
from classroom_dashboard import attention

from tests.support.frontend import result

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
