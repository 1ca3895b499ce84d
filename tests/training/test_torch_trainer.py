"""The GPU trainer (`torch_trainer`) and its bridge to Keras (`named_weights`, `pack`).

CI has no GPU, so these run PyTorch on the CPU (torch 2.13.0+cpu, pinned in requirements-dev).
The trainer has no CUDA-only code path: the same functions ran on the H200 that trained model v5.
What matters most is the bridge: a network trained in PyTorch must predict exactly what the Keras
model it becomes predicts, or every figure in the report would describe a different model.
"""

import csv

import keras
import numpy as np
import pytest
import torch
from classroom_training import cli, models, named_weights, torch_trainer
from classroom_training.data import soft_targets
from classroom_training.pack import pack

from tests.support.procs import REPO

SAMPLE = REPO / "data" / "fer2013_sample.csv.gz"
SERVED_V5 = REPO / "models" / "emotion" / "5.keras"


def _crops(n: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 48, 1), dtype=np.uint8)


def _torch_probabilities(net: torch_trainer.DefaultNet, crops: np.ndarray) -> np.ndarray:
    net.eval()
    with torch.no_grad():
        return torch.softmax(net(torch.from_numpy(crops).permute(0, 3, 1, 2).float()), dim=1).numpy()


# ---------------------------------------------------------------- data


def test_pack_holds_the_training_and_publictest_rows_unchanged(packed):
    path, splits = packed
    data = torch_trainer.load_pack(path)
    np.testing.assert_array_equal(data["train_x"], splits["Training"].images)
    np.testing.assert_array_equal(data["val_x"], splits["PublicTest"].images)
    np.testing.assert_array_equal(data["train_y"], splits["Training"].labels)
    np.testing.assert_array_equal(data["val_y"], splits["PublicTest"].labels)
    assert data["train_votes"].shape == (len(splits["Training"]), 7)
    assert data["train_votes"][3, 3] == 10 and data["train_votes"][3].sum() == 10


def test_soft_targets_match_the_keras_trainers():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 7, 50)
    votes = rng.integers(0, 4, (50, 7)).astype(np.float32)
    votes[:5] = 0  # rows without usable votes keep their one-hot target
    for weight in (0.0, 0.3, 1.0):
        np.testing.assert_allclose(
            torch_trainer.soft_targets(labels, votes, weight), soft_targets(labels, votes, weight), atol=1e-6
        )


def test_augment_keeps_pixels_and_erases_one_square_per_image():
    constant = torch.full((32, 1, 48, 48), 200, dtype=torch.uint8)
    untouched = torch_trainer.augment(constant, erase_probability=0.0)
    assert untouched.shape == (32, 1, 48, 48)
    # A flat image stays flat under any flip, shift, rotation or zoom with reflected borders.
    assert torch.equal(untouched, torch.full_like(untouched, 200.0))
    erased = torch_trainer.augment(constant, erase_probability=1.0)
    zeros = (erased == 0).flatten(1).sum(1)
    # A side of 6..19 px centred anywhere: at least a 3x3 corner, at most 19x19.
    assert ((zeros >= 9) & (zeros <= 19 * 19)).all(), zeros
    assert set(erased.unique().tolist()) == {0.0, 200.0}
    faces = torch.from_numpy(_crops(16).transpose(0, 3, 1, 2).copy())
    moved = torch_trainer.augment(faces, erase_probability=0.0)
    assert torch.equal(moved, moved.round()) and moved.min() >= 0 and moved.max() <= 255
    assert not torch.equal(moved, faces.float())


def test_learning_rate_warms_up_then_follows_a_cosine_to_zero():
    lr = lambda t: torch_trainer.learning_rate(t, budget=100.0, warmup=10.0, peak=0.1)  # noqa: E731
    assert lr(5.0) == pytest.approx(0.05)
    assert lr(10.0) == pytest.approx(0.1)
    assert lr(55.0) == pytest.approx(0.05)
    assert lr(100.0) == pytest.approx(0.0, abs=1e-12)
    assert lr(500.0) == pytest.approx(0.0, abs=1e-12)  # past the budget: zero, never negative
    assert all(lr(t) >= lr(t + 1) for t in range(10, 100))


