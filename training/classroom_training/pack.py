"""The dataset as one portable file for a lent GPU machine, which gets the working tree and nothing else.

Training + PublicTest images, labels and FER+ votes in one xz-compressed .npz (~55 MB): lossless,
~25% smaller than the gzipped CSV, and readable with numpy alone (`torch_trainer.load_pack`).
"""

from __future__ import annotations

import io
import logging
import lzma
from pathlib import Path

import numpy as np

from classroom_training.data import load_fer2013, load_ferplus_votes, require_splits

log = logging.getLogger("classroom_training.pack")


def pack(csv_path: Path | str | None, ferplus_path: Path | str | None, out: Path, train_bits: int = 0) -> Path:
    """Write the pack; the arrays are `train_x`, `train_y`, `train_votes`, `val_x`, `val_y`.

    With `train_bits` (1-8) the images are stored as gradient-predictor residuals, PublicTest
    losslessly and the training images at that many bits (6: ~45 MB -> ~31 MB): the device call's
    whole working tree, tracked models included, must stay under 64 MiB. Selection and every
    reported figure still see PublicTest's exact pixels; `torch_trainer.load_pack` decodes both.
    """
    from classroom_training.torch_trainer import encode_images

    splits = load_fer2013(csv_path)
    require_splits(splits, "Training", "PublicTest")
    train_split, val_split = splits["Training"], splits["PublicTest"]
    votes = load_ferplus_votes(ferplus_path, "Training", len(train_split)).astype(np.uint8)
    images = {"train_x": train_split.images, "val_x": val_split.images}
    if train_bits:
        if not 1 <= train_bits <= 8:
            raise ValueError(f"train_bits must be within 1..8, got {train_bits}")
        images = {
            "train_x_residuals": encode_images(train_split.images, train_bits), "train_x_bits": np.uint8(train_bits),
            "val_x_residuals": encode_images(val_split.images, 8), "val_x_bits": np.uint8(8),
        }  # fmt: skip
    buffer = io.BytesIO()
    np.savez(
        buffer, train_y=train_split.labels.astype(np.uint8), val_y=val_split.labels.astype(np.uint8),
        train_votes=votes, **images,
    )  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(lzma.compress(buffer.getvalue(), preset=9))
    log.info("packed %d training and %d PublicTest rows into %s (%.1f MB)",
             len(train_split), len(val_split), out, out.stat().st_size / 1e6)  # fmt: skip
    return out
