"""The `tfserving` backend against a real gRPC server using TF Serving's official protos.

The server (tests/support/tfserving_server.py) runs the same SavedModel, so the tfserving backend must
return what the local backend returns for the same real faces; readiness follows the server.
"""

from __future__ import annotations

import numpy as np
import pytest
from classroom_contract import SIGNATURE
from classroom_inference import modelstatus
from classroom_inference.predictor import PredictorUnavailable, TFServingPredictor
from tensorflow_serving.apis import get_model_status_pb2

from tests.support.inference import fer_faces
from tests.support.procs import free_port
from tests.support.tfserving_server import FakeTFServing


@pytest.fixture(scope="module")
def server():
    server = FakeTFServing(free_port()).start()
    yield server
    server.stop()


def test_tfserving_backend_matches_local(server, local_predictor):
    faces = fer_faces(20, offset=100)
    remote = TFServingPredictor(server.address, timeout_s=10)
    try:
        probabilities = remote.predict(faces)
        assert probabilities.dtype == np.float32 and probabilities.shape == (20, 7)
        assert np.allclose(probabilities, local_predictor.predict(faces), atol=1e-5)
        assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
        assert remote.predict(faces[:0]).shape == (0, 7)
    finally:
        remote.close()


def test_pinned_version_is_sent(server):
    pinned = TFServingPredictor(server.address, version=server.version)
    wrong = TFServingPredictor(server.address, version=server.version + 1)
    try:
        assert pinned.predict(fer_faces(1)).shape == (1, 7) and pinned.ready()
        assert not wrong.ready()
        with pytest.raises(Exception, match="NOT_FOUND"):
            wrong.predict(fer_faces(1))
    finally:
        pinned.close()
        wrong.close()


def test_readiness_follows_the_server_and_predict_retries_until_it_is_up():
    port = free_port()
    address = f"127.0.0.1:{port}"
    client = TFServingPredictor(address, timeout_s=5, attempts=2, backoff_s=0.05)
    try:
        assert not client.ready()
        assert modelstatus.available_versions(address, SIGNATURE.model_name, timeout_s=1) == []
        with pytest.raises(PredictorUnavailable):
            client.predict(fer_faces(1))
        server = FakeTFServing(port).start()
        try:
            assert client.ready()  # the same long-lived channel reconnects
            assert modelstatus.available_versions(address, SIGNATURE.model_name) == [server.version]
            assert client.predict(fer_faces(2)).shape == (2, 7)
        finally:
            server.stop()
        assert not client.ready()
        assert modelstatus.available_versions(address, SIGNATURE.model_name, timeout_s=1) == []
    finally:
        client.close()


def test_light_status_messages_are_wire_identical_to_official_protos():
    official = get_model_status_pb2.GetModelStatusRequest()
    official.model_spec.name = "emotion"
    official.model_spec.version.value = 3
    assert modelstatus.status_request("emotion", 3).SerializeToString() == official.SerializeToString()
    response = get_model_status_pb2.GetModelStatusResponse()
    for version, state in ((1, get_model_status_pb2.ModelVersionStatus.END), (2, modelstatus.AVAILABLE)):
        status = response.model_version_status.add(version=version, state=state)
        status.status.error_message = "ok"
    parsed = modelstatus.GetModelStatusResponse.FromString(response.SerializeToString())
    assert [(s.version, s.state) for s in parsed.model_version_status] == [(1, 50), (2, 30)]


def test_api_readyz_follows_tf_serving(redis_url, tmp_path):
    from tests.support.inference import Api, get

    port = free_port()
    server = FakeTFServing(port).start()
    api = Api(tmp_path, redis_url, predictor_backend="tfserving", tfserving_address=f"127.0.0.1:{port}")
    try:
        ready = get(api.url + "/readyz")
        assert ready.status == 200 and ready.body["model_versions"] == [server.version], ready.body
        server.stop()
        down = get(api.url + "/readyz")
        assert down.status == 503 and down.body == {
            "redis": True,
            "crop_store": True,
            "model": False,
            "model_versions": [],
            "ready": False,
        }
    finally:
        api.stop()
        server.stop()
