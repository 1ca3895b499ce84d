"""Lessons (start, stop, lesson CSV), class creation from the UI, the admin page and the class timeline."""

from __future__ import annotations

import csv
import io
import time

import pytest
from classroom_contract import store
from classroom_dashboard import accounts, create_app, keys, lessons
from classroom_dashboard.timeline import BUCKETS, class_timeline

from tests.support.frontend import PASSWORD, csrf_from, login, result, write


def _csrf(client, path: str = "/") -> str:
    return csrf_from(client.get(path).get_data(as_text=True))


# --- lessons ---------------------------------------------------------------------------------


def test_start_and_stop_a_lesson(alice, redis_client):
    page = alice.get("/classes/7b").get_data(as_text=True)
    assert 'id="start-lesson"' in page and "No lesson running" in page
    assert alice.post("/classes/7b/lessons/start", data={"csrf_token": csrf_from(page)}).status_code == 302

    running = lessons.current_lesson(redis_client, "7b")
    assert running is not None and running["ended_at"] is None and running["started_by"] == "alice"
    assert abs(running["started_at"] - time.time()) < 5
    page = alice.get("/classes/7b").get_data(as_text=True)
    assert 'data-running="1"' in page and "Lesson running since" in page and 'id="stop-lesson"' in page

    alice.post("/classes/7b/lessons/start", data={"csrf_token": csrf_from(page)})  # second start: refused
    assert lessons.current_lesson(redis_client, "7b")["lesson_id"] == running["lesson_id"]
    assert "already running" in alice.get("/classes/7b").get_data(as_text=True)

    assert alice.post("/classes/7b/lessons/stop", data={"csrf_token": csrf_from(page)}).status_code == 302
    assert lessons.current_lesson(redis_client, "7b") is None
    assert redis_client.exists(keys.class_current_lesson("7b")) == 0
    done = lessons.get_lesson(redis_client, "7b", running["lesson_id"])
    assert done["ended_at"] is not None and done["ended_at"] >= done["started_at"]
    page = alice.get("/classes/7b").get_data(as_text=True)
    assert 'data-running="0"' in page and f'data-lesson="{running["lesson_id"]}"' in page


def test_past_lessons_lists_the_last_ten(alice, redis_client):
    now = time.time()
    for i in range(12):
        lessons.start_lesson(redis_client, "7b", "alice", now=now - 3600 * (12 - i))
        lessons.stop_lesson(redis_client, "7b", now=now - 3600 * (12 - i) + 2700)
    listed = lessons.recent_lessons(redis_client, "7b", 10)
    assert len(listed) == 10 and listed[0]["started_at"] == pytest.approx(now - 3600)
    page = alice.get("/classes/7b").get_data(as_text=True)
    assert page.count("data-lesson=") == 10


