"""The model version served by default is the highest complete numbered SavedModel."""

from __future__ import annotations

import pytest
from classroom_inference.predictor import LocalPredictor
from classroom_inference.settings import Settings
from classroom_inference.versions import available_versions, resolve_version

from tests.support.procs import REPO

V1 = REPO / "models" / "emotion" / "1"


def _model_dir(tmp_path, complete: list[int], partial: list[int] = ()):
    for version in complete:
        (tmp_path / str(version)).symlink_to(V1, target_is_directory=True)
    for version in partial:  # an export still being written: no saved_model.pb yet
        (tmp_path / str(version) / "variables").mkdir(parents=True)
    (tmp_path / "3.keras").write_bytes(b"")  # training writes these next to the folders
    return tmp_path


def test_highest_complete_version_wins_numerically(tmp_path):
    model_dir = _model_dir(tmp_path, complete=[1, 2, 10], partial=[11])
    assert available_versions(model_dir) == [1, 2, 10]
    assert resolve_version(model_dir) == model_dir / "10"
    assert resolve_version(model_dir, pinned=2) == model_dir / "2"
    with pytest.raises(FileNotFoundError):
        resolve_version(model_dir, pinned=11)
    with pytest.raises(FileNotFoundError):
        resolve_version(tmp_path / "nothing")


def test_local_predictor_loads_the_highest_version(tmp_path):
    model_dir = _model_dir(tmp_path, complete=[1, 2])
    predictor = LocalPredictor(resolve_version(model_dir))
    assert predictor.version_dir.name == "2" and predictor.ready()


def test_default_paths_are_the_working_directorys_not_guessed_from_the_source_layout(monkeypatch, tmp_path):
    """Issue #18: ./models/emotion and ./services/capture-web/dist of where the service runs (a checkout's
    root), never a folder found by walking up from the installed package."""
    monkeypatch.delenv("MODEL_DIR", raising=False)
    monkeypatch.delenv("JOIN_PAGE_DIR", raising=False)
    monkeypatch.chdir(REPO)
    assert Settings().model_dir == REPO / "models" / "emotion"
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.model_dir == tmp_path / "models" / "emotion"
    assert settings.join_page_dir == tmp_path / "services" / "capture-web" / "dist"
    monkeypatch.setenv("MODEL_DIR", str(REPO / "models" / "emotion"))
    assert Settings().model_dir == REPO / "models" / "emotion"
    monkeypatch.setenv("MODEL_VERSION", "2")
    monkeypatch.setenv("JOB_RETRY_INTERVALS", "[1, 5]")
    settings = Settings()
    assert settings.model_version == 2 and settings.job_retry_intervals == [1, 5]


def test_predict_checks_shapes(local_predictor):
    import numpy as np

    with pytest.raises(ValueError):
        local_predictor.predict(np.zeros((2, 48, 47), np.uint8))
    with pytest.raises(ValueError):
        local_predictor.predict(np.zeros((2, 48, 48), np.float32))
    assert local_predictor.predict(np.zeros((0, 48, 48), np.uint8)).shape == (0, 7)
