"""Dashboard access matrix and browser-facing protections.

Teacher bob, logged in, tries every route of alice's class (pages, JSON, SSE, CSV, delete, the
roster and its join cards, enrol/rename/remove/new link, lessons): each is 403 and changes nothing.
Logged out, pages redirect to the login and the JSON/SSE API answers 401. Every response carries the
security headers; the session cookie is HttpOnly and SameSite (and Secure outside development).
"""

from __future__ import annotations

import pytest
from classroom_contract import store
from classroom_dashboard import accounts, create_app, credentials, keys, lessons

from tests.support.frontend import PASSWORD, csrf_from, login, result, write

CLASS = "7b"
READS = [
    f"/classes/{CLASS}",
    f"/classes/{CLASS}/students/s1",
    f"/classes/{CLASS}/students/s1?minutes=5",
    f"/classes/{CLASS}/timeline",
    f"/classes/{CLASS}/timeline?lesson=LESSON",
    f"/classes/{CLASS}/export.csv",
    f"/classes/{CLASS}/export.csv?lesson=LESSON",
    f"/api/classes/{CLASS}/students",
    f"/api/classes/{CLASS}/events",
    f"/classes/{CLASS}/roster",
    f"/classes/{CLASS}/roster/print",
]
WRITES = [
    f"/classes/{CLASS}/students/s1/delete",
    f"/classes/{CLASS}/roster",
    f"/classes/{CLASS}/roster/s1/rename",
    f"/classes/{CLASS}/roster/s1/rotate",
    f"/classes/{CLASS}/roster/s1/remove",
    f"/classes/{CLASS}/lessons/start",
    f"/classes/{CLASS}/lessons/stop",
]


@pytest.fixture
def app(redis_url):
    return create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "security-test",
            "REDIS_URL": redis_url,
            "SSE_BLOCK_MS": 100,
            "SSE_MAX_SECONDS": 0.5,
        }
    )


@pytest.fixture
def seeded(redis_client):
    """alice owns 7b (with an enrolled student s1, a result and a finished lesson), bob owns 8a; returns the
    lesson id."""
    accounts.create_teacher(redis_client, "alice", PASSWORD)
    accounts.create_teacher(redis_client, "bob", PASSWORD)
    accounts.create_class(redis_client, "alice", CLASS, "Class 7b")
    accounts.create_class(redis_client, "bob", "8a", "Class 8a")
    credentials.enrol(redis_client, "security-test", CLASS, "s1", "Student One")
    write(redis_client, result(CLASS, "s1"))
    lesson = lessons.start_lesson(redis_client, CLASS, "alice")
    lessons.stop_lesson(redis_client, CLASS)
    return lesson["lesson_id"]


def _state(redis_client) -> dict:
    return {
        "class": store.class_info(redis_client, CLASS),
        "enrolled": store.enrolled_students(redis_client, CLASS),  # names, credential hashes, sealed copies
        "students": store.class_students(redis_client, CLASS),
        "lesson": redis_client.get(keys.class_current_lesson(CLASS)),
        "lessons": redis_client.zcard(keys.class_lessons(CLASS)),
    }


def test_another_teacher_gets_403_everywhere_and_changes_nothing(app, seeded, redis_client):
    bob = app.test_client()
    assert login(bob, "bob").status_code == 302
    csrf = csrf_from(bob.get("/").get_data(as_text=True))
    before = _state(redis_client)
    for path in READS:
        answer = bob.get(path.replace("LESSON", seeded))
        assert answer.status_code == 403, (path, answer.status_code)
        if answer.is_json:  # the JSON and SSE API: exactly the generic error
            assert answer.json == {"detail": "Not your class"}, path
        else:
            # The generic 403 page, with nothing of the class in it. The session's CSRF token (random,
            # so it contains "7b" about once in 100 sessions) is taken out before looking.
            page = answer.get_data(as_text=True).replace(csrf, "")
            assert "Not your class" in page and "7b" not in page and "Class 7b" not in page, path
    for path in WRITES:
        answer = bob.post(path, data={"csrf_token": csrf})
        assert answer.status_code == 403, (path, answer.status_code)
    assert _state(redis_client) == before


