"""CPU of a student's capturing tab: the /join page in Debian's headless Chromium with a fake camera
(FER faces placed in 640x480 frames), sampling at --rate, against a real API on 127.0.0.1.

    python -m bench.join_cpu [--rate 2] [--seconds 30] [--camera-fps 4] [--steady] [--camera file|fake]

CPU% = user+system time of ALL of Chromium's processes (browser, renderer, GPU/utility) read from
/proc over --seconds, divided by wall time: % of one core. Measured three times in one browser: the
consent page open (camera off: the browser's own idle cost); the camera preview only (the baseline:
the same camera, opened with join.js's constraints, in the page's own preview element, nothing else
running: what any tab showing the student's camera costs, and on this GPU-less machine, software
compositing included); then sharing. The page's own work is sharing less the baseline. Also the
page's own detection time per frame (median) and where a sample's time goes (the page's
window.joinTimings: ms per sample and step, in the page's thread, wall time). --camera-fps: the fake
camera's frame rate (the tests' 4 by default; a laptop's camera gives 30, which shows what the
page's frame-rate request saves). --steady: the face stays where it is (a student at a laptop; only
the expression changes, once a second); by default each frame places it anew, anywhere in the middle
of the frame. --camera fake: Chromium's own test-pattern camera
(`--use-fake-device-for-media-stream=fps=N`, no file, NO FACE: the detector runs on every sample but
finds nothing, so no crop is made and the per-step timings show it) at --camera-fps frames/s
(Chromium clamps it to 5-60); the file camera always plays at its file's rate, the test pattern at
the rate it is given, whatever the page asks. The camera's own rate (the track's stats.totalFrames)
and the frames that reach the page (stats.deliveredFrames) are printed.
Set JOIN_PAGE_DIR to measure another build of the page. Needs the built page
(services/capture-web/dist) and redis-server.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from classroom_capture.synthetic import FrameMaker, load_fer_faces, render_frame
from classroom_contract import store, tokens

from tests.support.join import FPS, TRACK_FRAMES, write_y4m
from tests.support.procs import BIN, CHROMIUM, CHROMIUM_ARGS, Proc, free_port, http_ok, start_redis, wait_until

ROOT = Path(__file__).resolve().parents[1]

TICKS = os.sysconf("SC_CLK_TCK")
POLL_S = 3.0


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            out.append(child)
            todo.append(child)
    return out


def chromium_cpu_by_type() -> dict[str, float]:
    """CPU seconds so far of each kind of Chromium process (browser, renderer, gpu-process, utility...)."""
    totals: dict[str, float] = {}
    for pid in descendants(os.getpid()):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").replace("\0", " ").split()
            if not argv or "chromium" not in argv[0]:
                continue
            # Chromium's children rewrite their argv into one string: find --type= among the words.
            kinds = [a.split("=", 1)[1] for a in argv if a.startswith(("--type=", "--utility-sub-type="))]
            kind = "/".join(kinds) or "browser"
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            totals[kind] = totals.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / TICKS
        except (OSError, IndexError, ValueError):
            continue
    return totals


def camera_frames(fps: int, steady: bool) -> list:
    """10 s of one student's webcam: ten FER faces, one a second, in the same room; with `steady`,
    each drawn at the same place and size (the same random draw for every frame)."""
    faces = load_fer_faces()
    maker = FrameMaker(faces, seed=5, no_face_ratio=0.0, hold=fps, fixed_scene=True)
    frames = [maker.next() for _ in range(10 * fps)]
    if not steady:
        return [frame.image for frame in frames]
    return [render_frame(np.random.default_rng(5), faces.pixels[frame.face_index])[0] for frame in frames]


def step_means(before: dict, after: dict) -> dict[str, tuple[float, int]]:
    """Mean ms per call of each step of the page's window.joinTimings between two reads, and the calls."""
    means = {}
    for step, total in after.items():
        count = total["count"] - before.get(step, {}).get("count", 0)
        if count:
            means[step] = ((total["ms"] - before.get(step, {}).get("ms", 0.0)) / count, count)
    return means


def camera_args(kind: str, fps: int, steady: bool, tmp: Path) -> list[str]:
    """Chromium's flags for the bench's camera: a Y4M file of FER faces, or Chromium's test pattern."""
    if kind == "fake":
        return [f"--use-fake-device-for-media-stream=fps={fps}"]
    camera = tmp / "camera.y4m"
    write_y4m(camera, camera_frames(fps, steady), fps)
    return ["--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={camera}"]


#: The camera as join.js opens it (CAMERA there), shown in the page's own preview element with
#: nothing else running: what any page showing the student's camera costs (the baseline).
PREVIEW_ONLY = """async () => {
  const video = {width: 640, height: 480, frameRate: {ideal: 10, max: 10}};
  const stream = await navigator.mediaDevices.getUserMedia({video, audio: false});
  document.getElementById('consent').hidden = true;
  document.getElementById('live').hidden = false;
  const preview = document.getElementById('preview');
  preview.srcObject = stream;
  await preview.play();
}"""
STOP_PREVIEW = """() => {
  const preview = document.getElementById('preview');
  for (const track of preview.srcObject.getTracks()) track.stop();
  preview.srcObject = null;
  document.getElementById('live').hidden = true;
  document.getElementById('consent').hidden = false;
}"""
TRACK_SETTINGS = "() => document.getElementById('preview').srcObject.getVideoTracks()[0].getSettings()"


@dataclass
class Phase:
    """CPU% of one core per kind of Chromium process over one phase, and the camera track's rates."""

    parts: dict[str, float]
    camera_fps: float | None = None
    page_fps: float | None = None
    settings: dict | None = None

    @property
    def total(self) -> float:
        return sum(self.parts.values())

    def line(self) -> str:
        by_kind = sorted(self.parts.items(), key=lambda kv: -kv[1])
        return f"{self.total:.1f}% (" + ", ".join(f"{k} {v:.1f}" for k, v in by_kind if v >= 0.05) + ")"


