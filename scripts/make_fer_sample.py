"""Write data/fer2013_sample.csv.gz: a small, fixed, class-balanced FER2013 sample the project ships.

It feeds the tests (training smoke runs, end-to-end faces) and the demo agents on machines that do
not have the full dataset. 40 Training + 10 PublicTest rows per class, chosen with a fixed seed.

    python scripts/make_fer_sample.py [path/to/fer2013.csv(.gz)]
"""

import csv
import gzip
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "data" / "fer2013" / "fer2013.csv.gz"
TARGET = REPO / "data" / "fer2013_sample.csv.gz"
PER_CLASS = {"Training": 40, "PublicTest": 10}


def main() -> None:
    opener = gzip.open if SOURCE.suffix == ".gz" else open
    with opener(SOURCE, "rt", newline="") as handle:
        rows = list(csv.DictReader(handle))
    rng = random.Random(2013)
    chosen = []
    for usage, count in PER_CLASS.items():
        for label in map(str, range(7)):
            pool = [r for r in rows if r["Usage"] == usage and r["emotion"] == label]
            chosen += rng.sample(pool, count)
    with gzip.open(TARGET, "wt", newline="", compresslevel=9) as out:
        writer = csv.DictWriter(out, fieldnames=["emotion", "pixels", "Usage"], lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: r[k] for k in ("emotion", "pixels", "Usage")} for r in chosen)
    print(f"wrote {len(chosen)} rows to {TARGET}")


if __name__ == "__main__":
    main()
