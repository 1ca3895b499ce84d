"""From the teacher's roster to the teacher's dashboard through the browser page: the teacher enrols
a student, the student opens the join link the roster shows, in Chromium with a fake camera, agrees,
and the dashboard (a real process) shows the student with an emotion the real worker inferred."""

from __future__ import annotations

import os
import re

import pytest
import requests
from classroom_contract import store
from classroom_dashboard.emotion import current_emotion

from tests.support.frontend import csrf_from
from tests.support.join import needs_browser
from tests.support.procs import REPO, wait_until
from tests.support.stack import TEACHER, running_stack

pytestmark = needs_browser
PASSWORD = "join-password-123"


@pytest.fixture
def school(redis_url, tmp_path, built_page):
    env = {**os.environ, "REDIS_URL": redis_url, "MODEL_DIR": str(REPO / "models" / "emotion")}
    env.update(DASHBOARD_ENV="development", PREDICTOR_BFLOAT16="off", JOIN_PAGE_DIR=str(built_page))
    with running_stack(tmp_path, env, "web", "Web", PASSWORD) as stack:
        yield stack.api, stack.dashboard


def test_roster_link_to_page_to_dashboard(school, camera_browser, redis_client):
    from playwright.sync_api import expect

    api, dashboard = school
    teacher = requests.Session()
    login = {"username": TEACHER, "password": PASSWORD}
    login["csrf_token"] = csrf_from(teacher.get(f"{dashboard}/auth/login", timeout=10).text)
    assert "/auth/login" not in teacher.post(f"{dashboard}/auth/login", data=login, timeout=10).url
    roster = teacher.get(f"{dashboard}/classes/web/roster", timeout=10).text
    form = {"csrf_token": csrf_from(roster), "student_id": "cleo", "display_name": "Cleo M."}
    assert teacher.post(f"{dashboard}/classes/web/roster", data=form, timeout=10).status_code == 200
    roster = teacher.get(f"{dashboard}/classes/web/roster", timeout=10).text
    join_link = re.search(r'<a class="join-link" href="([^"]+)"', roster).group(1)
    assert join_link.startswith(f"{api}/join#")

    page = camera_browser.new_page()
    page.goto(join_link)
    expect(page.locator("#student-name")).to_have_text("Cleo M.")
    page.locator("#agree").click()
    wait_until(lambda: int(page.locator("#sent").inner_text()) >= 4, timeout=90, what="observations delivered")
    page.locator("#toggle").click()
    expect(page.locator("#state")).to_have_text("PAUSED: nothing is being sent")
    sent = int(page.locator("#sent").inner_text())
    page.close()

    def series():
        return store.student_series(redis_client, "web", "cleo")

    wait_until(lambda: len(series()) >= sent, timeout=90, what="the worker to store every observation")
    assert any(r.emotion for r in series())
    latest = store.latest_results(redis_client, "web")["cleo"]
    students = teacher.get(f"{dashboard}/api/classes/web/students", timeout=10).json()["students"]
    cleo = next(s for s in students if s["student_id"] == "cleo")
    shown = current_emotion(latest, series(), window=60, min_confidence=0.5)  # the dashboard's defaults
    assert cleo["emotion"] == (shown.label if shown else None)  # the window mean, not the last crop's
    assert cleo["face_present"] is (latest.face_count > 0)
