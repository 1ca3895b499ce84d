"""The page's browser face detector measured in Debian's headless Chromium, on the frames the Python
agent is measured on: recall on FER faces placed in 640x480 frames, recall against YuNet (`yuface`,
the Python agent's detector) on frames of the shared video, time per frame (median, wasm backend),
and its box and landmark geometry against the placed FER box.

    python -m bench.browser_detectors [--faces 100] [--video PATH] [--video-frames 20]

The page runs YuNet (src/yunet.js) since face-api's tiny detector, which this bench chose first
(services/capture-web/README.md), gave the agent's emotion on only 91.8% of faces (bench/join_yunet.py).
Needs `npm ci` in services/capture-web and /usr/bin/chromium. Everything is served from 127.0.0.1 by
this script; no model is downloaded.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from classroom_capture.cvsetup import cv2
from classroom_capture.detector import make_detector, yunet_available
from classroom_capture.synthetic import FrameMaker, load_fer_faces

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "services" / "capture-web"
SHARED_VIDEO = Path("/work/shared/media/facenet_pytorch_video.mp4")
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def _hit(box, faces) -> bool:
    x, y, w, h = box
    return any(abs(f[0] + f[2] / 2 - (x + w / 2)) < w / 4 and abs(f[1] + f[3] / 2 - (y + h / 2)) < h / 4 for f in faces)


def serve(folder: Path) -> tuple[ThreadingHTTPServer, int]:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def build(folder: Path) -> None:
    import subprocess

    node = (
        "require('esbuild').buildSync({entryPoints:['bench/bench.js'],bundle:true,minify:true,"
        f"format:'iife',outfile:'{folder}/bench.js'}})"
    )
    subprocess.run(["node", "-e", node], cwd=WEB, check=True)
    (folder / "bench.html").write_text((WEB / "bench" / "bench.html").read_text())
    modules = WEB / "node_modules"
    (folder / "model").mkdir()
    (folder / "model" / "yunet").symlink_to(WEB / "models" / "yunet")  # the page's YuNet (src/yunet.js)
    (folder / "wasm").symlink_to(modules / "@tensorflow" / "tfjs-backend-wasm" / "dist")


def placed_frames(folder: Path, count: int) -> list[tuple[str, tuple]]:
    maker = FrameMaker(load_fer_faces(), seed=23, no_face_ratio=0.0)
    (folder / "fer").mkdir()
    out = []
    for i in range(count):
        frame = maker.next()
        cv2.imwrite(str(folder / "fer" / f"{i}.png"), frame.image)
        out.append((f"/fer/{i}.png", frame.box, frame.image))
    return out


def video_frames(folder: Path, path: Path, count: int, width: int = 1280):
    """Every n-th frame of the video at `width` (720p: a webcam's size), with YuNet's faces as truth."""
    cap = cv2.VideoCapture(str(path))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or 1
    step = max(1, total // count)
    (folder / "video").mkdir()
    yunet = make_detector("yunet", work_width=width)
    out, index = [], 0
    while len(out) < count:
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = cap.read()
        if not ok:
            break
        frame = cv2.resize(frame, (width, round(frame.shape[0] * width / frame.shape[1])), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / "video" / f"{len(out)}.png"), frame)
        truth = [f.box for f in yunet.detect(frame)]
        out.append((f"/video/{len(out)}.png", truth))
        index += step
    cap.release()
    return out


def nose_height(points) -> float | None:
    """Where the nose tip sits between the eye line (0) and the mouth line (1): head_pose()'s input."""
    right_eye, left_eye, nose, mouth_r, mouth_l = np.asarray(points, dtype=np.float64)
    eyes, mouth = (right_eye + left_eye) / 2, (mouth_r + mouth_l) / 2
    axis_x = (left_eye - right_eye) / max(np.linalg.norm(left_eye - right_eye), 1e-6)
    axis_y = np.array([-axis_x[1], axis_x[0]])
    eye_mouth = float((mouth - eyes) @ axis_y)
    return float((nose - eyes) @ axis_y) / eye_mouth if eye_mouth > 1e-3 else None


def calibration(fer, results) -> dict:
    """Median placed-FER-box / detector-box geometry, as the Python agent's detectors were calibrated."""
    scales, dxs, dys, heights, rights, downs, sides = [], [], [], [], [], [], []
    for (_, (x, y, side, _h), _img), r in zip(fer, results, strict=True):
        hits = [f for f in r["faces"] if _hit((x, y, side, side), [f["box"]])]
        if not hits:
            continue
        bx, by, bw, bh = hits[0]["box"]
        size = max(bw, bh)
        scales.append(side / size)
        dxs.append((x + side / 2 - (bx + bw / 2)) / size)
        dys.append((y + side / 2 - (by + bh / 2)) / size)
        marks = np.asarray(hits[0]["landmarks"], dtype=np.float64)
        eyes, mouth = (marks[0] + marks[1]) / 2, (marks[3] + marks[4]) / 2
        eye_mouth = float(np.linalg.norm(mouth - eyes))
        rights.append((x + side / 2 - eyes[0]) / eye_mouth)
        downs.append((y + side / 2 - eyes[1]) / eye_mouth)
        sides.append(side / eye_mouth)
        height = nose_height(hits[0]["landmarks"])
        if height is not None:
            heights.append(height)
    med = lambda v: round(float(np.median(v)), 3)  # noqa: E731
    return {
        "box": {"scale": med(scales), "dx": med(dxs), "dy": med(dys)},
        "landmarks": {"right": med(rights), "down": med(downs), "side": med(sides)},
        "neutral_nose_height": med(heights),
    }


def run(args) -> dict:
    from playwright.sync_api import sync_playwright

    report: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        build(folder)
        fer = placed_frames(folder, args.faces)
        use_video = args.video.is_file() and args.video_frames > 0
        video = video_frames(folder, args.video, args.video_frames) if use_video else []
        server, port = serve(folder)
        base = f"http://127.0.0.1:{port}"
        if yunet_available():
            yn = make_detector("yunet")
            found = sum(_hit(b, [f.box for f in yn.detect(img)]) for _, b, img in fer)
            report["yunet (python, yuface)"] = {"fer_found": found, "fer_total": len(fer)}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page()
            page.goto(f"{base}/bench.html")
            report["backend"] = page.evaluate("benchInit()")
            for name in ["the page's YuNet (src/yunet.js)"]:
                call = "u => benchDetect(u)"
                page.evaluate(call, fer[0][0])  # warm-up
                results = [page.evaluate(call, url) for url, _, _ in fer]
                pairs = zip(fer, results, strict=True)
                found = sum(_hit(box, [f["box"] for f in r["faces"]]) for (_, box, _), r in pairs)
                vid_found = vid_total = 0
                for url, truth in video:
                    r = page.evaluate(call, url)
                    vid_total += len(truth)
                    vid_found += sum(_hit(t, [f["box"] for f in r["faces"]]) for t in truth)
                report[name] = {
                    "fer_found": found,
                    "fer_total": len(fer),
                    "ms_median": round(statistics.median(r["ms"] for r in results), 1),
                    "video_found_of_yunet": f"{vid_found}/{vid_total}",
                    "calibration": calibration(fer, results),
                }
                print(name, report[name], flush=True)
            browser.close()
        server.shutdown()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=100)
    parser.add_argument("--video", type=Path, default=SHARED_VIDEO)
    parser.add_argument("--video-frames", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    main()
