"""The README's managed install, run here: its own commands, read out of the README, on Linux.

services/capture/README.md, "Managed install on Windows and macOS", tells a school's IT admin to
build a wheel folder (`pip wheel`), install offline into a fresh venv (`--no-index --find-links`)
and start `<venv>/bin/classroom-capture --consent` at login with the join link in an environment
variable. No Windows or Mac here, so this proves what can break on any OS: the wheel folder holds
everything (the YuNet model included), the installed agent picks `yunet-cv` under `auto`, and the
LaunchAgent's own command line and environment (program path mapped into our venv) capture and
deliver to a real local HTTP server (tests/support/fake_api.py, the ingest API's stand-in).

The wheel folder is built by the machine's pip configuration (index and cache, as an admin's
machine would); when that index cannot be reached the test skips and says so. The install then
runs with no pip configuration at all: only the wheel folder, as on a school laptop.
"""

from __future__ import annotations

import json
import os
import plistlib
import re
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from classroom_contract import tokens

from tests.support.fake_api import TOKEN
from tests.support.procs import REPO
from tests.support.wheels import clean_copy, pip_wheel

pytestmark = pytest.mark.slow

README = REPO / "services" / "capture" / "README.md"


def section() -> str:
    text = README.read_text()
    start = text.index("## Managed install on Windows and macOS")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else len(text)]


def code_block(lang: str) -> str:
    blocks = re.findall(rf"^```{lang}\n(.*?)^```", section(), re.S | re.M)
    assert len(blocks) == 1, f"expected one ```{lang} block in the README's managed-install section"
    return blocks[0]


def wheel_command() -> list[str]:
    commands = re.findall(r"`(python -m pip wheel [^`]+)`", section())
    assert len(commands) == 1, "expected one `python -m pip wheel ...` command in the managed-install section"
    return shlex.split(commands[0])


def mac_install() -> tuple[str, list[str]]:
    """(venv path, pip install's arguments) of the macOS commands."""
    lines = [line.split(" #")[0].strip() for line in code_block("bash").splitlines()]
    venvs = [m for line in lines if (m := re.fullmatch(r"\S+ -m venv (\S+)", line))]
    pips = [m for line in lines if (m := re.fullmatch(r"(\S+) install (.+)", line))]
    assert len(venvs) == 1 and len(pips) == 1, code_block("bash")
    venv = venvs[0].group(1)
    assert pips[0].group(1) == f"{venv}/bin/pip", "macOS: pip must be the venv's own"
    return venv, shlex.split(pips[0].group(2))


def launch_agent() -> dict:
    return plistlib.loads(code_block("xml").encode())


def with_find_links(args: list[str], folder: str) -> list[str]:
    assert args.count("--no-index") == 1 and args.count("--find-links") == 1, args
    at = args.index("--find-links") + 1
    return [*args[:at], folder, *args[at + 1 :]]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel folder, venv): the README's wheel command, then its macOS install, in a fresh venv."""
    root = tmp_path_factory.mktemp("managed-install")
    command = wheel_command()
    assert command[:4] == ["python", "-m", "pip", "wheel"] and command.count("-w") == 1, command
    out = command.index("-w") + 1
    sources = [arg for i, arg in enumerate(command[4:], 4) if not arg.startswith("-") and i != out]
    checkout = clean_copy(sources, root)
    wheels = root / "wheels"
    command[0], command[out] = sys.executable, str(wheels)
    pip_wheel(command, checkout, timeout=420, what=f"the README's `{shlex.join(wheel_command())}`")

    venv = root / "venv"  # no system site packages: only what the wheel folder installs
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
    _, args = mac_install()
    # No pip configuration at all (this machine's adds its own wheel folder and indexes): a school
    # laptop has only the admin's wheel folder.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", *with_find_links(args, str(wheels))],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, f"offline install from the wheel folder failed:\n{install.stdout}{install.stderr}"
    return wheels, venv


