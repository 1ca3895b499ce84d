"""Our packages promise only the Python versions their pinned dependencies install on.

The capture agent's `requires-python` said >=3.10 while its pinned numpy 2.4.6 has no wheel and no
support below 3.11: `pip install` on a school's Python 3.10 laptop failed deep in numpy's build
instead of saying "needs Python 3.11".

They also build with the setuptools they pin, and without its warnings: `license = { text = "MIT" }`
made setuptools warn that the table form stops building on 2027-02-18, and `setuptools>=65` would
have fetched that setuptools for a school's IT admin running the capture README's `pip wheel`.
"""

from __future__ import annotations

import email.parser
import importlib.metadata
import re
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

from tests.support.wheels import clean_copy, pip_wheel

REPO = Path(__file__).resolve().parents[2]
PYPROJECTS = sorted([*REPO.glob("*/pyproject.toml"), *REPO.glob("services/*/pyproject.toml")])
#: A Python warning as a build prints it: setuptools' own (SetuptoolsDeprecationWarning...) or pip's
#: BuildBackendWarning relaying one. distutils' log line "warning: build_py: ..." is not one.
WARNING = re.compile(r"^.*\b\w*Warning: .*$", re.M)


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


@pytest.mark.parametrize("path", PYPROJECTS, ids=lambda p: str(p.parent.relative_to(REPO)))
def test_the_build_backend_is_pinned(path):
    """The wheel an admin builds next year is the one we tested: the same setuptools, not the newest."""
    requires = tomllib.loads(path.read_text())["build-system"]["requires"]
    loose = [r for r in requires if not re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][^;,\s*]*", r.strip())]
    assert not loose, f"{path.parent.name}: build requirements not pinned exactly: {loose}"


def wheel_metadata(wheel: Path):
    """The wheel's METADATA headers: what pip and PyPI read, not what pyproject.toml meant."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.HeaderParser().parsestr(archive.read(name).decode())


def explained(output: str) -> str:
    """The first warning with the lines after it (setuptools says there why and by when)."""
    lines = output.splitlines()
    first = next(i for i, line in enumerate(lines) if WARNING.match(line))
    return "\n".join(lines[first : first + 12])


@pytest.mark.slow
@pytest.mark.parametrize("path", PYPROJECTS, ids=lambda p: str(p.parent.relative_to(REPO)))
def test_the_wheel_builds_without_setuptools_warnings_and_declares_mit(path, tmp_path):
    """pip wheel as the Dockerfiles and the capture README run it (isolated, with the pinned setuptools):
    a deprecation warning today is a failed build once its due date passes."""
    source = str(path.parent.relative_to(REPO))
    checkout = clean_copy([source], tmp_path)
    wheels = tmp_path / "wheels"
    command = [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(wheels), f"./{source}"]
    built = pip_wheel(command, checkout, timeout=120, what=f"pip wheel ./{source}")
    output = built.stdout + built.stderr
    warnings = sorted(set(line.strip() for line in WARNING.findall(output)))
    assert not warnings, f"building ./{source} warned:\n" + "\n".join(warnings) + "\n\n" + explained(output)
    (wheel,) = wheels.glob("*.whl")
    metadata = wheel_metadata(wheel)
    assert metadata["License-Expression"] == "MIT", f"{wheel.name}: License-Expression {metadata['License-Expression']}"
    assert metadata["License"] is None and not any(
        c.startswith("License ::") for c in metadata.get_all("Classifier", [])
    )
