"""Auth matrix of the real ingest API with per-student credentials (issue 14, findings 7 and 13).

A student's credential is the only thing an agent has: it writes as that student of that class and
nobody else, whatever the body says; a rotated or removed credential stops at once.
"""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from classroom_contract import keys, store, tokens

from tests.support.inference import Api, get, new_class, observation, post

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api(redis_server, tmp_path_factory):
    server = Api(tmp_path_factory.mktemp("auth-api"), redis_server)
    yield server
    server.stop()


@pytest.fixture
def client(redis_server):
    with redis.Redis.from_url(redis_server) as connection:
        yield connection


def _absence(**extra) -> dict:
    return {"observations": [observation(None, **extra)]}


def _me(api, credential) -> tuple[int, dict]:
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(api.url + "/v1/me", headers={"Authorization": f"Bearer {credential}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


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
        "Bearer 0000-0000-0000-0000",  # well-formed, never issued
        "Bearer " + "x" * 4000,
        "Bearer \u00e9\u00e8",  # latin-1 bytes, not ASCII
        "bearer not-a-registered-token",
    ],
)
def test_requests_without_a_valid_credential_are_401_and_store_nothing(api, client, authorization):
    before = set(client.scan_iter("classroom:*"))
    headers = {} if authorization is None else {"Authorization": authorization}
    answer = post(api.url + "/v1/observations", _absence(), headers=headers)
    assert answer.status == 401, answer
    assert answer.headers.get("www-authenticate") == "Bearer" and answer.body["detail"]
    assert {k for k in client.scan_iter("classroom:*") if not k.startswith(b"classroom:ratelimit:")} <= before


def test_a_rotated_credential_stops_working_at_once(api, client, redis_server):
    klass = new_class(redis_server, "sec")
    old = klass.credential("anna")
    assert post(api.url + "/v1/observations", _absence(), old).status == 200
    new = tokens.new_credential()
    store.rotate_credential(client, klass.class_id, "anna", new)
    refused = post(api.url + "/v1/observations", _absence(), old)
    assert refused.status == 401 and "revoked" in refused.body["detail"]
    assert post(api.url + "/v1/observations", _absence(), new).status == 200
    assert not client.exists(keys.credential(tokens.credential_sha256(old)))  # not even its hash is kept
    # the printed form, lower case and misread letters all work: I/L -> 1, O -> 0
    typed = tokens.display(new).lower().replace("1", "l").replace("0", "o")
    assert post(api.url + "/v1/observations", _absence(), typed).status == 200


def test_a_removed_student_is_refused(api, client, redis_server):
    klass = new_class(redis_server, "sec")
    credential = klass.credential("leaver")
    assert post(api.url + "/v1/observations", _absence(), credential).status == 200
    assert store.unenrol_student(client, klass.class_id, "leaver") is True
    assert post(api.url + "/v1/observations", _absence(), credential).status == 401
    assert _me(api, credential)[0] == 401


def test_a_credential_writes_only_as_its_own_student_of_its_own_class(api, client, redis_server):
    """Finding 7: with a class token the body chose the student, so anyone could post as a classmate."""
    class_a, class_b = new_class(redis_server, "sec"), new_class(redis_server, "sec")
    mallory, bob = class_a.credential("mallory"), class_b.credential("bob")
    class_a.credential("victim")
    assert post(api.url + "/v1/observations", _absence(), mallory).status == 200
    assert post(api.url + "/v1/observations", _absence(), bob).status == 200
    latest_a, latest_b = store.latest_results(client, class_a.class_id), store.latest_results(client, class_b.class_id)
    assert set(latest_a) == {"mallory"} and latest_a["mallory"].class_id == class_a.class_id
    assert set(latest_b) == {"bob"} and latest_b["bob"].class_id == class_b.class_id
    # a body cannot name a student or a class: there are no such fields, and unknown fields are refused
    for smuggled in ({**_absence(), "student_id": "victim"}, {**_absence(), "class_id": class_b.class_id}):
        assert post(api.url + "/v1/observations", smuggled, mallory).status == 422
    assert "victim" not in store.latest_results(client, class_a.class_id)
    assert set(store.latest_results(client, class_b.class_id)) == {"bob"}


def test_me_says_whose_credential_it_is(api, client, redis_server):
    klass = new_class(redis_server, "sec", name="Class 7b")
    credential = klass.credential("anna")
    store.rename_student(client, klass.class_id, "anna", "Anna K.")
    status, me = _me(api, tokens.display(credential))
    assert status == 200, me
    assert me == {
        "class_id": klass.class_id,
        "class_name": "Class 7b",
        "student_id": "anna",
        "display_name": "Anna K.",
        "sample_rate_hz": 2.0,
        "attention_only": False,
    }
    assert _me(api, "0" * 16)[0] == 401
    assert "/v1/me" in get(api.url + "/openapi.json").body["paths"]


def test_capture_times_from_the_future_are_refused_beyond_the_skew(api, client, redis_server):
    """Finding 7: a far-future captured_at froze a student's tile (it stays "latest"); 300 s skew at most."""
    klass = new_class(redis_server, "sec")
    credential = klass.credential("s1")
    url = api.url + "/v1/observations"
    ahead = post(url, _absence(captured_at=time.time() + 3600), credential)  # accepted up to a day before
    assert ahead.status == 422 and "300" in str(ahead.body["detail"])
    assert store.latest_results(client, klass.class_id) == {}
    assert post(url, _absence(captured_at=time.time() + 60), credential).status == 200  # a slightly fast clock is fine


def test_the_same_observation_id_in_two_classes_is_stored_twice(api, client, redis_server):
    """Finding 13: seen markers were keyed by observation id alone, so one class's id suppressed another's."""
    class_a, class_b = new_class(redis_server, "sec"), new_class(redis_server, "sec")
    shared = str(uuid.uuid4())
    body = {"observations": [observation(None, observation_id=shared)]}
    first = post(api.url + "/v1/observations", body, class_a.credential("s1"))
    other_class = post(api.url + "/v1/observations", body, class_b.credential("s1"))
    classmate = post(api.url + "/v1/observations", body, class_a.credential("s2"))
    again = post(api.url + "/v1/observations", body, class_a.credential("s1"))
    assert [a.body for a in (first, other_class, classmate, again)] == [
        {"accepted": 1, "duplicates": 0},
        {"accepted": 1, "duplicates": 0},
        {"accepted": 1, "duplicates": 0},
        {"accepted": 0, "duplicates": 1},  # a real resend is still recognised
    ]
    assert set(store.latest_results(client, class_a.class_id)) == {"s1", "s2"}
    assert set(store.latest_results(client, class_b.class_id)) == {"s1"}
