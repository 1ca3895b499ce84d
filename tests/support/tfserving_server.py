"""A real gRPC server speaking TF Serving's PredictionService and ModelService, backed by a SavedModel.

Not TF Serving itself (no C++ server here), but the same wire contract: the official protos and
service definitions from tensorflow-serving-api, so a client that works against this works
against `tensorflow/serving`. Used by the contract tests and the benchmark; also a script:

    python -m tests.support.tfserving_server --port 8500 [--model-dir models/emotion] [--delay 0.5]

Like TF Serving's default version policy it serves the highest numbered version; `--delay`
holds every Predict for a while (to test timeouts and workers killed mid-call).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from concurrent import futures
from pathlib import Path

import grpc
import tensorflow as tf
from classroom_contract import SIGNATURE
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

log = logging.getLogger("tfserving_server")
REPO = Path(__file__).resolve().parents[2]


class _Model:
    def __init__(self, model_dir: Path):
        versions = sorted(int(p.name) for p in model_dir.iterdir() if (p / "saved_model.pb").is_file())
        self.version = versions[-1]
        self.loaded = tf.saved_model.load(str(model_dir / str(self.version)))
        self.signature = self.loaded.signatures[SIGNATURE.signature_name]


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, model: _Model, name: str, delay_s: float):
        self.model, self.name, self.delay_s = model, name, delay_s
        self.calls = 0
        self.stopping = threading.Event()  # ends delays early, so stop() never waits for them

    def Predict(self, request, context):  # noqa: N802 - gRPC method name
        self.calls += 1
        spec = request.model_spec
        if spec.name != self.name or (spec.HasField("version") and spec.version.value != self.model.version):
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {spec}")
        if spec.signature_name not in ("", SIGNATURE.signature_name):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"no signature {spec.signature_name!r}")
        if set(request.inputs) != {SIGNATURE.input_key}:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"inputs must be exactly {SIGNATURE.input_key!r}")
        crops = tf.make_ndarray(request.inputs[SIGNATURE.input_key])
        if crops.dtype.name != SIGNATURE.input_dtype:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"expected {SIGNATURE.input_dtype}, got {crops.dtype}")
        if self.delay_s:
            self.stopping.wait(self.delay_s)
        outputs = self.model.signature(**{SIGNATURE.input_key: tf.constant(crops)})
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.name
        response.model_spec.version.value = self.model.version
        response.model_spec.signature_name = SIGNATURE.signature_name
        response.outputs[SIGNATURE.output_key].CopyFrom(tf.make_tensor_proto(outputs[SIGNATURE.output_key].numpy()))
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, model: _Model, name: str):
        self.model, self.name = model, name

    def GetModelStatus(self, request, context):  # noqa: N802 - gRPC method name
        spec = request.model_spec
        if spec.name != self.name or (spec.HasField("version") and spec.version.value != self.model.version):
            context.abort(grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {spec.name}")
        response = get_model_status_pb2.GetModelStatusResponse()
        status = response.model_version_status.add()
        status.version = self.model.version
        status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        return response


class FakeTFServing:
    """Start with `start()`, stop with `stop()`; `port` is where it listens on 127.0.0.1."""

    def __init__(self, port: int, model_dir: Path = REPO / "models" / SIGNATURE.model_name, delay_s: float = 0.0):
        self.port = port
        self.model = _Model(Path(model_dir))
        self.prediction = PredictionService(self.model, SIGNATURE.model_name, delay_s)
        self._server = None

    @property
    def version(self) -> int:
        return self.model.version

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FakeTFServing:
        self.prediction.stopping.clear()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(self.prediction, self._server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            ModelService(self.model, SIGNATURE.model_name), self._server
        )
        if self._server.add_insecure_port(self.address) != self.port:
            raise RuntimeError(f"cannot listen on {self.address}")
        self._server.start()
        return self

    def stop(self) -> None:
        self.prediction.stopping.set()
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8500)
    parser.add_argument("--model-dir", type=Path, default=REPO / "models" / SIGNATURE.model_name)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds every Predict waits first")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = FakeTFServing(args.port, args.model_dir, args.delay).start()
    log.info("serving %s version %d on %s", SIGNATURE.model_name, server.version, server.address)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
