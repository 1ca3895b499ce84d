"""Evaluate: accuracy, macro-F1, per-class precision/recall, confusion matrix, throughput.

Models are evaluated through the same float32 serving function that gets exported, so the
figures describe what TF Serving and the `local` backend will actually serve.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from classroom_contract import EMOTIONS, NUM_EMOTIONS

Predict = Callable[[np.ndarray], np.ndarray]  # uint8 [n, 48, 48] -> float32 [n, 7]


@dataclass
class Metrics:
    accuracy: float
    macro_f1: float
    precision: list[float]
    recall: list[float]
    f1: list[float]
    confusion: np.ndarray = field(repr=False)  # rows: true class, columns: predicted class
    rows: int = 0

    def per_class_table(self) -> str:
        lines = ["| class | precision | recall | F1 | support |", "| --- | ---: | ---: | ---: | ---: |"]
        for i, name in enumerate(EMOTIONS):
            support = int(self.confusion[i].sum())
            lines.append(f"| {name} | {self.precision[i]:.3f} | {self.recall[i]:.3f} | {self.f1[i]:.3f} | {support} |")
        return "\n".join(lines)


def predict_in_batches(predict: Predict, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    crops = images.reshape(-1, images.shape[1], images.shape[2])
    return np.concatenate([np.asarray(predict(crops[i : i + batch_size])) for i in range(0, len(crops), batch_size)])


def compute_metrics(labels: np.ndarray, probabilities: np.ndarray) -> Metrics:
    predicted = probabilities.argmax(axis=1)
    confusion = np.zeros((NUM_EMOTIONS, NUM_EMOTIONS), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    true_pos = np.diag(confusion).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.nan_to_num(true_pos / confusion.sum(axis=0))
        recall = np.nan_to_num(true_pos / confusion.sum(axis=1))
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    return Metrics(
        accuracy=float(true_pos.sum() / max(len(labels), 1)),
        macro_f1=float(f1.mean()),
        precision=precision.tolist(),
        recall=recall.tolist(),
        f1=f1.tolist(),
        confusion=confusion,
        rows=len(labels),
    )


def throughput(predict: Predict, batch_size: int = 64, seconds: float = 5.0) -> float:
    """Crops per second of `predict` on this machine at a fixed batch size (after a warm-up)."""
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (batch_size, 48, 48), dtype=np.uint8)
    predict(batch)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        np.asarray(predict(batch))
        done += batch_size
    return done / (time.perf_counter() - started)
