"""Temperature scaling: probabilities a teacher can read as "how sure", fitted on PublicTest.

A network trained with cross-entropy is usually over-confident: among crops it calls 90% sure,
fewer than 90% are right. Temperature scaling divides the logits by one number T (> 1 softens,
< 1 sharpens) chosen to minimise the negative log-likelihood on held-out rows (Guo et al., 2017).
It never changes which emotion wins (the order of the logits is kept), so accuracy is untouched.

The served graph ends in a softmax, so the logits are recovered as log-probabilities (equal to the
logits up to a per-row constant, which softmax ignores): `softmax(log p / T)`. `export
--temperature T` puts exactly this inside the SavedModel, after flip averaging when there is one,
so the contract (uint8 [n, 48, 48] -> probabilities [n, 7]) and the workers do not change.

The expected calibration error (ECE) is the row-weighted mean gap between confidence (the top
probability) and accuracy over 15 equal-width confidence bins.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

BINS = 15
TINY = 1e-30  # float32 softmax can underflow to 0; log(0) would be -inf


def scaled(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T), row by row (numpy; `export.serving_function` does the same in the graph)."""
    logits = np.log(np.maximum(probabilities.astype(np.float64), TINY)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def nll(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.log(np.maximum(probabilities[np.arange(len(labels)), labels], TINY)).mean())


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray, objective: str = "nll") -> float:
    """The T in [0.05, 20] that minimises the NLL (default) or the ECE.

    NLL, the classic fit, is a proper scoring rule without bins: a log-spaced grid, then a
    golden-section refinement. On FER2013 its optimum is flat and sits where the model turns
    slightly under-confident on average (the NLL is dominated by confidently wrong, often
    mislabelled rows); `objective="ece"` instead takes the grid point of lowest 15-bin ECE, the
    figure a teacher's "how sure" reading depends on. Cross-fit both before choosing (`cross_fit`).
    """
    if objective == "ece":
        grid = np.exp(np.linspace(np.log(0.5), np.log(5.0), 461))
        return float(grid[int(np.argmin([reliability(scaled(probabilities, t), labels)["ece"] for t in grid]))])
    if objective != "nll":
        raise ValueError(f"objective is nll or ece, got {objective!r}")
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 121))
    losses = [nll(scaled(probabilities, t), labels) for t in grid]
    best = int(np.argmin(losses))
    low, high = np.log(grid[max(best - 1, 0)]), np.log(grid[min(best + 1, len(grid) - 1)])
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(40):  # the NLL is convex in 1/T, unimodal in log T
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if nll(scaled(probabilities, np.exp(a)), labels) < nll(scaled(probabilities, np.exp(b)), labels):
            high = b
        else:
            low = a
    return float(np.exp((low + high) / 2))


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> dict:
    """Per-bin confidence, accuracy and count over `bins` equal-width confidence bins, and the ECE."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        inside = which == b
        count = int(inside.sum())
        rows.append({
            "low": b / bins, "high": (b + 1) / bins, "count": count,
            "confidence": float(confidence[inside].mean()) if count else None,
            "accuracy": float(correct[inside].mean()) if count else None,
        })  # fmt: skip
    ece = sum(r["count"] * abs(r["confidence"] - r["accuracy"]) for r in rows if r["count"]) / len(labels)
    return {"ece": float(ece), "bins": rows, "mean_confidence": float(confidence.mean()),
            "accuracy": float(correct.mean())}  # fmt: skip


def cross_fit(probabilities: np.ndarray, labels: np.ndarray, objective: str, seed: int = 0) -> dict:
    """2-fold: T fitted on one half of the rows, ECE measured on the other, both ways round.

    The in-sample "after" figure flatters the fit; this one does not.
    """
    halves = np.array_split(np.random.default_rng(seed).permutation(len(labels)), 2)
    folds = []
    for fit, held in ((0, 1), (1, 0)):
        t = fit_temperature(probabilities[halves[fit]], labels[halves[fit]], objective)
        p, y = probabilities[halves[held]], labels[halves[held]]
        folds.append({"temperature": t, "ece_before": reliability(p, y)["ece"],
                      "ece_after": reliability(scaled(p, t), y)["ece"], "nll_after": nll(scaled(p, t), y)})  # fmt: skip
    return {"folds": folds, "ece_after_mean": float(np.mean([f["ece_after"] for f in folds]))}


def calibration_summary(probabilities: np.ndarray, labels: np.ndarray, objective: str = "nll") -> dict:
    """Fit T on these rows; ECE, NLL and accuracy before and after; the 2-fold figures of both objectives."""
    temperature = fit_temperature(probabilities, labels, objective)
    after = scaled(probabilities, temperature)
    return {
        "temperature": temperature, "objective": objective, "rows": len(labels), "bins": BINS,
        "before": {**reliability(probabilities, labels), "nll": nll(probabilities, labels)},
        "after": {**reliability(after, labels), "nll": nll(after, labels)},
        "cross_fit": {name: cross_fit(probabilities, labels, name) for name in ("nll", "ece")},
    }  # fmt: skip


def plot_reliability(summary: dict, path: Path, title: str) -> None:
    """Accuracy against confidence per bin, before and after scaling; bar widths are the bins."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), sharey=True)
    for ax, key, label in ((axes[0], "before", "as trained (T = 1)"),
                           (axes[1], "after", f"temperature T = {summary['temperature']:.3f}")):  # fmt: skip
        part = summary[key]
        filled = [b for b in part["bins"] if b["count"]]
        ax.bar([b["low"] for b in filled], [b["accuracy"] for b in filled], width=1 / summary["bins"], align="edge",
               edgecolor="black", alpha=0.7, label="accuracy in bin")  # fmt: skip
        ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
        points = ([b["confidence"] for b in filled], [b["accuracy"] for b in filled])
        ax.plot(*points, "ro-", ms=3, label="(mean confidence, accuracy)")
        for b in filled:
            ax.annotate(str(b["count"]), (b["low"] + 0.5 / summary["bins"], 0.02), ha="center", fontsize=6, rotation=90)
        ax.set_title(f"{label}: ECE {part['ece']:.3f}, NLL {part['nll']:.3f}")
        ax.set_xlabel("confidence (top probability)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("accuracy (PublicTest)")
    axes[0].legend(loc="upper left", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def calibrate(
    model_path: Path, out: Path, csv_path: str | None = None, name: str | None = None, objective: str = "nll"
) -> dict:
    """Fit T for a served model (SavedModel folder or .keras) on PublicTest; write JSON and PNG to `out`."""
    from classroom_training.data import load_fer2013, require_splits

    splits = load_fer2013(csv_path)
    require_splits(splits, "PublicTest")
    crops, labels = splits["PublicTest"].images[..., 0], splits["PublicTest"].labels
    probabilities = served_probabilities(model_path, crops)
    summary = {"model": str(model_path), **calibration_summary(probabilities, labels, objective)}
    out.mkdir(parents=True, exist_ok=True)
    stem = name or Path(model_path).name.removesuffix(".keras")
    (out / f"calibration-{stem}.json").write_text(json.dumps(summary, indent=2))
    plot_reliability(summary, out / f"reliability-{stem}.png", f"{model_path}: PublicTest, {len(labels)} rows")
    before, after = summary["before"], summary["after"]
    log.info("%s: T %.3f, ECE %.4f -> %.4f, NLL %.4f -> %.4f", model_path, summary["temperature"],
             before["ece"], after["ece"], before["nll"], after["nll"])  # fmt: skip
    return summary


def served_probabilities(model_path: Path, crops: np.ndarray) -> np.ndarray:
    """Probabilities [n, 7] as served: a SavedModel's signature, or a .keras through `serving_function`."""
    import tensorflow as tf
    from classroom_contract import SIGNATURE

    from classroom_training.evaluate import predict_in_batches
    from classroom_training.export import load_float32, serving_function

    if Path(model_path).is_dir():
        serve = tf.saved_model.load(str(model_path)).signatures[SIGNATURE.signature_name]
    else:
        serve = serving_function(load_float32(model_path), flip_tta=False)
    predict = lambda batch: serve(crops=tf.constant(batch))[SIGNATURE.output_key].numpy()  # noqa: E731
    return predict_in_batches(predict, crops).astype(np.float64)
