"""Weights keyed `<layer name>/<variable>`: the bridge between Keras and `torch_trainer`.

Keras' own `get_weights()` is a bare list whose order follows the graph; a name per array is what
lets another framework (the PyTorch trainer on a lent GPU) read and write the same network. Models
saved before the default network's layers had names (v1-v4) are re-read into a freshly built,
named model first: same graph, so `get_weights()` lines up array for array.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from classroom_training import models


def named_arrays(model: keras.Model) -> dict[str, np.ndarray]:
    """Every weight of `model` as float32, keyed `<layer name>/<variable name>`."""
    return {
        f"{layer.name}/{variable.name}": np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float32)
        for layer in model.layers
        for variable in layer.weights
    }


def load_named_arrays(model: keras.Model, arrays: dict[str, np.ndarray]) -> None:
    """Set every weight of `model` from `arrays`; a missing or misshapen array is an error, not a skip."""
    for layer in model.layers:
        for variable in layer.weights:
            key = f"{layer.name}/{variable.name}"
            if key not in arrays:
                raise ValueError(f"weights file lacks {key}")
            if tuple(arrays[key].shape) != tuple(variable.shape):
                raise ValueError(f"{key}: shape {arrays[key].shape}, the model has {tuple(variable.shape)}")
            variable.assign(arrays[key].astype(variable.dtype))


def default_model_from(keras_path: Path) -> keras.Model:
    """A saved default model rebuilt with today's layer names (so `named_arrays` finds them)."""
    saved = keras.models.load_model(keras_path, compile=False)
    if saved.name != "default":
        raise ValueError(f"{keras_path} is a {saved.name!r} model; named weights exist for the default one")
    first_conv = next(layer for layer in saved.layers if isinstance(layer, keras.layers.Conv2D))
    model = models.make_default_model(width=int(first_conv.filters))
    model.set_weights(saved.get_weights())
    return model


def export_named(keras_path: Path, out: Path) -> Path:
    """A saved .keras as a named-weights .npz: the warm start a GPU run takes (`--init-from`)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **named_arrays(default_model_from(keras_path)))
    return out


def model_for(spec: str) -> keras.Model:
    """The Keras network a `torch_trainer` spec names: `default-w32`, `plain-w32-d1`, `separable-w48-d1`."""
    if spec.startswith("default-w"):
        return models.make_default_model(width=int(spec.removeprefix("default-w")))
    return models.make_fast_model(**models.parse_fast_spec(spec))


def import_named(npz_path: Path, out: Path, width: int = 32, net: str | None = None) -> Path:
    """A named-weights .npz (e.g. `torch_trainer`'s best.npz) as a .keras the rest of the CLI reads.

    `net` is the run's spec; without it, the spec the run stored in the file, else `default-w<width>`.
    """
    with np.load(npz_path) as npz:
        arrays = {key: npz[key] for key in npz.files if not key.startswith("meta/")}
        stored = str(npz["meta/net"]) if "meta/net" in npz.files else None
    model = model_for(net or stored or f"default-w{width}")
    load_named_arrays(model, arrays)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    return out
