"""Prepare the data: read a FER2013 CSV, check every row, split by `Usage`, feed `tf.data`.

The CSV is parsed once and cached as a compressed .npz in the user's cache directory (never in
the source tree: `cache_dir`) keyed by the file's path, size and mtime, because parsing 32k rows
of 2,304 integers costs ~20 s each time.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from classroom_contract import CROP_SIZE, NUM_EMOTIONS

log = logging.getLogger(__name__)

PIXELS_PER_IMAGE = CROP_SIZE * CROP_SIZE
REQUIRED_COLUMNS = ("emotion", "pixels", "Usage")
USAGES = ("Training", "PublicTest", "PrivateTest")
#: The shared FER2013 copy, relative to the working directory (a checkout's root: the shared data folder
#: sits beside the checkout). `--csv` or CLASSROOM_FER2013_CSV point elsewhere.
DEFAULT_CSV = Path("..", "shared", "data", "fer2013", "fer2013.csv.gz")
DEFAULT_FERPLUS = DEFAULT_CSV.parent / "fer2013new.csv"
# FER+ vote columns in FER2013 label order (contempt, unknown and NF have no FER2013 class).
FERPLUS_COLUMNS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")


def cache_dir() -> Path:
    """$CLASSROOM_CACHE_DIR, else classroom-training in the user's cache ($XDG_CACHE_HOME or ~/.cache)."""
    if os.environ.get("CLASSROOM_CACHE_DIR"):
        return Path(os.environ["CLASSROOM_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "classroom-training"


class DatasetError(ValueError):
    """A FER2013 CSV that cannot be used; the message names the row and the problem."""


@dataclass
class Split:
    """Images (m, 48, 48, 1) uint8 and integer labels (m,) of one `Usage`."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def parse_csv(path: Path) -> dict[str, Split]:
    """Every row of a FER2013 CSV, checked, grouped by `Usage`.

    Raises DatasetError naming the first bad row (1-based line number in the file).
    """
    if not path.exists():
        raise DatasetError(f"{path}: no such file")
    images: dict[str, list[np.ndarray]] = {u: [] for u in USAGES}
    labels: dict[str, list[int]] = {u: [] for u in USAGES}
    line_no = 1
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        try:
            col = _check_header(path, next(reader, None))
            for line_no, row in enumerate(reader, start=2):
                label, pixels, usage = _check_row(path, line_no, row, col)
                images[usage].append(pixels)
                labels[usage].append(label)
        except UnicodeDecodeError:
            raise DatasetError(f"{path}: line {line_no + 1} (or near it) is not UTF-8 text") from None
    return {
        u: Split(np.stack(images[u]).reshape(-1, CROP_SIZE, CROP_SIZE, 1), np.asarray(labels[u], np.int32))
        for u in USAGES
        if labels[u]
    }


def _check_header(path: Path, header: list[str] | None) -> dict[str, int]:
    if header is None:
        raise DatasetError(f"{path}: the file is empty")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise DatasetError(f"{path}: missing column(s) {', '.join(missing)}; header is {header}")
    return {name: header.index(name) for name in REQUIRED_COLUMNS}


def _check_row(path: Path, line_no: int, row: list[str], col: dict[str, int]) -> tuple[int, np.ndarray, str]:
    where = f"{path}: line {line_no}"
    if len(row) < len(col):
        raise DatasetError(f"{where}: expected {len(col)} columns, got {len(row)}")
    try:
        label = int(row[col["emotion"]])
    except ValueError:
        raise DatasetError(f"{where}: emotion {row[col['emotion']]!r} is not an integer") from None
    if not 0 <= label < NUM_EMOTIONS:
        raise DatasetError(f"{where}: unknown emotion label {label} (expected 0..{NUM_EMOTIONS - 1})")
    usage = row[col["Usage"]]
    if usage not in USAGES:
        raise DatasetError(f"{where}: unknown Usage {usage!r} (expected one of {', '.join(USAGES)})")
    try:
        pixels = np.array(row[col["pixels"]].split(), dtype=np.int64)
    except (ValueError, OverflowError):
        raise DatasetError(f"{where}: pixels must be space-separated integers within 0..255") from None
    if pixels.size != PIXELS_PER_IMAGE:
        raise DatasetError(f"{where}: expected {PIXELS_PER_IMAGE} pixels (48x48), got {pixels.size}")
    if pixels.min() < 0 or pixels.max() > 255:
        raise DatasetError(f"{where}: pixel values must be within 0..255")
    return label, pixels.astype(np.uint8), usage


def _cache_path(path: Path) -> Path:
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_dir() / f"fer2013-{key}.npz"


def load_fer2013(path: Path | str | None = None, use_cache: bool = True) -> dict[str, Split]:
    """The splits of a FER2013 CSV (the shared gzipped copy when no path is given)."""
    path = Path(path) if path else DEFAULT_CSV.resolve()
    cached = _cache_path(path) if use_cache and path.exists() else None
    if cached and cached.exists():
        with np.load(cached) as npz:
            return {u: Split(npz[f"{u}_x"], npz[f"{u}_y"]) for u in USAGES if f"{u}_x" in npz}
    log.info("parsing %s (cached afterwards)", path)
    splits = parse_csv(path)
    if cached:
        cached.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"{u}_{k}": getattr(s, a) for u, s in splits.items() for k, a in (("x", "images"), ("y", "labels"))}
        np.savez(cached, **arrays)
    return splits


def require_splits(splits: dict[str, Split], *usages: str) -> None:
    """DatasetError when the file has no rows of a `Usage` the caller needs (e.g. PublicTest)."""
    missing = [u for u in usages if u not in splits]
    if missing:
        found = ", ".join(splits) or "none"
        raise DatasetError(f"the CSV has no rows with Usage {', '.join(missing)} (found: {found})")


def class_counts(split: Split) -> np.ndarray:
    return np.bincount(split.labels, minlength=NUM_EMOTIONS)


def load_ferplus_votes(path: Path | str | None, usage: str, expected_rows: int) -> np.ndarray:
    """FER+ crowd votes (m, 7) for the rows of one `Usage`, in FER2013 label order.

    `fer2013new.csv` lists the FER2013 rows in the original Kaggle order, so the n-th row of a
    Usage here is the n-th row of that Usage in the FER2013 CSV; a different row count means the
    two files do not belong together, which is an error rather than a silent misalignment.
    """
    path = Path(path) if path else DEFAULT_FERPLUS.resolve()
    if not path.exists():
        raise DatasetError(f"{path}: no such file (FER+ votes, fer2013new.csv)")
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ("Usage", *FERPLUS_COLUMNS) if c not in (reader.fieldnames or [])]
        if missing:
            raise DatasetError(f"{path}: missing FER+ column(s) {', '.join(missing)}")
        votes = [[int(row[c]) for c in FERPLUS_COLUMNS] for row in reader if row["Usage"] == usage]
    if len(votes) != expected_rows:
        raise DatasetError(f"{path}: {len(votes)} {usage} rows, but the FER2013 CSV has {expected_rows}")
    return np.asarray(votes, np.float32)


def soft_targets(labels: np.ndarray, votes: np.ndarray, ferplus_weight: float) -> np.ndarray:
    """Training targets: (1 - w) * one-hot(FER2013 label) + w * FER+ vote shares.

    The FER2013 label keeps the majority of the mass, so the model still learns to predict the
    labels it is evaluated on; the crowd votes say which other emotions a face resembles (ten
    annotators agree with the FER2013 label only ~64% of the time). Rows without usable votes
    keep their one-hot target.
    """
    onehot = np.eye(NUM_EMOTIONS, dtype=np.float32)[labels]
    totals = votes.sum(axis=1, keepdims=True)
    shares = np.where(totals > 0, votes / np.maximum(totals, 1), onehot)
    return (1 - ferplus_weight) * onehot + ferplus_weight * shares
