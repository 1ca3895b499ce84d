"""A real browser against a real server: log in, open a class, start a lesson, watch a tile change live.

Debian's headless Chromium (/usr/bin/chromium; `apt-get install -y chromium`) driven by Playwright,
against gunicorn in a subprocess on a free loopback port. Set DASHBOARD_SCREENSHOT=docs/dashboard.png
to refresh the README's screenshot.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from classroom_dashboard import accounts, lessons

from tests.support.frontend import PASSWORD, browser_login, result, write
from tests.support.procs import CHROMIUM, CHROMIUM_ARGS, REPO

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium: apt-get install -y chromium"),
]


def seed(redis_client) -> None:
    accounts.create_teacher(redis_client, "alice", PASSWORD)
    accounts.create_class(redis_client, "alice", "7b", "Class 7b · Physics")
    now = time.time()
    rows = []
    for i in range(40):  # ten minutes of history, one sample every 15 s
        at = now - 600 + 15 * i
        rows += [
            result(student_id="anna", at=at, emotion="neutral", yaw=4 + i % 5, pitch=-3),
            result(student_id="ben", at=at, emotion="happy" if i % 4 else "surprise", yaw=12, pitch=2),
            result(student_id="chris", at=at, emotion="neutral", yaw=35 + i, pitch=10),
            result(student_id="dana", at=at, present=i < 30),
            result(student_id="emil", at=at, emotion="sad" if i > 25 else "neutral", yaw=-8, pitch=-5),
            result(student_id="fatima", at=at, emotion="neutral", yaw=2, pitch=0),
            result(student_id="gus", at=at, present=i % 9 != 0, emotion="neutral", yaw=20, pitch=5),
        ]
    write(redis_client, *rows)
    for hours in (26, 2):  # two past lessons for the class page's list
        lessons.start_lesson(redis_client, "7b", "alice", now=now - hours * 3600)
        lessons.stop_lesson(redis_client, "7b", now=now - hours * 3600 + 45 * 60)


def test_tile_updates_live_without_reload(server, redis_client, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    seed(redis_client)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 760})
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            browser_login(page, f"{server}/classes/7b", "alice")  # not logged in: redirected to the login form

            expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=10_000)
            tiles = page.locator("#tiles .tile")
            expect(tiles).to_have_count(7)
            # absent (dana) and distracted (chris) come first
            assert tiles.nth(0).get_attribute("data-student") == "dana"
            assert tiles.nth(0).get_attribute("data-state") == "absent"
            assert tiles.nth(1).get_attribute("data-student") == "chris"

            # start a lesson: the page comes back with the running-lesson indicator, still live
            expect(page.locator("#lesson-bar")).to_have_attribute("data-running", "0")
            page.click("#start-lesson")
            expect(page.locator("#lesson-bar")).to_have_attribute("data-running", "1")
            expect(page.locator("#lesson-status")).to_contain_text("Lesson running since")
            expect(page.locator("#past-lessons tbody tr")).to_have_count(2)
            expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=10_000)
            page.evaluate("window.__sameDocument = true")

            shot = Path(os.environ.get("DASHBOARD_SCREENSHOT") or tmp_path / "dashboard.png")
            page.screenshot(path=str(shot if shot.is_absolute() else REPO / shot), full_page=True)

            # dana comes back, smiling and facing the screen; anna's laptop sends a new student too
            write(redis_client, result(student_id="dana", emotion="happy", yaw=0, pitch=0))
            write(redis_client, result(student_id="hugo", emotion="surprise"))
            dana = page.locator("#tile-dana")
            expect(dana).to_have_attribute("data-state", "attentive", timeout=10_000)
            expect(dana.locator(".emotion")).to_have_text("happy")
            expect(dana.locator(".presence")).to_have_text("present")
            expect(page.locator("#tile-hugo")).to_be_visible()
            expect(tiles).to_have_count(8)
            assert tiles.nth(0).get_attribute("data-student") == "chris"  # dana no longer first
            assert page.evaluate("window.__sameDocument") is True  # no reload happened

            # the student page draws its charts; erasing asks first, then removes the student
            page.click("#tile-gus a.sid")
            page.wait_for_url(f"{server}/classes/7b/students/gus")
            expect(page.locator("svg.timeline polyline")).to_have_count(1)
            expect(page.locator("svg.timeline rect.band-absent").first).to_be_attached()
            expect(page.locator("svg.distribution rect.bar")).to_have_count(8)  # 7 emotions + uncertain
            page.screenshot(path=str(tmp_path / "student.png"), full_page=True)
            page.once("dialog", lambda dialog: dialog.accept())
            page.click("button.danger")
            page.wait_for_url(f"{server}/classes/7b")
            expect(page.locator("#tile-gus")).to_have_count(0)
            expect(page.locator(".flash")).to_contain_text("gus was deleted")

            # the class timeline: attention with presence, and the emotion mix
            page.click("#timeline-link")
            expect(page.locator("svg.class-attention g.bucket")).to_have_count(60)
            expect(page.locator("svg.emotion-mix rect.mix").first).to_be_visible()
            page.screenshot(path=str(tmp_path / "timeline.png"), full_page=True)
            assert errors == []
        finally:
            browser.close()
