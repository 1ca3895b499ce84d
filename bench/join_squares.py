"""Which crop squares make the /join page and the Python agent read the same emotion: each side's
square from its detector's box, from its five landmarks, and blends of the two, calibrated against
the TRUE placed FER box on one set of placed faces and measured on another (different seeds).

Written for the face-api page (sessions 6-7); since the page runs the agent's YuNet (src/yunet.js,
bench/join_yunet.py) both sides' squares are equal and this bench shows the history in the README.

    python -m bench.join_squares [--faces 400] [--calibration-seed 23] [--evaluation-seeds 202,303] [--cache DIR]

Per candidate square, on the evaluation faces found by both (the page in Debian's headless
Chromium with its own settings, the agent's YuNet): median |error| against the placed box (centre x,
y, side, px), the served model's emotion on that crop = on the placed box's own crop ("truth"),
and = on the other side's crop ("parity"). Crops are cut in Python with `crop_face()` (the page's
crop.js equals it to <= 0.1 grey level). Then: the page's square with separate landmark weights for
its centre and its side, against today's agent square; and today's squares with the model's answer
averaged over shifted and mirrored copies of each crop. `--cache DIR` keeps the detections (the slow
part) per seed and count. Figures: services/capture-web/README.md, "Parity with the Python agent".
"""

from __future__ import annotations

import argparse
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from classroom_capture.cvsetup import cv2
from classroom_capture.detector import CropGeometry, Face, crop_face, make_detector
from classroom_capture.synthetic import FrameMaker, load_fer_faces

from bench.join_framing import faces_of_both

REPO = Path(__file__).resolve().parents[1]
#: Landmark weights of the blends tried (0: the box alone, 1: the landmarks alone).
WEIGHTS = (0.0, 0.3, 0.5, 0.7, 0.85, 1.0)


@dataclass(frozen=True)
class Found:
    """The placed faces found by both, as (N, ...) arrays; squares are (cx, cy, side) rows."""

    images: list[np.ndarray]
    truth: np.ndarray  # (N, 3) the placed FER box
    page_box: np.ndarray  # (N, 4) x, y, w, h
    page_marks: np.ndarray  # (N, 5, 2)
    page_square: np.ndarray  # (N, 3) as the page computed it
    agent_box: np.ndarray
    agent_marks: np.ndarray


def detect(count: int, seed: int, cache: Path | None) -> Found:
    """Both detectors on `count` placed faces of `seed` (from `cache` when it holds them)."""
    path = cache / f"join_squares_{seed}_{count}.pkl" if cache else None
    if path and path.is_file():
        rows = pickle.loads(path.read_bytes())
    else:
        rows = [
            (i, js["box"], js["landmarks"], js["square"], face.box, face.landmarks)
            for i, _, js, face in faces_of_both(count, seed)
        ]
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(pickle.dumps(rows))
    maker = FrameMaker(load_fer_faces(), seed=seed, no_face_ratio=0.0)
    frames = [maker.next() for _ in range(count)]
    picked = [frames[r[0]] for r in rows]
    page_squares = np.array([r[3] for r in rows], dtype=np.float64)
    return Found(
        images=[f.image for f in picked],
        truth=np.array([(x + s / 2, y + s / 2, s) for x, y, s, _ in (f.box for f in picked)], dtype=np.float64),
        page_box=np.array([r[1] for r in rows], dtype=np.float64),
        page_marks=np.array([r[2] for r in rows], dtype=np.float64),
        page_square=np.c_[page_squares[:, :2] + page_squares[:, 2:3] / 2, page_squares[:, 2]],
        agent_box=np.array([r[4] for r in rows], dtype=np.float64),
        agent_marks=np.array([r[5] for r in rows], dtype=np.float64),
    )


