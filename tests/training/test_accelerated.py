"""The accelerator trainer: its portable data pack, on-device augmentation, time-budgeted schedule and output.

CI has no GPU, so the run here uses Keras' TensorFlow backend on the CPU. The module uses only
`keras.ops`, so the code path is the one a GPU machine runs under JAX or PyTorch; the JAX and
PyTorch backends themselves were exercised by hand (training/README.md, "On a lent GPU").
"""

import csv
import logging

import keras
import numpy as np
import pytest
from classroom_training import accelerated
from classroom_training.data import FERPLUS_COLUMNS, load_fer2013
from procs import REPO

SAMPLE = REPO / "data" / "fer2013_sample.csv.gz"


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """The shipped sample packed with made-up FER+ votes (10 annotators, all for row i % 7)."""
    folder = tmp_path_factory.mktemp("pack")
    splits = load_fer2013(SAMPLE)
    votes_csv = folder / "fer2013new.csv"
    with votes_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Usage", "Image name", *FERPLUS_COLUMNS, "contempt", "unknown", "NF"])
        for usage, split in splits.items():
            for i in range(len(split)):
                writer.writerow([usage, f"fer{i:07d}.png", *[10 if c == i % 7 else 0 for c in range(7)], 0, 0, 0])
    out = accelerated.pack(SAMPLE, votes_csv, folder / "pack.npz.xz")
    return out, splits


def test_pack_holds_the_training_and_publictest_rows_unchanged(packed):
    path, splits = packed
    data = accelerated.load_pack(path)
    np.testing.assert_array_equal(data["train_x"], splits["Training"].images)
    np.testing.assert_array_equal(data["val_x"], splits["PublicTest"].images)
    np.testing.assert_array_equal(data["train_y"], splits["Training"].labels)
    np.testing.assert_array_equal(data["val_y"], splits["PublicTest"].labels)
    assert data["train_votes"].shape == (len(splits["Training"]), 7)
    assert data["train_votes"][3, 3] == 10 and data["train_votes"][3].sum() == 10


def test_random_erasing_zeroes_one_square_per_image_only_in_training():
    images = np.full((16, 48, 48, 1), 200.0, np.float32)
    always = accelerated.RandomErasing(probability=1.0, seed=3)
    erased = keras.ops.convert_to_numpy(always(images, training=True))
    zeros = (erased == 0).reshape(16, -1).sum(axis=1)
    # A side of 6..19 px centred anywhere: at least a 3x3 corner, at most 19x19.
    assert ((zeros >= 9) & (zeros <= 19 * 19)).all(), zeros
    assert set(np.unique(erased)) <= {0.0, 200.0}
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(always(images, training=False)), images)
    never = accelerated.RandomErasing(probability=0.0, seed=3)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(never(images, training=True)), images)


def test_time_budget_warms_up_then_anneals_to_zero_by_the_deadline():
    budget = accelerated.TimeBudget(peak=0.1, seconds=100.0, warmup_epochs=2, max_epochs=1000)
    budget.started = 0.0
    assert budget.learning_rate(0, now=0.0) == pytest.approx(0.1 / 3)
    assert budget.learning_rate(1, now=5.0) == pytest.approx(0.2 / 3)
    assert budget.learning_rate(2, now=10.0) == pytest.approx(0.1)  # warm-up over at t=10 s
    assert budget.learning_rate(50, now=55.0) == pytest.approx(0.05)  # half of the 90 s left
    assert budget.learning_rate(99, now=100.0) == pytest.approx(0.0, abs=1e-12)
    assert budget.learning_rate(120, now=150.0) == pytest.approx(0.0, abs=1e-12)  # never negative


@pytest.mark.slow
def test_a_run_writes_a_model_the_tensorflow_side_can_serve(packed, tmp_path, caplog):
    path, splits = packed
    out = tmp_path / "run"
    caplog.set_level(logging.INFO, logger="classroom_training.accelerated")
    try:
        args = ["train", "--data", str(path), "--out", str(out), "--minutes", "0.01", "--width", "8"]
        assert accelerated.main([*args, "--batch-size", "32", "--float32"]) == 0
    finally:
        keras.mixed_precision.set_global_policy("float32")
    history = (out / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,learning_rate") and len(history) == 2  # the budget allows one epoch
    model = keras.models.load_model(out / "best.keras")
    assert model.input.dtype == "uint8"
    probabilities = model.predict(splits["PublicTest"].images[:8], verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    assert "weights on" in caplog.text

    start = accelerated.save_starting_weights(out / "best.keras", tmp_path / "start.npz")
    again = accelerated.models.make_default_model(width=8)
    again.set_weights(accelerated._starting_weights(start))
    np.testing.assert_allclose(again.predict(splits["PublicTest"].images[:8], verbose=0), probabilities, atol=2e-2)
