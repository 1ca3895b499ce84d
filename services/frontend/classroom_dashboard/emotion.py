"""A student's current emotion: the one definition behind the tile, the live stream, the JSON API,
the student page, the class timeline and the CSV export (so they can never disagree).

The current emotion *as of* an observation is the mean of the emotion probabilities of the student's
observations with a face and probabilities captured within the last ``window`` seconds up to and
including it (the attention window, ``ATTENTION_WINDOW_SECONDS``; capture times, like the attention
score), labelled with the emotion of the highest mean probability, or ``"uncertain"`` when that
mean probability is below ``min_confidence`` (``EMOTION_MIN_CONFIDENCE``). None when that
observation has no face (nobody to read) or the window holds no probabilities (crops lost).

Why a window mean and not the latest crop: a single 48x48 crop's label flickers (on the shared real
video the latest-crop label changed many times a minute, see services/frontend/README.md); a teacher
glancing at a tile wants the student's recent state, and a flat mean says honestly when there is none.
The probabilities are averaged as the results carry them (calibrated by the served model), so a
better-calibrated model needs no change here.

Pure functions without Flask: the dashboard passes its settings in, bench/emotion_stability.py reuses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from classroom_contract import EMOTIONS, ObservationResult

#: The label shown when the window's top mean probability is below the confidence threshold.
UNCERTAIN = "uncertain"
#: Every label a current emotion can have, in display order.
LABELS = (*EMOTIONS, UNCERTAIN)


@dataclass(frozen=True)
class CurrentEmotion:
    label: str  # one of LABELS
    confidence: float  # the top mean probability
    probabilities: tuple[float, ...]  # mean per emotion over the window, in EMOTIONS order
    observations: int  # how many observations were averaged

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "confidence": round(self.confidence, 4),
            "probabilities": [round(p, 4) for p in self.probabilities],
            "observations": self.observations,
        }


def label_of(mean: Sequence[float], min_confidence: float) -> str:
    """The emotion of the highest mean probability, or "uncertain" below `min_confidence`."""
    top = max(range(len(mean)), key=mean.__getitem__)
    return EMOTIONS[top] if float(mean[top]) >= min_confidence else UNCERTAIN


def emotions_over(
    series: Sequence[ObservationResult], window: float, min_confidence: float
) -> list[CurrentEmotion | None]:
    """The current emotion as of each observation of `series` (oldest first), in one pass.

    Each window's mean is taken over exactly the same probabilities in the same order whatever the
    series starts with, so the tile (a short series) and the CSV (a long one) print the same numbers.
    """
    usable = [r.face_count > 0 and r.probabilities is not None for r in series]
    rows = [r.probabilities for r, ok in zip(series, usable, strict=True) if ok]
    probabilities = [[float(p) for p in row] for row in rows]
    times = [r.captured_at for r, ok in zip(series, usable, strict=True) if ok]
    out: list[CurrentEmotion | None] = []
    lo = hi = 0  # the window is probabilities[lo:hi]
    for result in series:
        end = result.captured_at
        while hi < len(times) and times[hi] <= end:
            hi += 1
        while lo < hi and times[lo] <= end - window:
            lo += 1
        if result.face_count <= 0 or lo == hi:
            out.append(None)
            continue
        mean = _mean(probabilities[lo:hi])
        out.append(
            CurrentEmotion(
                label=label_of(mean, min_confidence),
                confidence=max(mean),
                probabilities=tuple(mean),
                observations=hi - lo,
            )
        )
    return out


def _mean(rows: list[list[float]]) -> list[float]:
    """Per-emotion mean of probability rows, in plain Python: the dashboard image has no NumPy."""
    return [sum(row[i] for row in rows) / len(rows) for i in range(len(EMOTIONS))]


def current_emotion(
    latest: ObservationResult, series: Sequence[ObservationResult], window: float, min_confidence: float
) -> CurrentEmotion | None:
    """The current emotion as of `latest`, given the student's recent `series` (any order, may hold it)."""
    earlier = [r for r in series if r.captured_at <= latest.captured_at and r.observation_id != latest.observation_id]
    return emotions_over([*sorted(earlier, key=lambda r: r.captured_at), latest], window, min_confidence)[-1]
