"""Frame sources: a webcam (by index), a video file, or a folder of images.

`read()` returns the next sampled BGR frame, or None when a finite source (file, folder) is done.
Pacing to `--rate` samples/s is the agent's job; a video file is sampled by its own clock (one frame
every 1/rate seconds of video), so a 25 fps video at rate 2 yields every 12th or 13th frame.

A webcam is read by a small thread that only *grabs* (dequeues without decoding) so the buffer
never holds stale frames; the one frame we sample is decoded on demand. `suspend()` (on pause)
releases the device, so the camera light goes off while the student has paused.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np

from classroom_capture.cvsetup import cv2

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


class SourceError(Exception):
    """A source cannot be opened or stopped working; str() is a one-line message for the user."""


class FrameSource:
    live = False

    def describe(self) -> str:
        raise NotImplementedError

    def read(self) -> np.ndarray | None:
        raise NotImplementedError

    def suspend(self) -> None:
        """Paused by the student: let go of the device if there is one."""

    def resume(self) -> None:
        """Back from a pause."""

    def close(self) -> None:
        self.suspend()


class CameraSource(FrameSource):
    live = True

    def __init__(self, index: int, width: int = 640, height: int = 480, open_timeout: float = 5.0):
        self.index, self.width, self.height, self.open_timeout = index, width, height, open_timeout
        self._cap = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_grab = 0.0
        self._open()

    def describe(self) -> str:
        return f"camera {self.index}"

    def _open(self) -> None:
        cap = cv2.VideoCapture(self.index)
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                f"no camera at index {self.index}: is a webcam connected, allowed for this app, and not in use?"
            )
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        deadline = time.monotonic() + self.open_timeout
        while not cap.grab():
            if time.monotonic() > deadline:
                cap.release()
                raise SourceError(f"camera {self.index} opened but delivers no frames (in use by another app?)")
            time.sleep(0.05)
        self._cap, self._last_grab = cap, time.monotonic()
        self._stop.clear()
        self._thread = threading.Thread(target=self._grabber, name="camera-grab", daemon=True)
        self._thread.start()

    def _grabber(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                ok = self._cap is not None and self._cap.grab()
            if ok:
                self._last_grab = time.monotonic()
            else:
                time.sleep(0.02)

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            self._open()
        with self._lock:
            ok, frame = self._cap.retrieve()
        if not ok or frame is None:
            if time.monotonic() - self._last_grab > self.open_timeout:
                raise SourceError(f"camera {self.index} stopped delivering frames (unplugged?)")
            return self._retry_read()
        return frame

    def _retry_read(self) -> np.ndarray:
        deadline = time.monotonic() + self.open_timeout
        while time.monotonic() < deadline:
            time.sleep(0.05)
            with self._lock:
                ok, frame = self._cap.retrieve()
            if ok and frame is not None:
                return frame
        raise SourceError(f"camera {self.index} stopped delivering frames (unplugged?)")

    def suspend(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        with self._lock:
            if self._cap is not None:
                self._cap.release()
                self._cap = None

    def resume(self) -> None:
        if self._cap is None:
            self._open()


class VideoFileSource(FrameSource):
    def __init__(self, path: Path, rate: float, loop: bool = False):
        self.path, self.rate, self.loop = path, rate, loop
        self._cap = cv2.VideoCapture(str(path))
        ok = self._cap.isOpened()
        first = self._cap.read()[1] if ok else None
        if first is None:
            self._cap.release()
            raise SourceError(f"cannot read video file {path} (not a video, damaged, or a codec OpenCV lacks)")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 1 <= fps <= 240 else 25.0
        self._pending: np.ndarray | None = first  # frame 0 is sample 0
        self._frame_index = 0  # index of the last frame decoded
        self._sample = 0

    def describe(self) -> str:
        return f"video {self.path}"

    def read(self) -> np.ndarray | None:
        if self._pending is not None:
            frame, self._pending = self._pending, None
            self._sample = 1
            return frame
        target = round(self._sample * self.fps / self.rate)
        while self._frame_index < target - 1:  # skip without decoding
            if not self._cap.grab():
                return self._rewind()
            self._frame_index += 1
        ok, frame = self._cap.read()
        if not ok or frame is None:
            return self._rewind()
        self._frame_index += 1
        self._sample += 1
        return frame

    def _rewind(self) -> np.ndarray | None:
        if not self.loop:
            return None
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        self._frame_index, self._sample = -1, 0
        ok, frame = self._cap.read()
        self._frame_index, self._sample = 0, 1
        return frame if ok else None

    def close(self) -> None:
        self._cap.release()


class ImageFolderSource(FrameSource):
    """Every image of a folder, in file-name order, one per sample; other files are ignored."""

    def __init__(self, path: Path, loop: bool = False):
        self.path, self.loop = path, loop
        if path.is_file():  # one image: a folder of one
            self.files = [path]
        else:
            self.files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.files:
            raise SourceError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {path}")
        self._next = 0

    def describe(self) -> str:
        return f"{len(self.files)} images in {self.path}"

    def read(self) -> np.ndarray | None:
        skipped = 0
        while True:
            if self._next >= len(self.files):
                if not self.loop or skipped >= len(self.files):
                    return None
                self._next = 0
            path = self.files[self._next]
            self._next += 1
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is not None:
                return frame
            skipped += 1
            log.warning("skipping unreadable image %s", path)


def open_source(spec: str, rate: float = 2.0, loop: bool = False) -> FrameSource:
    """`spec`: a camera index ("0"), a video file, or a folder of images."""
    spec = str(spec).strip()
    if spec.isdigit():
        return CameraSource(int(spec))
    path = Path(spec).expanduser()
    if path.is_dir() or (path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES):
        return ImageFolderSource(path, loop=loop)
    if path.is_file():
        return VideoFileSource(path, rate, loop=loop)
    raise SourceError(f"--source {spec}: no such camera index, video file or image folder")
