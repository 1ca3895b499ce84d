"""Liveness, readiness, and what teachers see while Redis is down.

A redis-server of the test's own (not the shared test Redis) is stopped in the middle: /healthz
stays 200 (restarting the dashboard would not help), /readyz says 503, pages answer with a 503
page (JSON for the API and the live stream) instead of Flask's bare 500, and all is well again
once Redis is back.
"""

from __future__ import annotations

import pytest
import redis
from classroom_dashboard import accounts, create_app

from tests.support.frontend import PASSWORD, csrf_from, login
from tests.support.procs import free_port, start_redis


@pytest.fixture
def own_redis(tmp_path):
    """(port, start): a private redis-server the test may stop and start again."""
    port = free_port()
    procs = [start_redis(port, tmp_path)]
    yield port, procs, lambda: procs.append(start_redis(port, tmp_path))
    for proc in procs:
        proc.stop()


@pytest.fixture
def outage_app(own_redis):
    port, _, _ = own_redis
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    accounts.create_teacher(client, "alice", PASSWORD)
    accounts.create_class(client, "alice", "7b", "Class 7b")
    client.close()
    return create_app({"TESTING": True, "SECRET_KEY": "t", "REDIS_URL": url})


def test_liveness_ready_and_outage(outage_app, own_redis):
    _, procs, restart = own_redis
    teacher, stranger = outage_app.test_client(), outage_app.test_client()
    assert login(teacher, "alice").status_code == 302
    login_page = stranger.get("/auth/login").get_data(as_text=True)
    assert teacher.get("/readyz").status_code == 200 and teacher.get("/readyz").json["redis"] == "up"

    procs[0].stop()
    assert teacher.get("/healthz").status_code == 200
    ready = teacher.get("/readyz")
    assert ready.status_code == 503 and ready.json == {"status": "unavailable", "redis": "down"}

    page = teacher.get("/classes/7b")
    assert page.status_code == 503 and page.mimetype == "text/html"
    assert "Service unavailable" in page.get_data(as_text=True) and page.headers["Retry-After"]
    api = teacher.get("/api/classes/7b/students")
    assert api.status_code == 503 and api.json == {"detail": "Service unavailable"}
    stream = teacher.get("/api/classes/7b/events", headers={"Accept": "text/event-stream"})
    assert stream.status_code == 503 and stream.json == {"detail": "Service unavailable"}
    form = {"username": "alice", "password": PASSWORD, "csrf_token": csrf_from(login_page)}
    refused = stranger.post("/auth/login", data=form)
    assert refused.status_code == 503 and "Service unavailable" in refused.get_data(as_text=True)

    restart()  # an empty Redis (no persistence here): ready again; the old session is gone with it
    assert teacher.get("/readyz").status_code == 200
    assert teacher.get("/classes/7b").status_code == 302
