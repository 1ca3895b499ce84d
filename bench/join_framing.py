"""Why the /join page and the Python agent disagree on some emotions: how far the page's crop square
is from the agent's (YuNet) square on FER faces placed in frames, and how much the emotion model
changes its answer when the agent's own square moves by that much.

Written for the face-api page (sessions 6-7); since the page runs the agent's YuNet (src/yunet.js,
bench/join_yunet.py) both sides' squares are equal and this bench shows the history in the README.

    python -m bench.join_framing [--faces 300] [--seed 23]

The page's detector runs in Debian's headless Chromium (the bench page, the page's own settings); the
crops are cut in Python with `crop_face()` (the page's crop.js equals it to <= 0.1 grey level, see
tests/join/test_parity.py) and read by the served model (the `local` predictor).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from classroom_capture.cvsetup import cv2
from classroom_capture.detector import CropGeometry, Face, analyse, crop_face, make_detector
from classroom_capture.synthetic import FrameMaker, SyntheticFrame, load_fer_faces

from bench.browser_detectors import ARGS, CHROMIUM, _hit, build, serve

REPO = Path(__file__).resolve().parents[1]

SHIFTS = {"x+1px": (1, 0, 1.0), "x+2px": (2, 0, 1.0), "y+1px": (0, 1, 1.0), "y+2px": (0, 2, 1.0),
          "y-2px": (0, -2, 1.0), "side*1.02": (0, 0, 1.02), "side*0.98": (0, 0, 0.98),
          "side*1.04": (0, 0, 1.04), "side*0.96": (0, 0, 0.96)}  # fmt: skip


def faces_of_both(count: int, seed: int) -> list[tuple[int, SyntheticFrame, dict, Face]]:
    """(index, frame, the page's largest face and square, YuNet's face) of the `count` placed faces of
    `seed` where both found the placed face."""
    from playwright.sync_api import sync_playwright

    yunet, out = make_detector("yunet"), []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        folder = Path(tmp)
        build(folder)
        (folder / "f").mkdir()
        maker = FrameMaker(load_fer_faces(), seed=seed, no_face_ratio=0.0)
        frames = [maker.next() for _ in range(count)]
        for i, frame in enumerate(frames):
            cv2.imwrite(str(folder / "f" / f"{i}.png"), frame.image)
        server, port = serve(folder)
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/bench.html")
        page.evaluate("benchInit()")
        for i, frame in enumerate(frames):
            result = page.evaluate("u => benchDetect(u)", f"/f/{i}.png")
            facts = analyse(frame.image, yunet)
            if result["square"] and facts.face and _hit(frame.box, [facts.face.box]):
                largest = max(result["faces"], key=lambda f: f["box"][2] * f["box"][3])
                if _hit(frame.box, [largest["box"]]):
                    out.append((i, frame, {**largest, "square": result["square"]}, facts.face))
        browser.close()
        server.shutdown()
    return out


def yunet_square(face: Face, dx: float = 0.0, dy: float = 0.0, k: float = 1.0) -> tuple[float, ...]:
    x, y, w, h = face.box
    side = YUNET_SCALE * max(w, h) * k
    return (x + w / 2 + dx - side / 2, y + h / 2 + dy - side / 2, side, side)


YUNET_SCALE = make_detector("yunet").geometry.scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=300)
    parser.add_argument("--seed", type=int, default=23)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from classroom_inference.predictor import LocalPredictor
    from classroom_inference.versions import resolve_version

    model = LocalPredictor(resolve_version(REPO / "models" / "emotion"))
    both = [(frame.image, js, yf) for _, frame, js, yf in faces_of_both(args.faces, args.seed)]

    def emotions(squares) -> np.ndarray:
        crops = [
            crop_face(img, Face(tuple(sq), 1.0), CropGeometry()) for (img, _, _), sq in zip(both, squares, strict=True)
        ]
        return model.predict(np.stack(crops)).argmax(axis=1)

    agent = emotions([yunet_square(yf) for _, _, yf in both])
    page = emotions([js["square"] for _, js, _ in both])
    err = np.array([np.subtract(
        [js["square"][0] + js["square"][2] / 2, js["square"][1] + js["square"][3] / 2, js["square"][2]],
        [sq[0] + sq[2] / 2, sq[1] + sq[3] / 2, sq[2]]) for (_, js, yf), sq in
        zip(both, [yunet_square(yf) for _, _, yf in both], strict=True)])  # fmt: skip
    marks = np.array([np.linalg.norm(np.array(js["landmarks"]) - yf.landmarks, axis=1) for _, js, yf in both])
    print(
        f"{len(both)} of {args.faces} placed faces found by both; "
        f"the page's emotion = the agent's on {np.mean(page == agent):.1%}"
    )
    print(f"page square - agent square, median |error| px: x {np.median(abs(err[:, 0])):.2f}, "
          f"y {np.median(abs(err[:, 1])):.2f}, side {np.median(abs(err[:, 2])):.2f}; "
          f"five landmarks' median distance px: {np.round(np.median(marks, axis=0), 1).tolist()}")  # fmt: skip
    for name, (dx, dy, k) in SHIFTS.items():
        moved = emotions([yunet_square(yf, dx, dy, k) for _, _, yf in both])
        print(f"the agent's own square moved {name}: same emotion on {np.mean(moved == agent):.1%}")


if __name__ == "__main__":
    main()
