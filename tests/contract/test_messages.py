"""The observation contract refuses values of the wrong JSON type instead of coercing them.

Found by the API fuzz test (tests/fuzz/test_api_schema.py): `"head_pitch": true` was accepted as 1.0,
although the published schema says number or null. Lax coercion also read `"captured_at": "123"`
as a time and `"face_count": true` as one face.
"""

from __future__ import annotations

import json
import uuid

import pytest
from classroom_contract.messages import Observation
from pydantic import ValidationError


def _absent(**fields) -> dict:
    return {"observation_id": str(uuid.uuid4()), "captured_at": 1_700_000_000, "face_count": 0, **fields}


@pytest.mark.parametrize(
    "fields",
    [
        {"head_pitch": True},
        {"head_yaw": False},
        {"head_yaw": "12.5"},
        {"captured_at": "1700000000"},
        {"captured_at": True},
        {"face_count": False},
        {"face_count": 0.0},
    ],
    ids=lambda fields: json.dumps(fields),
)
def test_wrong_json_types_are_refused(fields):
    with pytest.raises(ValidationError):
        Observation.model_validate_json(json.dumps(_absent(**fields)))


def test_integers_are_still_numbers():
    observation = Observation.model_validate_json(json.dumps(_absent(head_yaw=10, head_pitch=-5)))
    assert (observation.captured_at, observation.head_yaw, observation.head_pitch) == (1_700_000_000.0, 10.0, -5.0)