def measure_phase(page, seconds: float, on_poll=None) -> Phase:
    """CPU of all Chromium processes over `seconds`, looking at the page every POLL_S (each look costs
    the browser CPU too: a few looks, not one a sample)."""
    frames_before = page.evaluate(TRACK_FRAMES)
    before, start = chromium_cpu_by_type(), time.monotonic()
    while time.monotonic() - start < seconds:
        time.sleep(min(POLL_S, max(0.0, seconds - (time.monotonic() - start))))
        if on_poll:
            on_poll()
    after, elapsed = chromium_cpu_by_type(), time.monotonic() - start
    phase = Phase({k: 100 * (v - before.get(k, 0.0)) / elapsed for k, v in after.items()})
    frames_after = page.evaluate(TRACK_FRAMES)
    if frames_before and frames_after:
        wall = (frames_after["at"] - frames_before["at"]) / 1000
        phase.camera_fps = (frames_after["total"] - frames_before["total"]) / wall
        phase.page_fps = (frames_after["delivered"] - frames_before["delivered"]) / wall
        phase.settings = page.evaluate(TRACK_SETTINGS)
    return phase


def camera_line(name: str, phase: Phase) -> str:
    if phase.camera_fps is None:
        return f"{name}: no camera track"
    size = phase.settings or {}
    return (
        f"{name}: camera {size.get('width')}x{size.get('height')}, {phase.camera_fps:.1f} frames/s "
        f"from the camera, {phase.page_fps:.1f} to the page"
    )


def main() -> None:
    import redis
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--camera-fps", type=int, default=FPS)
    parser.add_argument("--steady", action="store_true")
    parser.add_argument("--camera", choices=("file", "fake"), default="file")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    redis_port, api_port = free_port(), free_port()
    redis_proc = start_redis(redis_port, tmp)
    crop_port = free_port()
    crop_dir = tmp / "crop-store"
    crop_dir.mkdir()
    crop_proc = start_redis(crop_port, crop_dir)  # the crop store, persistence off as in production
    url = f"redis://127.0.0.1:{redis_port}/0"
    client = redis.Redis.from_url(url)
    store.create_class(client, "bench", "Bench", "teacher", sample_rate_hz=args.rate)
    credential = tokens.new_credential()
    store.enrol_student(client, "bench", "s1", "s1", credential)
    env = {"REDIS_URL": url, "CROP_STORE_URL": f"redis://127.0.0.1:{crop_port}/0", "API_PORT": str(api_port)}
    env |= {"API_HOST": "127.0.0.1", "LOG_LEVEL": "WARNING"}
    api = Proc([str(BIN / "classroom-api")], tmp / "api.log", env=env)
    base = f"http://127.0.0.1:{api_port}"
    camera = camera_args(args.camera, args.camera_fps, args.steady, tmp)
    try:
        wait_until(lambda: http_ok(base + "/healthz"), timeout=60, what="the API")
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", *camera]
            )
            page = browser.new_page()
            page.goto(f"{base}/join#{credential}")
            page.locator("#agree").wait_for()
            time.sleep(3)
            idle = measure_phase(page, min(args.seconds, 15))
            page.evaluate(PREVIEW_ONLY)
            time.sleep(3)
            preview = measure_phase(page, args.seconds)
            page.evaluate(STOP_PREVIEW)
            page.locator("#agree").click()
            time.sleep(8)  # model load and first samples
            detect_ms = []

            def look() -> None:
                value = page.evaluate("document.body.dataset.detectMs")
                if value:
                    detect_ms.append(float(value))

            steps_before = page.evaluate("window.joinTimings || {}")
            sharing = measure_phase(page, args.seconds, on_poll=look)
            steps = step_means(steps_before, page.evaluate("window.joinTimings || {}"))
            sent = page.locator("#sent").inner_text()
            browser.close()
    finally:
        api.stop()
        redis_proc.stop()
        crop_proc.stop()
        shutil.rmtree(tmp, ignore_errors=True)  # a 30 frames/s camera file is 138 MB
    detection = f"{statistics.median(detect_ms):.1f} ms/frame (median)" if detect_ms else "no sample finished"
    print(
        f"rate {args.rate}/s, {args.camera} camera {args.camera_fps} frames/s"
        f"{', steady face' if args.steady else ''}{'' if args.camera == 'file' else ' (test pattern, no face)'}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores. % of one core, all Chromium processes:"
    )
    print(f"  sharing (the page at work): {sharing.line()}")
    print(f"  camera preview only (baseline: the same camera in the same element, nothing else): {preview.line()}")
    print(f"  consent page (camera off): {idle.line()}")
    print(
        f"  the page's work over the preview: {sharing.total - preview.total:+.1f} points "
        f"(sharing/preview {sharing.total / max(preview.total, 1e-9):.2f}x); detection {detection}; "
        f"{sent} observations sent in the run"
    )
    for name, phase in (("sharing", sharing), ("preview only", preview)):
        print("  " + camera_line(name, phase))
    keys = ("width", "height", "frameRate")
    if {k: (sharing.settings or {}).get(k) for k in keys} != {k: (preview.settings or {}).get(k) for k in keys}:
        print("  WARNING: the baseline's camera settings differ from the page's: update PREVIEW_ONLY from join.js")
    if steps:
        print(
            "  page, ms per call (calls in the run): "
            + ", ".join(f"{k} {ms:.1f} ({n})" for k, (ms, n) in steps.items())
        )


if __name__ == "__main__":
    main()
