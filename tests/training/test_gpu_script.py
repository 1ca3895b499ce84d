"""`scripts/distill_on_gpu.sh`, the one call a lent GPU gets (issue 16), rehearsed on the CPU.

A GPU is lent to a session for about 15 minutes in all, so the script must not be found broken
there. Its SMOKE mode runs the very same commands (teachers, then students distilling from v5
and the teachers, with mixup) on a few rows for a few seconds each, with torch on the CPU: no
GPU is needed for the commands to be exercised, only for them to be fast. What comes back
is what the device tool would fetch: summary.json, train.log and runs.tar in parts.
"""

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from classroom_training import cli

from tests.support.procs import REPO

SERVED_V5 = REPO / "models" / "emotion" / "5.keras"


def test_the_gpu_call_brings_back_every_students_weights_in_smoke_mode(packed, tmp_path):
    path, _ = packed
    v5 = tmp_path / "v5-named.npz"
    assert cli.main(["export-weights", "--model", str(SERVED_V5), "--out", str(v5)]) == 0
    out = tmp_path / "out"
    # the script calls `python3`, as on the GPU machine: here that must be this interpreter (torch is
    # in the test venv, which CI runs without activating it)
    path_with_venv = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "PATH": path_with_venv, "SMOKE": "1", "OUT": str(out), "WORK": str(tmp_path / "work"),
           "PACK": str(path),
           "V5": str(v5), "TEACHERS": "default-w8", "STUDENTS": "plain-w8-d1 separable-w8-d1",
           "MIXUP": "0.4"}  # fmt: skip
    done = subprocess.run(["bash", "scripts/distill_on_gpu.sh"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    log = (out / "train.log").read_text() if (out / "train.log").exists() else ""
    assert done.returncode == 0, done.stderr[-2000:] + log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert "--mixup 0.4" in log, "phase B did not get MIXUP"
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["runs"]) == {"default-w8", "plain-w8-d1", "separable-w8-d1"}, summary
    assert all(run["has_best_npz"] for run in summary["runs"].values()), summary
    parts = sorted(out.glob("runs.tar.part*"))
    assert parts, sorted(p.name for p in out.iterdir())
    with tarfile.open(fileobj=io.BytesIO(b"".join(p.read_bytes() for p in parts))) as tar:
        names = set(tar.getnames())
    assert {"plain-w8-d1/best.npz", "separable-w8-d1/best.npz", "default-w8/best.npz"} <= names, names
