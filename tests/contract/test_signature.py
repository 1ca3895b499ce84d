"""Every exported SavedModel version has exactly the contract's serving signature (per saved_model_cli)."""

from __future__ import annotations

import re
import subprocess

import pytest
from classroom_contract import SIGNATURE

from tests.support.procs import BIN, REPO

MODEL_DIR = REPO / "models" / SIGNATURE.model_name
VERSIONS = sorted(p for p in MODEL_DIR.iterdir() if (p / "saved_model.pb").is_file())
DTYPES = {"uint8": "DT_UINT8", "float32": "DT_FLOAT"}


def _shape(shape: tuple) -> str:
    return "(" + ", ".join("-1" if d is None else str(d) for d in shape) + ")"


def parse(text: str) -> dict[str, dict[str, tuple[str, str]]]:
    """{"inputs"|"outputs": {key: (dtype, shape)}} from `saved_model_cli show ... --signature_def`."""
    found: dict[str, dict[str, tuple[str, str]]] = {"inputs": {}, "outputs": {}}
    pattern = r"(inputs|outputs)\['([^']+)'\] tensor_info:\s+dtype: (\w+)\s+shape: (\([^)]*\))"
    for side, key, dtype, shape in re.findall(pattern, text):
        found[side][key] = (dtype, shape)
    return found


@pytest.mark.parametrize("version_dir", VERSIONS, ids=[p.name for p in VERSIONS])
def test_exported_signature_matches_contract(version_dir):
    shown = subprocess.run(
        [str(BIN / "saved_model_cli"), "show", "--dir", str(version_dir), "--tag_set", "serve"]
        + ["--signature_def", SIGNATURE.signature_name],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert parse(shown) == {
        "inputs": {SIGNATURE.input_key: (DTYPES[SIGNATURE.input_dtype], _shape(SIGNATURE.input_shape))},
        "outputs": {SIGNATURE.output_key: (DTYPES[SIGNATURE.output_dtype], _shape(SIGNATURE.output_shape))},
    }
    assert "Method name is: tensorflow/serving/predict" in shown


def test_parser_sees_a_mismatch():
    """The check above can fail: a wrong dtype or an extra input changes the parsed signature."""
    text = "inputs['crops'] tensor_info:\n    dtype: DT_FLOAT\n    shape: (-1, 48, 48)\n"
    assert parse(text)["inputs"] == {"crops": ("DT_FLOAT", "(-1, 48, 48)")}
