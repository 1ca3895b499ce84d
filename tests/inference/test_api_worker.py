"""The whole ingest path with real processes: agent POST -> API -> Redis/RQ -> worker -> results."""

from __future__ import annotations

import http.client
import json
import re
import time

import numpy as np
import pytest
import redis
from classroom_contract import EMOTIONS, keys, store
from classroom_inference import redis_keys

from tests.support.inference import Api, crops_left, fer_faces, get, observation, post
from tests.support.procs import free_port, wait_until

pytestmark = pytest.mark.slow


def _results(client, class_id, student_id):
    return {r.observation_id: r for r in store.student_series(client, class_id, student_id)}


def test_faces_are_predicted_like_the_local_model_and_absences_stored(stack, klass, redis_server, local_predictor):
    api, _ = stack
    class_id = klass.class_id
    client = redis.Redis.from_url(redis_server)
    faces = fer_faces(6)
    t0 = round(time.time()) - 100.0  # inside the retention window, or the store trims it at once
    observations = [observation(face, captured_at=t0 + i, head_yaw=5.0 * i) for i, face in enumerate(faces)]
    observations.append(observation(None, captured_at=t0 + 10))
    answer = post(api.url + "/v1/observations", {"observations": observations}, klass.credential("s1"))
    assert answer.status == 200, answer.body
    assert answer.body == {"accepted": 7, "duplicates": 0}

    wait_until(lambda: len(_results(client, class_id, "s1")) == 7, timeout=30, what="7 results in Redis")
    results = _results(client, class_id, "s1")
    expected = local_predictor.predict(faces)
    for i, obs in enumerate(observations[:6]):
        result = results[obs["observation_id"]]
        assert np.allclose(result.probabilities, expected[i], atol=1e-5)
        assert result.emotion == EMOTIONS[int(np.argmax(expected[i]))]
        assert result.face_count == 1 and result.captured_at == t0 + i and result.head_yaw == 5.0 * i
    absent = results[observations[6]["observation_id"]]
    assert absent.emotion is None and absent.probabilities is None and absent.face_count == 0
    # the dashboard's views: latest per student is the newest capture, the student is listed
    assert store.latest_results(client, class_id)["s1"].observation_id == observations[6]["observation_id"]
    assert store.class_students(client, class_id) == ["s1"]
    # nothing about the faces lingers: crops deleted, job deleted (result_ttl=0)
    assert not client.keys(keys.crops("*")) and not crops_left()  # never in the main Redis, gone from the crop store
    assert not [k for k in client.keys("rq:job:*") if client.type(k) == b"hash"]
    client.close()


def test_resent_observations_are_accepted_once(stack, klass, redis_server):
    api, _ = stack
    class_id = klass.class_id
    client = redis.Redis.from_url(redis_server)
    faces = fer_faces(3, offset=10)
    first = [observation(f) for f in faces[:2]] + [observation(None)]
    url = api.url + "/v1/observations"
    assert post(url, {"observations": first}, klass.credential("s2")).body == {"accepted": 3, "duplicates": 0}
    # resend everything plus one new face, and the new face twice within the request
    extra = observation(faces[2])
    again = post(url, {"observations": [*first, extra, extra]}, klass.credential("s2"))
    assert again.status == 200 and again.body == {"accepted": 1, "duplicates": 4}
    wait_until(lambda: len(_results(client, class_id, "s2")) == 4, timeout=30, what="4 results")
    # a sentinel face sent after: the one worker takes jobs in order, so once its result is stored, a
    # double count of the resent ones would be stored too (as a 6th series entry)
    sentinel = observation(fer_faces(1, offset=13)[0])
    assert post(url, {"observations": [sentinel]}, klass.credential("s2")).body == {"accepted": 1, "duplicates": 0}
    wait_until(lambda: sentinel["observation_id"] in _results(client, class_id, "s2"), timeout=30, what="sentinel")
    assert client.zcard(keys.student_series(class_id, "s2")) == 5
    assert client.xlen(keys.class_events(class_id)) == 5
    client.close()


def test_bad_credential_is_401(stack, klass):
    api, _ = stack
    body = {"observations": [observation(None)]}
    missing = post(api.url + "/v1/observations", body)
    assert missing.status == 401 and "detail" in missing.body
    for wrong in ("not-a-credential", "0" * 16):  # malformed; well-formed but never issued
        unknown = post(api.url + "/v1/observations", body, token=wrong)
        assert unknown.status == 401 and unknown.body["detail"]
        assert unknown.headers.get("www-authenticate") == "Bearer"


