"""Train on the shipped sample, resume, report and export: the whole training CLI on real rows."""

import json
import subprocess

import numpy as np
import pytest
import tensorflow as tf
from classroom_contract import SIGNATURE
from classroom_training.cli import main as train_cli

from tests.support.procs import BIN, REPO

SAMPLE = REPO / "data" / "fer2013_sample.csv.gz"
TINY = ["--csv", str(SAMPLE), "--width", "8", "--batch-size", "32"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A 1-epoch run, then the same run resumed to 2 epochs (as after an interruption)."""
    run = tmp_path_factory.mktemp("run")
    assert train_cli(["train", *TINY, "--epochs", "1", "--run-dir", str(run)]) == 0
    assert train_cli(["train", *TINY, "--epochs", "2", "--run-dir", str(run), "--resume"]) == 0
    return run


def test_resume_continues_the_same_run(trained_run):
    history = (trained_run / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == ["0", "1"]
    assert (trained_run / "best.keras").exists()


def test_unfinished_run_is_not_overwritten_without_resume(trained_run):
    with pytest.raises(SystemExit, match="--resume"):
        train_cli(["train", *TINY, "--epochs", "1", "--run-dir", str(trained_run)])


def test_report_writes_figures_and_plots(trained_run, tmp_path):
    out = tmp_path / "report"
    args = ["report", "--csv", str(SAMPLE), "--model", str(trained_run / "best.keras")]
    assert train_cli([*args, "--run-dir", str(trained_run), "--out", str(out)]) == 0
    figures = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= figures["flip_tta_accuracy"] <= 1.0
    assert figures["plain_crops_per_s_b64"] > 0
    for png in ("confusion_matrix.png", "training_curves.png", "class_distribution.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "macro-F1" in (out / "README.md").read_text()


def test_export_makes_numbered_versions_with_the_contract_signature(trained_run, tmp_path):
    models = tmp_path / "models"
    for expected in ("1", "2"):
        assert train_cli(["export", "--model", str(trained_run / "best.keras"), "--models-dir", str(models)]) == 0
        assert (models / SIGNATURE.model_name / expected / "saved_model.pb").exists()
    version = models / SIGNATURE.model_name / "2"
    shown = subprocess.run(
        [str(BIN / "saved_model_cli"), "show", "--dir", str(version), "--tag_set", "serve",
         "--signature_def", SIGNATURE.signature_name],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert f"inputs['{SIGNATURE.input_key}']" in shown and "DT_UINT8" in shown and "(-1, 48, 48)" in shown
    assert f"outputs['{SIGNATURE.output_key}']" in shown and "(-1, 7)" in shown

    serve = tf.saved_model.load(str(version)).signatures[SIGNATURE.signature_name]
    crops = np.random.default_rng(1).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    probabilities = serve(crops=tf.constant(crops))[SIGNATURE.output_key].numpy()
    assert probabilities.shape == (5, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
        serve(crops=tf.constant(crops.astype(np.float32)))  # raw uint8 only: no client-side preprocessing


def _ferplus_votes(path, training_rows: int, public_rows: int) -> None:
    """A fer2013new.csv-shaped file: every Training face voted mostly 'happiness', some 'contempt'."""
    header = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
    rows = [f"Training,fer{i:07d}.png,1,7,0,0,0,0,0,2,0,0" for i in range(training_rows)]
    rows += [f"PublicTest,fer{i:07d}.png,10,0,0,0,0,0,0,0,0,0" for i in range(public_rows)]
    path.write_text("\n".join([header, *rows]) + "\n")


def test_warm_restart_with_ferplus_soft_targets(trained_run, tmp_path):
    """--init-from starts from a trained model's weights; --ferplus-weight blends the crowd votes in."""
    from classroom_training.data import load_fer2013

    splits = load_fer2013(SAMPLE)
    votes = tmp_path / "fer2013new.csv"
    _ferplus_votes(votes, len(splits["Training"]), len(splits["PublicTest"]))
    run = tmp_path / "warm"
    args = ["train", *TINY, "--epochs", "1", "--run-dir", str(run), "--learning-rate", "0.0"]
    args += ["--init-from", str(trained_run / "best.keras"), "--ferplus-weight", "0.3", "--ferplus-votes", str(votes)]
    assert train_cli(args) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["ferplus_weight"] == 0.3 and config["init_from"].endswith("best.keras")
    # learning rate 0: the warm-started model is exactly the model it started from
    import keras

    start = keras.models.load_model(trained_run / "best.keras", compile=False).get_weights()
    after = keras.models.load_model(run / "best.keras", compile=False).get_weights()
    assert all(
        np.array_equal(a, b) for a, b in zip(start, after, strict=True) if a.ndim > 1
    )  # kernels; BN statistics move


def test_ferplus_votes_must_match_the_csv(tmp_path, capsys):
    votes = tmp_path / "fer2013new.csv"
    _ferplus_votes(votes, 3, 1)
    args = ["train", *TINY, "--epochs", "1", "--run-dir", str(tmp_path / "run"), "--ferplus-weight", "0.3"]
    assert train_cli([*args, "--ferplus-votes", str(votes)]) == 2
    assert "3 Training rows, but the FER2013 CSV has" in capsys.readouterr().err


def test_compare_evaluates_a_keras_file_and_a_served_savedmodel(trained_run, tmp_path):
    models, out = tmp_path / "models", tmp_path / "comparison"
    best = str(trained_run / "best.keras")
    assert train_cli(["export", "--model", best, "--models-dir", str(models), "--no-flip-tta"]) == 0
    served = models / SIGNATURE.model_name / "1"
    args = ["compare", "--csv", str(SAMPLE), "--model", f"trained={best}", "--model", f"served={served}"]
    assert train_cli([*args, "--out", str(out)]) == 0
    rows = {
        cells[0]: cells[1:]
        for line in (out / "comparison.md").read_text().splitlines()
        if line.startswith("| ")
        and (cells := [c.strip() for c in line.strip("|").split("|")])[0] in ("trained", "served")
    }
    assert set(rows) == {"trained", "served"}
    for accuracy, macro_f1, crops_per_s in rows.values():
        assert 0 <= float(accuracy) <= 1 and 0 <= float(macro_f1) <= 1 and float(crops_per_s) > 0
