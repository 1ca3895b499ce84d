"""Temperature scaling (issue 16): the fit, the calibration error, and T inside the served graph."""

import json

import numpy as np
import pytest
import tensorflow as tf
from classroom_contract import SIGNATURE
from classroom_training import calibrate
from classroom_training.cli import main as train_cli
from classroom_training.data import load_fer2013

from tests.support.procs import REPO

SAMPLE = REPO / "data" / "fer2013_sample.csv.gz"
SERVED_V5 = REPO / "models" / "emotion" / "5.keras"


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_the_fit_recovers_the_temperature_that_generated_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(20_000, 7)) * 3
    truth = _softmax(logits / 2.0)  # labels drawn from the logits at T = 2: the raw softmax is over-confident
    labels = (truth.cumsum(axis=1) > rng.random((len(truth), 1))).argmax(axis=1)
    summary = calibrate.calibration_summary(_softmax(logits), labels)
    assert summary["temperature"] == pytest.approx(2.0, rel=0.05)
    assert summary["after"]["ece"] < 0.02 < summary["before"]["ece"]
    assert summary["after"]["nll"] < summary["before"]["nll"]
    assert summary["after"]["accuracy"] == summary["before"]["accuracy"]  # the winning emotion never changes
    assert calibrate.fit_temperature(_softmax(logits), labels, objective="ece") == pytest.approx(2.0, rel=0.1)
    for objective in ("nll", "ece"):  # held-out halves: the fit generalises
        folds = summary["cross_fit"][objective]["folds"]
        assert all(f["ece_after"] < 0.03 < f["ece_before"] for f in folds), folds
    with pytest.raises(ValueError, match="objective"):
        calibrate.fit_temperature(_softmax(logits), labels, objective="accuracy")


def test_expected_calibration_error_is_the_weighted_gap_per_bin():
    probabilities = np.full((10, 7), 0.1 / 6)
    probabilities[:, 0] = 0.9  # every row 90% sure of class 0 ...
    labels = np.array([0] * 5 + [1] * 5)  # ... and right half the time
    result = calibrate.reliability(probabilities, labels)
    assert result["ece"] == pytest.approx(0.4)
    assert [b["count"] for b in result["bins"]] == [0] * 13 + [10, 0]  # 0.9 lies in [13/15, 14/15)
    np.testing.assert_allclose(calibrate.scaled(probabilities, 1.0), probabilities, atol=1e-12)


def test_export_puts_the_temperature_inside_the_contract_graph(tmp_path):
    crops = load_fer2013(SAMPLE)["PublicTest"].images[..., 0]
    plain = train_cli(["export", "--model", str(SERVED_V5), "--models-dir", str(tmp_path), "--no-flip-tta"])
    assert plain == 0
    warmed = ["export", "--model", str(SERVED_V5), "--models-dir", str(tmp_path), "--no-flip-tta"]
    assert train_cli([*warmed, "--temperature", "1.6"]) == 0
    outputs = []
    for version in (1, 2):
        loaded = tf.saved_model.load(str(tmp_path / SIGNATURE.model_name / str(version)))
        serve = loaded.signatures[SIGNATURE.signature_name]
        assert serve.structured_input_signature[1][SIGNATURE.input_key].dtype == tf.uint8
        outputs.append(serve(**{SIGNATURE.input_key: tf.constant(crops)})[SIGNATURE.output_key].numpy())
    as_trained, calibrated = outputs
    assert calibrated.shape == (len(crops), 7) and calibrated.dtype == np.float32
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(calibrated.argmax(axis=1), as_trained.argmax(axis=1))
    np.testing.assert_allclose(calibrated, calibrate.scaled(as_trained, 1.6), atol=1e-5)
    assert calibrated.max(axis=1).mean() < as_trained.max(axis=1).mean()  # T > 1 softens
    with pytest.raises(ValueError, match="temperature"):
        train_cli([*warmed, "--temperature", "0"])


def test_calibrate_writes_the_fit_and_a_reliability_diagram(tmp_path, capsys):
    assert train_cli(["calibrate", "--csv", str(SAMPLE), "--model", str(SERVED_V5), "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "calibration-5.json").read_text())
    assert summary["rows"] == len(load_fer2013(SAMPLE)["PublicTest"])
    assert summary["after"]["nll"] <= summary["before"]["nll"]
    assert (tmp_path / "reliability-5.png").read_bytes()[:4] == b"\x89PNG"
    assert f"temperature {summary['temperature']:.4f}" in capsys.readouterr().out
