"""Train the default model on an accelerator (a GPU) under Keras' JAX or PyTorch backend, without TensorFlow.

Why this exists: on the 2-core dev machine one 36-epoch cycle takes ~80 min, so the recipe is
starved of epochs. A lent GPU machine has JAX and PyTorch but no TensorFlow, and its session is
short. So this module keeps everything that matters identical to `train` (the architecture in
`models.py`, the augmentation, the FER+ soft targets, selection on PublicTest) and changes only
where the work runs: the data sits in device memory and the augmentation runs inside the jitted
train step, as Keras layers. It writes a `.keras` file that the TensorFlow side (`report`,
`export`) reads like any other.

The learning-rate schedule is budgeted in wall-clock time (`--minutes`): a linear warm-up, then a
cosine over the time left, set at the start of each epoch. A run therefore finishes its whole
annealing cycle inside the time a lent machine gives it, however fast that machine is.

    python -m classroom_training.accelerated pack --out fer2013-pack.npz.xz
    KERAS_BACKEND=jax python -m classroom_training.accelerated train --data fer2013-pack.npz.xz \
        --minutes 8 --out runs/gpu-a
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import lzma
import math
import sys
import time
from pathlib import Path

import keras
import numpy as np
from classroom_contract import NUM_EMOTIONS
from keras import layers, ops

from classroom_training import models

log = logging.getLogger("classroom_training.accelerated")


# ---------------------------------------------------------------- data: one portable file


def pack(csv_path: Path | None, ferplus_path: Path | None, out: Path) -> Path:
    """Training + PublicTest images, labels and FER+ votes in one xz-compressed .npz (~54 MB).

    A GPU machine gets the working tree and nothing beside it, so the data has to travel small;
    xz is lossless and ~25% smaller than the gzipped CSV.
    """
    from classroom_training.data import load_fer2013, load_ferplus_votes, require_splits

    splits = load_fer2013(csv_path)
    require_splits(splits, "Training", "PublicTest")
    train_split, val_split = splits["Training"], splits["PublicTest"]
    votes = load_ferplus_votes(ferplus_path, "Training", len(train_split)).astype(np.uint8)
    buffer = io.BytesIO()
    np.savez(
        buffer, train_x=train_split.images, train_y=train_split.labels.astype(np.uint8),
        val_x=val_split.images, val_y=val_split.labels.astype(np.uint8), train_votes=votes,
    )  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(lzma.compress(buffer.getvalue(), preset=9))
    log.info("packed %d training and %d PublicTest rows into %s (%.1f MB)",
             len(train_split), len(val_split), out, out.stat().st_size / 1e6)  # fmt: skip
    return out


def load_pack(path: Path) -> dict[str, np.ndarray]:
    """A pack as written (.npz.xz) or already decompressed (.npz)."""
    raw = path.read_bytes()
    with np.load(io.BytesIO(lzma.decompress(raw) if path.suffix == ".xz" else raw)) as npz:
        return {name: npz[name] for name in npz.files}


# ---------------------------------------------------------------- augmentation on the device


class RandomErasing(layers.Layer):
    """Zero a random square per image (Zhong et al. 2017), as `pipeline._random_erasing` does."""

    def __init__(self, probability: float = 0.5, min_side: int = 6, max_side: int = 20, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.probability, self.min_side, self.max_side = probability, min_side, max_side
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        batch, height, width = ops.shape(images)[0], images.shape[1], images.shape[2]
        draw = lambda low, high: keras.random.uniform(  # noqa: E731
            (batch, 1, 1, 1), low, high, seed=self.seed_generator
        )
        side = ops.floor(draw(self.min_side, self.max_side))
        cy, cx = ops.floor(draw(0, height)), ops.floor(draw(0, width))
        rows = ops.reshape(ops.arange(height, dtype="float32"), (1, height, 1, 1))
        cols = ops.reshape(ops.arange(width, dtype="float32"), (1, 1, width, 1))
        inside = ops.logical_and(ops.abs(rows - cy) * 2 < side, ops.abs(cols - cx) * 2 < side)
        erase = ops.logical_and(inside, draw(0, 1) < self.probability)
        return ops.where(erase, ops.zeros_like(images), images)


class ToPixels(layers.Layer):
    """Round and clip back to uint8, so the model sees augmented crops exactly as it sees served ones."""

    def call(self, images):
        return ops.cast(ops.clip(ops.round(images), 0, 255), "uint8")


def training_model(base: keras.Model, seed: int) -> keras.Model:
    """`base` behind the same augmentation as `pipeline.training_dataset`, active only in training."""
    raw = keras.Input(shape=models.INPUT_SHAPE, dtype="uint8", name="crops")
    x = layers.Activation("linear", dtype="float32")(raw)
    for augment in [*models.augmentation_layers(seed, dtype="float32"), RandomErasing(seed=seed + 4, dtype="float32")]:
        x = augment(x)
    return keras.Model(raw, base(ToPixels(dtype="float32")(x)), name="augmented")


# ---------------------------------------------------------------- schedule and bookkeeping


class TimeBudget(keras.callbacks.Callback):
    """Warm-up then cosine over wall-clock time; stops when the next epoch would overrun.

    The learning rate is set at each epoch's start, the point where every backend reads the
    optimizer's variables afresh (the JAX trainer keeps its state on the device within an epoch).
    """

    def __init__(self, peak: float, seconds: float, warmup_epochs: int, max_epochs: int):
        super().__init__()
        self.peak, self.seconds, self.warmup_epochs, self.max_epochs = peak, seconds, warmup_epochs, max_epochs
        self.started = self.warm_done = None
        self.durations: list[float] = []

    def learning_rate(self, epoch: int, now: float) -> float:
        if epoch < self.warmup_epochs:
            return self.peak * (epoch + 1) / (self.warmup_epochs + 1)
        self.warm_done = self.warm_done or now
        left = max(self.seconds - (self.warm_done - self.started), 1e-9)
        done = min((now - self.warm_done) / left, 1.0)
        return self.peak * 0.5 * (1 + math.cos(math.pi * done))

    def on_epoch_begin(self, epoch, logs=None):
        now = time.monotonic()
        self.started = self.started or now
        self.epoch_started = now
        self.lr = self.learning_rate(epoch, now)
        self.model.optimizer.learning_rate.assign(self.lr)

    def on_epoch_end(self, epoch, logs=None):
        now = time.monotonic()
        self.durations.append(now - self.epoch_started)
        typical = float(np.median(self.durations[-5:]))
        if now - self.started + typical > self.seconds or epoch + 1 >= self.max_epochs:
            self.model.stop_training = True


class BestAndHistory(keras.callbacks.Callback):
    """Keep the best epoch on PublicTest as `best.keras` (the bare model), log every epoch to CSV."""

    def __init__(self, base: keras.Model, out: Path, budget: TimeBudget):
        super().__init__()
        self.base, self.out, self.budget, self.best = base, out, budget, -1.0
        self.history = (out / "history.csv").open("w", newline="")
        self.writer = csv.writer(self.history)
        self.writer.writerow(["epoch", "learning_rate", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"])

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        took = self.budget.durations[-1] if self.budget.durations else 0.0
        row = [epoch, self.budget.lr] + [logs.get(k, float("nan")) for k in ("loss", "accuracy", "val_loss")]
        self.writer.writerow([*row, logs.get("val_accuracy", float("nan")), round(took, 2)])
        self.history.flush()
        if logs.get("val_accuracy", -1) > self.best:
            self.best = logs["val_accuracy"]
            self.base.save(self.out / "best.keras")
        log.info("epoch %d (%.1fs) lr %.4f loss %.4f acc %.4f val_acc %.4f best %.4f",
                 epoch + 1, took, self.budget.lr, logs.get("loss", 0), logs.get("accuracy", 0),
                 logs.get("val_accuracy", 0), self.best)  # fmt: skip

    def on_train_end(self, logs=None):
        self.history.close()


# ---------------------------------------------------------------- the run


def where_weights_live(model: keras.Model) -> str:
    """The device holding the model's first weight, as the backend reports it.

    Logged at the start of every run because the first GPU session found epochs running at the
    speed of the machine's CPU under both JAX and PyTorch, with no sign of it in the log.
    """
    value = model.weights[0].value
    device = getattr(value, "device", None)  # torch.Tensor.device; jax.Array.device (a property)
    if device is None and hasattr(value, "devices"):
        device = value.devices()
    return str(device() if callable(device) else device)


def save_starting_weights(model_path: Path, out: Path) -> Path:
    """A model's weights as float16 .npz (~2.5 MB): a warm start needs no more, and it travels light."""
    weights = keras.models.load_model(model_path, compile=False).get_weights()
    np.savez_compressed(out, *[w.astype(np.float16) for w in weights])
    return out


