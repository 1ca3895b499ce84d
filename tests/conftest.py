"""Shared fixtures: a private real Redis for the whole run, flushed before each test that uses it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from procs import free_port, start_redis  # noqa: E402


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A redis-server of our own on a free loopback port (never the machine's shared one)."""
    workdir = tmp_path_factory.mktemp("redis")
    port = free_port()
    proc = start_redis(port, workdir)
    yield f"redis://127.0.0.1:{port}/0"
    proc.stop()


@pytest.fixture
def redis_url(redis_server):
    """URL of the test Redis, emptied first so tests never see each other's keys."""
    import redis

    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    return redis_server


@pytest.fixture
def redis_client(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()