def eyes_mouth(marks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eyes' midpoint, mouth's midpoint (N, 2) and the eye-mouth distance (N,) of five landmarks."""
    eyes = (marks[:, 0] + marks[:, 1]) / 2
    mouth = (marks[:, 3] + marks[:, 4]) / 2
    return eyes, mouth, np.linalg.norm(mouth - eyes, axis=1)


def box_square(boxes: np.ndarray, scale: float, dx: float, dy: float) -> np.ndarray:
    size = boxes[:, 2:4].max(axis=1)
    return np.c_[boxes[:, 0] + boxes[:, 2] / 2 + dx * size, boxes[:, 1] + boxes[:, 3] / 2 + dy * size, scale * size]


def marks_square(marks: np.ndarray, right: float, down: float, side: float) -> np.ndarray:
    eyes, _, em = eyes_mouth(marks)
    return np.c_[eyes[:, 0] + right * em, eyes[:, 1] + down * em, side * em]


def calibrate_box(truth: np.ndarray, boxes: np.ndarray) -> tuple[float, float, float]:
    """Median placed-box / detector-box geometry (scale, dx, dy), as the agent's detectors were calibrated."""
    size = boxes[:, 2:4].max(axis=1)
    centre = boxes[:, :2] + boxes[:, 2:4] / 2
    return tuple(
        round(float(np.median(v)), 3)
        for v in (truth[:, 2] / size, (truth[:, 0] - centre[:, 0]) / size, (truth[:, 1] - centre[:, 1]) / size)
    )


def calibrate_marks(truth: np.ndarray, marks: np.ndarray) -> tuple[float, float, float]:
    """Median (right, down, side) of the placed box in eye-mouth distances from the eyes' midpoint (detect.js)."""
    eyes, _, em = eyes_mouth(marks)
    return tuple(
        round(float(np.median(v)), 3)
        for v in ((truth[:, 0] - eyes[:, 0]) / em, (truth[:, 1] - eyes[:, 1]) / em, truth[:, 2] / em)
    )


def crops_of(found: Found, squares: np.ndarray) -> np.ndarray:
    return np.stack([
        crop_face(img, Face((cx - s / 2, cy - s / 2, s, s), 1.0), CropGeometry())
        for img, (cx, cy, s) in zip(found.images, squares, strict=True)
    ])  # fmt: skip


def emotions(model, found: Found, squares: np.ndarray) -> np.ndarray:
    return model.predict(crops_of(found, squares)).argmax(axis=1)


#: Copies of a 48x48 crop whose mean answer is read (what a server could do with the crop it gets):
#: (dx, dy) px shifts (edges replicated), "flip": and the shifted copy's mirror image.
JITTERS = {
    "the crop alone (served today)": [(0, 0)],
    "the crop and its mirror image (2)": [(0, 0, "flip")],
    "the crop and its 1 px shifts (5)": [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)],
    "the crop, its 1 px shifts and their mirror images (10)": [(0, 0, "flip"), (1, 0, "flip"), (-1, 0, "flip"),
                                                               (0, 1, "flip"), (0, -1, "flip")],
}  # fmt: skip


def jittered_emotions(model, crops: np.ndarray, copies: list[tuple]) -> np.ndarray:
    total = 0.0
    for dx, dy, *flip in copies:
        matrix = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])
        moved = np.stack([cv2.warpAffine(c, matrix, c.shape[::-1], borderMode=cv2.BORDER_REPLICATE) for c in crops])
        total = total + model.predict(moved)
        if flip:
            total = total + model.predict(np.ascontiguousarray(moved[:, :, ::-1]))
    return np.argmax(total, axis=1)


def report_jitter(model, found: Found, agent_square, page_square) -> None:
    """Today's squares, the model's answer averaged over jittered copies of each crop."""
    crops = {"agent": crops_of(found, agent_square), "page": crops_of(found, page_square),
             "truth": crops_of(found, found.truth)}  # fmt: skip
    print("\ntoday's squares, the model's mean answer over copies of each 48x48 crop:")
    print("| copies | agent = page | agent = truth | page = truth |")
    print("| --- | --- | --- | --- |")
    for name, copies in JITTERS.items():
        e = {side: jittered_emotions(model, c, copies) for side, c in crops.items()}
        print(f"| {name} | {np.mean(e['agent'] == e['page']):.1%} | {np.mean(e['agent'] == e['truth']):.1%} | "
              f"{np.mean(e['page'] == e['truth']):.1%} |")  # fmt: skip


