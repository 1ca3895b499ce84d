"""Shared fixtures: a private real Redis for the whole run, flushed before each test that uses it."""

from __future__ import annotations

import os

import pytest

from tests.support.procs import free_port, start_redis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A redis-server of our own on a free loopback port (never the machine's shared one)."""
    workdir = tmp_path_factory.mktemp("redis")
    port = free_port()
    proc = start_redis(port, workdir)
    yield f"redis://127.0.0.1:{port}/0"
    proc.stop()


@pytest.fixture(scope="session", autouse=True)
def crop_store_server(tmp_path_factory):
    """The crop store of the whole run: a second redis-server, persistence off, as in production.

    Exported as CROP_STORE_URL, so every API and worker process a test starts (and every Settings()
    made in the test process) keeps crops there and only there, never in `redis_server`.
    """
    workdir = tmp_path_factory.mktemp("crop-store")
    port = free_port()
    proc = start_redis(port, workdir)
    url = f"redis://127.0.0.1:{port}/0"
    saved = os.environ.get("CROP_STORE_URL")
    os.environ["CROP_STORE_URL"] = url
    yield url
    if saved is None:
        os.environ.pop("CROP_STORE_URL", None)
    else:
        os.environ["CROP_STORE_URL"] = saved
    proc.stop()


@pytest.fixture
def redis_url(redis_server, crop_store_server):
    """URL of the test Redis, emptied first (and the crop store) so tests never see each other's keys."""
    import redis

    for url in (redis_server, crop_store_server):
        client = redis.Redis.from_url(url)
        client.flushall()
        client.close()
    return redis_server


@pytest.fixture
def crop_store(redis_url, crop_store_server):
    """A client of the session's crop store (emptied with the main Redis by `redis_url`)."""
    import redis

    with redis.Redis.from_url(crop_store_server) as client:  # closed on the way out
        yield client


@pytest.fixture
def redis_client(redis_url):
    import redis

    with redis.Redis.from_url(redis_url) as client:
        yield client
