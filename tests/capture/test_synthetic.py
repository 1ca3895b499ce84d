"""Synthetic frames from real FER2013 faces, and the classroom-demo simulated class."""

from __future__ import annotations

import gzip
import json
import subprocess
from collections import Counter

import numpy as np
import pytest
from classroom_capture.cvsetup import cv2
from classroom_capture.synthetic import default_sample_path, load_fer_faces, write_synthetic_frames

from tests.support.fake_api import TOKEN, FakeApi
from tests.support.procs import BIN, REPO


def test_sample_is_the_repository_file_with_all_rows(fer_faces, monkeypatch):
    monkeypatch.delenv("CLASSROOM_FER_SAMPLE", raising=False)
    monkeypatch.chdir(REPO)
    assert default_sample_path() == REPO / "data" / "fer2013_sample.csv.gz"
    assert len(fer_faces) == 350
    assert fer_faces.pixels.shape == (350, 48, 48) and fer_faces.pixels.dtype == np.uint8
    assert set(fer_faces.emotions.tolist()) <= set(range(7))


def test_default_sample_is_under_the_working_directory_not_the_package(tmp_path, monkeypatch):
    """Issue #18: no guessing the checkout from the package's location (an installed agent has none)."""
    monkeypatch.delenv("CLASSROOM_FER_SAMPLE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_sample_path() == tmp_path / "data" / "fer2013_sample.csv.gz"
    with pytest.raises(FileNotFoundError, match="CLASSROOM_FER_SAMPLE"):
        load_fer_faces()


def test_sample_path_from_environment(tmp_path, monkeypatch):
    small = tmp_path / "two.csv.gz"
    with gzip.open(small, "wt") as out:
        out.write("emotion,pixels,Usage\n")
        for emotion in (3, 6):
            out.write(f"{emotion},{' '.join(['128'] * 2304)},Training\n")
    monkeypatch.setenv("CLASSROOM_FER_SAMPLE", str(small))
    assert default_sample_path() == small
    assert len(load_fer_faces()) == 2
    monkeypatch.setenv("CLASSROOM_FER_SAMPLE", str(tmp_path / "missing.csv.gz"))
    with pytest.raises(FileNotFoundError, match="CLASSROOM_FER_SAMPLE"):
        load_fer_faces()


def test_written_frames_are_png_640x480_with_a_truthful_manifest(frame_folder):
    folder, manifest = frame_folder
    assert json.loads((folder / "manifest.json").read_text()) == manifest
    pngs = sorted(folder.glob("*.png"))
    assert [p.name for p in pngs] == [m["file"] for m in manifest]
    assert 0 < sum(not m["has_face"] for m in manifest) < len(manifest) / 2  # some frames without a face
    for entry in manifest[:5]:
        image = cv2.imread(str(folder / entry["file"]))
        assert image.shape == (480, 640, 3)
        if entry["has_face"]:
            x, y, w, h = entry["box"]
            assert 160 <= w == h <= 220 and 0 <= x and x + w <= 640 and 0 <= y and y + h <= 480
            assert entry["emotion"] in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def test_same_seed_same_frames(tmp_path):
    a = write_synthetic_frames(tmp_path / "a", 3, seed=4)
    b = write_synthetic_frames(tmp_path / "b", 3, seed=4)
    assert a == b
    assert (tmp_path / "a" / "frame_00002.png").read_bytes() == (tmp_path / "b" / "frame_00002.png").read_bytes()


DEMO_CREDENTIALS = {"student-01": "1111-1111-1111-1111", "student-02": "2222-2222-2222-2222", "student-03": TOKEN}


def _credentials_file(tmp_path, credentials: dict) -> str:
    path = tmp_path / "demo-credentials.json"
    path.write_text(json.dumps(credentials))
    path.chmod(0o600)
    return str(path)


def test_demo_runs_a_small_class_each_student_with_their_own_credential(tmp_path):
    with FakeApi(credentials={c: s for s, c in DEMO_CREDENTIALS.items()}) as api:
        result = subprocess.run(
            [str(BIN / "classroom-demo"), "--server", api.url, "--credentials",
             _credentials_file(tmp_path, DEMO_CREDENTIALS), "--rate", "4", "--duration", "2.5", "--status-every", "0"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    per_student = Counter(o["student_id"] for o in api.accepted)  # the student the fake API derived from each one
    assert set(per_student) == {"student-01", "student-02", "student-03"}
    assert all(n >= 5 for n in per_student.values()), per_student
    assert len(api.ids()) == len(set(api.ids()))
    assert "pending 0" in result.stderr.strip().splitlines()[-1]


def test_demo_with_a_bad_credential_stops_with_one_line(api, tmp_path):
    unknown = _credentials_file(tmp_path, {"s1": "ZZZZ-ZZZZ-ZZZZ-ZZZZ", "s2": "YYYY-YYYY-YYYY-YYYY"})
    result = subprocess.run(
        [str(BIN / "classroom-demo"), "--server", api.url, "--credentials", unknown, "--fast"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 3
    assert result.stderr.strip().splitlines()[-1].startswith("classroom-demo: error: the server refused your code")
    assert "Traceback" not in result.stderr


def test_the_demo_and_the_agent_share_one_default_rate(monkeypatch):
    """Issue #18: CLASSROOM_RATE defaulted to 1 in the demo and to the class's rate (else 2) in the agent;
    both now fall back to the contract's DEFAULT_SAMPLE_RATE_HZ, a new class's rate."""
    from classroom_capture.cli import build_parser
    from classroom_capture.demo import _demo_parser
    from classroom_contract.messages import DEFAULT_SAMPLE_RATE_HZ

    monkeypatch.delenv("CLASSROOM_RATE", raising=False)
    assert _demo_parser().parse_args([]).rate == DEFAULT_SAMPLE_RATE_HZ
    assert build_parser().parse_args([]).rate is None  # the class's rate, else DEFAULT_SAMPLE_RATE_HZ
    assert f"else {DEFAULT_SAMPLE_RATE_HZ:g})" in " ".join(build_parser().format_help().split())
    monkeypatch.setenv("CLASSROOM_RATE", "4")
    assert _demo_parser().parse_args([]).rate == build_parser().parse_args([]).rate == 4
