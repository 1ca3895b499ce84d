"""Train: compile with the recipe of the chosen architecture, fit with checkpoints and resume.

Every epoch writes a full backup (weights, optimizer, epoch, schedule position) under the run
folder, so `--resume` after an interruption continues the same run exactly where it stopped.
The best epoch on PublicTest is kept separately as `best.keras`; selection uses PublicTest only.
"""

from __future__ import annotations

import csv
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from classroom_training import models, pipeline
from classroom_training.data import Split

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    arch: str = "default"
    epochs: int = 40
    batch_size: int = 64
    learning_rate: float = 0.02
    width: int = 32
    bfloat16: bool = True
    seed: int = 1337
    init_from: str | None = None  # a .keras of the same architecture to start from (warm restart)
    ferplus_weight: float = 0.0  # share of the target taken from FER+ crowd votes


class ProgressLog(keras.callbacks.Callback):
    """One log line every `every` batches and one per epoch, with speed and time left."""

    def __init__(self, total_epochs: int, steps_per_epoch: int, every: int = 50):
        super().__init__()
        self.total_epochs, self.steps, self.every = total_epochs, steps_per_epoch, every

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.started = epoch, time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        if (batch + 1) % self.every == 0:
            rate = (batch + 1) / (time.monotonic() - self.started)
            log.info(
                "epoch %d/%d step %d/%d loss %.4f acc %.4f (%.1f steps/s)",
                self.epoch + 1, self.total_epochs, batch + 1, self.steps,
                logs.get("loss", 0), logs.get("accuracy", 0), rate,
            )  # fmt: skip

    def on_epoch_end(self, epoch, logs=None):
        took = time.monotonic() - self.started
        log.info(
            "epoch %d/%d done in %.0fs: loss %.4f acc %.4f val_loss %.4f val_acc %.4f; ~%.0f min left",
            epoch + 1, self.total_epochs, took, logs.get("loss", 0), logs.get("accuracy", 0),
            logs.get("val_loss", 0), logs.get("val_accuracy", 0), took * (self.total_epochs - epoch - 1) / 60,
        )  # fmt: skip


def build_and_compile(config: TrainConfig, steps_per_epoch: int) -> keras.Model:
    """The architecture and its recipe: Adam for the seed (as it was), SGD+Nesterov+cosine for default."""
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if config.bfloat16 else "float32")
    if config.arch == "seed":
        model = models.make_seed_model()
        optimizer = keras.optimizers.Adam(1e-3)
    else:
        model = models.make_default_model(width=config.width)
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=config.epochs * steps_per_epoch, warmup_target=config.learning_rate,
            warmup_steps=steps_per_epoch,
        )  # fmt: skip
        optimizer = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True)
    if config.init_from:
        log.info("starting from the weights of %s", config.init_from)
        model.set_weights(keras.models.load_model(config.init_from, compile=False).get_weights())
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def _best_so_far(run_dir: Path) -> float | None:
    """Best val_accuracy already logged, so a resumed run does not overwrite a better best.keras."""
    history = run_dir / "history.csv"
    if not history.exists():
        return None
    with history.open() as handle:
        values = [float(row["val_accuracy"]) for row in csv.DictReader(handle) if row.get("val_accuracy")]
    return max(values, default=None)


def train(
    config: TrainConfig,
    train_split: Split,
    val_split: Split,
    run_dir: Path,
    resume: bool,
    targets: np.ndarray | None = None,
) -> keras.Model:
    """Fit and return the best model (by PublicTest accuracy) of the run in `run_dir`.

    `targets` (m, 7) replaces the one-hot training labels; selection always uses PublicTest's
    own FER2013 labels.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    backup_dir = run_dir / "backup"
    if backup_dir.exists() and not resume:
        raise SystemExit(f"{run_dir} holds an unfinished run: pass --resume to continue it or choose another --run-dir")
    train_ds = pipeline.training_dataset(train_split, config.batch_size, config.seed, targets)
    val_ds = pipeline.evaluation_dataset(val_split)
    steps = len(train_split) // config.batch_size
    model = build_and_compile(config, steps)
    model.summary(print_fn=log.info)
    callbacks = [
        keras.callbacks.BackupAndRestore(str(backup_dir), save_freq="epoch", delete_checkpoint=False),
        keras.callbacks.ModelCheckpoint(
            str(run_dir / "best.keras"),
            monitor="val_accuracy",
            save_best_only=True,
            initial_value_threshold=_best_so_far(run_dir) if resume else None,
        ),  # fmt: skip
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=resume),
        ProgressLog(config.epochs, steps),
    ]
    # shuffle=False: the dataset shuffles itself (pipeline.training_dataset); Keras would only warn
    model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, callbacks=callbacks, shuffle=False, verbose=0)
    (run_dir / "FINISHED").write_text("done\n")
    return keras.models.load_model(run_dir / "best.keras")