def test_oversized_body_is_413(stack, klass):
    api, _ = stack
    faces = fer_faces(64)
    token = klass.credential("s4")
    body = {"observations": [observation(f) for f in faces]}  # ~200 kB JSON of valid crops
    assert len(json.dumps(body)) > 200_000
    big = {"observations": body["observations"] + [observation(f) for f in faces[:40]]}
    answer = post(api.url + "/v1/observations", json.dumps(big).encode(), token)  # over the 300 kB limit
    assert answer.status == 413, answer.body
    assert "detail" in answer.body
    # the same body sent chunked (no Content-Length) is cut off as it passes the limit
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    payload = json.dumps(big).encode()
    chunks = (payload[i : i + 16384] for i in range(0, len(payload), 16384))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connection.request("POST", "/v1/observations", body=chunks, headers=headers, encode_chunked=True)
    assert connection.getresponse().status == 413
    connection.close()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"observations": []},
        {"observations": [{"observation_id": "x", "captured_at": 1, "face_count": 0}]},
        {
            "observations": [
                {"observation_id": "00000000-0000-4000-8000-000000000000", "captured_at": 1, "face_count": 1}
            ]
        },
        {
            "observations": [
                {
                    "observation_id": "00000000-0000-4000-8000-000000000000",
                    "captured_at": 1,
                    "face_count": 1,
                    "crop": "AAAA",
                }
            ],
        },  # not 48x48
        # the student comes from the credential only: a body naming one is refused
        {"student_id": "s5", "observations": [observation(None)]},
    ],
    ids=["no-observations", "empty", "bad-ids", "face-without-crop", "short-crop", "student-in-body"],
)
def test_malformed_body_is_422_and_stores_nothing(stack, klass, redis_server, body):
    api, _ = stack
    answer = post(api.url + "/v1/observations", body, klass.credential("s5"))
    assert answer.status == 422, answer.body
    assert answer.body["detail"]
    client = redis.Redis.from_url(redis_server)
    assert client.xlen(keys.class_events(klass.class_id)) == 0
    client.close()


@pytest.mark.parametrize(
    "body", [b"{not json", b"", b"\xff\xfe", b'{"observations": [1,'], ids=["garbage", "empty", "binary", "cut"]
)
def test_body_that_is_not_json_is_400_as_documented(stack, klass, redis_server, body):
    """Issue 14, finding 15: the API docs promise 400 for a body that is not JSON; it answered 422."""
    api, _ = stack
    answer = post(api.url + "/v1/observations", body, klass.credential("s5"))
    assert answer.status == 400, answer.body
    assert answer.body["detail"]
    documented = get(api.url + "/openapi.json").body["paths"]["/v1/observations"]["post"]["responses"]
    assert "400" in documented
    client = redis.Redis.from_url(redis_server)
    assert client.xlen(keys.class_events(klass.class_id)) == 0
    client.close()


def test_redis_down_is_503_with_retry_after(tmp_path, klass):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    api = Api(tmp_path, dead, retry_after_s=7, redis_timeout_s=0.5)
    try:
        answer = post(api.url + "/v1/observations", {"observations": [observation(None)]}, "0" * 16)
        assert answer.status == 503 and answer.headers.get("retry-after") == "7", answer
        ready = get(api.url + "/readyz")
        assert ready.status == 503 and ready.body["redis"] is False and ready.body["model"] is True
    finally:
        api.stop()


def test_probes_metrics_and_docs(stack, klass, redis_server):
    api, worker = stack
    class_id = klass.class_id
    client = redis.Redis.from_url(redis_server)
    post(api.url + "/v1/observations", {"observations": [observation(fer_faces(1)[0])]}, klass.credential("s8"))
    wait_until(lambda: len(_results(client, class_id, "s8")) == 1, timeout=30, what="1 result")
    client.close()
    assert get(api.url + "/healthz").body == {"status": "ok"}
    ready = get(api.url + "/readyz")
    assert ready.status == 200 and ready.body["ready"] is True and ready.body["model_versions"]
    metrics = get(api.url + "/metrics/")
    assert metrics.status == 200 and "classroom_observations_total" in metrics.body
    assert 'classroom_inference_jobs{state="failed"} 0.0' in metrics.body
    openapi = get(api.url + "/openapi.json").body
    assert "/v1/observations" in openapi["paths"]
    assert get(api.url + "/docs").status == 200
    worker_metrics = get(worker.metrics_url + "/metrics").body
    predicted = re.search(r"^classroom_crops_predicted_total (\S+)$", worker_metrics, flags=re.M)
    assert predicted and float(predicted.group(1)) >= 1


def test_api_process_does_not_import_tensorflow():
    import subprocess
    import sys

    code = "import sys, classroom_inference.api as a; a.create_app(); print('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_the_enqueued_job_name_is_the_worker_job():
    """The API enqueues by dotted name (no TensorFlow import); the name must resolve to the job."""
    from classroom_inference import jobs
    from classroom_inference.queues import PREDICT_JOB
    from rq.utils import import_attribute

    assert import_attribute(PREDICT_JOB) is jobs.predict_batch


def test_concurrent_resends_are_counted_once(stack, klass, redis_server):
    from concurrent.futures import ThreadPoolExecutor

    api, _ = stack
    class_id = klass.class_id
    body = {"observations": [observation(f) for f in fer_faces(4, offset=30)]}
    token = klass.credential("s7")
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: post(api.url + "/v1/observations", body, token), range(6)))
    assert all(a.status == 200 for a in answers), [a.body for a in answers]
    assert sum(a.body["accepted"] for a in answers) == 4
    assert sum(a.body["duplicates"] for a in answers) == 20
    client = redis.Redis.from_url(redis_server)
    wait_until(lambda: len(_results(client, class_id, "s7")) == 4, timeout=30, what="4 results")
    seen_ttl = client.ttl(redis_keys.seen(class_id, "s7", body["observations"][0]["observation_id"]))
    assert 0 < seen_ttl <= 86400
    client.close()
