"""Auth matrix of the real ingest API: no token, wrong token, rotated-out token, and another class's token.

A class token is the only credential an agent has; it may write only into its own class.
"""

from __future__ import annotations

import secrets

import pytest
import redis
from classroom_contract import keys, store
from inference.support import Api, observation, post

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api(redis_server, tmp_path_factory):
    server = Api(tmp_path_factory.mktemp("auth-api"), redis_server)
    yield server
    server.stop()


@pytest.fixture
def client(redis_server):
    connection = redis.Redis.from_url(redis_server)
    yield connection
    connection.close()


def _register(client) -> tuple[str, str]:
    class_id, token = f"sec-{secrets.token_hex(4)}", secrets.token_urlsafe(32)
    store.register_class(client, class_id, "Security", "teacher", token)
    return class_id, token


def _absence(student: str = "s1") -> dict:
    return {"student_id": student, "observations": [observation(None)]}


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dGVhY2hlcjpwYXNzd29yZA==",
        "Token abc",
        "Bearer not-a-registered-token",
        "Bearer " + "x" * 4000,
        "Bearer \u00e9\u00e8",  # latin-1 bytes, not ASCII
        "bearer not-a-registered-token",
    ],
)
def test_requests_without_a_valid_token_are_401_and_store_nothing(api, client, authorization):
    before = set(client.scan_iter("classroom:*"))
    headers = {} if authorization is None else {"Authorization": authorization}
    answer = post(api.url + "/v1/observations", _absence(), headers=headers)
    assert answer.status == 401, answer
    assert answer.headers.get("www-authenticate") == "Bearer" and answer.body["detail"]
    assert {k for k in client.scan_iter("classroom:*") if not k.startswith(b"classroom:ratelimit:")} <= before


def test_a_rotated_out_token_stops_working_at_once(api, client):
    class_id, old = _register(client)
    assert post(api.url + "/v1/observations", _absence(), old).status == 200
    new = secrets.token_urlsafe(32)
    store.rotate_token(client, class_id, new)
    refused = post(api.url + "/v1/observations", _absence(), old)
    assert refused.status == 401 and "revoked" in refused.body["detail"]
    assert post(api.url + "/v1/observations", _absence(), new).status == 200
    assert client.get(keys.class_token(old)) is None  # not even its hash is kept


def test_a_token_writes_only_into_its_own_class(api, client):
    class_a, token_a = _register(client)
    class_b, token_b = _register(client)
    assert post(api.url + "/v1/observations", _absence("mallory"), token_a).status == 200
    assert post(api.url + "/v1/observations", _absence("bob"), token_b).status == 200
    latest_a, latest_b = store.latest_results(client, class_a), store.latest_results(client, class_b)
    assert set(latest_a) == {"mallory"} and latest_a["mallory"].class_id == class_a
    assert set(latest_b) == {"bob"} and latest_b["bob"].class_id == class_b
    # a body cannot name another class: there is no such field, and unknown fields are refused
    smuggled = {**_absence("eve"), "class_id": class_b}
    assert post(api.url + "/v1/observations", smuggled, token_a).status == 422
    assert "eve" not in store.latest_results(client, class_b)
