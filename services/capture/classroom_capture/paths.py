"""Where the agent keeps its state on a laptop: one per-user data directory, no extra dependency."""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP = "classroom-capture"


def data_dir() -> Path:
    """Per-user data dir: $CLASSROOM_CAPTURE_HOME, else the platform's usual place.

    Linux: $XDG_DATA_HOME/classroom-capture (~/.local/share/...); macOS: ~/Library/Application
    Support/classroom-capture; Windows: %LOCALAPPDATA%\\classroom-capture.
    """
    override = os.environ.get("CLASSROOM_CAPTURE_HOME")
    if override:
        return Path(override).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / APP


def default_outbox() -> Path:
    return data_dir() / "outbox.sqlite3"


def default_pause_file() -> Path:
    return data_dir() / "PAUSED"