# ---------------------------------------------------------------- the bridge to Keras


def test_served_keras_model_and_its_pytorch_twin_predict_the_same():
    model = keras.models.load_model(SERVED_V5, compile=False)
    net = torch_trainer.DefaultNet(width=32)
    torch_trainer.load_keras_arrays(net, named_weights.named_arrays(model))
    crops = _crops()
    expected = model.predict(crops, verbose=0)
    np.testing.assert_allclose(_torch_probabilities(net, crops), expected, atol=1e-5)
    again = models.make_default_model(width=32)
    named_weights.load_named_arrays(again, torch_trainer.to_keras_arrays(net))
    np.testing.assert_allclose(again.predict(crops, verbose=0), expected, atol=1e-6)


def test_a_model_saved_before_layers_had_names_keeps_its_predictions():
    """v1-v4 were saved with Keras' automatic layer names; they are rebuilt, not re-trained."""
    old = REPO / "models" / "emotion" / "4.keras"
    saved = keras.models.load_model(old, compile=False)
    assert "stem_conv" not in [layer.name for layer in saved.layers]
    renamed = named_weights.default_model_from(old)
    assert "stage4_shortcut_bn" in [layer.name for layer in renamed.layers]
    crops = _crops(16, seed=2)
    np.testing.assert_array_equal(renamed.predict(crops, verbose=0), saved.predict(crops, verbose=0))


def test_named_weights_refuse_a_missing_or_misshapen_array():
    model = models.make_default_model(width=8)
    arrays = named_weights.named_arrays(model)
    with pytest.raises(ValueError, match="lacks stage2_bn1/gamma"):
        named_weights.load_named_arrays(model, {k: v for k, v in arrays.items() if k != "stage2_bn1/gamma"})
    arrays["probabilities/bias"] = np.zeros(8, np.float32)
    with pytest.raises(ValueError, match=r"probabilities/bias: shape \(8,\)"):
        named_weights.load_named_arrays(model, arrays)
    net = torch_trainer.DefaultNet(width=8)
    with pytest.raises(ValueError, match="lacks"):
        torch_trainer.load_keras_arrays(net, {})


def test_named_weights_refuse_the_seed_architecture(tmp_path):
    path = tmp_path / "seed.keras"
    models.make_seed_model().save(path)
    with pytest.raises(ValueError, match="'seed' model"):
        named_weights.default_model_from(path)


# ---------------------------------------------------------------- a whole run, then the CLI


