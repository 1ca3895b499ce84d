"""The capture agent against the REAL ingest API (`classroom-api` under uvicorn) and a real Redis.

The issue "runs all day on a classroom laptop, light, private, and loses nothing": an API outage,
a SIGTERM in the middle of a send and a bad token, each with real processes on 127.0.0.1 only.

What was captured is witnessed independently of the agent and the server: before the agent starts,
its outbox file gets an extra table and an SQLite trigger that records every observation id the
moment the agent commits it (the outbox itself deletes rows once delivered). What the server holds
is read from the keys the API writes (`classroom_inference.ingest`): a `seen` marker per accepted id,
each face crop parked in its batch's `crops` hash (no worker runs, so they stay), each absence
written straight to the student's series. An id stored twice would show up twice there.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import redis
from classroom_capture.outbox import Outbox
from classroom_contract import keys, store, tokens
from classroom_inference import redis_keys

from tests.support.procs import BIN, Proc, free_port, http_ok, wait_until

CAPTURE = str(BIN / "classroom-capture")
CLASS_ID, STUDENT, TOKEN = "room-1", "alice", tokens.new_credential()


# --- fixtures and helpers -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """32 synthetic 640x480 frames with real FER faces (1 in 4 without a face), made once."""
    from classroom_capture.synthetic import write_synthetic_frames

    folder = tmp_path_factory.mktemp("real-api-frames")
    manifest = write_synthetic_frames(folder, 32, seed=3, no_face_ratio=0.25)
    return folder, manifest


class Api:
    """`classroom-api` on a fixed loopback port, stoppable and restartable on the same port."""

    def __init__(self, redis_url: str, workdir: Path):
        self.port, self.workdir, self.starts = free_port(), workdir, 0
        self.env = {**os.environ, "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING"}
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Proc | None = None

    def start(self) -> None:
        self.starts += 1
        log = self.workdir / f"api-{self.starts}.log"
        self.proc = Proc([str(BIN / "classroom-api"), "--port", str(self.port)], log, self.env)
        wait_until(lambda: http_ok(f"{self.url}/healthz"), timeout=30, what="classroom-api /healthz")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.signal(signal.SIGCONT)  # in case a test froze it
            self.proc.stop()


@pytest.fixture
def api(redis_url, redis_client, tmp_path):
    store.create_class(redis_client, CLASS_ID, "Room 1", "teacher1")
    store.enrol_student(redis_client, CLASS_ID, STUDENT, "Alice", TOKEN)
    server = Api(redis_url, tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def agent_args(server: str, source, tmp_path: Path, *extra: str, token: str = TOKEN, log: str = "-v") -> list[str]:
    return [
        CAPTURE, "--server", server, "--token", token, "--source", str(source),
        "--consent", "--outbox", str(tmp_path / "outbox.sqlite3"), "--pause-file", str(tmp_path / "PAUSED"),
        log, *extra,
    ]  # fmt: skip


def witnessed_outbox(tmp_path: Path) -> Path:
    """Create the agent's outbox (its own schema) plus a trigger logging every id ever committed."""
    path = tmp_path / "outbox.sqlite3"
    Outbox(path).close()
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE witness (n INTEGER PRIMARY KEY AUTOINCREMENT, observation_id TEXT NOT NULL);
            CREATE TRIGGER witness_insert AFTER INSERT ON outbox
            BEGIN INSERT INTO witness (observation_id) VALUES (NEW.observation_id); END;
            """
        )
    db.close()
    return path


def _query(path: Path, sql: str) -> list[tuple]:
    db = sqlite3.connect(path, timeout=10)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def captured_ids(path: Path) -> list[str]:
    """Every observation id the agent committed to its outbox, in order (the trigger's record)."""
    return [row[0] for row in _query(path, "SELECT observation_id FROM witness ORDER BY n")]


def pending_ids(path: Path) -> list[str]:
    return [row[0] for row in _query(path, "SELECT observation_id FROM outbox ORDER BY seq")]


def seen_ids(client) -> set[str]:
    prefix = redis_keys.seen(CLASS_ID, STUDENT, "")
    markers = client.scan_iter(redis_keys.seen(CLASS_ID, STUDENT, "*"), count=1000)
    return {key.decode()[len(prefix) :] for key in markers}


def stored_copies(client) -> Counter:
    """How many times the server stored each observation: crops parked for the worker (in the crop
    store, CROP_STORE_URL of tests/conftest.py) + absences."""
    copies: Counter = Counter()
    crop_store = redis.Redis.from_url(os.environ["CROP_STORE_URL"])
    for key in crop_store.scan_iter(keys.crops("*"), count=1000):
        copies.update(field.decode() for field in crop_store.hkeys(key))
    crop_store.close()
    copies.update(r.observation_id for r in store.student_series(client, CLASS_ID, STUDENT))
    return copies


def assert_each_exactly_once(client, captured: list[str]) -> None:
    assert captured, "nothing was captured"
    assert len(set(captured)) == len(captured), "the agent reused an observation id"
    assert seen_ids(client) == set(captured), "the server's accepted ids differ from what was captured"
    copies = stored_copies(client)
    assert set(copies) == set(captured), "an observation is missing at the server (or one came from nowhere)"
    doubled = {i: n for i, n in copies.items() if n != 1}
    assert not doubled, f"stored more than once at the server: {doubled}"


def agent_summary(output: str) -> tuple[int, int, int]:
    """(captured, delivered new, already there) from the agent's closing log line."""
    found = re.search(r"captured (\d+) observation\(s\); delivered (\d+) new, (\d+) already there", output)
    assert found, output
    return int(found[1]), int(found[2]), int(found[3])


def unread_request_bytes(port: int) -> int:
    """Bytes waiting unread in the API's accepted sockets on `port` (Linux /proc/net/tcp rx_queue)."""
    total = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":  # ESTABLISHED, server side
                total += int(fields[4].split(":")[1], 16)
    return total


# --- tests ----------------------------------------------------------------------------------------


def test_api_outage_and_restart_every_observation_arrives_exactly_once(api, frames, redis_client, tmp_path):
    folder, manifest = frames
    outbox = witnessed_outbox(tmp_path)
    agent = Proc(agent_args(api.url, folder, tmp_path, "--rate", "4", "--drain-timeout", "40"), tmp_path / "agent.log")
    try:
        wait_until(lambda: len(seen_ids(redis_client)) >= 2, timeout=30, what="a first delivery to the real API")
        api.stop()  # the server goes away (same Redis stays)
        at_outage = len(captured_ids(outbox))
        wait_until(lambda: len(captured_ids(outbox)) >= at_outage + 4, timeout=10, what="captures during the outage")
        wait_until(lambda: "unreachable" in agent.output(), timeout=10, what="the agent noticing the outage")
        during_outage = captured_ids(outbox)[at_outage:]
        assert set(during_outage) <= set(pending_ids(outbox)), "captured while down, so still in the outbox"
        assert not set(during_outage) & seen_ids(redis_client)
        api.start()  # same port, same Redis
        assert agent.popen.wait(timeout=45) == 0, agent.output()
    finally:
        agent.stop()
    output = agent.log_path.read_text()
    captured = captured_ids(outbox)
    assert len(captured) == len(manifest), "one observation per frame"
    assert pending_ids(outbox) == []
    assert set(during_outage) <= seen_ids(redis_client)
    assert_each_exactly_once(redis_client, captured)
    n_captured, new, _ = agent_summary(output)
    assert n_captured == new == len(manifest)
    with_face = sum(m["has_face"] for m in manifest)
    absences = [r for r in store.student_series(redis_client, CLASS_ID, STUDENT)]
    assert all(r.face_count == 0 for r in absences) and len(absences) >= len(manifest) - with_face


def test_sigterm_mid_send_then_restart_loses_nothing_and_doubles_nothing(api, frames, redis_client, tmp_path):
    """SIGTERM while a POST is in flight to a hung API: the agent exits within its grace period; the
    API then commits that batch, but the agent never saw the answer, so the restarted agent resends
    those ids and the server must answer them as duplicates."""
    folder, manifest = frames
    outbox = witnessed_outbox(tmp_path)
    # 3 frames/s: the 32 frames take about 11 s, so observations are still coming when the API is
    # frozen. At 8/s (4 s) a slow first answer on a loaded machine let the agent send the rest in one
    # more POST before the freeze, and no POST was ever in flight (seen in a clean-clone CI run).
    agent = Proc(agent_args(api.url, folder, tmp_path, "--rate", "3"), tmp_path / "agent-1.log")
    try:
        wait_until(lambda: len(seen_ids(redis_client)) >= 2, timeout=30, what="a first delivery to the real API")
        api.proc.signal(signal.SIGSTOP)  # the API hangs: the next POST stays in flight
        wait_until(lambda: unread_request_bytes(api.port) > 0, timeout=10, what="a POST in flight to the hung API")
        in_flight = pending_ids(outbox)[0]  # the sender always sends the oldest first
        agent.signal(signal.SIGTERM)
        started = time.monotonic()
        try:
            agent.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("the agent did not exit within 30 s of SIGTERM")
        stop_seconds = time.monotonic() - started
    finally:
        agent.stop()
        api.proc.signal(signal.SIGCONT)
    first = agent.log_path.read_text()
    assert agent.popen.returncode == 0, first
    assert stop_seconds < 8, f"SIGTERM took {stop_seconds:.1f} s to stop the agent (a 2 s grace is documented)"
    n_first, _, _ = agent_summary(first)
    assert 0 < n_first < len(manifest), "really mid-run"
    left = pending_ids(outbox)
    assert in_flight in left, "the unanswered batch must stay in the outbox"
    # The API, running again, commits the batch it had read: the agent never got that answer.
    wait_until(lambda: in_flight in seen_ids(redis_client), timeout=15, what="the API committing the in-flight batch")

    restart = subprocess.run(
        agent_args(api.url, folder, tmp_path, "--rate", "30"), capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert restart.returncode == 0, restart.stderr
    captured = captured_ids(outbox)
    assert len(captured) == n_first + len(manifest)
    assert pending_ids(outbox) == []
    assert_each_exactly_once(redis_client, captured)
    _, _, duplicates = agent_summary(restart.stderr)
    assert duplicates >= 1, "the resent in-flight batch is answered as already there"


def test_bad_credential_exits_3_with_one_line_and_the_api_stores_nothing(api, frames, redis_client, tmp_path):
    folder, _ = frames
    store.rotate_credential(redis_client, CLASS_ID, STUDENT, tokens.new_credential())  # TOKEN is revoked now
    result = subprocess.run(
        agent_args(api.url, folder, tmp_path, "--rate", "30", log="-q"),
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("classroom-capture: error: ") and "401" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert seen_ids(redis_client) == set() and stored_copies(redis_client) == Counter()
    # GET /v1/me at start refused the code before the camera opened: nothing was captured at all
    assert not (tmp_path / "outbox.sqlite3").exists() or len(Outbox(tmp_path / "outbox.sqlite3")) == 0
