"""Bad input, property-based: every decoder either accepts or refuses with its one documented error.

- crops (`decode_crop`): any text or bytes gives 2,304 bytes or ValueError; encode -> decode round-trips;
- batches (`ObservationBatch.model_validate_json`): arbitrary JSON, arbitrary bytes and mutated valid
  payloads give a batch or a pydantic ValidationError, never another exception;
- FER2013 CSV rows (`parse_csv`): valid rows parse exactly; one broken row among valid ones gives a
  DatasetError naming that row's line.

Example counts are bounded (see SETTINGS) so the module runs in a few seconds on two shared cores.
"""

from __future__ import annotations

import csv
import json
import math
import uuid

import numpy as np
import pytest
from classroom_contract import ObservationBatch, decode_crop, encode_crop
from classroom_contract.messages import CROP_BYTES, MAX_OBSERVATIONS_PER_REQUEST
from classroom_training.data import PIXELS_PER_IMAGE, USAGES, DatasetError, parse_csv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.support.batches import JSON_VALUES, mutated_batches, valid_observation

SETTINGS = settings(
    max_examples=300,
    deadline=None,  # two cores shared with a training job: wall time per example is not ours to promise
    database=None,  # nothing written into the work tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# --- crops -----------------------------------------------------------------------------------

B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="


def _decode_or_value_error(value) -> bytes | None:
    try:
        pixels = decode_crop(value)
    except ValueError:
        return None
    assert isinstance(pixels, bytes) and len(pixels) == CROP_BYTES
    return pixels


@SETTINGS
@given(st.text())
def test_decode_crop_of_any_text_is_pixels_or_value_error(text):
    _decode_or_value_error(text)


@SETTINGS
@given(st.binary(max_size=4 * CROP_BYTES))
def test_decode_crop_of_any_bytes_is_pixels_or_value_error(raw):
    _decode_or_value_error(raw)


@SETTINGS
@given(st.text(alphabet=B64_ALPHABET + " \n\r\t-_", min_size=3060, max_size=3092))
def test_decode_crop_of_near_valid_base64_is_pixels_or_value_error(text):
    # around the 3,072 characters of a real crop, where the length check and padding matter
    _decode_or_value_error(text)


@SETTINGS
@given(st.binary(min_size=CROP_BYTES, max_size=CROP_BYTES))
def test_crop_round_trips(pixels):
    text = encode_crop(pixels)
    assert text.isascii() and len(text) == 3072
    assert decode_crop(text) == pixels


@SETTINGS
@given(st.binary(min_size=CROP_BYTES, max_size=CROP_BYTES), st.integers(0, 3071), st.characters())
def test_one_changed_character_is_refused_or_still_a_crop(pixels, index, char):
    text = encode_crop(pixels)
    _decode_or_value_error(text[:index] + char + text[index + 1 :])


@SETTINGS
@given(st.binary(max_size=2 * CROP_BYTES).filter(lambda b: len(b) != CROP_BYTES))
def test_encode_crop_refuses_a_wrong_size(pixels):
    with pytest.raises(ValueError, match="2304 bytes"):
        encode_crop(pixels)


# --- batch payloads --------------------------------------------------------------------------


def _validate(raw: str | bytes) -> ObservationBatch | None:
    """The batch, or None for a ValidationError; any other exception fails the test."""
    try:
        batch = ObservationBatch.model_validate_json(raw)
    except ValidationError:
        return None
    _check_invariants(batch)
    return batch


def _check_invariants(batch: ObservationBatch) -> None:
    assert 1 <= len(batch.observations) <= MAX_OBSERVATIONS_PER_REQUEST
    for o in batch.observations:
        assert (o.crop is not None) == (o.face_count > 0)
        if o.crop is not None:
            assert len(decode_crop(o.crop)) == CROP_BYTES


@SETTINGS
@given(JSON_VALUES)
def test_arbitrary_json_is_a_batch_or_a_validation_error(value):
    _validate(json.dumps(value))


@SETTINGS
@given(st.binary(max_size=512) | st.text(max_size=512))
def test_arbitrary_bytes_are_a_batch_or_a_validation_error(raw):
    _validate(raw)


@SETTINGS
@given(mutated_batches())
def test_mutated_valid_batches_are_a_batch_or_a_validation_error(text):
    _validate(text)


def test_a_batch_never_carries_an_infinite_capture_time():
    text = json.dumps({"observations": [_absence()]}).replace('"CAPTURED"', "1e999")
    batch = _validate(text)
    assert batch is None or all(math.isfinite(o.captured_at) for o in batch.observations)


def _absence() -> dict:
    return {"observation_id": str(uuid.uuid4()), "captured_at": "CAPTURED", "face_count": 0}


@SETTINGS
@given(st.lists(st.composite(valid_observation)(), min_size=1, max_size=MAX_OBSERVATIONS_PER_REQUEST))
def test_unmutated_batches_always_validate(observations):
    # the generator behind mutated_batches() is sound: unmutated, every batch it makes is accepted
    assert _validate(json.dumps({"observations": observations})) is not None


# --- FER2013 CSV rows ------------------------------------------------------------------------


def _pixels(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, PIXELS_PER_IMAGE, dtype=np.int64)


@st.composite
def valid_rows(draw) -> list[tuple[int, str, str]]:
    count = draw(st.integers(1, 4))
    return [
        (
            draw(st.integers(0, 6)),
            " ".join(map(str, _pixels(draw(st.integers(0, 2**32 - 1))))),
            draw(st.sampled_from(USAGES)),
        )
        for _ in range(count)
    ]


def _write(path, rows, header=("emotion", "pixels", "Usage")) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


@SETTINGS
@given(valid_rows())
def test_valid_rows_parse_exactly(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("csv") / "fer.csv"
    _write(path, rows)
    splits = parse_csv(path)
    for usage in USAGES:
        expected = [r for r in rows if r[2] == usage]
        if not expected:
            assert usage not in splits
            continue
        split = splits[usage]
        assert split.images.shape == (len(expected), 48, 48, 1) and split.images.dtype == np.uint8
        assert split.labels.tolist() == [r[0] for r in expected]
        for image, (_, pixels, _) in zip(split.images, expected, strict=True):
            assert image.reshape(-1).tolist() == [int(p) for p in pixels.split()]


FIELD_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=30)


@st.composite
def broken_row(draw, pixels: str) -> list[str]:
    """One row with exactly one thing wrong with it."""
    label, usage = str(draw(st.integers(0, 6))), draw(st.sampled_from(USAGES))
    tokens = pixels.split()
    kind = draw(
        st.sampled_from(["label", "label_range", "usage", "pixel", "pixel_range", "pixel_count", "pixels", "short"])
    )
    if kind == "label":
        label = draw(FIELD_TEXT.filter(lambda t: not _is_int(t)))
    elif kind == "label_range":
        label = str(draw(st.integers().filter(lambda n: not 0 <= n <= 6)))
    elif kind == "usage":
        usage = draw(FIELD_TEXT.filter(lambda t: t not in USAGES))
    elif kind == "pixel":
        tokens[draw(st.integers(0, len(tokens) - 1))] = draw(
            FIELD_TEXT.filter(lambda t: t.strip() != "" and not _is_int(t) and len(t.split()) == 1)
        )
    elif kind == "pixel_range":
        tokens[draw(st.integers(0, len(tokens) - 1))] = str(draw(st.integers(-(2**31), 2**31 - 1).filter(_out_of_byte)))
    elif kind == "pixel_huge":
        tokens[draw(st.integers(0, len(tokens) - 1))] = str(
            draw(st.integers(2**31, 10**40) | st.integers(-(10**40), -(2**31) - 1))
        )
    elif kind == "pixel_count":
        cut = draw(st.integers(0, len(tokens) - 1))
        tokens = tokens[:cut] if draw(st.booleans()) else tokens + tokens[: cut + 1]
    elif kind == "pixels":
        tokens = [draw(FIELD_TEXT)]
    else:
        return [label, " ".join(tokens)][: draw(st.integers(0, 2))]
    return [label, " ".join(tokens), usage]


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _out_of_byte(n: int) -> bool:
    return not 0 <= n <= 255


@SETTINGS
@given(valid_rows(), st.data())
def test_a_broken_row_is_a_dataset_error_naming_its_line(tmp_path_factory, rows, data):
    position = data.draw(st.integers(0, len(rows)))
    bad = data.draw(broken_row(rows[0][1]))
    path = tmp_path_factory.mktemp("csv") / "fer.csv"
    _write(path, [*rows[:position], bad, *rows[position:]])
    with pytest.raises(DatasetError) as caught:
        parse_csv(path)
    assert f"line {position + 2}:" in str(caught.value)


@SETTINGS
@given(st.text(max_size=300))
def test_arbitrary_file_text_is_parsed_or_a_dataset_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("csv") / "fer.csv"
    path.write_bytes(b"emotion,pixels,Usage\n" + text.encode("utf-8", "surrogatepass"))
    try:
        parse_csv(path)
    except DatasetError:
        pass


# Found by the properties above (an OverflowError and a UnicodeDecodeError used to escape).


@pytest.mark.parametrize("value", ["2147483648", "-2147483649", "1" * 40])
def test_a_pixel_beyond_int32_is_a_dataset_error(tmp_path, value):
    _write(tmp_path / "fer.csv", [(0, " ".join([value] + ["1"] * (PIXELS_PER_IMAGE - 1)), "Training")])
    with pytest.raises(DatasetError, match="line 2:"):
        parse_csv(tmp_path / "fer.csv")


def test_a_file_that_is_not_utf8_is_a_dataset_error(tmp_path):
    (tmp_path / "fer.csv").write_bytes(b"emotion,pixels,Usage\n0,\x80,Training\n")
    with pytest.raises(DatasetError):
        parse_csv(tmp_path / "fer.csv")
