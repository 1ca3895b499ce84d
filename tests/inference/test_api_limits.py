"""Per-student rate limit (429 + Retry-After) and the crops-per-request limit, on a real API process."""

from __future__ import annotations

import time

import pytest
import redis
from classroom_inference import ratelimit

from tests.support.inference import Api, fer_faces, get, new_class, observation, post, service_env
from tests.support.procs import PYTHON, Proc, free_port, http_ok, wait_until


@pytest.fixture
def limited_api(redis_url, tmp_path):
    api = Api(tmp_path, redis_url, rate_limit_per_minute=2, max_crops_per_request=2, max_body_bytes=20_000)
    yield api
    api.stop()


def _register(redis_url: str) -> str:
    return new_class(redis_url, "c").credential("s1")


def test_rate_limit_per_student(limited_api, redis_url):
    """Issue 14, finding 7: the limit was per class token, so one student could exhaust the class's."""
    _wait_off_a_window_edge()
    klass = new_class(redis_url, "c")
    noisy, classmate = klass.credential("noisy"), klass.credential("quiet")
    url = limited_api.url + "/v1/observations"
    body = lambda: {"observations": [observation(None)]}  # noqa: E731
    assert [post(url, body(), noisy).status for _ in range(2)] == [200, 200]
    refused = post(url, body(), noisy)
    assert refused.status == 429 and refused.body["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= ratelimit.WINDOW_S + 1
    assert post(url, body(), classmate).status == 200  # a classmate of the same class is not affected
    assert post(url, body(), _register(redis_url)).status == 200  # nor another class
    assert post(url, body(), "0" * 16).status == 401  # unknown credentials never reach the counter


def test_too_many_crops_in_one_request(limited_api, redis_url):
    token = _register(redis_url)
    faces = fer_faces(3)
    url = limited_api.url + "/v1/observations"
    answer = post(url, {"observations": [observation(f) for f in faces]}, token)
    assert answer.status == 422 and "at most 2" in answer.body["detail"]
    two_and_absent = [observation(f) for f in faces[:2]] + [observation(None)]
    ok = post(url, {"observations": two_and_absent}, token)
    assert ok.status == 200 and ok.body == {"accepted": 3, "duplicates": 0}


def _wait_off_a_window_edge() -> None:
    """Three requests must fall into one rate-limit window."""
    if ratelimit.WINDOW_S - time.time() % ratelimit.WINDOW_S < 3:
        time.sleep(ratelimit.WINDOW_S - time.time() % ratelimit.WINDOW_S + 0.1)


def test_every_error_answer_has_one_shape(limited_api, redis_url):
    """Issue #18: each error of the API is {"detail": ...}, like the dashboard's (README "Error answers");
    the 503 of a full Redis is checked in test_redis_out_of_memory_is_503."""
    klass = new_class(redis_url, "c")
    url = limited_api.url + "/v1/observations"
    one = {"observations": [observation(None)]}
    answers = [
        (400, post(url, b"not json", klass.credential("a"))),
        (401, post(url, one)),
        (401, post(url, one, "0" * 16)),
        (404, get(limited_api.url + "/v1/nothing-here")),
        (405, get(url)),
        (413, post(url, b" " * 30_000, klass.credential("b"))),
        (422, post(url, {**one, "student_id": "someone"}, klass.credential("c"))),
    ]
    _wait_off_a_window_edge()
    answers.append((429, [post(url, one, klass.credential("d")) for _ in range(3)][-1]))
    for status, answer in answers:
        assert answer.status == status and isinstance(answer.body, dict) and set(answer.body) == {"detail"}, answer


def test_redis_out_of_memory_is_503(tmp_path):
    from tests.support.procs import free_port, start_redis

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
        # Stay full: freeing the refused command's 100 kB query buffer alone could bring Redis back under
        # its limit (it did, now and then), and the API's small writes would then succeed.
        client.config_set("maxmemory", str(int(client.info("memory")["used_memory"] * 0.9)))
        client.close()
        answer = post(api.url + "/v1/observations", {"observations": [observation(None)]}, token)
        assert answer.status == 503 and answer.headers["retry-after"] == "9", answer
        assert set(answer.body) == {"detail"}
    finally:
        api.stop()
        server.stop()


BROKEN_API = """
import uvicorn
from classroom_inference.api.app import create_app
from classroom_inference.settings import Settings

def broken():
    raise RuntimeError("a bug")

app = create_app()
app.add_api_route("/v1/broken", broken)
settings = Settings()
uvicorn.run(app, host="127.0.0.1", port=settings.api_port, log_level="info")
"""


def test_an_unexpected_error_is_json_in_the_one_shape(redis_url, tmp_path):
    """The real API app with one extra route that raises, served by uvicorn: the answer is JSON
    {"detail": "internal error"} (it was Starlette's plain-text "Internal Server Error"), the
    traceback is in the log and never in the answer."""
    port = free_port()
    env = service_env(redis_url, api_port=port)
    proc = Proc([PYTHON, "-c", BROKEN_API], tmp_path / "api.log", env=env)
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), timeout=30, what="the API")
        answer = get(f"http://127.0.0.1:{port}/v1/broken")  # old code: plain text, not JSON (raises)
        assert (answer.status, answer.body) == (500, {"detail": "internal error"})
        assert answer.headers["content-type"] == "application/json"
        wait_until(lambda: "RuntimeError: a bug" in proc.output(), what="the traceback in the log")
    finally:
        proc.stop()
