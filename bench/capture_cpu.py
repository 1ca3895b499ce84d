"""Capture-agent CPU benchmark: per detector, ms/frame at 640x480, faces found on the same real
images, and CPU% of one core for the whole agent at 2 samples/s.

    python -m bench.capture_cpu [--video PATH] [--seconds 20] [--rate 2] [--work-widths 320,640]

Images: frames of the shared real video (/work/shared/media/facenet_pytorch_video.mp4, 1920x1080,
many small faces) letterboxed to 640x480, when it exists; always also 100 synthetic 640x480 frames
with a real FER2013 face each (one student at a laptop). "faces found" counts detections on the
video (no ground truth: compare detectors) and placed faces found on the synthetic frames.

CPU%: the real agent (`classroom-capture --source <folder of 640x480 PNGs> --loop`) runs for
--seconds at --rate against a local sink server; its user+system CPU time over wall time, measured
from its rusage, minus the CPU of the same process idling (start-up + imports) for a fair steady state.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from classroom_capture.cvsetup import cv2
from classroom_capture.detector import analyse, auto_detector_name, make_detector, yunet_available
from classroom_capture.synthetic import FrameMaker, load_fer_faces

SHARED_VIDEO = Path("/work/shared/media/facenet_pytorch_video.mp4")


def letterbox(frame: np.ndarray, width: int = 640, height: int = 480) -> np.ndarray:
    scale = min(width / frame.shape[1], height / frame.shape[0])
    resized = cv2.resize(frame, (round(frame.shape[1] * scale), round(frame.shape[0] * scale)), cv2.INTER_AREA)
    out = np.zeros((height, width, 3), np.uint8)
    y, x = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    out[y : y + resized.shape[0], x : x + resized.shape[1]] = resized
    return out


def video_frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(letterbox(frame))
    cap.release()
    return frames


def time_detector(detector, frames: list[np.ndarray]) -> tuple[float, float, int]:
    analyse(frames[0], detector)  # warm-up
    times, found = [], 0
    for frame in frames:
        started = time.perf_counter()
        facts = analyse(frame, detector)  # detection + crop: what the agent does per sample
        times.append((time.perf_counter() - started) * 1000)
        found += facts.face_count
    return statistics.median(times), float(np.percentile(times, 90)), found


def synthetic_hits(detector, scenes) -> int:
    hits = 0
    for scene in scenes:
        x, y, w, h = scene.box
        for f in detector.detect(scene.image):
            if abs(f.box[0] + f.box[2] / 2 - x - w / 2) < w / 4 and abs(f.box[1] + f.box[3] / 2 - y - h / 2) < h / 4:
                hits += 1
                break
    return hits


class Sink(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        n = len(json.loads(body)["observations"])
        data = json.dumps({"accepted": n, "duplicates": 0}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def agent_cpu(detector: str, folder: Path, seconds: float, rate: float, url: str, workdir: Path) -> float:
    """Percent of one core used by the agent process in steady state."""
    exe = Path(sys.executable).parent / "classroom-capture"

    def child_cpu(extra: list[str], duration: float) -> tuple[float, float]:
        args = [str(exe), "--server", url, "--consent",
                "--source", str(folder), "--loop", "--rate", str(rate), "--detector", detector,
                "--outbox", str(workdir / f"{detector}.sqlite3"),
                "--pause-file", str(workdir / "PAUSED"), "-q", *extra]  # fmt: skip
        env = {**os.environ, "CLASSROOM_TOKEN": "BENC-HBEN-CHBE-NCH0"}  # any well-formed code: the stub accepts all
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, env=env)
        started = time.monotonic()
        time.sleep(duration)
        proc.terminate()
        _, _, usage = os.wait4(proc.pid, 0)
        return usage.ru_utime + usage.ru_stime, time.monotonic() - started

    (workdir / "PAUSED").write_text("")  # paused: start-up and imports only
    idle_cpu, idle_wall = child_cpu([], 4.0)
    (workdir / "PAUSED").unlink()
    busy_cpu, busy_wall = child_cpu([], 4.0 + seconds)
    # The paused run costs start-up and imports (a paused agent only checks a file 4x/s).
    return max(0.0, (busy_cpu - idle_cpu) / (busy_wall - idle_wall) * 100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=SHARED_VIDEO)
    parser.add_argument("--seconds", type=float, default=20.0, help="steady-state seconds for the CPU%% run")
    parser.add_argument("--rate", type=float, default=2.0)
    parser.add_argument("--work-widths", default="320,640", help="detector input widths to time")
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU%% runs")
    args = parser.parse_args()

    faces = load_fer_faces()
    maker = FrameMaker(faces, seed=42, no_face_ratio=0.0)
    scenes = [maker.next() for _ in range(100)]
    real = video_frames(args.video) if args.video.is_file() else []
    images = real or [s.image for s in scenes]
    source = f"{len(real)} frames of {args.video.name} (letterboxed 640x480)" if real else "synthetic frames"
    print(f"cpu: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; OMP_NUM_THREADS=1 for yuface")
    print(f"timed on {source}; synthetic: {len(scenes)} frames with one placed FER face each\n")
    names = ["haar"] + (["yunet"] if yunet_available() else []) + ["yunet-cv"]
    print(f"default (--detector auto): {auto_detector_name()}\n")
    widths = [int(w) for w in args.work_widths.split(",")]
    sys.stdout.flush()
    print(f"{'detector':9} {'input':>6} {'ms/frame p50':>13} {'p90':>7} {'faces (video)':>14} {'FER faces found':>16}")
    for name in names:
        for width in widths:
            detector = make_detector(name, work_width=width)
            p50, p90, found = time_detector(detector, images)
            hits = synthetic_hits(detector, scenes)
            video = str(found) if real else "-"
            print(f"{name:9} {width:>6} {p50:>13.1f} {p90:>7.1f} {video:>14} {hits:>11}/{len(scenes)}")
    if args.no_cpu:
        return 0

    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        folder = workdir / "frames"
        folder.mkdir()
        for i, image in enumerate(images[:50]):
            cv2.imwrite(str(folder / f"{i:04d}.png"), image)
        print(
            f"\nCPU of the whole agent at {args.rate:g} samples/s (640x480 PNGs, default input width 320):", flush=True
        )
        for name in [*names, "auto"]:  # auto: the default, as a student runs it
            percent = agent_cpu(name, folder, args.seconds, args.rate, url, workdir)
            label = f"auto ({auto_detector_name()})" if name == "auto" else name
            print(f"  {label:16} {percent:5.1f}% of one core", flush=True)
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
