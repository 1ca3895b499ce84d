"""Fixtures for the dashboard: an app on the test Redis, two teachers with a class each."""

from __future__ import annotations

import pytest
from classroom_dashboard import accounts, create_app

from tests.support.frontend import PASSWORD, login


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
