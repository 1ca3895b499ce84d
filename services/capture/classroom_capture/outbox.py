"""The outbox: every observation is written here the moment it is captured, and deleted only once
the server has acknowledged it. It is what makes a crash, a SIGTERM, a lost network or a server
outage lose nothing: the next run sends what is left, with the same observation ids (the server
ignores resends).

SQLite, one file, in the per-user data dir (or --outbox). Oldest first (insertion order).
Bounded: at most `max_items` observations (default 10,000: ~35 MB, 83 minutes at 2 samples/s).
Policy when full: the OLDEST observations are dropped to make room and counted (`dropped`), because
a live dashboard needs the newest data most, and a laptop must not fill its disk while offline.

Private: the crops are faces, so the folder the outbox creates is 0700 and the database with its
WAL/SHM side files is 0600 (SQLite gives the side files the database file's mode), tightened on every
open so an outbox made by an older version is fixed too. A folder that already existed is left as
it is (it may be the user's own, e.g. --outbox ~/outbox.sqlite3), except the agent's own data dir.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from classroom_contract import Observation
from classroom_contract.messages import MAX_OBSERVATIONS_PER_REQUEST

from classroom_capture.paths import data_dir

DEFAULT_MAX_ITEMS = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    student_id TEXT NOT NULL,
    observation_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class Pending:
    seq: int
    student_id: str  # whose credential captured it: `owner_key(credential)`, a local label only
    observation: Observation


class Outbox:
    def __init__(self, path: str | os.PathLike = ":memory:", max_items: int = DEFAULT_MAX_ITEMS):
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self.path, self.max_items = str(path), max_items
        if self.path != ":memory:":
            self.path = str(_private_file(Path(self.path).expanduser()))
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")  # a process kill never corrupts or loses a commit
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        if self.path != ":memory:":
            _tighten_side_files(Path(self.path))

    # --- writing ----------------------------------------------------------------------------

    def put(self, student_id: str, observation: Observation) -> int:
        """Store one observation durably; returns how many old ones were dropped to make room."""
        return self.put_many(student_id, [observation])

    def put_many(self, student_id: str, observations: list[Observation]) -> int:
        with self._lock, self._transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO outbox (student_id, observation_id, body) VALUES (?, ?, ?)",
                [(student_id, str(o.observation_id), o.model_dump_json(exclude_none=True)) for o in observations],
            )
            excess = self._count() - self.max_items
            if excess > 0:
                self._db.execute(
                    "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)", (excess,)
                )
                self._bump("dropped", excess)
            return max(excess, 0)

    def ack(self, seqs: list[int]) -> None:
        """The server has them (accepted or duplicate): forget them."""
        self._delete(seqs, None)

    def reject(self, seqs: list[int]) -> None:
        """The server refused them for good (413/422 on a single observation): forget and count them."""
        self._delete(seqs, "rejected")

    def _delete(self, seqs: list[int], counter: str | None) -> None:
        if not seqs:
            return
        with self._lock, self._transaction():
            self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])
            if counter:
                self._bump(counter, len(seqs))

    # --- reading ----------------------------------------------------------------------------

    def oldest(self, limit: int = MAX_OBSERVATIONS_PER_REQUEST, owner: str | None = None) -> list[Pending]:
        """Up to `limit` oldest observations, all of the same student as the very oldest (of `owner`'s
        when given: a sender sends only what was captured under its own credential)."""
        with self._lock:
            if owner is None:
                first = self._db.execute("SELECT student_id FROM outbox ORDER BY seq LIMIT 1").fetchone()
            else:
                first = self._db.execute(
                    "SELECT student_id FROM outbox WHERE student_id = ? ORDER BY seq LIMIT 1", (owner,)
                ).fetchone()
            if first is None:
                return []
            # Stop at the first row of another student, so that order is kept across students.
            rows = self._db.execute(
                "SELECT seq, student_id, body FROM outbox WHERE student_id = ? ORDER BY seq LIMIT ?"
                if owner is not None
                else "SELECT seq, student_id, body FROM outbox WHERE seq < COALESCE("
                "(SELECT MIN(seq) FROM outbox WHERE student_id != ?), 9223372036854775807) "
                "ORDER BY seq LIMIT ?",
                (first[0], limit),
            ).fetchall()
        return [Pending(seq, sid, Observation.model_validate_json(body)) for seq, sid, body in rows]

    def __len__(self) -> int:
        with self._lock:
            return self._count()

    def count(self, owner: str) -> int:
        """Observations waiting that were captured under `owner`'s credential."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM outbox WHERE student_id = ?", (owner,)).fetchone()[0]

    def counter(self, name: str) -> int:
        """ "dropped" (outbox full) or "rejected" (refused by the server), since the file was created."""
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return row[0] if row else 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- helpers ------------------------------------------------------------------------------

    def _count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def _bump(self, name: str, by: int) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
            (name, by, by),
        )

    def _transaction(self):
        return _Transaction(self._db)


def _private_file(path: Path) -> Path:
    """Create `path` (and missing folders) readable by its owner only; tighten an existing one."""
    missing = []
    folder = path.parent
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for created in reversed(missing):
        created.mkdir(mode=0o700, exist_ok=True)
        os.chmod(created, 0o700)  # mkdir's mode is masked by the umask
    if path.parent.resolve() == data_dir().resolve():
        os.chmod(path.parent, 0o700)  # our own data dir, perhaps made world-readable by an older version
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)
    return path


def _tighten_side_files(path: Path) -> None:
    """-wal/-shm files left by an older version (SQLite creates new ones with the database's mode)."""
    for suffix in ("-wal", "-shm", "-journal"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.chmod(side, 0o600)


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        return False
