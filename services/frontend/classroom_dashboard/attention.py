"""The attention score: what one observation says about a student's attention, and how it is smoothed.

Per observation (0-100):

* **Absent** (``face_count == 0``): 0.
* **Present**: a weighted mean of the components that are known for that observation:

  - *head pose* (weight 0.6): 1 while the head is within ``HEAD_FULL_DEG`` of facing the screen,
    falling linearly to 0 at ``HEAD_ZERO_DEG`` (angle = sqrt(yaw^2 + pitch^2), degrees);
  - *concentration index* (weight 0.4, never in attention-only mode): the emotion probabilities
    times an engagement weight per emotion, normalised so that the most engaged emotion scores 1.
    The weights follow the concentration index of Sharma et al., "Student Engagement Detection
    Using Emotion Analysis, Eye Tracking and Head Movement with Machine Learning" (2019), where
    neutral counts as the most concentrated state and disgust as the least.

  With neither component known (no head pose, emotions off or missing) a present face scores 100:
  presence is all we know.

One definition over time: the attention score of any span of time is the mean of the
per-observation scores of the observations *with a face* in it (``mean_score``). Absence is not
averaged in: it is its own state below, and counting it in the score too would flag a student who
just came back as "distracted" for a whole window. Every view takes its numbers from here:

* the tile: ``smoothed_score``, the mean over the ``window`` seconds up to the student's newest
  observation (capture times are the laptop's clock, so a skewed laptop clock cannot distort it);
* the class timeline: per bucket, the mean over the students (``class_score``) of each one's
  ``smoothed_scores`` at the end of the bucket;
* the student page: ``mean_score`` of the range, and ``score_buckets`` for its chart;
* the CSV: ``observation_score`` per row.

One deliberate exception, drawn but never stated as a number: the tile's ``sparkline`` counts an
absent observation as 0, so a gap in presence shows as a dip in the tiny trend (which has no other
way of showing absence). Ranges are half-open, ``(start, end]``, like the smoothing window.

States, in the order they are decided:

* ``offline``: nothing processed for the student for ``offline_after`` seconds (server clock);
* ``absent``: no face for at least ``absent_after`` seconds - its own state, not just a low score;
* ``away``: no face, but for less than ``absent_after`` (looked away, bent down to write);
* ``distracted``: smoothed score below ``threshold``;
* ``attentive``: otherwise.

``absent`` and ``distracted`` students "need attention": the dashboard flags them and shows them first.
This is a coarse, explainable heuristic for a teacher's glance, not a measurement of a person.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from classroom_contract import EMOTIONS, ObservationResult

#: Engagement weight per emotion (Sharma et al. 2019, concentration index).
EMOTION_WEIGHTS: dict[str, float] = {
    "neutral": 0.9,
    "happy": 0.6,
    "surprise": 0.6,
    "sad": 0.3,
    "fear": 0.3,
    "angry": 0.25,
    "disgust": 0.2,
}
HEAD_FULL_DEG = 15.0
HEAD_ZERO_DEG = 45.0
HEAD_WEIGHT = 0.6
EMOTION_WEIGHT = 0.4

STATES = ("offline", "absent", "away", "distracted", "attentive")
NEEDS_ATTENTION = frozenset({"absent", "distracted"})


def head_pose_factor(yaw: float | None, pitch: float | None) -> float | None:
    """1.0 facing the screen, 0.0 looking away; None when the pose is unknown."""
    if yaw is None and pitch is None:
        return None
    angle = math.hypot(yaw or 0.0, pitch or 0.0)
    if angle <= HEAD_FULL_DEG:
        return 1.0
    if angle >= HEAD_ZERO_DEG:
        return 0.0
    return 1.0 - (angle - HEAD_FULL_DEG) / (HEAD_ZERO_DEG - HEAD_FULL_DEG)


def concentration_index(probabilities: Sequence[float] | None) -> float | None:
    """Sum of probability x engagement weight, scaled to 0..1; None without probabilities."""
    if not probabilities:
        return None
    total = sum(probabilities)
    if total <= 0:
        return None
    weighted = sum(p * EMOTION_WEIGHTS[name] for name, p in zip(EMOTIONS, probabilities, strict=True))
    return min(1.0, weighted / total / max(EMOTION_WEIGHTS.values()))


def observation_score(result: ObservationResult, use_emotions: bool = True) -> float:
    """The 0-100 attention score of one observation (see the module docstring)."""
    if result.face_count <= 0:
        return 0.0
    parts: list[tuple[float, float]] = []
    head = head_pose_factor(result.head_yaw, result.head_pitch)
    if head is not None:
        parts.append((HEAD_WEIGHT, head))
    if use_emotions:
        ci = concentration_index(result.probabilities)
        if ci is not None:
            parts.append((EMOTION_WEIGHT, ci))
    if not parts:
        return 100.0
    return 100.0 * sum(w * v for w, v in parts) / sum(w for w, _ in parts)


def mean_score(results: Iterable[ObservationResult], use_emotions: bool = True) -> float | None:
    """The attention score of a span: mean score of its observations with a face; None without one."""
    scores = [observation_score(r, use_emotions) for r in results if r.face_count > 0]
    return sum(scores) / len(scores) if scores else None


def in_span(result: ObservationResult, start: float, end: float) -> bool:
    """Whether `result` was captured in the span (start, end]: every span here is half-open this way."""
    return start < result.captured_at <= end


def smoothed_score(
    series: Sequence[ObservationResult], end: float, window: float, use_emotions: bool = True
) -> float | None:
    """The tile's score: `mean_score` of the span (end - window, end]; None when no face was in it."""
    return mean_score((r for r in series if in_span(r, end - window, end)), use_emotions)


