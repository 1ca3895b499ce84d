"""Which numbered SavedModel version to serve: the highest complete one unless a version is pinned.

Training exports models/emotion/<n>/ next to <n>.keras files; a version folder without
saved_model.pb is an export still being written (or a broken one) and is skipped.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def available_versions(model_dir: Path) -> list[int]:
    """Complete SavedModel versions under `model_dir`, ascending."""
    if not model_dir.is_dir():
        return []
    found = [int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()]
    return sorted(v for v in found if (model_dir / str(v) / "saved_model.pb").is_file())


def resolve_version(model_dir: Path, pinned: int | None = None) -> Path:
    """Folder of the version to load; FileNotFoundError when there is none (or not the pinned one)."""
    versions = available_versions(model_dir)
    if pinned is not None:
        if pinned not in versions:
            raise FileNotFoundError(f"model version {pinned} not found in {model_dir} (have {versions})")
        return model_dir / str(pinned)
    if not versions:
        raise FileNotFoundError(f"no SavedModel version under {model_dir}")
    return model_dir / str(versions[-1])
