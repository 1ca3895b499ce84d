"""The served model's name and its `serving_default` signature.

Training exports exactly this; the `local` and `tfserving` predictors call exactly this. The
preprocessing (scaling, normalisation) is inside the graph, so a client only ever sends raw
uint8 crops and cannot preprocess differently from training.
"""

from dataclasses import dataclass

from classroom_contract.labels import CROP_SIZE, NUM_EMOTIONS


@dataclass(frozen=True)
class ModelSignature:
    model_name: str = "emotion"
    signature_name: str = "serving_default"
    input_key: str = "crops"
    input_dtype: str = "uint8"
    input_shape: tuple[int | None, ...] = (None, CROP_SIZE, CROP_SIZE)
    output_key: str = "probabilities"
    output_dtype: str = "float32"
    output_shape: tuple[int | None, ...] = (None, NUM_EMOTIONS)


SIGNATURE = ModelSignature()