def test_lesson_csv_has_only_the_lessons_rows(alice, redis_client):
    now = time.time()
    lesson = lessons.start_lesson(redis_client, "7b", "alice", now=now - 100)
    lessons.stop_lesson(redis_client, "7b", now=now - 40)
    write(
        redis_client,
        result(student_id="s1", at=now - 200),  # before
        result(student_id="s1", at=now - 90, emotion="happy"),
        result(student_id="s2", at=now - 50, present=False),
        result(student_id="s2", at=now - 10),  # after
    )
    response = alice.get(f"/classes/7b/export.csv?lesson={lesson['lesson_id']}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert f"lesson-{lesson['lesson_id']}" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["student_id"], r["face_count"]) for r in rows] == [("s1", "1"), ("s2", "0")]
    assert all(now - 100 <= float(r["captured_at"]) <= now - 40 for r in rows)
    assert len(list(csv.DictReader(io.StringIO(alice.get("/classes/7b/export.csv").get_data(as_text=True))))) == 4
    assert alice.get("/classes/7b/export.csv?lesson=no-such-lesson").status_code == 404


def test_other_teacher_cannot_start_or_stop_alices_lesson(client, classes, redis_client):
    login(client, "bob")
    token = _csrf(client)
    assert client.post("/classes/7b/lessons/start", data={"csrf_token": token}).status_code == 403
    assert lessons.current_lesson(redis_client, "7b") is None
    lesson = lessons.start_lesson(redis_client, "7b", "alice")
    assert client.post("/classes/7b/lessons/stop", data={"csrf_token": token}).status_code == 403
    assert lessons.current_lesson(redis_client, "7b") == lesson
    assert client.get(f"/classes/7b/export.csv?lesson={lesson['lesson_id']}").status_code == 403


# --- classes ---------------------------------------------------------------------------------


def test_create_class_opens_its_roster(alice, redis_client):
    response = alice.post("/classes", data={"csrf_token": _csrf(alice), "name": "Class 9c · Biology", "class_id": "9c"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/classes/9c/roster")
    assert store.class_info(redis_client, "9c")["owner"] == "alice"
    assert store.enrolled_students(redis_client, "9c") == []
    assert "Class 9c · Biology" in alice.get("/").get_data(as_text=True)
    assert 'id="roster-link"' in alice.get("/classes/9c").get_data(as_text=True)

    again = alice.post("/classes", data={"csrf_token": _csrf(alice), "name": "x", "class_id": "9c"})
    assert again.status_code == 302 and "already exists" in alice.get("/").get_data(as_text=True)
    assert store.class_info(redis_client, "9c")["name"] == "Class 9c · Biology"
    bad = alice.post("/classes", data={"csrf_token": _csrf(alice), "name": "x", "class_id": "../x"})
    assert bad.status_code == 302 and store.class_info(redis_client, "../x") is None


@pytest.mark.parametrize(
    "path",
    [
        "/classes",
        "/classes/7b/roster",
        "/classes/7b/lessons/start",
        "/classes/7b/lessons/stop",
        "/admin/teachers",
    ],
)
def test_new_posts_need_the_csrf_token(client, classes, redis_client, path):
    accounts.create_teacher(redis_client, "root", PASSWORD, admin=True)
    login(client, "root")
    lessons_before = redis_client.zcard(keys.class_lessons("7b"))
    form = {"name": "x", "class_id": "zz", "username": "eve", "password": PASSWORD, "student_id": "eve"}
    assert client.post(path, data=form).status_code == 400
    assert client.post(path, data={**form, "csrf_token": "forged"}).status_code == 400
    assert store.enrolled_students(redis_client, "7b") == []
    assert store.class_info(redis_client, "zz") is None
    assert redis_client.zcard(keys.class_lessons("7b")) == lessons_before
    assert accounts.get_teacher(redis_client, "eve") is None


# --- admin -----------------------------------------------------------------------------------


def test_non_admin_gets_403_on_admin_pages(alice):
    assert alice.get("/admin").status_code == 403
    assert "Administrators only" in alice.get("/admin").get_data(as_text=True)
    response = alice.post("/admin/teachers", data={"csrf_token": _csrf(alice), "username": "eve", "password": PASSWORD})
    assert response.status_code == 403
    assert 'href="/admin"' not in alice.get("/").get_data(as_text=True)


def test_admin_creates_a_teacher_who_can_log_in(app, client, classes, redis_client):
    accounts.create_teacher(redis_client, "root", PASSWORD, admin=True)
    login(client, "root")
    page = client.get("/admin")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert all(f'data-teacher="{name}"' in html for name in ("alice", "bob", "root"))
    response = client.post(
        "/admin/teachers", data={"csrf_token": csrf_from(html), "username": "Carol", "password": "carol's password"}
    )
    assert response.status_code == 302
    assert 'data-teacher="carol"' in client.get("/admin").get_data(as_text=True)
    assert accounts.get_teacher(redis_client, "carol") == {"username": "carol", "admin": False}

    short = client.post("/admin/teachers", data={"csrf_token": csrf_from(html), "username": "dave", "password": "x"})
    assert short.status_code == 302 and accounts.get_teacher(redis_client, "dave") is None

    carol = app.test_client()
    assert login(carol, "carol", "carol's password").status_code == 302
    assert carol.get("/").status_code == 200 and carol.get("/admin").status_code == 403


# --- class timeline --------------------------------------------------------------------------


def test_timeline_buckets_mean_presence_and_mix():
    start = 1000.0
    series = {
        "a": [result(student_id="a", at=start + t, emotion="happy", yaw=0) for t in (5, 15, 25, 35)],
        "b": [
            result(student_id="b", at=start + 5, emotion="sad", yaw=60),
            result(student_id="b", at=start + 25, present=False),
        ],
    }
    rows = class_timeline(series, start, start + 40, 4, window=10, offline_after=100)
    assert [r["present"] for r in rows] == [2, 2, 1, 1]
    assert [r["absent"] for r in rows] == [0, 0, 1, 1]
    assert [r["scored"] for r in rows] == [2, 1, 1, 1]  # b's face left the 10 s window after bucket 0
    assert rows[1]["score"] == pytest.approx(rows[2]["score"])
    assert rows[0]["score"] < rows[1]["score"]  # b looked away in bucket 0
    assert rows[0]["emotions"]["happy"] == pytest.approx(0.5) and rows[0]["emotions"]["sad"] == pytest.approx(0.5)
    assert rows[2]["emotions"] == {e: (1.0 if e == "happy" else 0.0) for e in rows[2]["emotions"]}
    assert class_timeline(series, start, start + 40, 4, use_emotions=False)[0]["emotions"] is None
    assert class_timeline({}, start, start + 40, 4)[0]["score"] is None


def test_class_timeline_page_has_both_charts(alice, redis_client):
    now = time.time()
    write(
        redis_client,
        *(result(student_id="s1", at=now - 1700 + 30 * i, emotion="happy") for i in range(56)),
        *(result(student_id="s2", at=now - 1700 + 30 * i, emotion="sad") for i in range(56)),
        result(student_id="s3", at=now - 20, present=False),
    )
    page = alice.get("/classes/7b").get_data(as_text=True)
    assert 'href="/classes/7b/timeline"' in page
    response = alice.get("/classes/7b/timeline?minutes=30")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<svg class="chart class-attention"' in html and f'data-buckets="{BUCKETS}"' in html
    assert html.count('<g class="bucket">') == BUCKETS and html.count('<g class="mix-bucket">') == BUCKETS
    assert "<polyline" in html and 'class="absent"' in html and 'class="present"' in html
    assert 'class="mix emo-happy"' in html and 'class="mix emo-sad"' in html
    assert "class attention" in html and "share of students" in html  # legend and axis titles
    assert "2 present, 1 absent" in html  # last bucket

    lesson = lessons.start_lesson(redis_client, "7b", "alice", now=now - 600)
    lessons.stop_lesson(redis_client, "7b", now=now - 300)
    html = alice.get(f"/classes/7b/timeline?lesson={lesson['lesson_id']}").get_data(as_text=True)
    assert html.count('<g class="bucket">') == BUCKETS and "Lesson CSV" in html
    assert alice.get("/classes/7b/timeline?lesson=nope").status_code == 404


def test_timeline_other_teacher_403(client, classes):
    login(client, "bob")
    assert client.get("/classes/7b/timeline").status_code == 403


def test_attention_only_timeline_has_no_emotion_chart(redis_url, classes, redis_client):
    app = create_app({"TESTING": True, "SECRET_KEY": "t", "REDIS_URL": redis_url, "ATTENTION_ONLY": True})
    client = app.test_client()
    login(client, "alice")
    now = time.time()
    write(redis_client, *(result(student_id="s1", at=now - 600 + 20 * i, emotion="disgust") for i in range(30)))
    html = client.get("/classes/7b/timeline?minutes=10").get_data(as_text=True)
    assert html.count('<g class="bucket">') == BUCKETS
    assert "emotion-mix" not in html and "mix-bucket" not in html
    lowered = html.lower().replace("no emotions", "")
    assert "emotion" not in lowered and "disgust" not in lowered
