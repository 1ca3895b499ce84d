"""Login, logout, CSRF, throttling, security headers and who may open which class."""

from __future__ import annotations

from tests.support.frontend import PASSWORD, csrf_from, login


def test_pages_need_login(client, classes):
    response = client.get("/classes/7b")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]
    assert client.get("/api/classes/7b/students").status_code == 401
    assert client.get("/api/classes/7b/students").json == {"detail": "Login required"}


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
    assert config.from_env({"SECRET_KEY": "0123456789abcdef" * 4})["SESSION_COOKIE_SECURE"] is True


def test_api_errors_are_one_json_shape(app, alice):
    """Issue #18: every JSON error is {"detail": ...}, as the inference API's (README "Error answers");
    503 (Redis down) is in test_health_and_outage.py."""
    token = csrf_from(alice.get("/").get_data(as_text=True))
    answers = [
        (401, "Login required", app.test_client().get("/api/classes/7b/students")),
        (403, "Not your class", alice.get("/api/classes/8a/students")),
        (404, "Not found", alice.get("/api/classes/nope/students")),
        (404, "Not found", alice.get("/api/no-such-thing")),
        (400, "Bad request", alice.put("/api/classes/7b/students")),  # no CSRF token
        (405, "Method not allowed", alice.put("/api/classes/7b/students", data={"csrf_token": token})),
    ]
    for status, detail, response in answers:
        assert (response.status_code, response.json) == (status, {"detail": detail}), response.get_data(as_text=True)


def test_an_unexpected_error_answers_in_the_same_shapes(redis_url):
    """A bug in a view: JSON {"detail": ...} under /api/, the dashboard's error page elsewhere (it
    was Flask's bare HTML for both)."""
    from classroom_dashboard import create_app

    def broken():
        raise RuntimeError("a bug")

    # as in production (not TESTING, which re-raises instead of answering)
    app = create_app({"SECRET_KEY": "t", "REDIS_URL": redis_url, "PROPAGATE_EXCEPTIONS": False})
    app.add_url_rule("/api/broken", "api_broken", broken)
    app.add_url_rule("/broken", "page_broken", broken)
    api, page = app.test_client().get("/api/broken"), app.test_client().get("/broken")
    assert (api.status_code, api.json) == (500, {"detail": "Internal error"})
    assert page.status_code == 500 and "<title>" in page.get_data(as_text=True)
    assert "Internal error" in page.get_data(as_text=True)
    assert "a bug" not in api.get_data(as_text=True) + page.get_data(as_text=True)


def test_throttle_uses_the_client_address_behind_a_trusted_proxy(redis_url, classes):
    from classroom_dashboard import create_app

    app = create_app({"SECRET_KEY": "t", "REDIS_URL": redis_url, "TRUSTED_PROXY_HOPS": 1, "LOGIN_MAX_ATTEMPTS": 1})
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


def _login_from(client, address: str, username: str, password: str, **headers):
    """A login POST as the client at `address` (the socket's peer address)."""
    environ = {"REMOTE_ADDR": address}
    page = client.get("/auth/login", environ_base=environ, headers=headers)
    data = {"username": username, "password": password, "csrf_token": csrf_from(page.get_data(as_text=True))}
    return client.post("/auth/login", data=data, environ_base=environ, headers=headers)


def test_failures_for_a_username_from_one_client_do_not_lock_its_teacher_out_elsewhere(app, classes):
    attacker, teacher = app.test_client(), app.test_client()
    for _ in range(10):  # far past LOGIN_MAX_ATTEMPTS (3 in the test config)
        _login_from(attacker, "203.0.113.66", "alice", "guess")
    # the attacker's own tries are refused, even with the right password ...
    refused = _login_from(attacker, "203.0.113.66", "alice", PASSWORD)
    assert refused.status_code == 401 and "Too many failed attempts" in refused.get_data(as_text=True)
    # ... the teacher, from her own address, logs in as usual
    assert _login_from(teacher, "198.51.100.7", "alice", PASSWORD).status_code == 302


