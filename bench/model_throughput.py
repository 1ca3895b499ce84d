"""Served-model throughput and accuracy: each SavedModel in float32 and with the bfloat16 rewrite.

    python bench/model_throughput.py [--model models/emotion/2 ...] [--batch 64] [--seconds 10]

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
    accuracy = float((probabilities.argmax(1) == labels).mean())
    Path(out).with_suffix(".json").write_text(json.dumps({"rate": rate, "accuracy": accuracy, "rows": len(labels)}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="SavedModel version folder (repeatable)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--child", nargs=3, metavar=("MODEL", "BF16", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.child:
        measure(args.child[0], args.child[1] == "1", args.batch, args.seconds, args.child[2])
        return 0
    models = args.model or [str(p) for p in sorted((REPO / "models" / "emotion").glob("[0-9]*")) if p.is_dir()]
    from classroom_training.hardware import machine_description

    print(f"{machine_description()}; batch {args.batch}, {args.seconds:.0f} s per measurement")
    print(f"{'model':<24} {'precision':<9} {'crops/s':>8} {'vs fp32':>8} {'PublicTest':>10} {'same top-1':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            results = {}
            for bf16 in (False, True):
                out = f"{tmp}/{Path(model).name}-{int(bf16)}.npy"
                cmd = [sys.executable, __file__, "--batch", str(args.batch), "--seconds", str(args.seconds)]
                subprocess.run([*cmd, "--child", model, "1" if bf16 else "0", out], check=True)
                results[bf16] = (json.loads(Path(out).with_suffix(".json").read_text()), np.load(out))
            (base, base_p), (_, fast_p) = results[False], results[True]
            same = float((base_p.argmax(1) == fast_p.argmax(1)).mean())
            name = str(Path(model).relative_to(REPO)) if Path(model).is_relative_to(REPO) else model
            for label, (r, _) in (("float32", results[False]), ("bfloat16", results[True])):
                ratio = r["rate"] / base["rate"]
                agree = f"{same:.1%}" if label == "bfloat16" else ""
                print(f"{name:<24} {label:<9} {r['rate']:8.0f} {ratio:7.2f}x {r['accuracy']:10.2%} {agree:>10}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
