"""Fixtures for the capture agent's tests: real FER faces in synthetic frames, a real local API."""

from __future__ import annotations

import pytest

from tests.support.fake_api import TOKEN, FakeApi


@pytest.fixture(scope="session")
def fer_faces():
    from classroom_capture.synthetic import load_fer_faces

    return load_fer_faces()


@pytest.fixture(scope="session")
def frame_folder(tmp_path_factory):
    """30 PNG frames (about 1 in 5 without a face) and their manifest, made once per run."""
    from classroom_capture.synthetic import write_synthetic_frames

    folder = tmp_path_factory.mktemp("frames")
    manifest = write_synthetic_frames(folder, 30, seed=7, no_face_ratio=0.2)
    return folder, manifest


@pytest.fixture
def api():
    with FakeApi(token=TOKEN) as server:
        yield server


@pytest.fixture(scope="session")
def scenes(fer_faces):
    """60 in-memory synthetic frames (1 in 4 without a face), shared by the detector tests."""
    from classroom_capture.synthetic import FrameMaker

    maker = FrameMaker(fer_faces, seed=11, no_face_ratio=0.25)
    return [maker.next() for _ in range(60)]
