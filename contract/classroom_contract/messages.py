"""Messages on the wire: what the capture agent sends, what the API answers, what a result is.

A crop travels as base64 of its raw 48x48 uint8 grayscale pixels, row-major (2,304 bytes). Raw
pixels rather than PNG/JPEG: nothing to decode on the server, nothing lossy, and a wrong size is
caught by a length check.
"""

import base64
import binascii
import re
import uuid

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from classroom_contract.labels import CROP_SIZE, NUM_EMOTIONS

CROP_BYTES = CROP_SIZE * CROP_SIZE
#: Most observations one POST may carry; an agent with more sends several requests.
MAX_OBSERVATIONS_PER_REQUEST = 64
#: Student, class and lesson ids (they appear in URLs and Redis keys). Unanchored on purpose: use it
#: with `re.fullmatch` (or `is_valid_id`), never `re.match` with `^...$`: Python's `$` also matches
#: before a trailing newline, which let "7b\n" through (issue 14, finding 11).
ID_REGEX = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
_ID = re.compile(ID_REGEX)
#: Samples per second an agent takes unless its class says otherwise.
DEFAULT_SAMPLE_RATE_HZ = 2.0


def is_valid_id(text: object) -> bool:
    """True when `text` is a whole valid student or class id (no trailing newline, nothing else)."""
    return isinstance(text, str) and _ID.fullmatch(text) is not None


def encode_crop(pixels: bytes) -> str:
    """Base64 text for a crop given as 2,304 raw uint8 bytes."""
    if len(pixels) != CROP_BYTES:
        raise ValueError(f"a crop is {CROP_BYTES} bytes ({CROP_SIZE}x{CROP_SIZE} uint8), got {len(pixels)}")
    return base64.b64encode(pixels).decode("ascii")


def decode_crop(text: str) -> bytes:
    """Raw pixels of a base64 crop; ValueError with the reason when it is not one."""
    try:
        pixels = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"crop is not valid base64: {exc}") from None
    if len(pixels) != CROP_BYTES:
        raise ValueError(f"crop must decode to {CROP_BYTES} bytes ({CROP_SIZE}x{CROP_SIZE} uint8), got {len(pixels)}")
    return pixels


class Observation(BaseModel):
    """One sampled frame of one student: a face crop, or the fact that no face was seen."""

    model_config = ConfigDict(extra="forbid")

    observation_id: uuid.UUID = Field(description="Unique per observation; a resend with the same id is ignored.")
    # Numbers are strict: JSON true/false or "123" are refused, not read as 1/0/123 (the schema says
    # number or integer, and a fuzzed `"head_pitch": true` was accepted). Integers stay valid numbers.
    captured_at: float = Field(
        ge=0, allow_inf_nan=False, strict=True, description="Capture time on the laptop, Unix seconds."
    )
    face_count: int = Field(
        ge=0, le=64, strict=True, description="Faces seen in the frame; 0 means the student was absent."
    )
    crop: str | None = Field(
        default=None,
        max_length=4 * CROP_BYTES,
        description="Base64 of the largest face, 48x48 uint8 grayscale, row-major. Required iff face_count > 0.",
    )
    head_yaw: float | None = Field(
        default=None, ge=-180, le=180, strict=True, description="Degrees, 0 = facing the screen."
    )
    head_pitch: float | None = Field(
        default=None, ge=-180, le=180, strict=True, description="Degrees, 0 = facing the screen."
    )

    @field_validator("crop")
    @classmethod
    def _crop_is_48x48(cls, value: str | None) -> str | None:
        if value is not None:
            decode_crop(value)
        return value

    @model_validator(mode="after")
    def _crop_iff_face(self) -> "Observation":
        if self.face_count > 0 and self.crop is None:
            raise ValueError("face_count > 0 needs a crop")
        if self.face_count == 0 and self.crop is not None:
            raise ValueError("face_count = 0 must not carry a crop")
        return self


class ObservationBatch(BaseModel):
    """What an agent POSTs: observations of one student, oldest first.

    There is no student or class id in it: the server takes both from the bearer credential, so
    nobody can write as someone else (a body with `student_id` is refused).
    """

    model_config = ConfigDict(extra="forbid")

    observations: list[Observation] = Field(min_length=1, max_length=MAX_OBSERVATIONS_PER_REQUEST)


class IngestResponse(BaseModel):
    """The API's answer to a batch: how many were new and how many it had already seen."""

    accepted: int
    duplicates: int


class StudentIdentity(BaseModel):
    """`GET /v1/me`: whom a credential belongs to, so an agent or the join page can say so and sample at
    the class's rate."""

    class_id: str
    class_name: str
    student_id: str
    display_name: str
    sample_rate_hz: float
    attention_only: bool


class ObservationResult(BaseModel):
    """A processed observation as stored in Redis and read by the dashboard."""

    observation_id: str
    class_id: str
    student_id: str
    captured_at: float
    processed_at: float
    face_count: int
    emotion: str | None = None
    probabilities: list[float] | None = Field(default=None, min_length=NUM_EMOTIONS, max_length=NUM_EMOTIONS)
    head_yaw: float | None = None
    head_pitch: float | None = None

    @property
    def face_present(self) -> bool:
        return self.face_count > 0
