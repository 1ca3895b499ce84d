"""The /join page's detector against the Python agent: YuNet in tfjs (src/yunet.js, the agent's own
network and geometry), on FER faces placed in 640x480 frames and on empty frames, in Debian's
headless Chromium (wasm backend). (At commit 48b16fa the page could still run face-api's tiny
detector, its detector before YuNet: the same command measured both, see the README.)

    python -m bench.join_yunet [--faces 300] [--seed 202]

Per detector: recall on the placed faces, false alarms on empty frames, the served model's emotion
on the page's crop = on the agent's (parity, over faces both found), squares equal to the agent's
(< 0.01 px), and the page's detection + crop time per frame (median, p90; benchDetect's ms). Figures:
services/capture-web/README.md, "Detector".
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from classroom_capture.cvsetup import cv2
from classroom_capture.detector import analyse, make_detector
from classroom_capture.synthetic import FrameMaker, load_fer_faces

from bench.browser_detectors import ARGS, CHROMIUM, _hit, build, serve

REPO = Path(__file__).resolve().parents[1]


def run_page(port: int, urls: list[str]) -> list[dict]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/bench.html")
        page.evaluate("benchInit()")
        for url in urls[:5]:  # warm-up: wasm compilation, first allocations
            page.evaluate("u => benchDetect(u)", url)
        results = [page.evaluate("u => benchDetect(u)", url) for url in urls]
        browser.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=300)
    parser.add_argument("--empty", type=int, default=50)
    parser.add_argument("--seed", type=int, default=202)
    args = parser.parse_args()
    from classroom_inference.predictor import LocalPredictor
    from classroom_inference.versions import resolve_version

    model = LocalPredictor(resolve_version(REPO / "models" / "emotion"))
    agent = make_detector("auto")  # the agent's default (yunet-cv)
    with_face = FrameMaker(load_fer_faces(), seed=args.seed, no_face_ratio=0.0)
    empty = FrameMaker(load_fer_faces(), seed=args.seed + 1, no_face_ratio=1.0)
    frames = [with_face.next() for _ in range(args.faces)] + [empty.next() for _ in range(args.empty)]
    facts = [analyse(f.image, agent) for f in frames]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        build(folder)
        (folder / "f").mkdir()
        for i, frame in enumerate(frames):
            cv2.imwrite(str(folder / "f" / f"{i}.png"), frame.image)
        server, port = serve(folder)
        urls = [f"/f/{i}.png" for i in range(len(frames))]
        results = run_page(port, urls)
        report(f"page (yunet) vs the agent ({agent.name})", frames, facts, results, model, agent)
        server.shutdown()


def report(name, frames, facts, results, model, agent) -> None:
    found = false_alarms = same_square = 0
    crops_page, crops_agent = [], []
    for frame, fact, result in zip(frames, facts, results, strict=True):
        if frame.box is None:
            false_alarms += len(result["faces"])
            continue
        page_hit = any(_hit(frame.box, [f["box"]]) for f in result["faces"])
        found += page_hit
        if page_hit and fact.face is not None and _hit(frame.box, [fact.face.box]):
            crops_page.append(np.array(result["crop"], np.uint8).reshape(48, 48))
            crops_agent.append(fact.crop)
            cx, cy, side = agent.geometry.square(fact.face.box)
            x, y, s, _ = result["square"]
            same_square += max(abs(x + s / 2 - cx), abs(y + s / 2 - cy), abs(s - side)) < 0.01
    placed = sum(f.box is not None for f in frames)
    pairs = zip(frames, facts, strict=True)
    agent_found = sum(f.face is not None and _hit(fr.box, [f.face.box]) for fr, f in pairs if fr.box is not None)
    parity = np.mean(model.predict(np.stack(crops_page)).argmax(1) == model.predict(np.stack(crops_agent)).argmax(1))
    ms = np.array([r["ms"] for r in results])
    print(f"{name}: recall {found}/{placed} ({found / placed:.1%}; the agent's {agent_found}); "
          f"false alarms on {len(frames) - placed} empty "
          f"frames: {false_alarms}; same emotion as the agent {parity:.1%} of {len(crops_page)}; squares equal to "
          f"the agent's {same_square}/{len(crops_page)}; detect+crop ms/frame median {np.median(ms):.1f}, "
          f"p90 {np.percentile(ms, 90):.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