def test_one_client_guessing_many_usernames_is_locked_out(app, classes):
    attacker = app.test_client()
    for i in range(12):  # 4 x LOGIN_MAX_ATTEMPTS failures, each username only once
        assert _login_from(attacker, "203.0.113.66", f"user{i}", "guess").status_code == 401
    assert "Too many failed attempts" in _login_from(attacker, "203.0.113.66", "bob", PASSWORD).get_data(as_text=True)
    assert _login_from(app.test_client(), "198.51.100.7", "bob", PASSWORD).status_code == 302


def test_successful_logins_do_not_use_up_the_address_budget(app, classes):
    # A school's teachers behind one NAT address all log in in the morning: none is refused.
    for _ in range(15):  # more than the address's budget of 12 failures
        assert _login_from(app.test_client(), "192.0.2.1", "alice", PASSWORD).status_code == 302


def test_forwarded_for_from_an_untrusted_client_is_ignored(app, classes):
    # TRUSTED_PROXY_HOPS=0 (the default): X-Forwarded-For is the client's own invention, so an
    # attacker cannot escape the throttle by claiming a new address on each try
    attacker = app.test_client()
    for i in range(4):
        _login_from(attacker, "203.0.113.66", "alice", "guess", **{"X-Forwarded-For": f"198.51.100.{i}"})
    answer = _login_from(attacker, "203.0.113.66", "alice", PASSWORD, **{"X-Forwarded-For": "198.51.100.99"})
    assert "Too many failed attempts" in answer.get_data(as_text=True)
    # nor frame someone else: the address it named is not locked
    assert _login_from(app.test_client(), "198.51.100.0", "alice", PASSWORD).status_code == 302


def test_an_ipv6_client_counts_as_its_slash_64(app, classes):
    # one host usually owns a whole /64: new addresses in it are not new clients
    attacker = app.test_client()
    for i in range(4):
        _login_from(attacker, f"2001:db8:1:2::{i + 1:x}", "alice", "guess")
    answer = _login_from(attacker, "2001:db8:1:2::ffff", "alice", PASSWORD)
    assert "Too many failed attempts" in answer.get_data(as_text=True)
    assert _login_from(app.test_client(), "2001:db8:1:3::1", "alice", PASSWORD).status_code == 302


def test_trusted_proxy_hops_takes_the_address_the_proxy_saw(redis_url, classes):
    from classroom_dashboard import create_app

    config = {"SECRET_KEY": "t", "REDIS_URL": redis_url, "TRUSTED_PROXY_HOPS": 1, "LOGIN_MAX_ATTEMPTS": 2}
    app = create_app(config)
    proxy = "10.0.0.2"  # every request arrives from the proxy; X-Forwarded-For names the client
    for _ in range(5):
        _login_from(app.test_client(), proxy, "alice", "guess", **{"X-Forwarded-For": "203.0.113.66"})
    # a client that forges a header in front of the proxy's own entry gains nothing: the last hop counts
    forged = {"X-Forwarded-For": "198.51.100.7, 203.0.113.66"}
    assert "Too many" in _login_from(app.test_client(), proxy, "alice", PASSWORD, **forged).get_data(as_text=True)
    ok = _login_from(app.test_client(), proxy, "alice", PASSWORD, **{"X-Forwarded-For": "198.51.100.7"})
    assert ok.status_code == 302


def test_the_old_setting_name_is_refused_with_its_new_name():
    import pytest
    from classroom_dashboard import config

    with pytest.raises(config.ConfigError, match="TRUSTED_PROXY_HOPS"):
        config.from_env({"DASHBOARD_ENV": "development", "TRUSTED_PROXIES": "1"})
    assert config.from_env({"DASHBOARD_ENV": "development", "TRUSTED_PROXY_HOPS": "1"})["TRUSTED_PROXY_HOPS"] == 1
    assert config.from_env({"DASHBOARD_ENV": "development"})["TRUSTED_PROXY_HOPS"] == 0
