"""Secrets without a .env: the one-shot secrets-init job (deploy/docker/secrets-init.sh) and the
entrypoint of our Python images (deploy/docker/with-secrets.sh), wired statically and run for real
(POSIX sh, plus busybox sh where installed: the redis:alpine image runs secrets-init with it);
and the redis service's own start script, run against a real redis-server."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.support.dockerfiles import copy_sources, exec_form, stages

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
SECRETS_INIT = REPO / "deploy" / "docker" / "secrets-init.sh"
WITH_SECRETS = REPO / "deploy" / "docker" / "with-secrets.sh"
WITH_SECRETS_IN_IMAGE = "/usr/local/bin/with-secrets"
SECRETS_DIR = "/run/secrets/classroom"
SECRET_FILES = {
    "REDIS_PASSWORD": "redis-password",
    "CROP_STORE_PASSWORD": "crop-store-password",
    "SECRET_KEY": "secret-key",
    "DEMO_TEACHER_PASSWORD": "demo-teacher-password",
}
# The images whose services read secrets; the capture image (demo agents) needs none.
SECRET_IMAGES = {"services/inference/Dockerfile", "services/frontend/Dockerfile"}
SHELLS = [["sh"]] + ([["busybox", "sh"]] if shutil.which("busybox") else [])
SHELL_IDS = [" ".join(shell) for shell in SHELLS]


def services() -> dict[str, dict]:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without any secret or REDIS_* variable a developer may have exported."""
    env = {k: v for k, v in os.environ.items() if k not in SECRET_FILES and not k.startswith(("REDIS_", "CROP_STORE_"))}
    env.pop("CLASSROOM_SECRETS_DIR", None)
    return {**env, **extra}


# --- static wiring --------------------------------------------------------------------------------------


