"""deploy/tfserving configs agree with the contract: TF Serving serves the model the workers ask for."""

from __future__ import annotations

import re

from classroom_contract import SIGNATURE
from classroom_contract.messages import MAX_OBSERVATIONS_PER_REQUEST
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from tests.support.procs import REPO

CONFIG = REPO / "deploy" / "tfserving"


def test_models_config_is_a_model_server_config_serving_the_contract_model():
    config = text_format.Parse((CONFIG / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())
    models = {m.name: m for m in config.model_config_list.config}
    assert set(models) == {SIGNATURE.model_name}
    model = models[SIGNATURE.model_name]
    assert model.model_platform == "tensorflow" and model.base_path.endswith(f"/{SIGNATURE.model_name}")
    # the workers send no version by default and expect the newest one
    assert model.model_version_policy.WhichOneof("policy_choice") == "latest"


def test_batching_fits_one_request_of_crops():
    text = (CONFIG / "batching_parameters.txt").read_text()
    values = dict(re.findall(r"^(\w+)\s*\{\s*value:\s*(\w+)\s*\}", text, flags=re.M))
    assert int(values["max_batch_size"]) >= MAX_OBSERVATIONS_PER_REQUEST  # a whole request is never rejected
    assert int(values["num_batch_threads"]) >= 1 and int(values["batch_timeout_micros"]) <= 10_000