#: The dashboard's EMOTION_MIN_CONFIDENCE default (classroom_dashboard/config.py): below it a
#: student's emotion shows as "uncertain".
MIN_CONFIDENCE = 0.5


def report_confidence(model, found: Found, agent_square, page_square) -> None:
    """Today's squares: parity where the served (calibrated) model is sure of itself and where not.

    Why: a face the model is unsure about flips with any pixel of framing; the dashboard shows
    such a face's emotion as "uncertain" (below MIN_CONFIDENCE) when its window mean stays low.
    """
    agent = model.predict(crops_of(found, agent_square))
    page = model.predict(crops_of(found, page_square))
    same = agent.argmax(1) == page.argmax(1)
    both = (agent.max(1) >= MIN_CONFIDENCE) & (page.max(1) >= MIN_CONFIDENCE)
    either = (agent.max(1) < MIN_CONFIDENCE) | (page.max(1) < MIN_CONFIDENCE)
    print(f"\ntoday's squares, parity by the served model's confidence (top probability, {MIN_CONFIDENCE}):")
    print("| faces | share | agent = page |")
    print("| --- | --- | --- |")
    for name, mask in (("all", np.ones_like(same)), (f"both sides >= {MIN_CONFIDENCE}", both),
                       (f"either side < {MIN_CONFIDENCE}", either)):  # fmt: skip
        print(f"| {name} | {mask.mean():.1%} ({mask.sum()}) | {same[mask].mean():.1%} |")


def split_blends(cal: Found) -> dict:
    """The page's square with separate landmark weights for its centre and its side (calibrated on `cal`)."""
    page_box = calibrate_box(cal.truth, cal.page_box)
    page_marks = calibrate_marks(cal.truth, cal.page_marks)

    def square(f: Found, centre_weight: float, side_weight: float) -> np.ndarray:
        box, marks = box_square(f.page_box, *page_box), marks_square(f.page_marks, *page_marks)
        out = centre_weight * marks + (1 - centre_weight) * box
        out[:, 2] = side_weight * marks[:, 2] + (1 - side_weight) * box[:, 2]
        return out

    return {
        f"centre {wc} / side {ws}": (lambda f, wc=wc, ws=ws: square(f, wc, ws))
        for wc in (0.3, 0.5, 0.7, 1.0)
        for ws in (0.0, 0.3, 0.7)
    }


def report_split(model, sets: dict[str, Found], agent_today, page_splits: dict) -> None:
    """Parity of today's agent square with the page's split-weight squares, per set of faces."""
    print("\nparity with today's agent square, the page's square with separate landmark weights (re-calibrated):")
    print("| page square | " + " | ".join(sets) + " |")
    print("| --- " * (len(sets) + 1) + "|")
    agent = {name: emotions(model, f, agent_today(f)) for name, f in sets.items()}
    rows = {"today (detect.js: 0.7 / 0.7)": lambda f: f.page_square, **page_splits}
    for label, make in rows.items():
        cells = [f"{np.mean(emotions(model, f, make(f)) == agent[name]):.1%}" for name, f in sets.items()]
        print(f"| {label} | " + " | ".join(cells) + " |")


def candidates(cal: Found) -> tuple[dict, dict]:
    """The agent's and the page's candidate squares as functions of a Found, calibrated on `cal`."""
    yunet_scale = make_detector("yunet").geometry.scale
    agent_box = calibrate_box(cal.truth, cal.agent_box)
    agent_marks = calibrate_marks(cal.truth, cal.agent_marks)
    page_box = calibrate_box(cal.truth, cal.page_box)
    page_marks = calibrate_marks(cal.truth, cal.page_marks)
    print(f"calibrated on {len(cal.truth)} faces: agent box {agent_box}, agent landmarks {agent_marks}; "
          f"page box {page_box}, page landmarks {page_marks}")  # fmt: skip

    def blend(box_of, marks_of, w):
        return lambda f: w * marks_of(f) + (1 - w) * box_of(f)

    agent = {"today: YuNet box, side 0.99 x max(w, h)": lambda f: box_square(f.agent_box, yunet_scale, 0, 0)}
    for w in WEIGHTS:
        agent[f"{w:.2f} landmarks + {1 - w:.2f} box (calibrated)"] = blend(
            lambda f: box_square(f.agent_box, *agent_box), lambda f: marks_square(f.agent_marks, *agent_marks), w
        )
    page = {"today: 0.7 landmarks + 0.3 box (detect.js)": lambda f: f.page_square}
    for w in WEIGHTS:
        page[f"{w:.2f} landmarks + {1 - w:.2f} box (re-calibrated)"] = blend(
            lambda f: box_square(f.page_box, *page_box), lambda f: marks_square(f.page_marks, *page_marks), w
        )
    return agent, page