@pytest.mark.parametrize("script", [SECRETS_INIT, WITH_SECRETS], ids=lambda p: p.name)
def test_scripts_are_posix_sh(script):
    assert script.read_text().startswith("#!/bin/sh\n")
    assert os.access(script, os.X_OK), f"chmod +x {script.relative_to(REPO)}"
    for shell in SHELLS:
        result = subprocess.run([*shell, "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{shell}: {result.stderr}"
    text = script.read_text()
    for bashism in ("[[", "local ", "function ", "$'", "<<<", "pipefail", "source "):
        code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
        assert bashism not in code, f"{script.name}: {bashism!r} is not POSIX sh"


def test_secrets_init_service_uses_the_script_with_least_privilege():
    compose = services()
    init = compose["secrets-init"]
    assert init["image"] == compose["redis"]["image"], "an image the stack pulls anyway"
    entrypoint = init["entrypoint"]
    assert entrypoint[0] == "/bin/sh" and entrypoint[2] == SECRETS_DIR
    mounts = {target.removesuffix(":ro"): source for source, target in (v.split(":", 1) for v in init["volumes"])}
    assert (REPO / mounts[entrypoint[1]]).resolve() == SECRETS_INIT
    assert f"{mounts[entrypoint[1]]}:{entrypoint[1]}:ro" in init["volumes"]
    assert mounts[SECRETS_DIR] == "secrets"
    assert init["network_mode"] == "none" and init["restart"] == "no"
    assert init["cap_drop"] == ["ALL"] and init["cap_add"] == ["CHOWN"]
    assert "no-new-privileges:true" in init["security_opt"]
    assert init["environment"]["READER_GID"] == "10001"


def test_the_secrets_group_is_the_app_user_of_our_images():
    for dockerfile in SECRET_IMAGES:
        final = stages(REPO / dockerfile)[-1]
        assert [i.args for i in final.instructions if i.keyword == "USER"][-1] == "10001:10001", dockerfile


@pytest.mark.parametrize("dockerfile", sorted(SECRET_IMAGES))
def test_images_install_with_secrets_as_their_entrypoint(dockerfile):
    final = stages(REPO / dockerfile)[-1]
    copies = [copy_sources(i) for i in final.instructions if i.keyword == "COPY"]
    assert (["deploy/docker/with-secrets.sh"], WITH_SECRETS_IN_IMAGE, {"chmod": "0755"}) in copies
    entrypoint = [exec_form(i.args) for i in final.instructions if i.keyword == "ENTRYPOINT"]
    assert entrypoint and entrypoint[-1] == [WITH_SECRETS_IN_IMAGE]


def test_compose_services_keep_the_wrapper_and_probes_that_need_redis_use_it():
    for name, service in services().items():
        if service.get("build", {}).get("dockerfile") not in SECRET_IMAGES:
            continue
        # An entrypoint here would replace with-secrets (and the image's CMD).
        assert "entrypoint" not in service, f"{name}: keep the image's with-secrets entrypoint"
        test = service.get("healthcheck", {}).get("test", [])
        if "rq-worker" in test:  # the only probe that reads REDIS_URL; healthchecks skip the entrypoint
            assert test[:2] == ["CMD", WITH_SECRETS_IN_IMAGE], name


# --- with-secrets.sh, run for real ----------------------------------------------------------------------

DUMP_ENV = [sys.executable, "-c", "import json, os; print(json.dumps({'pid': os.getpid(), 'env': dict(os.environ)}))"]


def write_secrets(directory: Path, **values: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, value in values.items():
        (directory / SECRET_FILES[name]).write_text(value)
    return directory


def run_wrapper(shell, command, env) -> tuple[dict, subprocess.Popen]:
    proc = subprocess.Popen([*shell, str(WITH_SECRETS), *command], env=env, stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    return json.loads(out), proc


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
def test_with_secrets_exports_the_files_and_execs(shell, tmp_path):
    secrets = write_secrets(
        tmp_path / "s", REDIS_PASSWORD="r3dis-pw", SECRET_KEY="k3y", DEMO_TEACHER_PASSWORD="d3mo-pw"
    )
    dumped, proc = run_wrapper(shell, DUMP_ENV, clean_env(CLASSROOM_SECRETS_DIR=str(secrets)))
    env = dumped["env"]
    assert env["REDIS_URL"] == "redis://:r3dis-pw@redis:6379/0"
    assert env["SECRET_KEY"] == "k3y"
    assert env["DEMO_TEACHER_PASSWORD"] == "d3mo-pw"
    assert "REDIS_PASSWORD" not in env and "password" not in env, "no helper variables leak"
    assert dumped["pid"] == proc.pid, "with-secrets must exec the command (signals reach it; PID 1)"


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
def test_with_secrets_builds_crop_store_url_and_exports_only_the_files_present(shell, tmp_path):
    """The api/worker volume holds the two Redis passwords only: no SECRET_KEY, no demo password."""
    secrets = write_secrets(tmp_path / "s", REDIS_PASSWORD="r3dis-pw", CROP_STORE_PASSWORD="cr0p-pw")
    dumped, _ = run_wrapper(shell, DUMP_ENV, clean_env(CLASSROOM_SECRETS_DIR=str(secrets)))
    env = dumped["env"]
    assert env["REDIS_URL"] == "redis://:r3dis-pw@redis:6379/0"
    assert env["CROP_STORE_URL"] == "redis://:cr0p-pw@crop-store:6379/0"
    assert "SECRET_KEY" not in env and "DEMO_TEACHER_PASSWORD" not in env
    assert "CROP_STORE_PASSWORD" not in env and "password" not in env, "no helper variables leak"


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
def test_with_secrets_lets_the_environment_win_and_passes_arguments_unchanged(shell, tmp_path):
    secrets = write_secrets(tmp_path / "s", REDIS_PASSWORD="from-file", SECRET_KEY="from-file")
    env = clean_env(
        CLASSROOM_SECRETS_DIR=str(secrets), SECRET_KEY="from-env", REDIS_HOST="cache", REDIS_PORT="6380", REDIS_DB="2"
    )
    dumped, _ = run_wrapper(shell, DUMP_ENV, env)
    assert dumped["env"]["SECRET_KEY"] == "from-env"
    assert dumped["env"]["REDIS_URL"] == "redis://:from-file@cache:6380/2"
    assert "DEMO_TEACHER_PASSWORD" not in dumped["env"], "a missing file leaves the variable unset"
    dumped, _ = run_wrapper(shell, DUMP_ENV, {**env, "REDIS_URL": "rediss://:x@managed:6379/0"})
    assert dumped["env"]["REDIS_URL"] == "rediss://:x@managed:6379/0"
    dumped, _ = run_wrapper(shell, DUMP_ENV, {**env, "REDIS_PASSWORD": "from-env-too"})
    assert dumped["env"]["REDIS_URL"] == "redis://:from-env-too@cache:6380/2"
    args = ["a b", "$HOME", "*", ""]
    result = subprocess.run(
        [*shell, str(WITH_SECRETS), sys.executable, "-c", "import sys, json; print(json.dumps(sys.argv[1:]))", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout) == args


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
def test_with_secrets_is_a_no_op_without_the_secrets_directory(shell, tmp_path):
    env = clean_env(CLASSROOM_SECRETS_DIR=str(tmp_path / "missing"))
    dumped, _ = run_wrapper(shell, DUMP_ENV, env)
    assert not {"REDIS_URL", "SECRET_KEY", "DEMO_TEACHER_PASSWORD"} & dumped["env"].keys()
    # An unreadable or empty file is skipped, not an error (the service then reports what it misses).
    secrets = write_secrets(tmp_path / "s", SECRET_KEY="")
    dumped, _ = run_wrapper(shell, DUMP_ENV, clean_env(CLASSROOM_SECRETS_DIR=str(secrets)))
    assert "SECRET_KEY" not in dumped["env"]
    usage = subprocess.run([*shell, str(WITH_SECRETS)], capture_output=True, text=True)
    assert usage.returncode == 2 and "usage" in usage.stderr
    failing = subprocess.run([*shell, str(WITH_SECRETS), "sh", "-c", "exit 7"], env=env)
    assert failing.returncode == 7, "the command's exit status is the container's"


def test_with_secrets_default_directory_is_the_compose_mount():
    assert f"dir=${{CLASSROOM_SECRETS_DIR:-{SECRETS_DIR}}}" in WITH_SECRETS.read_text()


# --- secrets-init.sh, run for real ----------------------------------------------------------------------


def run_init(shell, directory: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*shell, str(SECRETS_INIT), str(directory)],
        env=clean_env(READER_GID=str(os.getgid()), **env),
        capture_output=True,
        text=True,
        timeout=30,
    )


def read_all(directory: Path) -> dict[str, str]:
    return {name: (directory / file).read_text() for name, file in SECRET_FILES.items()}


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
def test_secrets_init_generates_once_with_restrictive_permissions(shell, tmp_path):
    directory = tmp_path / "secrets"
    first = run_init(shell, directory)
    assert first.returncode == 0, first.stderr
    generated = read_all(directory)
    for name, value in generated.items():
        assert re.fullmatch(r"[0-9a-f]{64}", value), name
        assert value not in first.stdout + first.stderr, "secrets are never logged"
        info = (directory / SECRET_FILES[name]).stat()
        assert stat.S_IMODE(info.st_mode) == 0o440 and info.st_gid == os.getgid(), name
    assert len(set(generated.values())) == len(SECRET_FILES)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o750
    assert not [p for p in directory.iterdir() if p.name not in SECRET_FILES.values()], "no temp files left"
    # Restarts keep them (only if absent are they generated).
    second = run_init(shell, directory)
    assert second.returncode == 0 and read_all(directory) == generated
    assert second.stdout.count("kept") == len(SECRET_FILES)
    # A lost file is generated again, the others are kept.
    (directory / "secret-key").unlink()
    assert run_init(shell, directory).returncode == 0
    again = read_all(directory)
    assert again["SECRET_KEY"] != generated["SECRET_KEY"] and again["REDIS_PASSWORD"] == generated["REDIS_PASSWORD"]


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
def test_secrets_init_lets_env_values_win_over_generated_ones(shell, tmp_path):
    directory = tmp_path / "secrets"
    assert run_init(shell, directory).returncode == 0
    generated = read_all(directory)
    result = run_init(shell, directory, REDIS_PASSWORD="Admin-Chosen_1.x~", SECRET_KEY="a key with spaces & $igns")
    assert result.returncode == 0, result.stderr
    assert "REDIS_PASSWORD from the environment" in result.stdout and "Admin-Chosen" not in result.stdout
    now = read_all(directory)
    assert now["REDIS_PASSWORD"] == "Admin-Chosen_1.x~"
    assert now["SECRET_KEY"] == "a key with spaces & $igns"
    assert now["DEMO_TEACHER_PASSWORD"] == generated["DEMO_TEACHER_PASSWORD"]
    assert stat.S_IMODE((directory / "redis-password").stat().st_mode) == 0o440
    # An empty variable (the compose default ${VAR:-}) means: keep what is there.
    assert run_init(shell, directory, REDIS_PASSWORD="").returncode == 0
    assert read_all(directory)["REDIS_PASSWORD"] == "Admin-Chosen_1.x~"


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
@pytest.mark.parametrize("bad", ["has space", 'quo"te', "at@sign", "colon:", "slash/"])
def test_secrets_init_refuses_a_redis_password_that_breaks_urls(shell, bad, tmp_path):
    result = run_init(shell, tmp_path / "secrets", REDIS_PASSWORD=bad)
    assert result.returncode != 0
    assert "REDIS_PASSWORD may only contain" in result.stderr
    assert not (tmp_path / "secrets" / "redis-password").exists()


def test_init_output_feeds_the_wrapper(tmp_path):
    """What secrets-init writes is exactly what with-secrets exports."""
    directory = tmp_path / "secrets"
    assert run_init(["sh"], directory).returncode == 0
    values = read_all(directory)
    dumped, _ = run_wrapper(["sh"], DUMP_ENV, clean_env(CLASSROOM_SECRETS_DIR=str(directory)))
    assert dumped["env"]["REDIS_URL"] == f"redis://:{values['REDIS_PASSWORD']}@redis:6379/0"
    assert dumped["env"]["SECRET_KEY"] == values["SECRET_KEY"]
    assert dumped["env"]["DEMO_TEACHER_PASSWORD"] == values["DEMO_TEACHER_PASSWORD"]


# --- the redis service's start script and healthcheck, run against a real redis-server -------------------


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
def test_redis_start_script_takes_the_password_from_the_file(shell, tmp_path):
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        pytest.skip("redis-server is not installed")
    import redis as redis_py

    from tests.support.compose import interpolate
    from tests.support.procs import free_port

    secrets = write_secrets(tmp_path / "secrets", REDIS_PASSWORD="0123abcd" * 8)
    port = free_port()
    # Stand-in for the image's docker-entrypoint.sh: runs redis-server on a free port in tmp_path.
    entrypoint = tmp_path / "docker-entrypoint.sh"
    entrypoint.write_text(f'#!/bin/sh\ncd "{tmp_path}"\nexec "$@" --port {port} --bind 127.0.0.1 --save ""\n')
    entrypoint.chmod(0o755)
    service = services()["redis"]
    script = (
        interpolate(service["command"][0], {})
        .replace(SECRETS_DIR, str(secrets))
        .replace("/usr/local/bin/docker-entrypoint.sh", str(entrypoint))
        .replace("redis-server -", f"{redis_server} -", 1)
    )
    assert service["entrypoint"] == ["/bin/sh", "-ec"]
    client = redis_py.Redis(port=port, password="0123abcd" * 8, socket_connect_timeout=1)
    proc = subprocess.Popen([*shell, "-ec", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(50):
            try:
                assert client.ping()
                break
            except redis_py.ConnectionError:
                time.sleep(0.1)
        else:
            pytest.fail(proc.stdout.read1().decode() if proc.poll() is not None else "redis did not start")
        with pytest.raises(redis_py.AuthenticationError), redis_py.Redis(port=port) as anonymous:
            anonymous.ping()
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("maxmemory") == {"maxmemory": str(768 * 1024 * 1024)}
        # sh exec'd redis (it gets SIGTERM from `docker stop`), and the password is on no command line.
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        assert re.match(rb"(\S*/)?redis-server ", cmdline) and b"0123abcd" not in cmdline
        # The compose healthcheck, with the file in the temp dir and redis-cli pointed at this port.
        check = service["healthcheck"]["test"][1].replace("$$", "$").replace(SECRETS_DIR, str(secrets))
        check = check.replace("redis-cli ping", f"redis-cli -p {port} ping")
        if shutil.which("redis-cli"):
            assert subprocess.run(["sh", "-c", check], timeout=10).returncode == 0
            wrong = check.replace(str(secrets), str(tmp_path / "nowhere"))
            assert subprocess.run(["sh", "-c", wrong], timeout=10, capture_output=True).returncode != 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
        client.close()


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
def test_secrets_init_gives_each_consumer_only_its_files(shell, tmp_path):
    """Issue 14, finding 10: COPY_DIR=FILE,... arguments, as docker-compose.yml passes them."""
    master, api, dash = tmp_path / "secrets", tmp_path / "api", tmp_path / "dash"
    dash.mkdir()
    (dash / "demo-teacher-password").write_text("left from an older layout")
    args = [f"{api}=redis-password,crop-store-password", f"{dash}=redis-password,secret-key"]
    result = subprocess.run(
        [*shell, str(SECRETS_INIT), str(master), *args],
        env=clean_env(READER_GID=str(os.getgid())),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in api.iterdir()) == ["crop-store-password", "redis-password"]
    assert sorted(p.name for p in dash.iterdir()) == ["redis-password", "secret-key"]
    for directory in (api, dash):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o750
        for path in directory.iterdir():
            assert path.read_text() == (master / path.name).read_text()
            assert stat.S_IMODE(path.stat().st_mode) == 0o440 and path.stat().st_gid == os.getgid()
    assert "secret-key" not in {p.name for p in api.iterdir()}
