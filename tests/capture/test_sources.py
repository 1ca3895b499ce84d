"""Frame sources and consent, without a webcam (none in CI): video file sampling, image folders."""

from __future__ import annotations

import io

import numpy as np
import pytest
from classroom_capture.camera import ImageFolderSource, SourceError, VideoFileSource, open_source
from classroom_capture.control import PauseControl, ask_consent, consent_text
from classroom_capture.cvsetup import cv2


@pytest.fixture
def video(tmp_path):
    """2 s of 10 fps MJPEG video whose frame i has brightness 10*i (so a sample tells its index)."""
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    assert writer.isOpened()
    for i in range(20):
        writer.write(np.full((120, 160, 3), 10 * i, np.uint8))
    writer.release()
    return path


def test_video_is_sampled_by_its_own_clock(video):
    source = open_source(str(video), rate=2.0)
    assert isinstance(source, VideoFileSource)
    indices = []
    while (frame := source.read()) is not None:
        indices.append(round(float(frame.mean()) / 10))
    assert indices == [0, 5, 10, 15]  # one frame every 0.5 s of video


def test_video_loop_restarts(video):
    source = VideoFileSource(video, rate=2.0, loop=True)
    frames = [source.read() for _ in range(9)]
    assert all(f is not None for f in frames)


def test_folder_in_name_order_ignoring_other_files(tmp_path):
    for i in (2, 0, 1):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), np.full((10, 10, 3), i * 50, np.uint8))
    (tmp_path / "manifest.json").write_text("{}")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    source = ImageFolderSource(tmp_path)
    values = []
    while (frame := source.read()) is not None:
        values.append(int(frame.mean()))
    assert values == [0, 50, 100]  # broken.png sorts first and is skipped


def test_empty_folder_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="no images"):
        open_source(str(tmp_path))


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_consent_states_what_is_sent_and_needs_an_explicit_yes(tmp_path):
    text = consent_text("https://class.example", "alice", 2.0, "yunet", tmp_path / "o", tmp_path / "P")
    for fact in ("48x48", "grayscale", "NEVER sends the camera image", "https://class.example", "alice",
                 "head angle", "Pause", "2 time(s) per second"):  # fmt: skip
        assert fact in text
    assert ask_consent(text, Tty("yes\n"), io.StringIO())
    assert not ask_consent(text, Tty("\n"), io.StringIO())
    assert not ask_consent(text, io.StringIO("yes\n"), io.StringIO())  # not a terminal: no consent


def test_consent_names_head_angles_only_for_detectors_that_measure_them(tmp_path):
    def text(detector):
        return consent_text("https://class.example", "alice", 2.0, detector, tmp_path / "o", tmp_path / "P")

    assert "head angle" in text("yunet-cv")
    assert "head angle" not in text("haar")


def test_pause_control_toggles_a_file(tmp_path):
    pause = PauseControl(tmp_path / "sub" / "PAUSED")
    assert not pause.is_paused()
    assert pause.toggle() and pause.is_paused()
    assert not pause.toggle() and not pause.is_paused()


class FakeCapture:
    """Stands in for cv2.VideoCapture(index): no webcam on test machines."""

    instances: list[FakeCapture] = []
    alive = True

    def __init__(self, index):
        self.index, self.released, self.grabbed = index, False, 0
        FakeCapture.instances.append(self)

    def isOpened(self):  # noqa: N802 - OpenCV's name
        return self.index != 9

    def set(self, *args):
        return True

    def grab(self):
        import time

        time.sleep(0.002)
        if not FakeCapture.alive:
            return False
        self.grabbed += 1
        return True

    def retrieve(self):
        if not FakeCapture.alive:
            return False, None
        return True, np.full((48, 64, 3), self.grabbed % 256, np.uint8)

    def release(self):
        self.released = True


@pytest.fixture
def fake_camera(monkeypatch):
    FakeCapture.instances, FakeCapture.alive = [], True
    monkeypatch.setattr(cv2, "VideoCapture", FakeCapture)
    return FakeCapture


def test_camera_frames_are_fresh_pause_releases_it_and_unplug_is_an_error(fake_camera):
    import time

    from classroom_capture.camera import CameraSource

    source = open_source("0")
    assert isinstance(source, CameraSource) and source.live
    source.open_timeout = 0.3
    first = int(source.read().mean())
    time.sleep(0.05)
    assert int(source.read().mean()) > first  # the grabber kept the buffer drained
    source.suspend()
    assert fake_camera.instances[-1].released  # paused: the camera light goes off
    source.resume()
    assert len(fake_camera.instances) == 2 and source.read() is not None
    fake_camera.alive = False
    time.sleep(0.4)
    with pytest.raises(SourceError, match="stopped delivering frames"):
        source.read()
    source.close()


def test_missing_camera_index(fake_camera):
    with pytest.raises(SourceError, match="no camera at index 9"):
        open_source("9")
