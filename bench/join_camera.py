"""What Chromium does with the /join page's camera request, camera and preview alone (no detection):
the page's own getUserMedia constraints (read from services/capture-web/src/join.js) against the same
without a frame rate, on Debian's headless Chromium with a fake camera.

    python -m bench.join_camera [--seconds 10] [--cameras fake:30 fake:10 file:30]

A camera is `fake:N` (Chromium's test pattern, `--use-fake-device-for-media-stream=fps=N`) or
`file:N` (a Y4M file of FER faces played at N frames/s, as bench/join_cpu.py's). Each lists ONE
frame rate (Chromium's fake devices offer no choice of rate), so the page's cap can only drop
frames, never open the camera slower. For each camera and request, in a fresh browser on a page
that is just the preview (a <video>, as join.css draws it): what the track reports (getSettings().frameRate,
getCapabilities().frameRate), frames/s the camera produced and frames/s handed to the page (the
track's stats.totalFrames / deliveredFrames), frames/s presented in the preview
(requestVideoFrameCallback's presentedFrames), and the CPU of all Chromium processes over --seconds
(% of one core, by process type, from /proc, as bench/join_cpu.py).
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.join_cpu import camera_args, chromium_cpu_by_type
from tests.support.join import TRACK_FRAMES
from tests.support.procs import CHROMIUM, CHROMIUM_ARGS, REPO

JOIN_JS = REPO / "services" / "capture-web" / "src" / "join.js"

START = """async (request) => {
  const stream = await navigator.mediaDevices.getUserMedia({video: request, audio: false});
  const video = document.getElementById('preview');
  video.srcObject = stream;
  await video.play();
  window.presented = [];
  const count = (now, meta) => {
    window.presented.push([now, meta.presentedFrames]);
    video.requestVideoFrameCallback(count);
  };
  video.requestVideoFrameCallback(count);
  const track = stream.getVideoTracks()[0];
  return {settings: track.getSettings().frameRate, capabilities: track.getCapabilities().frameRate};
}"""


def page_request() -> str:
    """The page's getUserMedia video constraints, as the JavaScript literal join.js holds."""
    return re.search(r"^const CAMERA = (\{.*\});$", JOIN_JS.read_text(), re.M).group(1)


def measure(playwright, camera: list[str], url: str, request: str, seconds: float) -> str:
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", *camera]
    )
    try:
        page = browser.new_page()
        page.goto(url)
        reported = page.evaluate(f"() => ({START})({request})")
        time.sleep(2)  # the camera's start
        first, shown = page.evaluate(TRACK_FRAMES), page.evaluate("window.presented.length")
        before, start = chromium_cpu_by_type(), time.monotonic()
        time.sleep(seconds)
        after, elapsed = chromium_cpu_by_type(), time.monotonic() - start
        last, presented = page.evaluate(TRACK_FRAMES), page.evaluate("window.presented")[shown:]
    finally:
        browser.close()
    span = (last["at"] - first["at"]) / 1000
    preview = (presented[-1][1] - presented[0][1]) / ((presented[-1][0] - presented[0][0]) / 1000)
    parts = {k: 100 * (v - before.get(k, 0.0)) / elapsed for k, v in after.items()}
    parts = {k.rsplit(".", 1)[-1]: v for k, v in sorted(parts.items(), key=lambda kv: -kv[1]) if v >= 0.05}
    made, delivered = (last[k] - first[k] for k in ("total", "delivered"))
    return (
        f"settings {reported['settings']:g}, capabilities max {reported['capabilities']['max']:g}; frames/s: "
        f"camera {made / span:.1f}, to the page {delivered / span:.1f}, preview {preview:.1f}; "
        f"CPU {sum(parts.values()):.1f}% (" + ", ".join(f"{k} {v:.1f}" for k, v in parts.items()) + ")"
    )


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--cameras", nargs="+", default=["fake:30", "fake:10", "file:30"])
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    site = tmp / "site"
    site.mkdir()
    page = '<video id="preview" muted playsinline style="width: 100%; max-width: 20rem; transform: scaleX(-1)"></video>'
    (site / "index.html").write_text(f"<!doctype html>{page}")  # the page's preview, as join.css draws it

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"  # loopback: a secure context, as the page's
    request = page_request()
    without_rate = re.sub(r",\s*frameRate: \{[^}]*\}", "", request)
    try:
        with sync_playwright() as p:
            for name in args.cameras:
                kind, fps = name.split(":")
                (tmp / "camera.y4m").unlink(missing_ok=True)
                camera = camera_args(kind, int(fps), False, tmp)
                for label, constraints in (("page's request", request), ("no frame rate", without_rate)):
                    print(f"{name} camera, {label} {constraints}: {measure(p, camera, url, constraints, args.seconds)}")
    finally:
        server.shutdown()
        for leftover in (tmp / "camera.y4m", site / "index.html"):
            leftover.unlink(missing_ok=True)
        site.rmdir()
        tmp.rmdir()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
