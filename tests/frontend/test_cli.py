"""The `classroom-dashboard` console script: teachers, classes, enrolled students and the demo class."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess

import pytest
from classroom_contract import store, tokens
from classroom_dashboard import accounts
from classroom_dashboard.cli import main

from tests.support.procs import BIN, Proc, free_port, http_ok, wait_until


@pytest.fixture(autouse=True)
def _secret_key(monkeypatch):
    """The key the CLI seals credentials under, as the dashboard would read it."""
    monkeypatch.setenv("SECRET_KEY", "cli-test-secret-" + "0123456789abcdef" * 2)


def test_create_class_and_enrol_a_student_whose_credential_agents_can_use(redis_url, redis_client):
    env = {**os.environ, "REDIS_URL": redis_url}
    script = str(BIN / "classroom-dashboard")
    done = subprocess.run(
        [script, "create-teacher", "--username", "Alice", "--password", "a long password", "--admin"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert accounts.get_teacher(redis_client, "alice") == {"username": "alice", "admin": True}
    assert accounts.check_password(redis_client, "alice", "a long password")
    assert not accounts.check_password(redis_client, "alice", "a wrong password")

    done = subprocess.run(
        [script, "create-class", "--teacher", "alice", "--class-id", "7b", "--name", "Class 7b"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert store.class_info(redis_client, "7b")["owner"] == "alice"

    env["PUBLIC_URL"] = "https://class.example.org"
    done = subprocess.run(
        [script, "enrol", "--class-id", "7b", "--student", "anna", "--name", "Anna K."],
        env={**env, "SECRET_KEY": "cli-secret-" + "0123456789abcdef" * 2},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    link = re.search(r"join link (\S+)", done.stdout).group(1)
    server, credential = tokens.parse_join_link(link)
    assert server == "https://class.example.org"
    assert store.student_for_credential(redis_client, credential) == store.Enrolment("7b", "anna")
    assert store.enrolment(redis_client, "7b", "anna")["display_name"] == "Anna K."


def test_rotate_credential_replaces_the_old_one(redis_url, redis_client, capsys):
    base = ["--redis-url", redis_url]
    assert main([*base, "create-teacher", "--username", "bob", "--password", "12345678"]) == 0
    assert main([*base, "create-class", "--teacher", "bob", "--class-id", "8a", "--name", "8a"]) == 0
    assert main([*base, "enrol", "--class-id", "8a", "--student", "s1"]) == 0
    old = _code(capsys.readouterr().out)
    assert main([*base, "rotate-credential", "--class-id", "8a", "--student", "s1"]) == 0
    new = _code(capsys.readouterr().out)
    assert new != old
    assert store.student_for_credential(redis_client, old) is None
    assert store.student_for_credential(redis_client, new) == store.Enrolment("8a", "s1")


def test_demo_class_writes_private_credentials_for_the_simulated_students(redis_url, redis_client, tmp_path, capsys):
    base = ["--redis-url", redis_url]
    assert main([*base, "create-teacher", "--username", "demo", "--password", "12345678"]) == 0
    path = tmp_path / "demo" / "credentials.json"
    args = [*base, "demo-class", "--teacher", "demo", "--class-id", "demo", "--students", "3"]
    assert main([*args, "--credentials-file", str(path)]) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = json.loads(path.read_text())
    assert sorted(first) == ["student-01", "student-02", "student-03"]
    for student_id, credential in first.items():
        assert store.student_for_credential(redis_client, credential) == store.Enrolment("demo", student_id)
        assert credential not in capsys.readouterr().out  # never printed
    assert main([*args, "--credentials-file", str(path)]) == 0  # a re-run reissues them
    second = json.loads(path.read_text())
    assert all(store.student_for_credential(redis_client, c) is None for c in first.values())
    assert all(store.student_for_credential(redis_client, c) for c in second.values())


def _code(out: str) -> str:
    return re.search(r"code (\S+)", out).group(1)


def test_cli_refuses_bad_requests(redis_url, capsys):
    base = ["--redis-url", redis_url]
    assert main([*base, "create-teacher", "--username", "carol", "--password", "short"]) == 2
    assert "at least 8" in capsys.readouterr().err
    assert main([*base, "create-class", "--teacher", "nobody", "--class-id", "x", "--name", "x"]) == 2
    assert main([*base, "create-teacher", "--username", "carol", "--password", "long enough"]) == 0
    assert main([*base, "create-teacher", "--username", "carol", "--password", "long enough"]) == 2  # exists
    assert main([*base, "create-class", "--teacher", "carol", "--class-id", "bad id!", "--name", "x"]) == 2
    assert main([*base, "create-class", "--teacher", "carol", "--class-id", "c1", "--name", "x"]) == 0
    assert main([*base, "create-class", "--teacher", "carol", "--class-id", "c1", "--name", "x"]) == 2
    assert main([*base, "rotate-credential", "--class-id", "c1", "--student", "missing"]) == 2
    assert main([*base, "enrol", "--class-id", "missing", "--student", "s1"]) == 2
    assert main([*base, "enrol", "--class-id", "c1", "--student", "s1\n"]) == 2  # full match: no trailing newline
    assert main([*base, "enrol", "--class-id", "c1", "--student", "s1"]) == 0
    assert main([*base, "enrol", "--class-id", "c1", "--student", "s1"]) == 2  # enrolled already


def test_serve_runs_the_development_server(redis_url, tmp_path):
    port = free_port()
    env = {"REDIS_URL": redis_url, "DASHBOARD_ENV": "", "SECRET_KEY": ""}  # serve defaults to development
    proc = Proc([str(BIN / "classroom-dashboard"), "serve", "--port", str(port)], tmp_path / "serve.log", env=env)
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), timeout=30, what="classroom-dashboard serve")
        assert http_ok(f"http://127.0.0.1:{port}/auth/login")
    finally:
        proc.stop()
