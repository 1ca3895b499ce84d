"""One observation's whole path, every hop a real process.

Real FER2013 faces (the project's own sample) are placed into 640x480 frames in a folder; the real
capture agent (`classroom-capture`) detects and crops them and POSTs to the real API under uvicorn;
a real RQ worker predicts with the committed SavedModel; the real dashboard serves the result over
HTTP to a logged-in teacher. The teacher enrols the student on the dashboard's roster, and the agent
runs with the join link printed there (the student's own credential). The expected emotions are
computed independently here: the same detector and crop on the same frames, then the same SavedModel
called in this process.
"""

from __future__ import annotations

import os
import re
import subprocess

import cv2
import numpy as np
import pytest
import requests
import tensorflow as tf
from classroom_capture.detector import analyse, make_detector
from classroom_capture.synthetic import write_synthetic_frames
from classroom_contract import EMOTIONS, SIGNATURE, keys, store
from classroom_dashboard.emotion import current_emotion
from classroom_inference.versions import resolve_version

from tests.support.frontend import csrf_from
from tests.support.inference import crops_left
from tests.support.procs import BIN, REPO, wait_until
from tests.support.stack import TEACHER, running_stack

pytestmark = pytest.mark.slow

MODEL_DIR = REPO / "models" / SIGNATURE.model_name
DETECTOR = "auto"  # the agent's default detector (yunet-cv)
PASSWORD = "e2e-password-123"


@pytest.fixture
def system(redis_url, tmp_path):
    """API, worker and dashboard as real processes on free loopback ports, plus a class (no students yet)."""
    env = {**os.environ, "REDIS_URL": redis_url, "MODEL_DIR": str(MODEL_DIR), "DASHBOARD_ENV": "development"}
    env["PREDICTOR_BFLOAT16"] = "off"  # the expected emotions below are computed in float32
    with running_stack(tmp_path, env, "e2e", "E2E", PASSWORD) as stack:
        yield {"api": stack.api, "dashboard": stack.dashboard, "env": stack.env, "procs": stack.procs}


def _expected_emotions(frames_dir, manifest) -> list[str | None]:
    """Per frame: the emotion the model gives for the crop the agent makes, None when no face."""
    detector = make_detector(DETECTOR)
    model = tf.saved_model.load(str(resolve_version(MODEL_DIR)))  # the version the worker loads
    serve = model.signatures[SIGNATURE.signature_name]
    expected = []
    for frame in manifest:
        facts = analyse(cv2.imread(str(frames_dir / frame["file"])), detector)
        if facts.crop is None:
            expected.append(None)
            continue
        probabilities = serve(crops=tf.constant(facts.crop[np.newaxis]))[SIGNATURE.output_key].numpy()[0]
        expected.append(EMOTIONS[int(probabilities.argmax())])
    return expected


def _login(dashboard: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{dashboard}/auth/login", timeout=10).text
    csrf = csrf_from(page)
    answer = session.post(
        f"{dashboard}/auth/login",
        data={"username": TEACHER, "password": PASSWORD, "csrf_token": csrf},
        timeout=10,
    )
    assert answer.status_code == 200 and "/auth/login" not in answer.url
    return session


def test_faces_in_frames_reach_the_teacher_with_the_models_emotions(system, tmp_path, redis_client):
    frames_dir = tmp_path / "frames"
    manifest = write_synthetic_frames(frames_dir, 10, seed=7, no_face_ratio=0.3)
    assert any(not f["has_face"] for f in manifest), "the sample must include a no-face frame"
    expected = _expected_emotions(frames_dir, manifest)
    assert any(e is not None for e in expected) and any(e is None for e in expected)

    session = _login(system["dashboard"])
    roster = session.get(f"{system['dashboard']}/classes/e2e/roster", timeout=10).text
    csrf = csrf_from(roster)
    form = {"csrf_token": csrf, "student_id": "alice", "display_name": "Alice"}
    assert session.post(f"{system['dashboard']}/classes/e2e/roster", data=form, timeout=10).status_code == 200
    roster = session.get(f"{system['dashboard']}/classes/e2e/roster", timeout=10).text
    join_link = re.search(r'<a class="join-link" href="([^"]+)"', roster).group(1)
    assert join_link.startswith(system["api"] + "/join#")

    agent = subprocess.run(
        [str(BIN / "classroom-capture"), "--join-link", join_link, "--source", str(frames_dir), "--rate", "20",
         "--detector", DETECTOR, "--consent", "--outbox", str(tmp_path / "outbox.db")],
        env=system["env"], capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert agent.returncode == 0, agent.stderr

    def all_processed():
        return len(store.student_series(redis_client, "e2e", "alice")) == len(manifest)

    wait_until(all_processed, timeout=90, what="every frame's result in Redis")
    series = store.student_series(redis_client, "e2e", "alice")
    assert [r.emotion for r in series] == expected
    assert [r.face_count == 0 for r in series] == [e is None for e in expected]  # no face = absence

    students = session.get(f"{system['dashboard']}/api/classes/e2e/students", timeout=10).json()
    alice = next(s for s in students["students"] if s["student_id"] == "alice")
    shown = current_emotion(series[-1], series, window=60, min_confidence=0.5)  # the dashboard's defaults
    assert alice["emotion"] == (shown.label if shown else None)  # the window mean, not the last crop's
    assert alice["face_present"] is (expected[-1] is not None)

    # privacy: no crop bytes are left in Redis once every observation is predicted
    assert list(redis_client.scan_iter(keys.crops("*"))) == [] and crops_left() == []
