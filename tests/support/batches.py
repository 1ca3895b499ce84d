"""Hypothesis strategies for ingest payloads (the decoders' fuzz tests and the live API's schema fuzzing):
arbitrary JSON, well-formed observations, and valid batches mutated at their edges."""

from __future__ import annotations

import json
import uuid

from classroom_contract import encode_crop
from classroom_contract.messages import MAX_OBSERVATIONS_PER_REQUEST
from hypothesis import strategies as st

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
CROP_TEXT = encode_crop(bytes(range(256)) * 9)


def valid_observation(draw) -> dict:
    """A well-formed wire observation: a face with a crop, or an absence (draw from `st.composite`)."""
    face = draw(st.booleans())
    body = {
        "observation_id": str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1)))),
        "captured_at": draw(st.floats(0, 2e9)),
        "face_count": draw(st.integers(1, 64)) if face else 0,
    }
    if face:
        body["crop"] = CROP_TEXT
    for angle in ("head_yaw", "head_pitch"):
        if draw(st.booleans()):
            body[angle] = draw(st.floats(-180, 180))
    return body


OBSERVATION_FIELDS = ["observation_id", "captured_at", "face_count", "crop", "head_yaw", "head_pitch", "surplus"]
# Values that sit on or just past an edge of the schema, beside arbitrary JSON.
EDGE_VALUES = st.sampled_from(
    [
        -1,
        0,
        -0.0,
        64,
        65,
        180.0000001,
        -180,
        1e308,
        "1e999",
        "",
        "0",
        "not-a-uuid",
        str(uuid.uuid4()).upper(),
        "{" + str(uuid.uuid4()) + "}",
        CROP_TEXT[:-4],
        CROP_TEXT + "AAAA",
        CROP_TEXT.replace("A", "-"),
        " " + CROP_TEXT,
        "x" * 70,
        "a/../b",
        "\u0000",
        [],
        {},
        None,
        True,
    ]
)


@st.composite
def mutated_batches(draw) -> str:
    """A valid batch with a few fields removed, replaced or added, at either level."""
    batch = {"observations": [valid_observation(draw) for _ in range(draw(st.integers(1, 3)))]}
    for _ in range(draw(st.integers(1, 4))):
        level = draw(st.sampled_from(["batch", "observation", "observations"]))
        if level == "observations":
            one = valid_observation(draw)
            batch["observations"] = draw(st.sampled_from([[], [one] * (MAX_OBSERVATIONS_PER_REQUEST + 1), None, {}]))
            continue
        observations = batch.get("observations")
        if level == "observation" and isinstance(observations, list) and observations:
            target = observations[draw(st.integers(0, len(observations) - 1))]
            if not isinstance(target, dict):
                continue
            field = draw(st.sampled_from(OBSERVATION_FIELDS))
        elif level == "batch":
            # "student_id": a body may not name a student (the credential does); it must be refused
            target, field = batch, draw(st.sampled_from(["student_id", "observations", "surplus"]))
        else:
            continue
        if draw(st.booleans()):
            target.pop(field, None)
        else:
            target[field] = draw(EDGE_VALUES | JSON_VALUES)
    text = json.dumps(batch)
    return text.replace('"1e999"', "1e999") if draw(st.booleans()) else text  # a JSON number that overflows
