"""What the /join page's browser tests (and bench/join_cpu.py) share: the marks of a test that needs
Debian's Chromium and npm, the Y4M video Chromium's fake camera plays, and the page's camera counters."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from classroom_capture.cvsetup import cv2

from tests.support.procs import CHROMIUM

needs_browser = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium: apt-get install -y chromium"),
    pytest.mark.skipif(shutil.which("npm") is None, reason="needs npm (apt-get install -y npm)"),
]

#: Frames per second of the fake camera's video.
FPS = 4

#: page.evaluate() it on the /join page: its camera track's frame counters (Chromium's
#: MediaStreamTrack.stats), or null before the camera is on. `total`: frames the camera produced;
#: `delivered`: frames handed to the page (the rest are dropped for the page's frame-rate cap);
#: `at`: performance.now() in ms.
TRACK_FRAMES = """() => {
  const stream = document.getElementById('preview').srcObject;
  const stats = stream && stream.getVideoTracks()[0].stats;
  return stats ? {total: stats.totalFrames, delivered: stats.deliveredFrames, at: performance.now()} : null;
}"""


def write_y4m(path, frames, fps: int = FPS) -> None:
    """An uncompressed Y4M (4:2:0) Chromium's fake camera plays in a loop, at `fps` frames a second."""
    height, width = frames[0].shape[:2]
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
