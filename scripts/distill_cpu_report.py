"""The CPU distillation's report files: each student's training curves and history, next to the bench and calibration.

python scripts/distill_cpu_report.py --runs runs/distill-cpu --out reports/distill-cpu
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

from classroom_training.report import plot_history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/distill-cpu"))
    parser.add_argument("--out", type=Path, default=Path("reports/distill-cpu"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {}
    for history in sorted(args.runs.glob("*/history.csv")):
        spec = history.parent.name
        rows = list(csv.DictReader(history.open()))
        best = max(rows, key=lambda r: float(r["val_accuracy"]))
        summary[spec] = {"epochs": len(rows), "minutes": float(rows[-1]["seconds"]) / 60,
                         "best_epoch": int(best["epoch"]), "best_val_accuracy": float(best["val_accuracy"]),
                         "last_val_accuracy": float(rows[-1]["val_accuracy"])}  # fmt: skip
        shutil.copy(history, args.out / f"history-{spec}.csv")
        # plot_history numbers Keras' 0-based epochs from 1; torch_trainer's are 1-based already
        zero_based = args.out / f".{spec}-zero-based.csv"
        with zero_based.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows({**r, "epoch": int(r["epoch"]) - 1} for r in rows)
        plot_history(zero_based, args.out / f"training_curves-{spec}.png")
        zero_based.unlink()
        log = args.runs / f"{spec}.log"
        if log.exists():
            shutil.copy(log, args.out / f"train-{spec}.log")
    (args.out / "students.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