def _starting_weights(path: Path) -> list[np.ndarray]:
    if path.suffix == ".npz":
        with np.load(path) as npz:
            return [npz[f"arr_{i}"].astype(np.float32) for i in range(len(npz.files))]
    return keras.models.load_model(path, compile=False).get_weights()


def train(args: argparse.Namespace) -> float:
    """Fit for `args.minutes` of wall clock; returns the best PublicTest accuracy."""
    from classroom_training.data import soft_targets

    data = load_pack(args.data)
    train_x, train_y, val_x, val_y = data["train_x"], data["train_y"], data["val_x"], data["val_y"]
    if args.limit:
        train_x, train_y, data["train_votes"] = (
            train_x[: args.limit],
            train_y[: args.limit],
            data["train_votes"][: args.limit],
        )
    targets = soft_targets(train_y.astype(np.int64), data["train_votes"].astype(np.float32), args.ferplus_weight)
    keras.utils.set_random_seed(args.seed)
    keras.mixed_precision.set_global_policy("float32" if args.float32 else "mixed_bfloat16")
    base = models.make_default_model(width=args.width)
    if args.init_from:
        base.set_weights(_starting_weights(args.init_from))
    model = training_model(base, args.seed)
    model.compile(
        optimizer=keras.optimizers.SGD(args.learning_rate, momentum=0.9, nesterov=True),
        loss="categorical_crossentropy", metrics=["accuracy"],
    )  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    budget = TimeBudget(args.learning_rate, args.minutes * 60, args.warmup_epochs, args.max_epochs)
    best = BestAndHistory(base, args.out, budget)
    log.info(
        "backend %s, weights on %s, %d training rows, %d PublicTest rows, %.1f min, init %s, FER+ weight %.2f",
        keras.backend.backend(), where_weights_live(base), len(train_x), len(val_x),
        args.minutes, args.init_from, args.ferplus_weight,
    )  # fmt: skip
    model.fit(
        train_x, targets, batch_size=args.batch_size, epochs=args.max_epochs, shuffle=True, verbose=0,
        validation_data=(val_x, np.eye(NUM_EMOTIONS, dtype=np.float32)[val_y]), validation_batch_size=1024,
        callbacks=[budget, best],
    )  # fmt: skip
    log.info("finished after %d epochs: best PublicTest accuracy %.4f", len(budget.durations), best.best)
    return best.best


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m classroom_training.accelerated", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    packer = sub.add_parser("pack", help="write Training + PublicTest + FER+ votes as one .npz.xz")
    packer.add_argument("--csv", type=Path, help="a FER2013 CSV (default: the shared gzipped copy)")
    packer.add_argument("--ferplus-votes", type=Path, help="fer2013new.csv (default: beside the shared CSV)")
    packer.add_argument("--out", type=Path, required=True)
    starter = sub.add_parser("starting-weights", help="a .keras model's weights as float16 .npz for --init-from")
    starter.add_argument("--model", type=Path, required=True)
    starter.add_argument("--out", type=Path, required=True)
    trainer = sub.add_parser("train", help="train under the current KERAS_BACKEND for a wall-clock budget")
    trainer.add_argument("--data", type=Path, required=True, help="a file written by `pack`")
    trainer.add_argument("--out", type=Path, required=True, help="best.keras and history.csv go here")
    trainer.add_argument("--minutes", type=float, default=8.0, help="wall-clock budget of the schedule")
    trainer.add_argument("--max-epochs", type=int, default=1000)
    trainer.add_argument("--warmup-epochs", type=int, default=3)
    trainer.add_argument("--batch-size", type=int, default=128)
    trainer.add_argument("--learning-rate", type=float, default=0.04, help="peak learning rate (SGD, Nesterov)")
    trainer.add_argument("--width", type=int, default=32)
    trainer.add_argument("--ferplus-weight", type=float, default=0.3)
    trainer.add_argument(
        "--init-from", type=Path, help="a .keras, or .npz from starting-weights, of the same architecture"
    )
    trainer.add_argument("--float32", action="store_true", help="train in float32 instead of mixed bfloat16")
    trainer.add_argument("--limit", type=int, default=0, help="use only the first N training rows (smoke runs)")
    trainer.add_argument("--seed", type=int, default=1337)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    args = _parser().parse_args(argv)
    if args.command == "pack":
        pack(args.csv, args.ferplus_votes, args.out)
    elif args.command == "starting-weights":
        save_starting_weights(args.model, args.out)
    else:
        train(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
