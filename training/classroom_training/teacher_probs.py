"""Teacher outputs computed once, so distillation on the CPU pays no teacher forward pass per step.

Without a lent GPU, a student trains on two shared CPU cores, where running v5 (the teacher) on
every augmented batch would cost more than the student itself. So the teacher's probabilities are
computed once on every un-augmented Training row (and PublicTest, for the record), optionally
averaged with the mirrored crop's (flip is one of the augmentations), and saved beside the pack:

    python training/classroom_training/teacher_probs.py --data runs/distill-cpu/pack.npz \\
        --teacher default-w32=.gpu/v5-named.npz --flip-tta --out runs/distill-cpu/v5-probs.npz
    python training/classroom_training/torch_trainer.py --data runs/distill-cpu/pack.npz \\
        --teacher-probs runs/distill-cpu/v5-probs.npz --net separable-w32-d1 ...

The file holds `train_probs` and `val_probs` (float32 [n, 7], rows in the pack's order) and
`train_y` (the pack's labels), which `torch_trainer` checks so a file made from another pack is
refused rather than silently misaligned. Like `torch_trainer`, this imports only numpy and torch.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import torch

try:
    from classroom_training import torch_trainer
except ImportError:  # run as a script on a machine without the package: torch_trainer lies beside it
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import torch_trainer

log = logging.getLogger("classroom_training.teacher_probs")


def ensemble_probabilities(teachers, images: np.ndarray, flip_tta: bool) -> np.ndarray:
    """The mean of the teachers' probabilities (each flip-averaged if asked) on uint8 [n, 48, 48]."""
    pixels = torch.from_numpy(np.ascontiguousarray(images.reshape(-1, 1, 48, 48)))
    each = []
    for name, net in teachers:
        parts = []
        for start in range(0, len(pixels), 4096):
            parts.append(torch_trainer.predict(net, pixels[start : start + 4096], flip_tta))
            log.info("%s: %d of %d rows", name, min(start + 4096, len(pixels)), len(pixels))
        each.append(torch.cat(parts))
    return torch.stack(each).mean(0).numpy().astype(np.float32)


def write_teacher_probs(data_path: Path, teacher_specs: list[str], out: Path, flip_tta: bool) -> dict[str, float]:
    """Write `out` (.npz); return the teachers' PublicTest accuracy as computed."""
    data = torch_trainer.load_pack(data_path)
    teachers = torch_trainer.load_teachers(teacher_specs, torch.device("cpu"))
    val_probs = ensemble_probabilities(teachers, data["val_x"], flip_tta)
    accuracy = float((val_probs.argmax(1) == data["val_y"]).mean())
    log.info("teachers %s (flip TTA %s): PublicTest %.4f", teacher_specs, flip_tta, accuracy)
    train_probs = ensemble_probabilities(teachers, data["train_x"], flip_tta)
    log.info("Training rows: teacher agrees with the FER2013 label on %.4f",
             float((train_probs.argmax(1) == data["train_y"]).mean()))  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        out, train_probs=train_probs, val_probs=val_probs, train_y=data["train_y"], val_y=data["val_y"],
        teachers=np.asarray(teacher_specs), flip_tta=np.asarray(flip_tta),
    )  # fmt: skip
    return {"val_accuracy": accuracy}


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a pack (`classroom_training pack`)")
    parser.add_argument("--teacher", action="append", required=True, help="SPEC=PATH of named weights, repeatable")
    parser.add_argument("--flip-tta", action="store_true", help="average each crop's output with its mirror's")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads; 0: torch's default")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    write_teacher_probs(args.data, args.teacher, args.out, args.flip_tta)


if __name__ == "__main__":
    main()
