"""Login, logout, CSRF, throttling, security headers and who may open which class."""

from __future__ import annotations

from tests.frontend.helpers import PASSWORD, csrf_from, login


def test_pages_need_login(client, classes):
    response = client.get("/classes/7b")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]
    assert client.get("/api/classes/7b/students").status_code == 401
    assert client.get("/api/classes/7b/students").json["error"] == "Login required"


def test_login_then_logout(client, classes):
    response = login(client, "alice")
    assert response.status_code == 302
    index = client.get("/")
    assert index.status_code == 200
    assert "Class 7b" in index.get_data(as_text=True)
    assert "Class 8a" not in index.get_data(as_text=True)  # bob's class is not listed

    token = csrf_from(index.get_data(as_text=True))
    assert client.post("/auth/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302  # back to the login page


def test_wrong_password_is_refused(client, classes):
    response = login(client, "alice", "not the password")
    assert response.status_code == 401
    assert "Wrong username or password" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_session_cookie_is_httponly_and_samesite(client, classes):
    login(client, "alice")
    cookie = client.get_cookie("classroom_session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"


def test_post_without_csrf_token_is_rejected(client, classes):
    client.get("/auth/login")  # a session with a token exists, but the form does not send it
    response = client.post("/auth/login", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302  # not logged in


def test_post_with_forged_csrf_token_is_rejected(alice, redis_client):
    response = alice.post("/classes/7b/students/s1/delete", data={"csrf_token": "forged"})
    assert response.status_code == 400


def test_login_is_throttled_even_with_the_right_password(client, classes):
    for _ in range(3):  # LOGIN_MAX_ATTEMPTS in the test config
        assert login(client, "alice", "guess").status_code == 401
    response = login(client, "alice", PASSWORD)
    assert response.status_code == 401
    assert "Too many failed attempts" in response.get_data(as_text=True)
    # another teacher from elsewhere is not locked out by alice's counter
    assert login(client, "bob", PASSWORD).status_code == 302


def test_throttle_expires(client, classes, redis_client):
    for _ in range(3):
        login(client, "alice", "guess")
    for key in redis_client.scan_iter("classroom:login-failures:*"):
        redis_client.delete(key)  # what the TTL does after LOGIN_LOCKOUT_SECONDS
    assert login(client, "alice", PASSWORD).status_code == 302


def test_teacher_cannot_open_another_teachers_class(alice):
    assert alice.get("/classes/8a").status_code == 403
    assert alice.get("/api/classes/8a/students").status_code == 403
    assert alice.get("/api/classes/8a/events").status_code == 403
    assert alice.get("/classes/8a/export.csv").status_code == 403
    assert alice.get("/classes/7b").status_code == 200
    assert alice.get("/classes/nope").status_code == 404


def test_admin_sees_every_class(client, classes, redis_client):
    from classroom_dashboard import accounts

    accounts.create_teacher(redis_client, "root", PASSWORD, admin=True)
    login(client, "root")
    assert client.get("/classes/7b").status_code == 200
    assert client.get("/classes/8a").status_code == 200


def test_basic_auth_for_the_json_api(client, classes):
    ok = client.get("/api/classes/7b/students", auth=("alice", PASSWORD))
    assert ok.status_code == 200 and ok.json["class_id"] == "7b"
    assert client.get("/api/classes/7b/students", auth=("alice", "wrong")).status_code == 401
    assert client.get("/api/classes/8a/students", auth=("alice", PASSWORD)).status_code == 403


def test_open_redirect_after_login_is_ignored(client, classes):
    page = client.get("/auth/login")
    token = csrf_from(page.get_data(as_text=True))
    response = client.post(
        "/auth/login",
        data={"username": "alice", "password": PASSWORD, "csrf_token": token, "next": "//evil.example/"},
    )
    assert response.headers["Location"] == "/"


def test_security_headers(alice):
    response = alice.get("/classes/7b")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_secret_key_is_required_outside_development():
    import pytest
    from classroom_dashboard import config

    with pytest.raises(config.ConfigError, match="SECRET_KEY"):
        config.from_env({"DASHBOARD_ENV": "production"})
    assert config.from_env({"DASHBOARD_ENV": "development"})["SECRET_KEY"]
    assert config.from_env({"SECRET_KEY": "k"})["SESSION_COOKIE_SECURE"] is True


def test_api_errors_are_json(alice):
    response = alice.get("/api/classes/8a/students")
    assert response.status_code == 403 and response.json == {"error": "Not your class", "status": 403}


def test_throttle_uses_the_client_address_behind_a_trusted_proxy(redis_url, classes):
    from classroom_dashboard import create_app

    app = create_app({"SECRET_KEY": "t", "REDIS_URL": redis_url, "TRUSTED_PROXIES": 1, "LOGIN_MAX_ATTEMPTS": 1})
    client = app.test_client()
    page = client.get("/auth/login", headers={"X-Forwarded-For": "10.0.0.7"})
    token = csrf_from(page.get_data(as_text=True))
    for user in ("x1", "x2", "x3", "x4"):  # 4 failures = the per-address limit (4 x 1)
        data = {"username": user, "password": "x", "csrf_token": token}
        client.post("/auth/login", data=data, headers={"X-Forwarded-For": "10.0.0.7"})
    data = {"username": "alice", "password": PASSWORD, "csrf_token": token}
    # that address is locked out; another client behind the same proxy is not
    assert client.post("/auth/login", data=data, headers={"X-Forwarded-For": "10.0.0.7"}).status_code == 401
    assert client.post("/auth/login", data=data, headers={"X-Forwarded-For": "10.0.0.8"}).status_code == 302
