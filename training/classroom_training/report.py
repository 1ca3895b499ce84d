"""The evaluation report: Markdown summary plus PNG plots, written to one folder.

Contents: PublicTest accuracy and macro-F1 (with and without flip test-time augmentation),
per-class precision/recall, confusion matrix, training curves, class distribution, model size and
throughput on this machine.
"""

from __future__ import annotations

import csv
import json
import logging
from itertools import pairwise
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from classroom_contract import EMOTIONS  # noqa: E402

from classroom_training.data import class_counts, load_fer2013  # noqa: E402
from classroom_training.evaluate import Metrics, compute_metrics, predict_in_batches, throughput  # noqa: E402
from classroom_training.export import load_float32, serving_function  # noqa: E402
from classroom_training.hardware import machine_description  # noqa: E402

log = logging.getLogger(__name__)


def plot_confusion(metrics: Metrics, path: Path, title: str) -> None:
    normalised = metrics.confusion / np.maximum(metrics.confusion.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45, ha="right")
    ax.set_yticks(range(len(EMOTIONS)), EMOTIONS)
    for i in range(len(EMOTIONS)):
        for j in range(len(EMOTIONS)):
            colour = "white" if normalised[i, j] > 0.5 else "black"
            ax.text(j, i, f"{normalised[i, j]:.2f}\n{metrics.confusion[i, j]}", ha="center", va="center",
                    fontsize=7, color=colour)  # fmt: skip
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (FER2013 label)")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_history(history_csv: Path, path: Path) -> None:
    with history_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in (("accuracy", "train"), ("val_accuracy", "PublicTest")):
        left.plot(epochs, [float(r[key]) for r in rows], label=label)
    for key, label in (("loss", "train"), ("val_loss", "PublicTest")):
        right.plot(epochs, [float(r[key]) for r in rows], label=label)
    _mark_stages(rows, epochs, (left, right))
    left.set(title="accuracy", xlabel="epoch")
    right.set(title="loss", xlabel="epoch")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _mark_stages(rows: list[dict], epochs: list[int], axes) -> None:
    """A dotted line where a multi-stage run (a `stage` column, e.g. two GPU runs chained) moved on."""
    for (previous, row), epoch in zip(pairwise(rows), epochs[1:], strict=True):
        if row.get("stage") != previous.get("stage"):
            for ax in axes:
                ax.axvline(epoch - 0.5, color="grey", linestyle=":", linewidth=1)
                ax.annotate(row["stage"], (epoch, 1), xycoords=("data", "axes fraction"), va="top", fontsize=8)


def plot_distribution(splits, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(splits)
    for k, (usage, split) in enumerate(splits.items()):
        counts = class_counts(split)
        ax.bar(np.arange(len(EMOTIONS)) + k * width, counts, width, label=f"{usage} ({len(split)})")
    ax.set_xticks(np.arange(len(EMOTIONS)) + width * (len(splits) - 1) / 2, EMOTIONS)
    ax.set(title="FER2013 class distribution", ylabel="images")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def write_report(
    model_path: Path, out: Path, csv_path=None, run_dir: Path | None = None, served: str = "flip_tta"
) -> dict:
    """Evaluate `model_path` on PublicTest, write plots and README.md into `out`, return the figures.

    Both variants (single crop, flip TTA) are measured; `served` ("plain" or "flip_tta") names the
    one exported for serving, whose confusion matrix and per-class table the report shows.
    """
    out.mkdir(parents=True, exist_ok=True)
    splits = load_fer2013(csv_path)
    test = splits["PublicTest"]
    model = load_float32(model_path)
    figures: dict = {"model": str(model_path), "parameters": int(model.count_params())}
    results: dict[str, Metrics] = {}
    for name, tta in (("plain", False), ("flip_tta", True)):
        serve = serving_function(model, tta)
        predict = lambda crops, serve=serve: serve(crops)["probabilities"].numpy()  # noqa: E731
        log.info("evaluating %s on %d PublicTest rows", name, len(test))
        results[name] = compute_metrics(test.labels, predict_in_batches(predict, test.images))
        figures[f"{name}_accuracy"] = results[name].accuracy
        figures[f"{name}_macro_f1"] = results[name].macro_f1
        figures[f"{name}_crops_per_s_b64"] = throughput(predict, batch_size=64)
        log.info("%s: accuracy %.4f macro-F1 %.4f", name, results[name].accuracy, results[name].macro_f1)
    figures["keras_mb"] = _size_mb(model_path)
    figures["served"] = served
    title = "flip TTA" if served == "flip_tta" else "single crop"
    plot_confusion(results[served], out / "confusion_matrix.png", f"PublicTest, {title} (as served)")
    plot_distribution(splits, out / "class_distribution.png")
    history = (run_dir or model_path.parent) / "history.csv"
    if history.exists():
        plot_history(history, out / "training_curves.png")
    (out / "metrics.json").write_text(json.dumps(figures, indent=2))
    (out / "README.md").write_text(_markdown(figures, results, history.exists(), run_dir))
    return figures


def _variants_table(figures: dict) -> str:
    lines = ["| variant | accuracy | macro-F1 | crops/s (batch 64) |", "| --- | ---: | ---: | ---: |"]
    for key, label in (("plain", "single crop"), ("flip_tta", "+ mirrored crop averaged")):
        label += " (served)" if figures["served"] == key else ""
        accuracy, f1, speed = (figures[f"{key}_{k}"] for k in ("accuracy", "macro_f1", "crops_per_s_b64"))
        lines.append(f"| {label} | {accuracy:.4f} | {f1:.4f} | {speed:.0f} |")
    return "\n".join(lines)


def _markdown(figures: dict, results: dict[str, Metrics], has_history: bool, run_dir: Path | None) -> str:
    config = ""
    if run_dir and (run_dir / "config.json").exists():
        config = f"\nTraining configuration:\n\n```json\n{(run_dir / 'config.json').read_text().strip()}\n```\n"
    served = results[figures["served"]]
    return f"""# Evaluation report

Model: `{figures["model"]}` ({figures["parameters"]:,} parameters, {figures["keras_mb"]:.1f} MB as .keras).
Evaluated on FER2013 **PublicTest** ({served.rows} rows), the split used for model selection.
Machine: {machine_description()}.

{_variants_table(figures)}

Per class (served variant):

{served.per_class_table()}

![confusion matrix](confusion_matrix.png)
{"![training curves](training_curves.png)" if has_history else ""}
![class distribution](class_distribution.png)
{config}"""
