"""`classroom-capture` as a student runs it: a real process, a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest
from classroom_capture.detector import auto_detector_name

from tests.support.fake_api import TOKEN
from tests.support.procs import BIN, Proc, free_port, wait_until

CAPTURE = str(BIN / "classroom-capture")


def run(*args: str, timeout: float = 30, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CAPTURE, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kwargs
    )


def agent_args(server: str, source, tmp_path, *extra: str) -> list[str]:
    return [
        "--server", server, "--token", TOKEN, "--source", str(source),
        "--consent", "--outbox", str(tmp_path / "outbox.sqlite3"), "--pause-file", str(tmp_path / "PAUSED"),
        *extra,
    ]  # fmt: skip


def one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("classroom-capture: error: ")
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


def test_folder_run_delivers_every_frame_once_in_order(api, frame_folder, tmp_path):
    folder, manifest = frame_folder
    api.script = lambda n: (503, {"Retry-After": "0.2"}) if n < 2 else None  # Redis down for a moment
    result = run(*agent_args(api.url, folder, tmp_path, "--rate", "30"))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # quiet when not in a terminal
    got = api.accepted
    assert len(got) == len(manifest) == len(set(api.ids()))
    assert [o["captured_at"] for o in got] == sorted(o["captured_at"] for o in got)
    assert {o["student_id"] for o in got} == {"alice"}  # the student the credential belongs to
    with_face = [m["has_face"] for m in manifest]
    seen_face = [o["face_count"] > 0 for o in got]
    assert not any(s and not w for s, w in zip(seen_face, with_face, strict=True))  # no face invented
    if auto_detector_name() != "haar":  # YuNet through OpenCV; Haar is the last resort
        assert sum(seen_face) >= 0.9 * sum(with_face)
        assert all(o["head_yaw"] is not None for o in got if o["face_count"])
    else:
        assert sum(seen_face) >= 0.5 * sum(with_face)


def test_bad_token_is_one_line_and_exit_3(api, frame_folder, tmp_path):
    folder, _ = frame_folder
    args = agent_args(api.url, folder, tmp_path, "--rate", "30")
    args[args.index(TOKEN)] = "ZZZZ-ZZZZ-ZZZZ-ZZZZ"  # well-formed, but not issued (or revoked)
    result = run(*args)
    assert result.returncode == 3
    assert "401" in one_error_line(result)
    assert api.accepted == [] and api.statuses.count(401) == 1
    args[args.index("ZZZZ-ZZZZ-ZZZZ-ZZZZ")] = "stale-token"  # not even the shape of a code: refused locally
    result = run(*args)
    assert result.returncode == 2 and "16 letters and digits" in one_error_line(result)
    assert api.statuses.count(401) == 1


def test_join_link_gives_server_and_code_and_me_names_the_student(api, frame_folder, tmp_path):
    folder, manifest = frame_folder
    args = agent_args(api.url, folder, tmp_path, "--rate", "30", "-v")
    for flag in ("--server", "--token"):
        i = args.index(flag)
        del args[i : i + 2]
    link = f"{api.url}/join#{TOKEN.replace('-', '').lower()}"
    result = run(*args, "--join-link", link)
    assert result.returncode == 0, result.stderr
    assert "you are Alice (alice) in Room 1" in result.stderr
    assert TOKEN not in result.stderr and TOKEN.replace("-", "") not in result.stderr  # never logged
    assert len(api.accepted) == len(manifest) and {o["student_id"] for o in api.accepted} == {"alice"}
    bad = run(*args, "--join-link", f"{api.url}/join")
    assert bad.returncode == 2 and "no valid code" in one_error_line(bad)


def test_no_camera_is_one_line_and_exit_4(tmp_path):
    result = run(*agent_args("http://127.0.0.1:9", "7", tmp_path))
    assert result.returncode == 4
    assert "no camera at index 7" in one_error_line(result)


def test_unreadable_video_is_one_line_and_exit_4(tmp_path):
    video = tmp_path / "lecture.mp4"
    video.write_bytes(b"this is not a video" * 100)
    result = run(*agent_args("http://127.0.0.1:9", video, tmp_path))
    assert result.returncode == 4
    assert "cannot read video file" in one_error_line(result)


def test_missing_source_path(tmp_path):
    result = run(*agent_args("http://127.0.0.1:9", tmp_path / "nope", tmp_path))
    assert result.returncode == 4
    assert "no such camera index, video file or image folder" in one_error_line(result)


def test_without_consent_nothing_is_captured(api, frame_folder, tmp_path):
    folder, _ = frame_folder
    args = [a for a in agent_args(api.url, folder, tmp_path) if a != "--consent"]
    result = run(*args)
    assert result.returncode == 6
    assert "--consent" in one_error_line(result)
    assert api.accepted == [] and not (tmp_path / "outbox.sqlite3").exists()
    assert set(api.statuses) <= {200}  # at most GET /v1/me, to show whose code it is


def test_missing_arguments_are_named(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLASSROOM_")}
    result = run("--consent", env=env)
    assert result.returncode == 2
    assert "missing --join-link (or --server and --token" in one_error_line(result)


def test_server_unreachable_keeps_going_then_delivers_later(api, frame_folder, tmp_path):
    folder, manifest = frame_folder
    dead = f"http://127.0.0.1:{free_port()}"
    result = run(*agent_args(dead, folder, tmp_path, "--rate", "30", "--drain-timeout", "1"))
    assert result.returncode == 75, result.stderr
    lines = result.stderr.strip().splitlines()
    assert "unreachable" in lines[0] and "kept in the outbox" in lines[0]  # warned once, went on capturing
    assert lines[-1].startswith("classroom-capture: error: server unreachable: 30 observation(s) wait")
    assert "Traceback" not in result.stderr
    later = run(*agent_args(api.url, folder, tmp_path, "--send-pending"))
    assert later.returncode == 0, later.stderr
    assert len(api.ids()) == len(set(api.ids())) == len(manifest)


def test_sigterm_mid_run_loses_nothing(api, frame_folder, tmp_path):
    folder, _ = frame_folder
    # The server accepts the first request, then is "down" (503): most observations are pending at SIGTERM.
    api.script = lambda n: (503, {"Retry-After": "0.1"}) if n >= 1 else None
    proc = Proc([CAPTURE, *agent_args(api.url, folder, tmp_path, "--rate", "10", "-v")], tmp_path / "agent.log")
    try:
        wait_until(lambda: len(api.statuses) >= 3, timeout=15, what="a first delivery and some 503s")
        proc.signal(signal.SIGTERM)
        started = time.monotonic()
        proc.popen.wait(timeout=15)
        assert time.monotonic() - started < 6  # a short grace period, not a hang
    finally:
        proc.stop()
    output = proc.log_path.read_text()
    assert proc.popen.returncode == 0, output
    captured = int(re.search(r"captured (\d+) observation", output).group(1))
    assert 0 < captured < 30  # really mid-run
    delivered_before = len(api.ids())
    api.script = None
    later = run(*agent_args(api.url, folder, tmp_path, "--send-pending"))
    assert later.returncode == 0, later.stderr
    ids = api.ids()
    assert len(ids) == len(set(ids)) == captured, (delivered_before, captured)
    times = [o["captured_at"] for o in api.accepted]
    assert times == sorted(times)


def test_pause_file_pauses_and_resume_continues(api, frame_folder, tmp_path):
    folder, manifest = frame_folder
    paused = run("--pause", "--pause-file", str(tmp_path / "PAUSED"))
    assert paused.returncode == 0 and (tmp_path / "PAUSED").exists()
    proc = Proc([CAPTURE, *agent_args(api.url, folder, tmp_path, "--rate", "30", "-v")], tmp_path / "agent.log")
    try:
        # the capture loop's first step found the pause: from here on nothing may be captured until resumed
        wait_until(lambda: "paused:" in proc.output(), timeout=20, what="the agent to start paused")
        assert proc.alive() and api.accepted == []  # paused: nothing captured, nothing sent
        assert set(api.statuses) <= {200}  # at most GET /v1/me at start
        assert not (tmp_path / "outbox.sqlite3").exists() or _pending(tmp_path) == 0
        resuming = time.time()
        assert run("--resume", "--pause-file", str(tmp_path / "PAUSED")).returncode == 0
        proc.popen.wait(timeout=20)
    finally:
        proc.stop()
    assert proc.popen.returncode == 0, proc.log_path.read_text()
    assert len(api.accepted) == len(manifest)
    # every frame was captured after the resume (30/s would have taken several while paused, had it not held)
    assert min(o["captured_at"] for o in api.accepted) >= resuming


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="POSIX only")
def test_sigusr1_toggles_pause_and_token_from_env(api, frame_folder, tmp_path):
    folder, _ = frame_folder
    args = agent_args(api.url, folder, tmp_path, "--rate", "5", "-v")  # -v: the agent logs "paused"
    i = args.index("--token")
    del args[i : i + 2]  # the token comes from CLASSROOM_TOKEN instead
    proc = Proc([CAPTURE, *args], tmp_path / "agent.log", env={"CLASSROOM_TOKEN": TOKEN})
    try:
        wait_until(lambda: _pending(tmp_path) + len(api.accepted) >= 1, timeout=15, what="first capture")
        # the server is busy from now on, so what is captured waits and the sender retries it once a
        # second: each refused retry marks time passing in the agent (a positive signal, not a pause)
        api.script = lambda _: (503, {"Retry-After": "1"})
        wait_until(lambda: 503 in api.statuses, timeout=10, what="a delivery refused: observations wait")
        proc.signal(signal.SIGUSR1)
        wait_until(lambda: (tmp_path / "PAUSED").exists(), timeout=5, what="pause file")
        # the capture loop noticed the pause (after the frame in hand): nothing is captured from here
        wait_until(lambda: "paused:" in proc.output(), timeout=5, what="the agent to pause")
        paused, refused = time.time(), api.statuses.count(503)
        frozen = _captured(tmp_path, api)
        wait_until(lambda: api.statuses.count(503) >= refused + 2, timeout=15, what="two delivery rounds while paused")
        assert _captured(tmp_path, api).keys() == frozen.keys(), "captured while paused"
        api.script = None
        resuming = time.time()
        proc.signal(signal.SIGUSR1)
        wait_until(lambda: not (tmp_path / "PAUSED").exists(), timeout=5, what="resume")
        wait_until(lambda: len(_captured(tmp_path, api)) > len(frozen), timeout=10, what="capture again")
        wait_until(lambda: len(api.accepted) > 0, timeout=10, what="a delivery with the token from the env")
        times = _captured(tmp_path, api).values()
        assert not [t for t in times if paused <= t < resuming], "captured while paused"
    finally:
        proc.stop()


def _captured(tmp_path, api) -> dict[str, float]:
    """Every observation captured so far, delivered or waiting in the outbox: {id: captured_at}."""
    import sqlite3

    rows = []
    path = tmp_path / "outbox.sqlite3"
    if path.exists():
        with sqlite3.connect(path) as db:
            try:
                rows = db.execute("SELECT observation_id, body FROM outbox").fetchall()
            except sqlite3.OperationalError:
                pass
    # read after the outbox: the fake API records a delivery before the agent deletes it from the outbox
    captured = {o["id"]: o["captured_at"] for o in list(api.accepted)}
    return {**{oid: json.loads(body)["captured_at"] for oid, body in rows}, **captured}


def _pending(tmp_path) -> int:
    import sqlite3

    path = tmp_path / "outbox.sqlite3"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def test_help_covers_what_a_teacher_needs():
    result = run("--help")
    assert result.returncode == 0
    for option in ("--join-link", "--server", "--token", "CLASSROOM_TOKEN", "--source", "--rate", "--detector",
                   "--consent", "--outbox", "--pause", "--resume", "exit codes"):  # fmt: skip
        assert option in result.stdout
    assert "--student" not in result.stdout  # the code says who the student is