def test_a_short_run_writes_weights_that_the_keras_cli_imports(packed, tmp_path):
    path, splits = packed
    out = tmp_path / "run"
    best = torch_trainer.train(
        torch_trainer.parse_args(
            [
                "--data",
                str(path),
                "--out",
                str(out),
                "--minutes",
                "5",
                "--max-epochs",
                "2",
                "--batch-size",
                "32",
                "--width",
                "8",
                "--limit",
                "96",
                "--float32",
                "--warmup-minutes",
                "0.01",
                "--device",
                "cpu",
            ]
        )  # fmt: skip
    )
    with open(out / "history.csv") as history:
        rows = list(csv.DictReader(history))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert 0.0 <= best <= 1.0 and best == pytest.approx(max(float(row["val_accuracy"]) for row in rows))
    with np.load(out / "best.npz") as npz:
        assert float(npz["meta/val_accuracy"]) == pytest.approx(best)

    keras_path = tmp_path / "imported.keras"
    assert (
        cli.main(["import-weights", "--weights", str(out / "best.npz"), "--width", "8", "--out", str(keras_path)]) == 0
    )
    model = keras.models.load_model(keras_path, compile=False)
    assert model.inputs[0].dtype == "uint8"
    val = splits["PublicTest"].images
    probabilities = model.predict(val, verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    net = torch_trainer.DefaultNet(width=8)
    with np.load(out / "best.npz") as npz:
        torch_trainer.load_keras_arrays(net, dict(npz))
    np.testing.assert_allclose(_torch_probabilities(net, val), probabilities, atol=1e-5)
    accuracy = (probabilities.argmax(1) == splits["PublicTest"].labels).mean()
    assert accuracy == pytest.approx(best, abs=1 / len(val))  # a near-tie may round either way


def test_export_weights_then_warm_start_resumes_from_the_same_predictions(tmp_path):
    start = tmp_path / "v5.npz"
    assert cli.main(["export-weights", "--model", str(SERVED_V5), "--out", str(start)]) == 0
    net = torch_trainer.DefaultNet(width=32)
    with np.load(start) as npz:
        torch_trainer.load_keras_arrays(net, dict(npz))
    crops = _crops(8, seed=3)
    expected = keras.models.load_model(SERVED_V5, compile=False).predict(crops, verbose=0)
    np.testing.assert_allclose(_torch_probabilities(net, crops), expected, atol=1e-5)


# ---------------------------------------------------------------- the efficient family and distillation


def _randomised(model: keras.Model, seed: int = 4) -> keras.Model:
    """Random weights everywhere, BatchNorm statistics included, so the bridge is checked for every array."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for variable in layer.weights:
            shape = tuple(variable.shape)
            if variable.name == "moving_variance":
                value = rng.uniform(0.5, 2.0, shape)
            elif variable.name == "gamma":
                value = rng.uniform(0.8, 1.2, shape)
            else:
                value = rng.normal(0, 0.2 if len(shape) > 1 else 0.1, shape)
            variable.assign(value.astype(np.float32))
    return model


@pytest.mark.parametrize("spec", ["plain-w8-d1", "separable-w8-d2", "separable-w16-d1"])
def test_fast_keras_model_and_its_pytorch_twin_predict_the_same(spec):
    model = _randomised(models.make_fast_model(**models.parse_fast_spec(spec)))
    assert model.get_layer("stem_conv").strides == (2, 2)
    net = torch_trainer.build_net(spec)
    arrays = named_weights.named_arrays(model)
    assert set(arrays) == {key for key, _, _ in torch_trainer._keras_variables(net)}
    torch_trainer.load_keras_arrays(net, arrays)
    crops = _crops(32, seed=5)
    expected = model.predict(crops, verbose=0)
    assert np.ptp(expected, axis=0).max() > 1e-3  # the crops get different outputs: not a constant network
    np.testing.assert_allclose(_torch_probabilities(net, crops), expected, atol=1e-5)
    again = named_weights.model_for(spec)
    named_weights.load_named_arrays(again, torch_trainer.to_keras_arrays(net))
    np.testing.assert_allclose(again.predict(crops, verbose=0), expected, atol=1e-6)


def test_network_specs_are_checked():
    assert isinstance(torch_trainer.build_net("default-w8"), torch_trainer.DefaultNet)
    for bad in ("fast-w8-d1", "plain-w8", "plain-8-d1", "default-32", "separable-wx-d1"):
        with pytest.raises(ValueError, match="default-w<width>"):
            torch_trainer.build_net(bad)
    with pytest.raises(ValueError, match="fast spec"):
        models.parse_fast_spec("plain-w8")


def test_distillation_loss_blends_the_teacher_and_the_targets():
    torch.manual_seed(0)
    logits = torch.randn(16, 7)
    target = torch.softmax(torch.randn(16, 7), dim=1)
    hard = torch_trainer.distillation_loss(logits, target, None, alpha=0.7, temperature=4.0)
    assert hard.item() == pytest.approx(-(target * torch.log_softmax(logits, 1)).sum(1).mean().item(), rel=1e-6)
    assert torch_trainer.distillation_loss(logits, target, target, 0.0, 4.0).item() == pytest.approx(hard.item())
    # A teacher that says exactly what the student says adds nothing: KL is zero.
    same = torch.softmax(logits / 4.0, dim=1)
    assert torch_trainer.distillation_loss(logits, target, same, 0.5, 4.0).item() == pytest.approx(0.5 * hard.item())
    # Otherwise the soft term is alpha * T^2 * KL(teacher || student).
    teacher = torch.softmax(torch.randn(16, 7), dim=1)
    kl = torch.nn.functional.kl_div(torch.log_softmax(logits / 2.0, 1), teacher, reduction="batchmean")
    got = torch_trainer.distillation_loss(logits, target, teacher, 0.7, 2.0).item()
    assert got == pytest.approx(0.7 * 4 * kl.item() + 0.3 * hard.item(), rel=1e-5)


def test_mixup_blends_images_and_targets_alike_keeping_a_dominant_face():
    torch.manual_seed(0)
    images = torch.arange(64, dtype=torch.float32).view(64, 1, 1, 1).expand(64, 1, 48, 48).clone()
    targets = torch.eye(7)[torch.arange(64) % 7]
    mixed, mixed_targets = torch_trainer.mix(images, targets, concentration=0.4)
    assert mixed.shape == images.shape and mixed_targets.shape == targets.shape
    assert torch.allclose(mixed_targets.sum(1), torch.ones(64))
    # Each blend's dominant share (>= 0.5) goes to its own image, and its target says the same.
    own = mixed_targets[torch.arange(64), torch.arange(64) % 7]
    assert (own >= 0.5 - 1e-6).all()
    assert not torch.equal(mixed, images), "mixup changed nothing"
    # Pixels are a convex blend of two images of the batch: within the batch's range, constant per image.
    assert mixed.min() >= 0 and mixed.max() <= 63
    assert torch.equal(mixed.amax(dim=(1, 2, 3)), mixed.amin(dim=(1, 2, 3)))


def test_batch_norm_is_recalibrated_on_unmixed_crops_and_the_weights_are_kept():
    torch.manual_seed(0)
    net = torch_trainer.build_net("plain-w8-d1")
    crops = torch.from_numpy(_crops(64).transpose(0, 3, 1, 2).copy())
    net.train()
    with torch.no_grad():  # running statistics of blends: half the contrast, as mixup's
        for _ in range(20):
            net(torch_trainer.augment(crops) * 0.5 + 64)
    calibrated = torch_trainer.recalibrate_batch_norm(net, crops, batches=20, batch_size=64)
    assert not calibrated.training and calibrated is not net
    for (name, a), b in zip(net.state_dict().items(), calibrated.state_dict().values(), strict=True):
        if "running" not in name and "num_batches" not in name:
            assert torch.equal(a, b), name  # only the statistics move
    # the stem's statistics now describe the crops themselves: the variance of its output on them
    stem = lambda m, x: m.stem_conv(x / 255.0)  # noqa: E731
    with torch.no_grad():
        clean_var = stem(calibrated, torch_trainer.augment(crops)).var(dim=(0, 2, 3))
    ratio = calibrated.stem_bn.running_var / clean_var
    assert ratio.median().item() == pytest.approx(1.0, abs=0.25)
    before = (net.stem_bn.running_var / clean_var).median().item()
    assert not 0.75 < before < 1.25, before  # what training left did not describe the crops


def test_mixup_refuses_teacher_outputs_computed_before_the_blend(packed, tmp_path):
    path, _ = packed
    probs = tmp_path / "probs.npz"
    np.savez(probs, train_probs=np.zeros((1, 7)), train_y=np.zeros(1))
    args = ["--data", str(path), "--out", str(tmp_path / "out"), "--teacher-probs", str(probs), "--mixup", "0.4"]
    with pytest.raises(ValueError, match="--mixup"):
        torch_trainer.train_many(torch_trainer.parse_args(args))


def test_students_train_side_by_side_from_a_teacher_ensemble_and_import_into_keras(packed, tmp_path, caplog):
    path, splits = packed
    teacher = tmp_path / "teacher.npz"
    np.savez(teacher, **named_weights.named_arrays(_randomised(models.make_default_model(width=8))))
    out = tmp_path / "students"
    args = ["--data", str(path), "--out", str(out), "--minutes", "5", "--max-epochs", "1", "--batch-size", "32",
            "--limit", "64", "--float32", "--warmup-minutes", "0.01", "--device", "cpu",
            "--net", "plain-w8-d1", "--net", "separable-w8-d1",
            "--teacher", f"default-w8={teacher}", "--teacher", f"default-w8={teacher}", "--alpha", "0.5",
            "--mixup", "0.4"]  # fmt: skip
    best = torch_trainer.train_many(torch_trainer.parse_args(args))
    assert set(best) == {"plain-w8-d1", "separable-w8-d1"}
    for spec, accuracy in best.items():
        assert (out / spec / "history.csv").exists()
        keras_path = tmp_path / f"{spec}.keras"
        assert cli.main(["import-weights", "--weights", str(out / spec / "best.npz"), "--out", str(keras_path)]) == 0
        model = keras.models.load_model(keras_path, compile=False)
        assert model.name == "fast"
        probabilities = model.predict(splits["PublicTest"].images, verbose=0)
        keras_accuracy = (probabilities.argmax(1) == splits["PublicTest"].labels).mean()
        assert keras_accuracy == pytest.approx(accuracy, abs=1 / len(probabilities))
    # A second phase warm-starts each net from its own best.npz (--init-dir), as the GPU script does.
    caplog.set_level("INFO", logger="classroom_training.torch_trainer")
    again = [*args[:3], str(tmp_path / "again"), *args[4:7], "0", *args[8:], "--init-dir", str(out)]
    assert again[6:8] == ["--max-epochs", "0"]
    torch_trainer.train_many(torch_trainer.parse_args(again))
    for spec, accuracy in best.items():
        line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith(f"{spec}: warm start"))
        assert float(line.rsplit(" ", 1)[1]) == pytest.approx(accuracy, abs=1e-4), line


def test_a_compact_pack_keeps_publictest_exact_and_training_within_its_bits(packed, tmp_path):
    path, splits = packed
    votes = tmp_path / "votes.csv"
    votes.write_text((path.parent / "fer2013new.csv").read_text())
    compact = torch_trainer.load_pack(pack(SAMPLE, votes, tmp_path / "pack6.npz.xz", train_bits=6))
    exact = torch_trainer.load_pack(path)
    np.testing.assert_array_equal(compact["val_x"].reshape(exact["val_x"].shape), exact["val_x"])
    error = np.abs(compact["train_x"].astype(int).reshape(exact["train_x"].shape) - exact["train_x"])
    assert error.max() <= 2 and error.mean() > 0  # 6 bits: the dropped 2 come back as the interval's middle
    np.testing.assert_array_equal(compact["train_votes"], exact["train_votes"])
    rng = np.random.default_rng(6)
    images = rng.integers(0, 256, (20, 48, 48), dtype=np.uint8)
    images[:5] = 255
    for bits in (8, 7, 5):
        decoded = torch_trainer.decode_images(torch_trainer.encode_images(images, bits), bits)
        assert np.abs(decoded.astype(int) - images).max() <= (2 ** (8 - bits)) // 2


# ---------------------------------------------------------------- teacher outputs computed once (CPU)


def test_softening_stored_probabilities_equals_softening_the_logits():
    logits = np.random.default_rng(3).normal(size=(10, 7)).astype(np.float32) * 3
    probabilities = torch.softmax(torch.from_numpy(logits), 1).numpy()
    expected = torch.softmax(torch.from_numpy(logits) / 4.0, 1).numpy()
    np.testing.assert_allclose(torch_trainer.soften(probabilities, 4.0), expected, atol=1e-5)
    np.testing.assert_allclose(torch_trainer.soften(probabilities, 1.0), probabilities, atol=1e-5)


def test_teacher_outputs_computed_once_are_the_teachers_flip_averaged_probabilities(packed, tmp_path):
    from classroom_training import teacher_probs

    path, splits = packed
    teacher = _randomised(models.make_default_model(width=8))
    weights = tmp_path / "teacher.npz"
    np.savez(weights, **named_weights.named_arrays(teacher))
    out = tmp_path / "probs.npz"
    teacher_probs.main(["--data", str(path), "--teacher", f"default-w8={weights}", "--flip-tta", "--out", str(out)])
    with np.load(out) as npz:
        stored = {key: npz[key] for key in npz.files}
    for split, key in (("Training", "train_probs"), ("PublicTest", "val_probs")):
        images = splits[split].images
        expected = (teacher.predict(images, verbose=0) + teacher.predict(images[:, :, ::-1], verbose=0)) / 2
        np.testing.assert_allclose(stored[key], expected, atol=1e-5)
    np.testing.assert_array_equal(stored["train_y"], splits["Training"].labels)
    # A file made from another pack (other labels) is refused, not silently misaligned.
    with pytest.raises(ValueError, match="not made from this pack"):
        torch_trainer.load_teacher_probs(out, (stored["train_y"] + 1) % 7, 4.0)
    with pytest.raises(ValueError, match="not made from this pack"):
        torch_trainer.load_teacher_probs(out, stored["train_y"][:-1], 4.0)


def test_students_distill_from_stored_teacher_outputs_and_resume_from_a_checkpoint(packed, tmp_path, monkeypatch):
    path, splits = packed
    n = len(splits["Training"])
    teacher = np.tile(np.asarray([[0.05, 0.05, 0.1, 0.5, 0.1, 0.1, 0.1]], np.float32), (n, 1))
    probs = tmp_path / "probs.npz"
    np.savez(probs, train_probs=teacher, train_y=splits["Training"].labels)
    seen = []
    real_loss = torch_trainer.distillation_loss

    def spy(logits, target, soft, alpha, temperature):
        seen.append(soft)
        return real_loss(logits, target, soft, alpha, temperature)

    monkeypatch.setattr(torch_trainer, "distillation_loss", spy)
    out = tmp_path / "student"
    args = ["--data", str(path), "--out", str(out), "--minutes", "5", "--max-epochs", "1", "--batch-size", "32",
            "--limit", "64", "--float32", "--warmup-minutes", "0.01", "--device", "cpu", "--threads", "1",
            "--net", "plain-w8-d1", "--teacher-probs", str(probs), "--temperature", "2", "--checkpoint",
            "--channels-last"]  # fmt: skip
    torch_trainer.train_many(torch_trainer.parse_args(args))
    softened = torch.from_numpy(torch_trainer.soften(teacher[:1], 2.0))
    assert len(seen) == 2 and all(torch.allclose(s, softened.expand_as(s)) for s in seen)  # 64 rows, batch 32
    with pytest.raises(ValueError, match="one of them"):
        torch_trainer.train_many(torch_trainer.parse_args([*args, "--teacher", f"default-w8={probs}"]))

    # --resume continues after the checkpoint's epoch, appending to the same history.
    state = torch.load(out / "checkpoint.pt")
    assert state["epoch"] == 1 and state["elapsed"] > 0
    resumed = [a if a != "1" or i != args.index("--max-epochs") + 1 else "2" for i, a in enumerate(args)]
    torch_trainer.train_many(torch_trainer.parse_args([*resumed, "--resume"]))
    with open(out / "history.csv") as history:
        rows = list(csv.DictReader(history))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert float(rows[1]["seconds"]) >= float(rows[0]["seconds"])  # the schedule's clock carried on
    assert torch.load(out / "checkpoint.pt")["epoch"] == 2
