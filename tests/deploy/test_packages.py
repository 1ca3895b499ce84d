"""Our packages promise only the Python versions their pinned dependencies install on.

The capture agent's `requires-python` said >=3.10 while its pinned numpy 2.4.6 has no wheel and no
support below 3.11: `pip install` on a school's Python 3.10 laptop failed deep in numpy's build
instead of saying "needs Python 3.11".
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parents[2]
PYPROJECTS = sorted([*REPO.glob("*/pyproject.toml"), *REPO.glob("services/*/pyproject.toml")])


def lower_bound(specifier: str) -> tuple[int, ...]:
    """(3, 11) of '>=3.11' (the only form our projects and these dependencies use)."""
    match = re.fullmatch(r"\s*>=\s*(\d+(?:\.\d+)*)\s*(?:,.*)?", specifier)
    assert match, f"unexpected Requires-Python {specifier!r}"
    return tuple(int(part) for part in match.group(1).split("."))


def pinned(project: dict) -> dict[str, str]:
    pins = (re.fullmatch(r"([A-Za-z0-9_.-]+)==([^;\s]+)", d.strip()) for d in project.get("dependencies", []))
    return {m.group(1): m.group(2) for m in pins if m}


@pytest.mark.parametrize("path", PYPROJECTS, ids=lambda p: str(p.parent.relative_to(REPO)))
def test_requires_python_is_no_lower_than_any_pinned_dependency_needs(path):
    project = tomllib.loads(path.read_text())["project"]
    ours = lower_bound(project["requires-python"])
    for name, version in pinned(project).items():
        try:
            metadata = importlib.metadata.metadata(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # not installed here (an optional platform's wheel): nothing to compare
        if metadata["Version"] != version or not metadata["Requires-Python"]:
            continue
        theirs = lower_bound(metadata["Requires-Python"])
        assert ours >= theirs, (
            f"{path.parent.name}: requires-python {project['requires-python']}, "
            f"but {name}=={version} needs {metadata['Requires-Python']}"
        )
