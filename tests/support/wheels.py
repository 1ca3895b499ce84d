"""Our packages' wheels built by real pip, as a school's IT admin or a Dockerfile builds them.

pip reads this machine's configuration (index, find-links, cache), as an admin's machine would; pip
builds each package in an isolated environment with the setuptools its pyproject.toml pins, fetched
from that index. When the index cannot be reached the calling test skips and says so: no wheel to
look at is not a defect of ours.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.procs import REPO

#: pip's words when it could not reach an index (requests/urllib3 errors, DNS, proxies).
UNREACHABLE = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "ProxyError",
    "ConnectTimeoutError",
    "Read timed out",
)


def clean_copy(sources: list[str], root: Path) -> Path:
    """root/checkout holding REPO's `sources` (relative paths) without build leftovers.

    A checkout's ignored build/ (setuptools reuses it) could put a file in the wheel that the
    package data no longer ships, and building in the checkout would leave build/ and *.egg-info.
    """
    checkout = root / "checkout"
    for source in sources:
        shutil.copytree(
            REPO / source,
            checkout / source,
            ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", ".pytest_cache"),
        )
    return checkout


def pip_wheel(command: list[str], cwd: Path, timeout: float, what: str) -> subprocess.CompletedProcess[str]:
    """Run a `pip wheel` command; skip when the index is unreachable or too slow, fail when it fails."""
    try:
        built = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.skip(f"pip wheel did not finish in {timeout:g} s: the package index is too slow or unreachable")
    if built.returncode != 0:
        output = built.stdout + built.stderr
        if any(marker in output for marker in UNREACHABLE):
            why = next(line.strip() for line in output.splitlines() if any(m in line for m in UNREACHABLE))
            pytest.skip(f"the package index is unreachable from here, so no wheel to build: {why[:300]}")
        pytest.fail(f"{what} failed:\n{output[-4000:]}")
    return built
