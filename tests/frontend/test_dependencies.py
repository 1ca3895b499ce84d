"""The dashboard's image installs only the dashboard's declared dependencies (services/frontend/
pyproject.toml): no NumPy, TensorFlow, OpenCV, PyTorch or RQ. Its code must import and build the app
without them. The compose end-to-end run caught a NumPy import once (emotion.py) after every unit
test had passed in the shared development venv, where NumPy is installed for other packages."""

from __future__ import annotations

import subprocess
import sys

NOT_IN_THE_DASHBOARD_IMAGE = ["numpy", "tensorflow", "cv2", "torch", "rq"]

BUILD_THE_APP = f"""
import sys
for name in {NOT_IN_THE_DASHBOARD_IMAGE!r}:
    sys.modules[name] = None  # `import name` now raises ImportError, as in the image
import classroom_dashboard
classroom_dashboard.create_app({{"TESTING": True, "SECRET_KEY": "k" * 16 + "0123456789abcdef", "REDIS_URL": "redis://127.0.0.1:1/0"}})
"""


def test_the_dashboard_builds_without_the_machine_learning_stack():
    done = subprocess.run([sys.executable, "-c", BUILD_THE_APP], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
