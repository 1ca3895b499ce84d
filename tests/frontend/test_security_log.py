"""Security events are logged as one JSON object per line, with who and from where, and never a secret."""

from __future__ import annotations

import json
import logging
import re

import pytest
from classroom_dashboard import accounts, security_log

from tests.support.frontend import PASSWORD, csrf_from, login, result, write

GUESS = "guessed-pw-4711"
NEW_PASSWORD = "fresh-pw-0815-long"


class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))

    def events(self) -> list[dict]:
        return [json.loads(line) for line in self.lines]

    def named(self, name: str) -> list[dict]:
        return [e for e in self.events() if e["event"] == name]


@pytest.fixture
def log_lines(app):
    handler = Lines()
    logger = logging.getLogger(security_log.LOGGER_NAME)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def _post(client, path, **data):
    csrf = csrf_from(client.get("/").get_data(as_text=True))
    return client.post(path, data={"csrf_token": csrf, **data})


def assert_no_secret(lines: Lines, *secrets: str) -> None:
    text = "\n".join(lines.lines)
    assert lines.lines and all(secret not in text for secret in secrets if secret)


def test_login_events(app, classes, redis_client, log_lines):
    alice = app.test_client()
    for _ in range(4):  # 3 failures, then throttled (LOGIN_MAX_ATTEMPTS=3 in the test config)
        login(alice, "alice", GUESS)
    assert alice.get("/api/classes/7b/students", auth=("bob", GUESS)).status_code == 401
    for key in redis_client.scan_iter("classroom:login-failures:*"):
        redis_client.delete(key)
    login(alice, "alice")
    stolen = app.test_client()
    cookie = alice.get_cookie("classroom_session").value
    stolen.set_cookie("classroom_session", cookie)
    page = alice.get("/auth/password").get_data(as_text=True)
    form = {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "repeat_password": NEW_PASSWORD}
    alice.post("/auth/password", data={"csrf_token": csrf_from(page), **form})
    stolen.get("/")  # the copied cookie, now revoked
    _post(alice, "/auth/logout")

    events = log_lines.events()
    assert len(events) == len(log_lines.lines)  # each line is one JSON object
    failed = [(e["username"], e["via"], e["client"]) for e in log_lines.named("login_failed")]
    assert failed == [("alice", "form", "127.0.0.1")] * 3 + [("bob", "basic", "127.0.0.1")]
    assert [e["username"] for e in log_lines.named("login_throttled")] == ["alice"]
    assert [e["username"] for e in log_lines.named("login_succeeded")] == ["alice"]
    assert [(e["username"], e["user"]) for e in log_lines.named("password_changed")] == [("alice", "alice")]
    assert [e["username"] for e in log_lines.named("session_rejected")] == ["alice"]
    assert [e["username"] for e in log_lines.named("logout")] == ["alice"]
    assert all(e["ts"].endswith("+00:00") for e in events)
    assert_no_secret(log_lines, GUESS, PASSWORD, NEW_PASSWORD, cookie, alice.get_cookie("classroom_session").value)


def test_class_events(alice, classes, redis_client, log_lines):
    write(redis_client, result("7b", "s1"))
    assert _post(alice, "/classes", class_id="9c", name="Class 9c").status_code == 303
    _post(alice, "/classes/9c/roster", student_id="anna", display_name="Anna")
    _post(alice, "/classes/9c/roster/anna/rename", display_name="Anna B.")
    _post(alice, "/classes/9c/roster/anna/rotate")
    _post(alice, "/classes/9c/roster/anna/remove")
    _post(alice, "/classes/7b/students/s1/delete")
    assert [(e["class_id"], e["user"]) for e in log_lines.named("class_created")] == [("9c", "alice")]
    for name in ("student_enrolled", "student_renamed", "student_credential_rotated", "student_removed"):
        assert [(e["class_id"], e["student_id"], e["user"]) for e in log_lines.named(name)] == [("9c", "anna", "alice")]
    erased = log_lines.named("student_erased")
    assert [(e["class_id"], e["student_id"], e["user"]) for e in erased] == [("7b", "s1", "alice")]
    roster = alice.get("/classes/7b/roster").get_data(as_text=True)
    codes = re.findall(
        r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}", roster
    )
    assert_no_secret(log_lines, *codes)


def test_account_events(client, classes, redis_client, log_lines):
    accounts.create_teacher(redis_client, "root", PASSWORD, admin=True)
    login(client, "root")
    _post(client, "/admin/teachers", username="carol", password="carol's password")
    assert [(e["username"], e["user"]) for e in log_lines.named("teacher_created")] == [("carol", "root")]
    assert_no_secret(log_lines, PASSWORD, "carol's password")


def test_fields_named_like_secrets_are_dropped_and_lines_cannot_be_forged():
    line = security_log.record(
        "login_failed", username='eve\n{"event":"login_succeeded"}', password="x", api_token="y", note="z"
    )
    assert "password" not in line and "api_token" not in line and line["note"] == "z"
    assert line["client"] == "cli"  # outside a request
    assert "\n" not in json.dumps(line)
    assert len(security_log.record("x", username="a" * 10_000)["username"]) < 300


def test_command_line_events(redis_url, log_lines, monkeypatch):
    import secrets

    from classroom_dashboard import cli

    monkeypatch.setenv("SECRET_KEY", secrets.token_hex(32))  # enrol seals the credential with it

    base = ["--redis-url", redis_url]
    assert cli.main([*base, "create-teacher", "--username", "dora", "--password", PASSWORD]) == 0
    assert cli.main([*base, "create-teacher", "--username", "dora", "--password", NEW_PASSWORD, "--replace"]) == 0
    assert cli.main([*base, "create-class", "--teacher", "dora", "--class-id", "c1", "--name", "C1"]) == 0
    assert cli.main([*base, "enrol", "--class-id", "c1", "--student", "anna"]) == 0
    assert cli.main([*base, "rotate-credential", "--class-id", "c1", "--student", "anna"]) == 0
    names = [(e["event"], e["client"]) for e in log_lines.events()]
    expected = [
        "teacher_created",
        "password_changed",
        "class_created",
        "student_enrolled",
        "student_credential_rotated",
    ]
    assert names == [(name, "cli") for name in expected]
    assert_no_secret(log_lines, PASSWORD, NEW_PASSWORD)