def report(model, found: Found, agent: dict, page: dict, title: str) -> None:
    truth = emotions(model, found, found.truth)
    page_emotions = {name: emotions(model, found, make(found)) for name, make in page.items()}
    page_today = next(iter(page_emotions.values()))
    print(f"\n{title}: {len(found.truth)} faces found by both")
    print("| square | median |error| px x / y / side | = truth's emotion | = page today's emotion |")
    print("| --- | --- | --- | --- |")
    for side, options in (("agent", agent), ("page", page)):
        for name, make in options.items():
            squares = make(found)
            err = np.median(np.abs(squares - found.truth), axis=0)
            mine = page_emotions[name] if side == "page" else emotions(model, found, squares)
            print(f"| {side} {name} | {err[0]:.2f} / {err[1]:.2f} / {err[2]:.2f} | {np.mean(mine == truth):.1%} | "
                  f"{np.mean(mine == page_today):.1%} |")  # fmt: skip
    print("\nparity (agent emotion = page emotion), agent squares x page squares:")
    agent_emotions = {name: emotions(model, found, make(found)) for name, make in agent.items()}
    print("| agent \\ page | " + " | ".join(page) + " |")
    print("| --- " * (len(page) + 1) + "|")
    today = next(iter(agent_emotions.values()))
    for name, mine in agent_emotions.items():
        cells = [
            f"{np.mean(mine == p):.1%} (+{np.sum((mine == p) & (today != p))}/-{np.sum((mine != p) & (today == p))})"
            for p in page_emotions.values()
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("(+won/-lost: faces this agent square agrees on and today's does not, and the reverse)")


def pooled(parts: list[Found]) -> Found:
    return Found(
        images=[img for part in parts for img in part.images],
        **{k: np.concatenate([getattr(p, k) for p in parts]) for k in Found.__dataclass_fields__ if k != "images"},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=400, help="placed faces per seed")
    parser.add_argument("--calibration-seed", type=int, default=23)
    parser.add_argument("--evaluation-seeds", default="202,303", help="comma-separated; pooled")
    parser.add_argument("--evaluation-faces", type=int, default=None, help="per evaluation seed; default --faces")
    parser.add_argument("--cache", type=Path, default=None, help="keep the detections here (per seed and count)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from classroom_inference.predictor import LocalPredictor
    from classroom_inference.versions import resolve_version

    model = LocalPredictor(resolve_version(REPO / "models" / "emotion"))
    cal = detect(args.faces, args.calibration_seed, args.cache)
    seeds = [int(s) for s in args.evaluation_seeds.split(",")]
    evaluation = pooled([detect(args.evaluation_faces or args.faces, seed, args.cache) for seed in seeds])
    agent, page = candidates(cal)
    report(model, cal, agent, page, f"calibration faces (seed {args.calibration_seed})")
    report(model, evaluation, agent, page, f"evaluation faces (seeds {args.evaluation_seeds}, unseen)")
    agent_today = next(iter(agent.values()))
    sets = {f"seed {args.calibration_seed}": cal, f"seeds {args.evaluation_seeds}": evaluation}
    report_split(model, sets, agent_today, split_blends(cal))
    report_jitter(model, evaluation, agent_today(evaluation), evaluation.page_square)
    report_confidence(model, evaluation, agent_today(evaluation), evaluation.page_square)


if __name__ == "__main__":
    main()
