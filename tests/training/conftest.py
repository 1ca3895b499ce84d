"""The training tests parse into a cache of their own (CLASSROOM_CACHE_DIR), never the user's cache;
the shipped sample, packed as `torch_trainer` reads it, is shared by the trainer's tests."""

from __future__ import annotations

import csv
import os

import pytest
from classroom_training.data import FERPLUS_COLUMNS, load_fer2013
from classroom_training.pack import pack

from tests.support.procs import REPO

SAMPLE = REPO / "data" / "fer2013_sample.csv.gz"


@pytest.fixture(autouse=True, scope="session")
def _private_parse_cache(tmp_path_factory):
    saved = os.environ.get("CLASSROOM_CACHE_DIR")
    os.environ["CLASSROOM_CACHE_DIR"] = str(tmp_path_factory.mktemp("parse-cache"))
    yield
    if saved is None:
        os.environ.pop("CLASSROOM_CACHE_DIR", None)
    else:
        os.environ["CLASSROOM_CACHE_DIR"] = saved


@pytest.fixture(scope="session")
def packed(tmp_path_factory):
    """The shipped sample packed with made-up FER+ votes (10 annotators, all for row i % 7)."""
    folder = tmp_path_factory.mktemp("pack")
    splits = load_fer2013(SAMPLE)
    votes_csv = folder / "fer2013new.csv"
    with votes_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Usage", "Image name", *FERPLUS_COLUMNS, "contempt", "unknown", "NF"])
        for usage, split in splits.items():
            for i in range(len(split)):
                writer.writerow([usage, f"fer{i:07d}.png", *[10 if c == i % 7 else 0 for c in range(7)], 0, 0, 0])
    return pack(SAMPLE, votes_csv, folder / "pack.npz.xz"), splits
