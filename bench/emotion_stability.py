"""How often the emotion a teacher sees changes: the latest crop's label vs the dashboard's window mean.

    python -m bench.emotion_stability [--video PATH] [--rate 2] [--window 60] [--min-confidence 0.5]
                                      [--model models/emotion/5] [--fer PATH] [--out reports/emotion-stability]

1. The shared real video is sampled at --rate per second; each sample goes through the capture
   agent's own path (classroom_capture.detector.analyse: the default detector, the largest face,
   its 48x48 crop) and the served model (classroom_inference LocalPredictor on --model).
2. Two definitions of the label shown are applied to the same probabilities: *before*, the latest
   crop's argmax; *after*, classroom_dashboard.emotion (mean over the last --window seconds,
   "uncertain" below --min-confidence). Printed: label changes, and changes per minute of video.
3. The threshold's evidence: on FER2013 PublicTest (--fer; skipped when absent) the served model's
   accuracy and coverage among crops whose top probability reaches each candidate threshold.

Writes <out>/stability.json and <out>/labels.png (labels over time, before vs after). The video and
the dataset stay where they are (never copied into the repository).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from classroom_capture.cvsetup import cv2
from classroom_capture.detector import analyse, make_detector
from classroom_contract import EMOTIONS, ObservationResult
from classroom_dashboard.emotion import LABELS, emotions_over
from classroom_inference.predictor import LocalPredictor

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
THRESHOLDS = (0.0, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7)


def sample_video(path: Path, rate: float) -> list[tuple[float, np.ndarray]]:
    """(seconds into the video, BGR frame) every 1/rate seconds."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise SystemExit(f"cannot open {path}")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    frames, index, next_t = [], 0, 0.0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        t = index / fps
        if t + 1e-9 >= next_t:
            frames.append((t, frame))
            next_t += 1.0 / rate
        index += 1
    return frames


def observations(times, facts, probabilities) -> list[ObservationResult]:
    out, k = [], 0
    for i, (t, fact) in enumerate(zip(times, facts, strict=True)):
        probs = None
        if fact.crop is not None:
            probs = [float(p) for p in probabilities[k]]
            k += 1
        out.append(
            ObservationResult(
                observation_id=str(i), class_id="bench", student_id="video", captured_at=t, processed_at=t,
                face_count=fact.face_count, emotion=None if probs is None else EMOTIONS[int(np.argmax(probs))],
                probabilities=probs,
            )
        )  # fmt: skip
    return out


def changes(labels: list[str | None]) -> int:
    """Times the shown label changed between consecutive samples that show one."""
    shown = [label for label in labels if label is not None]
    return sum(a != b for a, b in zip(shown, shown[1:], strict=False))


def publictest_table(model: LocalPredictor, fer: Path) -> list[dict]:
    from classroom_training.data import load_fer2013

    split = load_fer2013(fer, use_cache=False)["PublicTest"]
    probabilities = model.predict(split.images.astype(np.uint8).reshape(-1, 48, 48))
    top = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == split.labels
    rows = []
    for lo in np.arange(0.2, 1.0, 0.1):  # accuracy at a given confidence: where is a label right half the time?
        band = (top >= lo) & (top < lo + 0.1)
        if band.any():
            rows.append(
                {
                    "band": f"{lo:.1f}-{lo + 0.1:.1f}",
                    "share": float(band.mean()),
                    "accuracy": float(correct[band].mean()),
                }
            )
    for threshold in THRESHOLDS:
        kept = top >= threshold
        rows.append(
            {
                "threshold": threshold,
                "coverage": float(kept.mean()),
                "accuracy_kept": float(correct[kept].mean()) if kept.any() else None,
                "accuracy_below": float(correct[~kept].mean()) if (~kept).any() else None,
            }
        )
    return rows


def plot(path: Path, times, before, after, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y = {label: i for i, label in enumerate(LABELS)}
    fig, ax = plt.subplots(figsize=(8, 3.4))
    for labels, style, name in ((before, "o-", "latest crop (before)"), (after, "s-", "window mean (after)")):
        pts = [(t, y[label]) for t, label in zip(times, labels, strict=True) if label is not None]
        if pts:
            ax.plot(*zip(*pts, strict=True), style, drawstyle="steps-post", label=name, alpha=0.8, markersize=3)
    ax.set_yticks(range(len(LABELS)), LABELS)
    ax.set_xlabel("seconds into the video")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=SHARED / "media" / "facenet_pytorch_video.mp4")
    parser.add_argument("--rate", type=float, default=2.0)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--min-confidence", type=float, default=0.5)
    parser.add_argument("--model", type=Path, default=Path("models/emotion/5"))
    parser.add_argument("--fer", type=Path, default=SHARED / "data" / "fer2013" / "fer2013.csv.gz")
    parser.add_argument("--out", type=Path, default=None, help="default reports/emotion-stability/<rate>hz")
    args = parser.parse_args(argv)
    args.out = args.out or Path("reports/emotion-stability") / f"{args.rate:g}hz"

    frames = sample_video(args.video, args.rate)
    detector = make_detector("auto")
    facts = [analyse(frame, detector) for _, frame in frames]
    crops = np.stack([f.crop for f in facts if f.crop is not None]) if any(f.crop is not None for f in facts) else None
    model = LocalPredictor(args.model)
    probabilities = model.predict(crops) if crops is not None else np.zeros((0, len(EMOTIONS)))
    times = [t for t, _ in frames]
    series = observations(times, facts, probabilities)
    minutes = max(times[-1] - times[0], 1.0 / args.rate) / 60 if times else 1.0

    before = [r.emotion for r in series]
    per_threshold = {}
    for threshold in THRESHOLDS:
        after_t = [e.label if e else None for e in emotions_over(series, args.window, threshold)]
        shown = [x for x in after_t if x is not None]
        per_threshold[str(threshold)] = {
            "changes": changes(after_t),
            "per_minute": round(changes(after_t) / minutes, 1),
            "uncertain_share": round(shown.count("uncertain") / max(1, len(shown)), 3),
        }
    after = [e.label if e else None for e in emotions_over(series, args.window, args.min_confidence)]
    result = {
        "video": args.video.name,
        "detector": detector.name,
        "model": str(args.model),
        "rate_hz": args.rate,
        "window_s": args.window,
        "min_confidence": args.min_confidence,
        "samples": len(series),
        "samples_with_face": int(sum(r.face_count > 0 for r in series)),
        "video_seconds": round(times[-1] - times[0], 2) if times else 0,
        "before": {"labels": before, "changes": changes(before), "per_minute": round(changes(before) / minutes, 1)},
        "after": {"labels": after, "changes": changes(after), "per_minute": round(changes(after) / minutes, 1)},
        "after_by_threshold": per_threshold,
        "crop_top_probability": [round(float(p), 3) for p in probabilities.max(axis=1)] if len(probabilities) else [],
    }
    if args.fer.exists():
        result["publictest"] = publictest_table(model, args.fer)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stability.json").write_text(json.dumps(result, indent=1) + "\n")
    plot(
        args.out / "labels.png", times, before, after,
        f"{args.video.name}, largest face, {args.rate:g}/s, {detector.name} + model {args.model.name}\n"
        f"before {result['before']['changes']} changes, after {result['after']['changes']} "
        f"(window {args.window:g} s, uncertain < {args.min_confidence:g})",
    )  # fmt: skip
    print(json.dumps({k: v for k, v in result.items() if k not in ("crop_top_probability",)}, indent=1))


if __name__ == "__main__":
    main()
