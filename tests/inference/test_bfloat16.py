"""The `local` backend's bfloat16 option: chosen from the CPU's flags, and it keeps the model's answers.

The bfloat16 rewrite is process-wide in TensorFlow, so the bfloat16 model runs in a child process
and the float32 one in this process (the session's shared `local_predictor`).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from classroom_inference.predictor import cpu_has_bfloat16, use_bfloat16
from classroom_inference.settings import Settings

from tests.support.inference import fer_faces
from tests.support.procs import REPO

CHILD = """
import json
import numpy as np
from classroom_inference.predictor import LocalPredictor
from classroom_inference.versions import resolve_version
from tests.support.inference import fer_faces
from pathlib import Path
predictor = LocalPredictor(resolve_version(Path({models!r})), bfloat16=True)
print(json.dumps(predictor.predict(fer_faces(64, offset=100)).tolist()))
"""


def _cpuinfo(tmp_path, flags: str):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: fpu sse2 {flags}\n\nprocessor\t: 1\n")
    return path


def test_auto_follows_the_cpu_flags(tmp_path):
    assert cpu_has_bfloat16(_cpuinfo(tmp_path, "avx512f avx512_bf16"))
    assert cpu_has_bfloat16(_cpuinfo(tmp_path, "amx_tile amx_bf16"))
    plain = _cpuinfo(tmp_path, "avx2 avx512f avx512_vnni")
    assert not cpu_has_bfloat16(plain)
    assert not use_bfloat16("auto", plain) and use_bfloat16("on", plain)
    assert not use_bfloat16("off", _cpuinfo(tmp_path, "avx512_bf16"))
    assert not cpu_has_bfloat16(tmp_path / "missing")  # not Linux: unknown means float32
    with pytest.raises(ValueError, match="auto, on or off"):
        use_bfloat16("fast")


def test_setting_is_validated(monkeypatch):
    monkeypatch.setenv("PREDICTOR_BFLOAT16", "off")
    assert Settings().predictor_bfloat16 == "off"
    monkeypatch.setenv("PREDICTOR_BFLOAT16", "maybe")
    with pytest.raises(ValueError):
        Settings()


@pytest.mark.slow
def test_bfloat16_model_gives_the_same_emotions(local_predictor):
    """On 64 real faces: the same top emotion for nearly all, probabilities within a few hundredths."""
    code = CHILD.format(models=str(REPO / "models" / "emotion"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    bf16 = np.asarray(json.loads(done.stdout.strip().splitlines()[-1]), np.float32)
    fp32 = local_predictor.predict(fer_faces(64, offset=100))
    assert bf16.shape == fp32.shape == (64, 7)
    np.testing.assert_allclose(bf16.sum(axis=1), 1.0, atol=1e-3)
    assert np.abs(bf16 - fp32).max() < 0.1
    assert (bf16.argmax(1) == fp32.argmax(1)).mean() >= 0.95
