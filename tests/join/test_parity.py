"""Parity of the browser page's detector and crop with the Python agent, on the same frames.

FER2013 faces placed in 640x480 frames (as the agent's own detector tests do) go through the page's
detect + crop modules in headless Chromium and through the Python agent's default detector (`auto`:
YuNet through OpenCV, `yunet-cv`, on every platform) and crop; both crops through the same model
(the `local` predictor). The page runs the same YuNet (src/yunet.js), so its crop squares must be
the agent's. Measured figures are printed; the floors are what was measured on this machine less a
margin.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from classroom_capture.cvsetup import cv2
from classroom_capture.detector import (
    CropGeometry,
    Face,
    analyse,
    crop_face,
    make_detector,
)
from classroom_capture.synthetic import FrameMaker, load_fer_faces
from classroom_contract import EMOTIONS

from tests.support.join import needs_browser

pytestmark = needs_browser

FACES = 120
EMPTY = 20


def _hit(box, face_box) -> bool:
    x, y, w, h = box
    fx, fy, fw, fh = face_box
    return abs(fx + fw / 2 - (x + w / 2)) < w / 4 and abs(fy + fh / 2 - (y + h / 2)) < h / 4


@pytest.fixture(scope="module")
def placed(bench_site):
    """FER faces placed in frames (a seed the calibration did not use) and empty frames, as PNG files."""
    _, folder = bench_site
    (folder / "parity").mkdir(exist_ok=True)
    frames = []
    with_face = FrameMaker(load_fer_faces(), seed=101, no_face_ratio=0.0)
    empty = FrameMaker(load_fer_faces(), seed=102, no_face_ratio=1.0)
    for i in range(FACES + EMPTY):
        frame = (with_face if i < FACES else empty).next()
        cv2.imwrite(str(folder / "parity" / f"{i}.png"), frame.image)
        frames.append((f"/parity/{i}.png", frame))
    return frames


def test_browser_finds_the_same_faces_and_the_model_reads_the_same_emotions(
    bench_site, chromium, placed, local_predictor
):
    base, _ = bench_site
    page = chromium.new_page()
    page.goto(f"{base}/bench.html")
    assert page.evaluate("benchInit()") == "wasm"
    yunet = make_detector("auto")  # what the agent runs unless told otherwise
    assert yunet.name == "yunet-cv"
    both, same_face, equal_squares, browser_found, python_found, false_alarms = 0, 0, 0, 0, 0, 0
    crops_py, crops_js, port_error, same_pose = [], [], [], 0
    for url, frame in placed:
        result = page.evaluate("u => benchDetect(u)", url)  # the page's own settings
        facts = analyse(frame.image, yunet)
        if frame.box is None:
            false_alarms += len(result["faces"])
            continue
        js_hit = [f for f in result["faces"] if _hit(frame.box, f["box"])]
        if result["square"]:  # the page's crop.js is the agent's crop_face(): same square, same pixels
            same_square = crop_face(frame.image, Face(tuple(result["square"]), 1.0), CropGeometry())
            js_crop = np.array(result["crop"], dtype=np.int16).reshape(48, 48)
            port_error.append(float(np.abs(same_square.astype(np.int16) - js_crop).mean()))
        browser_found += bool(js_hit)
        python_found += facts.face_count > 0 and _hit(frame.box, facts.face.box)
        if js_hit and facts.face_count:
            both += 1
            same_face += _hit(frame.box, facts.face.box)
            cx, cy, side = yunet.geometry.square(facts.face.box)
            x, y, s, _ = result["square"]
            equal_squares += max(abs(x + s / 2 - cx), abs(y + s / 2 - cy), abs(s - side)) < 0.01
            same_pose += tuple(result["pose"]) == (facts.head_yaw, facts.head_pitch)
            crops_py.append(facts.crop)
            crops_js.append(np.array(result["crop"], dtype=np.uint8).reshape(48, 48))
    page.close()
    probabilities_py, probabilities_js = (local_predictor.predict(np.stack(c)) for c in (crops_py, crops_js))
    emotions_py, emotions_js = probabilities_py.argmax(axis=1), probabilities_js.argmax(axis=1)
    agree = float(np.mean(emotions_py == emotions_js))
    # Where the served (calibrated) model is sure on both sides, i.e. at or above the dashboard's
    # "uncertain" threshold (EMOTION_MIN_CONFIDENCE, 0.5): most disagreements are faces it is unsure of
    sure = np.minimum(probabilities_py.max(axis=1), probabilities_js.max(axis=1)) >= 0.5
    agree_sure = float(np.mean(emotions_py[sure] == emotions_js[sure]))
    print(
        f"placed FER faces: browser found {browser_found}/{FACES}, python ({yunet.name}) {python_found}/{FACES}; "
        f"both {both}, same face {same_face}/{both}, same square {equal_squares}/{both}, "
        f"same head yaw and pitch {same_pose}/{both}; "
        f"same emotion {agree:.1%}, {agree_sure:.1%} of the "
        f"{sure.sum()} both sides are sure of (top probability >= 0.5) "
        f"({dict(Counter(EMOTIONS[i] for i in emotions_js))}); "
        f"false alarms on {EMPTY} empty frames: {false_alarms}; crop port error <= {max(port_error):.2f} grey levels"
    )
    assert max(port_error) < 1.0, max(port_error)  # grey levels, mean over the crop
    assert false_alarms == 0
    assert browser_found >= 0.95 * FACES  # measured 120 of 120
    assert same_face == both
    assert equal_squares == both  # the agent's YuNet, downscale and geometry: measured 120 of 120
    assert same_pose == both  # the same five landmarks and pose.js = head_pose(): the agent's angles
    # Measured 100.0% (120 of 120; bench.join_yunet: 99.7% of 292 others, the crop port's <= 0.13 grey
    # levels flipping one); the issue asks 0.95. Face-api's tiny detector gave 91.8% here.
    assert agree >= 0.97
    assert agree_sure >= 0.97  # measured 100.0% of 95
