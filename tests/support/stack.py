"""The whole system as real processes for end-to-end tests: a teacher and a class made with the
dashboard's CLI, then the API, a worker and the dashboard on free loopback ports."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.procs import BIN, Proc, free_port, http_ok, wait_until

TEACHER = "teacher1"


@dataclass
class Stack:
    api: str  # base URL of the ingest API (also the join links' origin)
    dashboard: str  # base URL of the dashboard
    env: dict[str, str]  # the processes' environment, PUBLIC_URL included
    procs: list[Proc]


def cli(args: list[str], env: dict[str, str]) -> str:
    """Run one of the installed console scripts; its stdout, stripped. Fails the test if it fails."""
    done = subprocess.run([str(BIN / args[0]), *args[1:]], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@contextmanager
def running_stack(tmp_path: Path, env: dict[str, str], class_id: str, name: str, password: str) -> Iterator[Stack]:
    """Teacher `TEACHER` with `password` owning class `class_id`; API, worker and dashboard started
    with `env` (plus PUBLIC_URL), logs in `tmp_path`, up and answering before the yield, stopped after."""
    env = dict(env)
    cli(["classroom-dashboard", "create-teacher", "--username", TEACHER, "--password", password], env)
    cli(["classroom-dashboard", "create-class", "--teacher", TEACHER, "--class-id", class_id, "--name", name], env)
    api_port, dash_port = free_port(), free_port()
    env["PUBLIC_URL"] = f"http://127.0.0.1:{api_port}"  # join links point at the API's origin
    procs = [
        Proc([str(BIN / "classroom-api"), "--port", str(api_port)], tmp_path / "api.log", env),
        Proc([str(BIN / "classroom-worker")], tmp_path / "worker.log", env),
        Proc([str(BIN / "classroom-dashboard"), "serve", "--port", str(dash_port)], tmp_path / "dash.log", env),
    ]
    stack = Stack(f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{dash_port}", env, procs)
    try:
        wait_until(lambda: http_ok(f"{stack.api}/healthz"), timeout=60, what="the API")
        wait_until(lambda: http_ok(f"{stack.dashboard}/auth/login"), timeout=60, what="the dashboard")
        yield stack
    finally:
        for proc in procs:
            proc.stop()
