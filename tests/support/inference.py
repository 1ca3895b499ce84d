"""Helpers and fixtures of the inference tests: real FER2013 faces, the API and a worker as real processes.

Fixtures are defined here and imported by the conftest.py of tests/inference, tests/contract, tests/security
and tests/join.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import secrets
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from classroom_contract import CROP_SIZE, encode_crop

from tests.support.procs import BIN, REPO, Proc, free_port, http_ok, wait_until

FER_SAMPLE = REPO / "data" / "fer2013_sample.csv.gz"


def fer_faces(n: int, offset: int = 0) -> np.ndarray:
    """`n` real FER2013 faces, uint8 [n, 48, 48], in file order from `offset`."""
    faces = []
    with gzip.open(FER_SAMPLE, "rt", newline="") as handle:
        for i, row in enumerate(csv.DictReader(handle)):
            if i < offset:
                continue
            faces.append(np.array(row["pixels"].split(), dtype=np.uint8).reshape(CROP_SIZE, CROP_SIZE))
            if len(faces) == n:
                break
    return np.stack(faces)


def observation(crop: np.ndarray | None = None, captured_at: float | None = None, **extra) -> dict:
    """One wire observation: a face when `crop` is given, else an absence."""
    body = {
        "observation_id": str(uuid.uuid4()),
        "captured_at": captured_at if captured_at is not None else time.time(),
        "face_count": 1 if crop is not None else 0,
    }
    if crop is not None:
        body["crop"] = encode_crop(crop.tobytes())
    return {**body, **extra}


def crops_left(url: str | None = None) -> list[bytes]:
    """Crop keys in the crop store (default: the session's, CROP_STORE_URL set by tests/conftest.py)."""
    import redis
    from classroom_contract import keys

    client = redis.Redis.from_url(url or os.environ["CROP_STORE_URL"])
    try:
        return list(client.scan_iter(keys.crops("*")))
    finally:
        client.close()


@dataclass
class Response:
    status: int
    headers: dict  # names lower-cased
    body: dict


def _lower(headers) -> dict:
    return {name.lower(): value for name, value in headers.items()}


def post(url: str, body: bytes | dict, token: str | None = None, headers: dict | None = None) -> Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return Response(answer.status, _lower(answer.headers), json.loads(answer.read() or b"null"))
    except urllib.error.HTTPError as error:
        raw = error.read()
        return Response(error.code, _lower(error.headers), json.loads(raw) if raw else None)


def get(url: str) -> Response:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            raw = answer.read()
            kind = answer.headers.get("Content-Type", "")
            return Response(answer.status, _lower(answer.headers), json.loads(raw) if "json" in kind else raw.decode())
    except urllib.error.HTTPError as error:
        return Response(error.code, _lower(error.headers), json.loads(error.read() or b"null"))


def service_env(redis_url: str, **overrides) -> dict[str, str]:
    """Environment of an API or worker process under test: loopback only, short timeouts."""
    env = {
        "REDIS_URL": redis_url,
        "MODEL_DIR": str(REPO / "models" / "emotion"),
        "PREDICTOR_BACKEND": "local",
        # float32 everywhere, whatever the CPU: tests compare worker output with an in-process float32
        # model; the bfloat16 path has its own test (test_bfloat16.py)
        "PREDICTOR_BFLOAT16": "off",
        "LOG_LEVEL": "INFO",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "CUDA_VISIBLE_DEVICES": "",
    }
    env.update({k.upper(): str(v) for k, v in overrides.items()})
    return env


class Api:
    """`classroom-api` on a free loopback port."""

    def __init__(self, tmp: Path, redis_url: str, **settings):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = service_env(redis_url, api_port=self.port, api_host="127.0.0.1", **settings)
        self.proc = Proc([str(BIN / "classroom-api")], tmp / f"api-{self.port}.log", env=env)
        try:
            wait_until(lambda: http_ok(self.url + "/healthz"), timeout=30, what="classroom-api /healthz")
        except AssertionError:
            self.proc.stop()
            raise AssertionError(f"API did not start:\n{self.proc.output()}") from None

    def stop(self):
        self.proc.stop()


class Worker:
    """`classroom-worker` (local SavedModel unless told otherwise), ready once it listens on the queue."""

    def __init__(self, tmp: Path, redis_url: str, name: str | None = None, **settings):
        self.name = name or f"test-{secrets.token_hex(4)}"
        port = settings.get("worker_metrics_port")
        self.metrics_url = f"http://127.0.0.1:{port}" if port else None
        env = service_env(redis_url, **settings)
        log = tmp / f"worker-{self.name}.log"
        self.proc = Proc([str(BIN / "classroom-worker"), "--name", self.name], log, env=env)
        try:
            wait_until(self._listening, timeout=90, interval=0.3, what="classroom-worker to listen")
        except AssertionError:
            self.proc.stop()
            raise AssertionError(f"worker did not start:\n{self.proc.output()}") from None

    def _listening(self) -> bool:
        if not self.proc.alive():
            raise AssertionError(f"worker exited:\n{self.proc.output()}")
        return "Listening on" in self.proc.output()

    def stop(self):
        self.proc.stop()


def worker_done(worker: Proc, client) -> bool:
    """True once every RQ queue is empty and the worker's DEBUG log shows it listening again after its
    last job: all it logs about its jobs is written (a positive sign to wait for, instead of a pause)."""
    text = worker.output()
    queues_empty = all(client.llen(queue) == 0 for queue in client.smembers("rq:queues"))
    return queues_empty and -1 < text.rfind("Job OK") < text.rfind("Listening on")


@pytest.fixture(scope="module")
def stack(redis_server, tmp_path_factory):
    """One API and one worker shared by a test module (tests use fresh class and student ids)."""
    tmp = tmp_path_factory.mktemp("stack")
    api = Api(tmp, redis_server, max_body_bytes=300_000)
    try:
        worker = Worker(tmp, redis_server, worker_metrics_port=free_port(), worker_metrics_host="127.0.0.1")
    except BaseException:
        api.stop()
        raise
    yield api, worker
    worker.stop()
    api.stop()


@dataclass
class EnrolledClass:
    """A registered class whose students are enrolled on first use, each with their own credential."""

    redis_url: str
    class_id: str
    credentials: dict

    def credential(self, student_id: str = "s1") -> str:
        """The credential of `student_id`, enrolling them (display name = id) the first time."""
        if student_id not in self.credentials:
            import redis
            from classroom_contract import store, tokens

            client = redis.Redis.from_url(self.redis_url)
            credential = tokens.new_credential()
            store.enrol_student(client, self.class_id, student_id, student_id, credential)
            client.close()
            self.credentials[student_id] = credential
        return self.credentials[student_id]


def new_class(redis_url: str, prefix: str = "class", name: str = "Test class") -> EnrolledClass:
    """Register a fresh class (random id) with no students yet."""
    import redis
    from classroom_contract import store

    client = redis.Redis.from_url(redis_url)
    class_id = f"{prefix}-{secrets.token_hex(4)}"
    store.create_class(client, class_id, name, "teacher")
    client.close()
    return EnrolledClass(redis_url, class_id, {})


@pytest.fixture
def klass(redis_server) -> EnrolledClass:
    """A freshly registered class; `klass.credential("s1")` enrols s1 and gives their credential."""
    return new_class(redis_server)


@pytest.fixture(scope="session")
def local_predictor():
    """The model as the `local` backend runs it, loaded once for the whole test session."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from classroom_inference.predictor import LocalPredictor
    from classroom_inference.versions import resolve_version

    return LocalPredictor(resolve_version(REPO / "models" / "emotion"))