def test_the_wheel_folder_ships_the_yunet_model(installed):
    wheels, _ = installed
    (wheel,) = wheels.glob("classroom_capture-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("yunet_yuface_2023.5.1.onnx", "SHA256SUMS"):
        assert f"classroom_capture/yunet/{name}" in names, f"{wheel.name} lacks classroom_capture/yunet/{name}"


def test_the_installed_agent_chooses_yunet_cv_under_auto(installed, tmp_path):
    _, venv = installed
    probe = (
        "import json, classroom_capture, classroom_capture.detector as d;"
        "print(json.dumps({'auto': d.auto_detector_name(), 'made': d.make_detector('auto').name,"
        " 'package': classroom_capture.__file__, 'model': str(d.YUNET_DIR / d.YUNET_MODEL)}))"
    )
    # -I: nothing from this checkout or the environment, only the venv's own site-packages
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-I", "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no fall-back warning
    found = json.loads(result.stdout)
    assert found["auto"] == found["made"] == "yunet-cv"  # load_yunet_model() checked the sha256
    site = venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    assert Path(found["package"]).is_relative_to(site) and Path(found["model"]).is_relative_to(site)


def test_the_launch_agents_command_line_captures_and_delivers(installed, api, frame_folder, tmp_path):
    """launchd's run, as the plist says, on Linux: ProgramArguments (the program mapped from the
    README's venv into ours) with EnvironmentVariables as the whole join-link configuration."""
    _, venv = installed
    plist = launch_agent()
    mac_venv, _ = mac_install()
    program, *arguments = plist["ProgramArguments"]
    assert program.startswith(f"{mac_venv}/"), f"{program} is not in the venv the README installs to ({mac_venv})"
    executable = venv / Path(program).relative_to(mac_venv)
    assert executable.is_file(), f"the install made no {Path(program).relative_to(mac_venv)} (the plist's program)"
    (variable,) = plist["EnvironmentVariables"]  # the join link, and nothing else
    tokens.parse_join_link(plist["EnvironmentVariables"][variable])  # the README's sample is a well-formed link

    folder, manifest = frame_folder
    home = tmp_path / "home"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        variable: tokens.join_link(api.url, TOKEN),  # our server and alice's code instead of the sample's
        # not the webcam: the test frames, quickly (the plist's arguments stay as they are)
        "CLASSROOM_SOURCE": str(folder),
        "CLASSROOM_RATE": "30",
        "CLASSROOM_CAPTURE_HOME": str(home / "capture"),
    }
    result = subprocess.run(
        [str(executable), *arguments],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr  # 2 would be "missing --join-link": a variable it does not read
    assert result.stderr == ""
    got = api.accepted
    assert len(got) == len(manifest) and {o["student_id"] for o in got} == {"alice"}
    with_face = sum(m["has_face"] for m in manifest)
    seen = [o for o in got if o["face_count"]]
    assert len(seen) >= 0.9 * with_face
    assert all(o["head_yaw"] is not None for o in seen)  # YuNet's landmarks: not Haar


def test_the_readme_names_the_same_agent_and_variable_on_windows_and_macos():
    text = section()
    plist = launch_agent()
    mac_venv, mac_args = mac_install()
    (variable,) = plist["EnvironmentVariables"]
    assert re.search(r"`~/Library/LaunchAgents/([\w.-]+)\.plist`", text).group(1) == plist["Label"]
    assert plist["RunAtLoad"] is True
    # restarts after an error exit (a revoked code: exit 3) at most every 10 minutes, not launchd's 10 s
    if plist.get("KeepAlive"):
        assert plist.get("ThrottleInterval", 10) >= 600

    windows = code_block("bat")
    (win_venv,) = re.findall(r'-m venv "([^"]+)"', windows)
    (pip,) = re.findall(r'^"([^"]+)" install (.+)$', windows, re.M)
    assert pip[0] == win_venv + r"\Scripts\pip"
    assert with_find_links(pip[1].split(), "X") == with_find_links(mac_args, "X")  # same install, other folder
    (target,) = re.findall(r'target: "([^"]+)"(.*)$', windows, re.M)
    assert target[0] == win_venv + r"\Scripts\classroom-capture.exe"  # what pip makes of the console script
    assert target[1].split() == plist["ProgramArguments"][1:]
    assert plist["ProgramArguments"][0] == f"{mac_venv}/bin/classroom-capture"

    (setx,) = re.findall(r'`setx (\S+) "[^"]*"`', text)
    assert setx == variable  # the same variable the LaunchAgent sets (and the agent reads: test above)
