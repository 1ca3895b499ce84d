"""The one place where the services agree on what crosses a process boundary.

Every service installs this package; none copies what is in it. If a name, a shape or a key
format is needed by two processes, it lives here.
"""

from classroom_contract.labels import CROP_SIZE, EMOTIONS, NUM_EMOTIONS
from classroom_contract.messages import (
    IngestResponse,
    Observation,
    ObservationBatch,
    ObservationResult,
    StudentIdentity,
    decode_crop,
    encode_crop,
)
from classroom_contract.model import SIGNATURE, ModelSignature

__all__ = [
    "CROP_SIZE",
    "EMOTIONS",
    "NUM_EMOTIONS",
    "IngestResponse",
    "ModelSignature",
    "Observation",
    "ObservationBatch",
    "ObservationResult",
    "SIGNATURE",
    "StudentIdentity",
    "decode_crop",
    "encode_crop",
]