def smoothed_scores(
    series: Sequence[ObservationResult], ends: Sequence[float], window: float, use_emotions: bool = True
) -> list[float | None]:
    """`smoothed_score` at each of the increasing `ends`, in one pass (a running sum, two pointers).

    For the class timeline, which needs it for every student at every bucket end; `series` must be
    oldest first. Equal to `smoothed_score` up to rounding in the last bits of the running sum.
    """
    scores = [observation_score(r, use_emotions) if r.face_count > 0 else None for r in series]
    out: list[float | None] = []
    lo = hi = 0
    total, count = 0.0, 0
    for end in ends:
        while hi < len(series) and series[hi].captured_at <= end:  # enters the window
            if scores[hi] is not None:
                total, count = total + scores[hi], count + 1
            hi += 1
        while lo < hi and series[lo].captured_at <= end - window:  # leaves it
            if scores[lo] is not None:
                total, count = total - scores[lo], count - 1
            lo += 1
        out.append(total / count if count else None)
    return out


def class_score(scores: Iterable[float | None]) -> float | None:
    """A class's score: the mean of its students' scores (those without one left out); None if none has one."""
    known = [s for s in scores if s is not None]
    return sum(known) / len(known) if known else None


@dataclass
class Bucket:
    """One time slice of a series: the summed scores of its observations with a face, and the counts."""

    t0: float
    t1: float
    total: float = 0.0
    present: int = 0
    observations: int = 0

    @property
    def score(self) -> float | None:
        """`mean_score` of the slice."""
        return self.total / self.present if self.present else None

    @property
    def absent(self) -> bool:
        """Observations in the slice, none with a face: the student page shades it."""
        return self.observations > 0 and self.present == 0


def score_buckets(
    series: Iterable[ObservationResult], start: float, end: float, buckets: int, use_emotions: bool = True
) -> list[Bucket]:
    """`buckets` equal slices of (start, end], each with the scores of the observations captured in it.

    An observation on the boundary between two slices counts in the later one; one at `end`, in the last.
    """
    width = (end - start) / buckets
    rows = [Bucket(start + i * width, start + (i + 1) * width) for i in range(buckets)]
    for result in series:
        if in_span(result, start, end):
            row = rows[min(buckets - 1, int((result.captured_at - start) / width))]
            row.observations += 1
            if result.face_count > 0:
                row.total += observation_score(result, use_emotions)
                row.present += 1
    return rows


def absent_for(series: Sequence[ObservationResult], latest: ObservationResult) -> float:
    """Seconds without a face up to `latest` (0 when a face is present), by capture time."""
    if latest.face_count > 0:
        return 0.0
    since = latest.captured_at
    for result in reversed(series):
        if result.captured_at > latest.captured_at:
            continue
        if result.face_count > 0:
            break
        since = result.captured_at
    return latest.captured_at - since


def sparkline(
    series: Sequence[ObservationResult], end: float, span: float, buckets: int = 30, use_emotions: bool = True
) -> list[float | None]:
    """The tile's tiny trend: per slice of (end - span, end], the mean score with absence counted as 0.

    The one place absence is averaged in (see the module docstring); None for a slice with no data.
    """
    rows = score_buckets(series, end - span, end, buckets, use_emotions)
    return [round(r.total / r.observations, 1) if r.observations else None for r in rows]


@dataclass
class Assessment:
    state: str
    score: float | None
    absent_seconds: float
    needs_attention: bool
    sparkline: list[float | None] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def assess(
    latest: ObservationResult,
    series: Sequence[ObservationResult],
    *,
    now: float,
    window: float,
    absent_after: float,
    offline_after: float,
    threshold: float,
    sparkline_seconds: float = 600,
    use_emotions: bool = True,
) -> Assessment:
    """State, smoothed score and sparkline of one student from their newest result and recent series."""
    unique = {r.observation_id: r for r in [*series, latest]}
    history = sorted(unique.values(), key=lambda r: r.captured_at)
    score = smoothed_score(history, latest.captured_at, window, use_emotions)
    away = absent_for(history, latest)
    if now - latest.processed_at > offline_after:
        state = "offline"
    elif latest.face_count <= 0:
        state = "absent" if away >= absent_after else "away"
    elif score is not None and score < threshold:
        state = "distracted"
    else:
        state = "attentive"
    return Assessment(
        state=state,
        score=None if score is None else round(score, 1),
        absent_seconds=round(away, 1),
        needs_attention=state in NEEDS_ATTENTION,
        sparkline=sparkline(history, latest.captured_at, sparkline_seconds, use_emotions=use_emotions),
    )
