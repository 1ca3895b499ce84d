"""Helpers for the dashboard tests: result factories, CSRF-aware login."""

from __future__ import annotations

import re
import secrets
import time
import uuid

from classroom_contract import EMOTIONS, ObservationResult, store

PASSWORD = "correct horse battery"
#: The dashboard's SECRET_KEY in the browser tests: random per run, known to tests that seal credentials.
SECRET_KEY = secrets.token_hex(32)
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def result(
    class_id: str = "7b",
    student_id: str = "s1",
    *,
    at: float | None = None,
    emotion: str | None = "neutral",
    present: bool = True,
    yaw: float | None = 0.0,
    pitch: float | None = 0.0,
    processed_at: float | None = None,
) -> ObservationResult:
    """A worker-style result: a confident `emotion` (or an absence when not `present`)."""
    at = time.time() if at is None else at
    probabilities = None
    if present and emotion:
        probabilities = [0.94 if name == emotion else 0.01 for name in EMOTIONS]
    return ObservationResult(
        observation_id=str(uuid.uuid4()),
        class_id=class_id,
        student_id=student_id,
        captured_at=at,
        processed_at=at + 0.2 if processed_at is None else processed_at,
        face_count=1 if present else 0,
        emotion=emotion if present else None,
        probabilities=probabilities,
        head_yaw=yaw if present else None,
        head_pitch=pitch if present else None,
    )


def write(redis_client, *results: ObservationResult) -> None:
    store.write_results(redis_client, list(results), retention_seconds=3600)


def csrf_from(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def login(client, username: str, password: str = PASSWORD):
    page = client.get("/auth/login")
    token = csrf_from(page.get_data(as_text=True))
    return client.post("/auth/login", data={"username": username, "password": password, "csrf_token": token})


def browser_login(page, url: str, username: str, password: str = PASSWORD) -> None:
    """Open `url` in a Playwright `page` while logged out, sign in on the login form it redirects to,
    and wait until the dashboard has sent the browser back to `url`."""
    page.goto(url)
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(url)
