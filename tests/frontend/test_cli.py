"""The `classroom-dashboard` console script: teachers, classes, tokens."""

from __future__ import annotations

import os
import subprocess

from classroom_contract import store
from classroom_dashboard import accounts
from classroom_dashboard.cli import main
from procs import BIN, Proc, free_port, http_ok, wait_until


def test_create_class_prints_a_token_agents_can_use(redis_url, redis_client):
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
    token = done.stdout.strip()
    assert store.class_for_token(redis_client, token) == "7b"
    assert store.class_info(redis_client, "7b")["owner"] == "alice"


def test_rotate_token_replaces_the_old_one(redis_url, redis_client, capsys):
    assert main(["--redis-url", redis_url, "create-teacher", "--username", "bob", "--password", "12345678"]) == 0
    assert main(["--redis-url", redis_url, "create-class", "--teacher", "bob", "--class-id", "8a", "--name", "8a"]) == 0
    old = capsys.readouterr().out.strip()
    assert main(["--redis-url", redis_url, "rotate-token", "--class-id", "8a"]) == 0
    new = capsys.readouterr().out.strip()
    assert new != old
    assert store.class_for_token(redis_client, old) is None
    assert store.class_for_token(redis_client, new) == "8a"


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
    assert main([*base, "rotate-token", "--class-id", "missing"]) == 2


def test_serve_runs_the_development_server(redis_url, tmp_path):
    port = free_port()
    env = {"REDIS_URL": redis_url, "DASHBOARD_ENV": "", "SECRET_KEY": ""}  # serve defaults to development
    proc = Proc([str(BIN / "classroom-dashboard"), "serve", "--port", str(port)], tmp_path / "serve.log", env=env)
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), timeout=30, what="classroom-dashboard serve")
        assert http_ok(f"http://127.0.0.1:{port}/auth/login")
    finally:
        proc.stop()
