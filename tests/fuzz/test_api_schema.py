"""Schema-driven fuzzing of the live ingest API from its own OpenAPI document (schemathesis).

A real `classroom-api` on a free loopback port, a real Redis, an enrolled student's credential. Every
operation of /openapi.json gets schema-valid (positive) and schema-invalid (negative) requests;
every answer must be documented (status, content type, body schema, headers), never a 5xx, never a
hang, and every rejection a 4xx with a JSON `detail`. Then mutations of real, valid batches (real
FER2013 crops) go through the same API. Example counts and wall time are bounded.
"""

from __future__ import annotations

import collections
import json
import uuid

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.support.batches import mutated_batches
from tests.support.inference import Api, fer_faces, new_class, observation

pytestmark = pytest.mark.slow

EXAMPLES = {GenerationMode.POSITIVE: 150, GenerationMode.NEGATIVE: 150}
REQUEST_TIMEOUT_S = 10  # a hang is a failure, not a stuck test run
STATS: collections.Counter = collections.Counter()


def _settings(examples: int):
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,  # the same requests every run: a red run is reproducible
        suppress_health_check=list(HealthCheck),
    )


@pytest.fixture(scope="module")
def live(redis_server, tmp_path_factory):
    """(api url, credential): a real API, rate limit off so every request reaches validation."""
    token = new_class(redis_server, "fuzz", name="Fuzz").credential("s1")
    api = Api(tmp_path_factory.mktemp("fuzz-api"), redis_server, rate_limit_per_minute=0, log_level="WARNING")
    yield api.url, token
    api.stop()
    log = api.proc.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]


def _is_documented_rejection(response) -> None:
    assert response.status_code < 500, f"server error {response.status_code}: {response.text[:300]}"
    if response.status_code >= 400:
        kind = response.headers.get("content-type", "")
        kind = kind[0] if isinstance(kind, list) else kind  # schemathesis keeps every value of a header
        assert kind.startswith("application/json"), response.headers
        assert response.json().get("detail"), response.text[:300]


def _fuzz(op, mode, examples: int, url: str, token: str) -> None:
    """Send `examples` generated requests for one operation and check every answer."""
    label = f"{op.method.upper()} {op.path} {mode.value}"

    @_settings(examples)
    @given(case=op.as_strategy(generation_mode=mode))
    def run(case):
        response = case.call(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=REQUEST_TIMEOUT_S)
        STATS[f"{label} {response.status_code}"] += 1
        # positive_data_acceptance is left out on purpose: the schema cannot say that a crop must
        # be base64 of exactly 2,304 bytes, nor "crop iff face_count > 0", so schema-valid bodies
        # are rightly refused with 422 (which is documented).
        case.validate_response(response, excluded_checks=[positive_data_acceptance])
        _is_documented_rejection(response)

    try:
        run()
    except Unsatisfiable:
        pass


def test_every_operation_answers_as_documented(live):
    url, token = live
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert any(op.path == "/v1/observations" for op in operations)
    for op in operations:
        has_input = bool(op.body) or any(True for _ in op.iter_parameters())
        for mode, examples in EXAMPLES.items():
            if mode is GenerationMode.NEGATIVE and not has_input:
                continue  # nothing to make invalid (GET /healthz): negative generation is unsatisfiable
            _fuzz(op, mode, examples if has_input else 5, url, token)
    print("schemathesis requests by outcome:", json.dumps(dict(sorted(STATS.items())), indent=1))
    assert sum(v for k, v in STATS.items() if k.startswith("POST")) >= 100


# One real batch (three FER2013 crops and an absence), fixed so that hypothesis can replay examples.
REAL_BATCH = json.dumps({"observations": [observation(f) for f in fer_faces(3)] + [observation(None)]})


@_settings(150)
@given(st.data())
def test_mutated_real_batches_are_accepted_or_refused_with_a_json_reason(live, data):
    url, token = live
    if data.draw(st.booleans()):
        body = data.draw(mutated_batches())
    else:  # a real batch (real crops), then one byte-level change to the JSON text
        at = data.draw(st.integers(0, len(REAL_BATCH) - 1))
        body = REAL_BATCH[:at] + data.draw(st.characters(codec="utf-8")) + REAL_BATCH[at + 1 :]
    response = requests.post(
        url + "/v1/observations",
        data=body.encode("utf-8", "surrogatepass"),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=REQUEST_TIMEOUT_S,
    )
    STATS[f"mutated {response.status_code}"] += 1
    assert response.status_code in (200, 400, 422), response.text[:300]
    _is_documented_rejection(response)
    if response.status_code == 200:
        answer = response.json()
        assert set(answer) == {"accepted", "duplicates"} and min(answer.values()) >= 0


@pytest.mark.parametrize("captured_at", ["1e999", "-1e999", "1e308", "4102444800"])
def test_an_infinite_or_far_future_capture_time_is_refused(live, redis_server, captured_at):
    # found by the fuzzing above: 1e999 parses to infinity and was accepted (200), then broke the
    # class page, JSON roster and CSV of the whole class (500) and pinned the student's "latest"
    url, token = live
    body = '{"observations":[{"observation_id":"%s","captured_at":%s,"face_count":0}]}'
    response = requests.post(
        url + "/v1/observations",
        data=body % (uuid.uuid4(), captured_at),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=REQUEST_TIMEOUT_S,
    )
    assert response.status_code == 422, response.text
    _is_documented_rejection(response)
