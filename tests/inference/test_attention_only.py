"""Attention-only mode (ATTENTION_ONLY=1): no emotion inference at all, for EU schools.

The EU AI Act, Art. 5(1)(f), prohibits emotion inference in education institutions. In this mode
the API drops every crop unread: no crop reaches Redis, no job is queued, no worker runs the
model; presence and head pose are stored as results with no emotion.
"""

from __future__ import annotations

import time

import pytest
import redis
from classroom_contract import keys, store

from tests.support.inference import Api, crops_left, fer_faces, observation, post

pytestmark = pytest.mark.slow


def test_attention_only_stores_presence_and_pose_but_never_a_crop_or_job(redis_url, klass, tmp_path):
    class_id, token = klass.class_id, klass.credential("eu1")
    api = Api(tmp_path, redis_url, attention_only="1")
    client = redis.Redis.from_url(redis_url)
    try:
        t0 = round(time.time()) - 10.0
        sent = [observation(face, captured_at=t0 + i, head_yaw=30.0) for i, face in enumerate(fer_faces(3))]
        sent.append(observation(None, captured_at=t0 + 5))
        answer = post(api.url + "/v1/observations", {"observations": sent}, token)
        assert answer.status == 200 and answer.body == {"accepted": 4, "duplicates": 0}

        results = store.student_series(client, class_id, "eu1")
        assert [r.face_count for r in results] == [1, 1, 1, 0]
        assert all(r.emotion is None and r.probabilities is None for r in results)
        assert [r.head_yaw for r in results[:3]] == [30.0, 30.0, 30.0]
        assert client.keys(keys.crops("*")) == [] and crops_left() == []
        assert client.llen("rq:queue:" + keys.INFERENCE_QUEUE) == 0

        again = post(api.url + "/v1/observations", {"observations": sent}, token)
        assert again.body == {"accepted": 0, "duplicates": 4}
    finally:
        client.close()
        api.stop()
