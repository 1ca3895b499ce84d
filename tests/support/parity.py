"""The page's detector and crop against the Python agent's on the same frames, whatever the browser:
tests/join/test_parity.py (Chromium) and tests/join/test_firefox.py (Firefox) run the bench page's
benchDetect() on the same placed FER faces and hold it to the same floors.

FER2013 faces placed in 640x480 frames (as the agent's own detector tests do) go through the page's
detect + crop modules and through the Python agent's default detector (`auto`: YuNet through OpenCV,
`yunet-cv`, on every platform) and crop; both crops through the same model (the `local` predictor).
The page runs the same YuNet (src/yunet.js), so its crop squares must be the agent's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from classroom_capture.cvsetup import cv2
from classroom_capture.detector import CropGeometry, Face, analyse, crop_face, make_detector
from classroom_capture.synthetic import FrameMaker, load_fer_faces
from classroom_contract import EMOTIONS

FACES = 120
EMPTY = 20


def hit(box, face_box) -> bool:
    """`box` is on the placed face: centres within a quarter of its size."""
    x, y, w, h = box
    fx, fy, fw, fh = face_box
    return abs(fx + fw / 2 - (x + w / 2)) < w / 4 and abs(fy + fh / 2 - (y + h / 2)) < h / 4


def place_frames(folder: Path) -> list:
    """FER faces placed in frames (a seed the calibration did not use) and empty frames, written as
    PNG files under `folder`/parity: [(url path, synthetic frame)]."""
    (folder / "parity").mkdir(exist_ok=True)
    frames = []
    with_face = FrameMaker(load_fer_faces(), seed=101, no_face_ratio=0.0)
    empty = FrameMaker(load_fer_faces(), seed=102, no_face_ratio=1.0)
    for i in range(FACES + EMPTY):
        frame = (with_face if i < FACES else empty).next()
        cv2.imwrite(str(folder / "parity" / f"{i}.png"), frame.image)
        frames.append((f"/parity/{i}.png", frame))
    return frames


@dataclass
class Parity:
    """What the page found and cut against the agent, frame by frame; `results` are benchDetect()'s."""

    detector: str = ""
    both: int = 0
    same_face: int = 0
    equal_squares: int = 0
    browser_found: int = 0
    python_found: int = 0
    false_alarms: int = 0
    same_pose: int = 0
    port_error: list = field(default_factory=list)
    crops_py: list = field(default_factory=list)
    crops_js: list = field(default_factory=list)
    results: list = field(default_factory=list)
    agree: float = 0.0
    agree_sure: float = 0.0
    sure: int = 0
    emotions_js: Counter = field(default_factory=Counter)

    def add(self, frame, result: dict, yunet) -> None:
        """One frame: the page's `result` and the agent's analyse() of the same image."""
        self.results.append(result)
        facts = analyse(frame.image, yunet)
        if frame.box is None:
            self.false_alarms += len(result["faces"])
            return
        js_hit = [f for f in result["faces"] if hit(frame.box, f["box"])]
        if result["square"]:  # the page's crop.js is the agent's crop_face(): same square, same pixels
            same_square = crop_face(frame.image, Face(tuple(result["square"]), 1.0), CropGeometry())
            js_crop = np.array(result["crop"], dtype=np.int16).reshape(48, 48)
            self.port_error.append(float(np.abs(same_square.astype(np.int16) - js_crop).mean()))
        self.browser_found += bool(js_hit)
        self.python_found += facts.face_count > 0 and hit(frame.box, facts.face.box)
        if js_hit and facts.face_count:
            self.both += 1
            self.same_face += hit(frame.box, facts.face.box)
            cx, cy, side = yunet.geometry.square(facts.face.box)
            x, y, s, _ = result["square"]
            self.equal_squares += max(abs(x + s / 2 - cx), abs(y + s / 2 - cy), abs(s - side)) < 0.01
            self.same_pose += tuple(result["pose"]) == (facts.head_yaw, facts.head_pitch)
            self.crops_py.append(facts.crop)
            self.crops_js.append(np.array(result["crop"], dtype=np.uint8).reshape(48, 48))

    def read_emotions(self, predictor) -> None:
        """Both sides' crops through the same model."""
        probabilities_py, probabilities_js = (predictor.predict(np.stack(c)) for c in (self.crops_py, self.crops_js))
        emotions_py, emotions_js = probabilities_py.argmax(axis=1), probabilities_js.argmax(axis=1)
        self.agree = float(np.mean(emotions_py == emotions_js))
        # Where the served (calibrated) model is sure on both sides, i.e. at or above the dashboard's
        # "uncertain" threshold (EMOTION_MIN_CONFIDENCE, 0.5): most disagreements are faces it is unsure of
        sure = np.minimum(probabilities_py.max(axis=1), probabilities_js.max(axis=1)) >= 0.5
        self.sure = int(sure.sum())
        self.agree_sure = float(np.mean(emotions_py[sure] == emotions_js[sure]))
        self.emotions_js = Counter(EMOTIONS[i] for i in emotions_js)

    def ms(self) -> tuple[float, float]:
        """The page's detection + crop ms per frame (benchDetect's `ms`): median, p90."""
        times = [r["ms"] for r in self.results]
        return float(np.median(times)), float(np.percentile(times, 90))

    def summary(self, browser: str) -> str:
        both, (median, p90) = self.both, self.ms()
        return (
            f"{browser}: placed FER faces: browser found {self.browser_found}/{FACES}, python ({self.detector}) "
            f"{self.python_found}/{FACES}; both {both}, same face {self.same_face}/{both}, same square "
            f"{self.equal_squares}/{both}, same head yaw and pitch {self.same_pose}/{both}; "
            f"same emotion {self.agree:.1%}, {self.agree_sure:.1%} of the {self.sure} both sides are sure of "
            f"(top probability >= 0.5) ({dict(self.emotions_js)}); false alarms on {EMPTY} empty frames: "
            f"{self.false_alarms}; crop port error <= {max(self.port_error):.2f} grey levels; "
            f"detection + crop ms/frame median {median:.1f} (p90 {p90:.1f})"
        )

    def assert_the_agents(self) -> None:
        """The floors: what was measured in Chromium on this machine less a margin."""
        assert max(self.port_error) < 1.0, max(self.port_error)  # grey levels, mean over the crop
        assert self.false_alarms == 0
        assert self.browser_found >= 0.95 * FACES  # measured 120 of 120
        assert self.same_face == self.both
        assert self.equal_squares == self.both  # the agent's YuNet, downscale and geometry: measured 120 of 120
        assert self.same_pose == self.both  # the same five landmarks and pose.js = head_pose(): the agent's angles
        # Measured 100.0% (120 of 120; bench.join_yunet: 99.7% of 292 others, the crop port's <= 0.13 grey
        # levels flipping one); the issue asks 0.95. Face-api's tiny detector gave 91.8% here.
        assert self.agree >= 0.97
        assert self.agree_sure >= 0.97  # measured 100.0% of 95


def compare_with_agent(detect: Callable[[str], dict], placed: list, predictor) -> Parity:
    """benchDetect() (`detect`: url -> result) on every placed frame against the agent's default
    detector and crop, and both crops' emotions."""
    yunet = make_detector("auto")  # what the agent runs unless told otherwise
    assert yunet.name == "yunet-cv"
    parity = Parity(detector=yunet.name)
    for url, frame in placed:
        parity.add(frame, detect(url), yunet)
    parity.read_emotions(predictor)
    return parity
