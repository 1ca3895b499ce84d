"""Per-token rate limit (429 + Retry-After) and the crops-per-request limit, on a real API process."""

from __future__ import annotations

import secrets
import time

import pytest
import redis
from classroom_contract import store
from classroom_inference import ratelimit

from inference.support import Api, fer_faces, observation, post


@pytest.fixture
def limited_api(redis_url, tmp_path):
    api = Api(tmp_path, redis_url, rate_limit_per_minute=2, max_crops_per_request=2)
    yield api
    api.stop()


def _register(redis_url: str) -> str:
    client = redis.Redis.from_url(redis_url)
    token = secrets.token_urlsafe(32)
    store.register_class(client, f"c-{secrets.token_hex(3)}", "Limited", "teacher", token)
    client.close()
    return token


def test_rate_limit_per_token(limited_api, redis_url):
    if ratelimit.WINDOW_S - time.time() % ratelimit.WINDOW_S < 3:  # do not straddle a window edge
        time.sleep(ratelimit.WINDOW_S - time.time() % ratelimit.WINDOW_S + 0.1)
    noisy, quiet = _register(redis_url), _register(redis_url)
    url = limited_api.url + "/v1/observations"
    body = lambda: {"student_id": "s1", "observations": [observation(None)]}  # noqa: E731
    assert [post(url, body(), noisy).status for _ in range(2)] == [200, 200]
    refused = post(url, body(), noisy)
    assert refused.status == 429 and refused.body["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= ratelimit.WINDOW_S + 1
    assert post(url, body(), quiet).status == 200  # other classes are not affected
    assert post(url, body(), "unknown-token").status == 401  # unknown tokens never reach the counter


def test_too_many_crops_in_one_request(limited_api, redis_url):
    token = _register(redis_url)
    faces = fer_faces(3)
    url = limited_api.url + "/v1/observations"
    answer = post(url, {"student_id": "s1", "observations": [observation(f) for f in faces]}, token)
    assert answer.status == 422 and "at most 2" in answer.body["detail"]
    two_and_absent = [observation(f) for f in faces[:2]] + [observation(None)]
    ok = post(url, {"student_id": "s1", "observations": two_and_absent}, token)
    assert ok.status == 200 and ok.body == {"accepted": 3, "duplicates": 0}


def test_redis_out_of_memory_is_503(tmp_path):
    from procs import free_port, start_redis

    port = free_port()
    server = start_redis(port, tmp_path, extra=["--maxmemory", "3mb", "--maxmemory-policy", "noeviction"])
    url = f"redis://127.0.0.1:{port}/0"
    api = Api(tmp_path, url, retry_after_s=9)
    try:
        token = _register(url)
        client = redis.Redis.from_url(url)
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            for i in range(100):
                client.set(f"ballast:{i}", b"x" * 100_000)
        client.close()
        answer = post(api.url + "/v1/observations", {"student_id": "s1", "observations": [observation(None)]}, token)
        assert answer.status == 503 and answer.headers["retry-after"] == "9", answer
    finally:
        api.stop()
        server.stop()
