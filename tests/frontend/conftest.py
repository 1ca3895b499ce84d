"""Fixtures for the dashboard: an app on the test Redis, two teachers with a class each."""

from __future__ import annotations

import pytest
from classroom_dashboard import accounts, create_app

from tests.support.frontend import PASSWORD, SECRET_KEY, login
from tests.support.procs import BIN, Proc, free_port, http_ok, wait_until


@pytest.fixture
def app(redis_url, crop_store_server):
    return create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "REDIS_URL": redis_url,
            "CROP_STORE_URL": crop_store_server,
            "SSE_BLOCK_MS": 200,
            "SSE_MAX_SECONDS": 1.5,
            "LOGIN_MAX_ATTEMPTS": 3,
            "LOGIN_LOCKOUT_SECONDS": 60,
        }
    )


@pytest.fixture
def classes(redis_client):
    """alice owns class 7b, bob owns class 8a (no students enrolled yet); returns {class id: owner}."""
    accounts.create_teacher(redis_client, "alice", PASSWORD)
    accounts.create_teacher(redis_client, "bob", PASSWORD)
    accounts.create_class(redis_client, "alice", "7b", "Class 7b")
    accounts.create_class(redis_client, "bob", "8a", "Class 8a")
    return {"7b": "alice", "8a": "bob"}


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def alice(client, classes):
    """A test client logged in as alice."""
    response = login(client, "alice")
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


@pytest.fixture
def server(redis_url, tmp_path):
    """The dashboard under gunicorn in production mode on a free loopback port (the browser tests')."""
    port = free_port()
    env = {
        "REDIS_URL": redis_url,
        "SECRET_KEY": SECRET_KEY,
        "DASHBOARD_ENV": "production",
        "SESSION_COOKIE_SECURE": "0",  # plain HTTP on loopback; production behind TLS keeps it on
        "SSE_BLOCK_MS": "1000",
    }
    args = [
        str(BIN / "gunicorn"),
        "-k",
        "gthread",
        "--threads",
        "8",
        "-w",
        "1",
        "--no-control-socket",  # gunicorn 27 would otherwise share ~/.gunicorn/gunicorn.ctl between runs
        "-b",
        f"127.0.0.1:{port}",
        "classroom_dashboard:create_app()",
    ]
    proc = Proc(args, tmp_path / "gunicorn.log", env=env)
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), timeout=30, what="dashboard to serve")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()
        print(proc.log_path.read_text(errors="replace")[-3000:])  # shown by pytest when the test fails
