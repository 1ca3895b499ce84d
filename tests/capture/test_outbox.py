"""The outbox: durable, oldest first, one student per batch, bounded with a stated policy."""

from __future__ import annotations

import os
import uuid

import pytest
from classroom_capture.outbox import Outbox
from classroom_contract import Observation, encode_crop


def obs(t: float, face: bool = False) -> Observation:
    crop = encode_crop(bytes([int(t) % 256]) * 2304) if face else None
    return Observation(observation_id=uuid.uuid4(), captured_at=t, face_count=int(face), crop=crop)


def test_oldest_first_and_ack_removes(tmp_path):
    box = Outbox(tmp_path / "o.sqlite3")
    for t in range(10):
        box.put("alice", obs(t, face=t % 2 == 0))
    batch = box.oldest(4)
    assert [p.observation.captured_at for p in batch] == [0, 1, 2, 3]
    assert batch[0].observation.crop is not None and batch[1].observation.crop is None
    box.ack([p.seq for p in batch])
    assert [p.observation.captured_at for p in box.oldest(100)] == [4, 5, 6, 7, 8, 9]
    assert len(box) == 6


def test_survives_reopen_with_the_same_ids(tmp_path):
    path = tmp_path / "o.sqlite3"
    box = Outbox(path)
    stored = [obs(t) for t in range(5)]
    box.put_many("alice", stored)
    box.close()
    again = Outbox(path)
    assert [p.observation.observation_id for p in again.oldest()] == [o.observation_id for o in stored]


def test_a_batch_never_mixes_students_and_order_is_kept(tmp_path):
    box = Outbox(tmp_path / "o.sqlite3")
    for t, student in enumerate(["a", "a", "b", "a", "b"]):
        box.put(student, obs(t))
    seen = []
    while batch := box.oldest(64):
        assert len({p.student_id for p in batch}) == 1
        seen.append((batch[0].student_id, [p.observation.captured_at for p in batch]))
        box.ack([p.seq for p in batch])
    assert seen == [("a", [0, 1]), ("b", [2]), ("a", [3]), ("b", [4])]


def test_full_outbox_drops_the_oldest_and_counts(tmp_path):
    box = Outbox(tmp_path / "o.sqlite3", max_items=5)
    dropped = sum(box.put("alice", obs(t)) for t in range(8))
    assert dropped == 3 and box.counter("dropped") == 3
    assert len(box) == 5
    assert [p.observation.captured_at for p in box.oldest()] == [3, 4, 5, 6, 7]


def test_same_observation_twice_is_stored_once(tmp_path):
    box = Outbox(tmp_path / "o.sqlite3")
    one = obs(1)
    box.put("alice", one)
    box.put("alice", one)
    assert len(box) == 1


def test_reject_counts(tmp_path):
    box = Outbox(tmp_path / "o.sqlite3")
    box.put("alice", obs(1))
    box.reject([p.seq for p in box.oldest()])
    assert len(box) == 0 and box.counter("rejected") == 1


def test_bound_must_be_positive(tmp_path):
    with pytest.raises(ValueError):
        Outbox(tmp_path / "o.sqlite3", max_items=0)


def _mode(path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_outbox_is_private_to_its_owner(tmp_path, monkeypatch):
    """Unsent crops are faces: the folder the outbox creates is 0700, the database and its WAL/SHM
    files 0600, even under a permissive umask (issue 14, finding 12)."""
    monkeypatch.setenv("CLASSROOM_CAPTURE_HOME", str(tmp_path / "home"))
    old = os.umask(0o022)
    try:
        box = Outbox(tmp_path / "data" / "capture" / "o.sqlite3")
        box.put("alice", obs(1.0, face=True))
        files = sorted((tmp_path / "data" / "capture").iterdir())
        assert {f.name for f in files} >= {"o.sqlite3", "o.sqlite3-wal", "o.sqlite3-shm"}
        assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
        assert _mode(tmp_path / "data" / "capture") == 0o700
        assert _mode(tmp_path / "data") == 0o700
        box.close()
    finally:
        os.umask(old)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_an_outbox_left_world_readable_is_tightened_on_open(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("CLASSROOM_CAPTURE_HOME", str(home))
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    path = home / "outbox.sqlite3"
    box = Outbox(path)
    box.put("alice", obs(1.0, face=True))
    box.close()
    for f in home.iterdir():
        os.chmod(f, 0o644)
    again = Outbox(path)
    assert len(again) == 1
    assert {f.name: _mode(f) for f in home.iterdir()} == {f.name: 0o600 for f in home.iterdir()}
    assert _mode(home) == 0o700
    again.close()
