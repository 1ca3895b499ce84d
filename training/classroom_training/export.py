"""Export: a trained .keras model becomes the next numbered SavedModel version under models/<name>/.

The exported `serving_default` signature is the contract's (`classroom_contract.SIGNATURE`): raw
uint8 crops [batch, 48, 48] in, float32 probabilities [batch, 7] out. The network is rebuilt in
float32 for serving (training may use bfloat16), and optionally averages the prediction of each
crop with its mirror image (flip test-time augmentation), all inside the graph.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf
from classroom_contract import SIGNATURE

log = logging.getLogger(__name__)


def _as_float32(config: Any) -> Any:
    """The model config with every mixed-precision dtype policy replaced by float32."""
    if isinstance(config, dict):
        return {k: _as_float32(v) for k, v in config.items()}
    if isinstance(config, list):
        return [_as_float32(v) for v in config]
    return "float32" if config in ("mixed_bfloat16", "mixed_float16") else config


def load_float32(path: Path | str) -> keras.Model:
    """Load a .keras model and return the same network and weights computing in float32."""
    trained = keras.models.load_model(path, compile=False)
    model = keras.Model.from_config(_as_float32(trained.get_config()))
    model.set_weights(trained.get_weights())
    return model


def serving_function(model: keras.Model, flip_tta: bool):
    """The tf.function behind `serving_default`: uint8 [n, 48, 48] -> {"probabilities": [n, 7]}."""
    spec = tf.TensorSpec(SIGNATURE.input_shape, tf.uint8, name=SIGNATURE.input_key)

    @tf.function(input_signature=[spec])
    def serve(crops):
        images = tf.expand_dims(crops, -1)
        probabilities = model(images, training=False)
        if flip_tta:
            probabilities = (probabilities + model(tf.reverse(images, axis=[2]), training=False)) / 2.0
        return {SIGNATURE.output_key: tf.cast(probabilities, tf.float32)}

    return serve


def write_savedmodel(model: keras.Model, target: Path, flip_tta: bool = False) -> Path:
    """`model` as a SavedModel with the contract's `serving_default` (also what the benchmark times)."""
    # A plain tf.Module rather than keras.export.ExportArchive: the archive stored every variable
    # twice (2.46 M values for 1.23 M parameters, 10 MB instead of 5 MB); outputs are identical.
    module = tf.Module()
    module.model = model
    tf.saved_model.save(module, str(target), signatures={SIGNATURE.signature_name: serving_function(model, flip_tta)})
    return target


def next_version(model_dir: Path) -> int:
    versions = [int(p.name) for p in model_dir.glob("*") if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def export_model(keras_path: Path, models_dir: Path, flip_tta: bool = True, version: int | None = None) -> Path:
    """Write models/<name>/<version>/ (SavedModel) and models/<name>/<version>.keras; return the folder."""
    model = load_float32(keras_path)
    model_dir = models_dir / SIGNATURE.model_name
    version = version or next_version(model_dir)
    target = model_dir / str(version)
    if target.exists():
        raise FileExistsError(f"{target} exists: versions are immutable, export a new one")
    write_savedmodel(model, target, flip_tta)
    model.save(model_dir / f"{version}.keras")  # float32, no optimizer state: what is served
    log.info("exported %s (flip TTA %s)", target, "on" if flip_tta else "off")
    return target
