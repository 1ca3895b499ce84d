"""What the /join page's browser tests (and bench/join_cpu.py) share: the marks of a test that needs
Debian's Chromium and npm, and the Y4M video Chromium's fake camera plays."""

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


def write_y4m(path, frames, fps: int = FPS) -> None:
    """An uncompressed Y4M (4:2:0) Chromium's fake camera plays in a loop, at `fps` frames a second."""
    height, width = frames[0].shape[:2]
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