def test_another_teacher_with_basic_auth_gets_403_on_the_api(app, seeded):
    client = app.test_client()
    for path in (f"/api/classes/{CLASS}/students", f"/api/classes/{CLASS}/events"):
        answer = client.get(path, auth=("bob", PASSWORD))
        assert answer.status_code == 403, path
    assert client.get(f"/api/classes/{CLASS}/students", auth=("alice", PASSWORD)).status_code == 200


def test_logged_out_pages_redirect_and_the_api_is_401(app, seeded, redis_client):
    anonymous = app.test_client()
    before = _state(redis_client)
    for path in READS + ["/", "/admin"]:
        answer = anonymous.get(path.replace("LESSON", seeded))
        if path.startswith("/api/"):
            assert answer.status_code == 401, path
        else:
            assert answer.status_code == 302 and "/auth/login" in answer.headers["Location"], path
    csrf = csrf_from(anonymous.get("/auth/login").get_data(as_text=True))  # a valid CSRF token, no login
    for path in WRITES + ["/classes", "/admin/teachers"]:
        answer = anonymous.post(path, data={"csrf_token": csrf, "class_id": "9z", "username": "eve"})
        assert answer.status_code == 302 and "/auth/login" in answer.headers["Location"], path
    assert _state(redis_client) == before
    assert store.class_info(redis_client, "9z") is None and accounts.get_teacher(redis_client, "eve") is None


def test_the_owner_still_gets_every_route(app, seeded):
    alice = app.test_client()
    login(alice, "alice")
    for path in READS:
        assert alice.get(path.replace("LESSON", seeded)).status_code == 200, path


def test_security_headers_on_every_kind_of_response(app, seeded):
    alice = app.test_client()
    login(alice, "alice")
    for path in [
        "/auth/login",
        "/",
        f"/classes/{CLASS}",
        f"/api/classes/{CLASS}/students",
        "/classes/nope",
        "/healthz",
    ]:
        headers = alice.get(path).headers
        csp = headers["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
        assert directives["frame-ancestors"] == "'none'" and directives["script-src"] == "'self'", path
        assert directives["object-src"] == "'none'", path
        assert headers["X-Frame-Options"] == "DENY", path
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Referrer-Policy"] in ("same-origin", "no-referrer", "strict-origin-when-cross-origin"), path
        assert headers["Cache-Control"] == "no-store", path


def test_pages_have_no_inline_script_or_style(app, seeded):
    # the CSP forbids them: an inline <script> would be dead in the browser, and the policy would be moot
    alice = app.test_client()
    login(alice, "alice")
    for path in [
        "/auth/login",
        "/",
        f"/classes/{CLASS}",
        f"/classes/{CLASS}/students/s1",
        f"/classes/{CLASS}/timeline",
    ]:
        html = alice.get(path).get_data(as_text=True)
        assert "<script>" not in html and " onclick=" not in html and " style=" not in html, path


@pytest.mark.parametrize(
    "env", [{"DASHBOARD_ENV": "production", "SECRET_KEY": "0123456789abcdef" * 4}, {"DASHBOARD_ENV": "development"}]
)
def test_session_cookie_flags(redis_url, seeded, monkeypatch, env):
    for name, value in {"REDIS_URL": redis_url, **env}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    client = create_app().test_client()
    answer = login(client, "alice")
    cookie = next(c for c in answer.headers.getlist("Set-Cookie") if c.startswith("classroom_session="))
    flags = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")[1:]}
    assert "httponly" in flags and flags["samesite"].lower() == "samesite=lax"
    assert ("secure" in flags) == (env["DASHBOARD_ENV"] == "production")
