"""services/*/Dockerfile, deploy/tfserving/Dockerfile and .dockerignore, checked without a Docker engine;
plus the container health probe (deploy/docker/healthcheck.py) run for real."""

from __future__ import annotations

import http.server
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import tomllib

from tests.support.dockerfiles import DockerIgnore, copy_sources, exec_form, instructions, stages

REPO = Path(__file__).resolve().parents[2]
SERVICES = {
    "inference": ("classroom-inference", {"classroom-api", "classroom-worker"}),
    "frontend": ("classroom-dashboard", {"classroom-dashboard"}),
    "capture": ("classroom-capture", {"classroom-demo"}),
}
SERVICE_DOCKERFILES = [REPO / "services" / name / "Dockerfile" for name in SERVICES]
ALL_DOCKERFILES = [*SERVICE_DOCKERFILES, REPO / "deploy" / "tfserving" / "Dockerfile"]
PYTHON_BASE = re.compile(r"python:3\.11\.\d+-slim-bookworm")
# The one stage that is not Python: the /join page's build in the inference image (issue 15).
PAGE_STAGE = "join-page"
NODE_BASE = re.compile(r"node:\d+\.\d+\.\d+-bookworm-slim")
BUILD_TOOLS = re.compile(r"\b(build-essential|gcc|g\+\+|clang|make|cmake|git|curl|wget)\b")
HEALTHCHECK = REPO / "deploy" / "docker" / "healthcheck.py"


def ids(paths):
    return [str(p.relative_to(REPO)) for p in paths]


@pytest.fixture(scope="module")
def dockerignore() -> DockerIgnore:
    return DockerIgnore(REPO / ".dockerignore")


def test_one_dockerfile_per_service():
    for path in SERVICE_DOCKERFILES:
        assert path.is_file(), path


@pytest.mark.parametrize("path", SERVICE_DOCKERFILES, ids=ids(SERVICE_DOCKERFILES))
def test_multi_stage_with_a_slim_pinned_python_base(path):
    build = stages(path)
    assert len(build) >= 2, "build wheels in one stage, install them in a slim final stage"
    assert build[0].name == "builder" and build[-1].name not in (None, "builder", PAGE_STAGE)
    python = [stage for stage in build if stage.name != PAGE_STAGE]
    for stage in python:
        assert PYTHON_BASE.fullmatch(stage.image), f"{stage.image}: pin python:3.11.<patch>-slim-bookworm"
    assert len({stage.image for stage in python}) == 1, "builder and runtime must share the base image"
    builder_runs = " ".join(i.args for i in build[0].instructions if i.keyword == "RUN")
    assert "pip wheel" in builder_runs and "--wheel-dir /wheels" in builder_runs


@pytest.mark.parametrize("path", SERVICE_DOCKERFILES, ids=ids(SERVICE_DOCKERFILES))
def test_final_stage_installs_only_the_built_wheels_and_no_build_tools(path):
    final = stages(path)[-1]
    runs = [i.args for i in final.instructions if i.keyword == "RUN"]
    installs = [run for run in runs if "pip install" in run]
    assert installs, "the final stage installs the wheels"
    for run in installs:
        assert "--no-index" in run and "from=builder" in run, "pip install only the builder's wheels"
    for run in runs:
        assert "apt-get install" not in run or not BUILD_TOOLS.search(run), f"build tools in the final image: {run}"
    package, _ = SERVICES[path.parent.name]
    assert any(package in run for run in installs), f"{package} is not installed"


@pytest.mark.parametrize("path", ALL_DOCKERFILES, ids=ids(ALL_DOCKERFILES))
def test_final_stage_runs_as_a_numeric_non_root_user(path):
    final = stages(path)[-1]
    users = [i.args.split(":")[0] for i in final.instructions if i.keyword == "USER"]
    assert users, "no USER in the final stage: the container would run as root"
    assert users[-1].isdigit() and users[-1] != "0", "a numeric uid lets Kubernetes verify runAsNonRoot"


@pytest.mark.parametrize("path", ALL_DOCKERFILES, ids=ids(ALL_DOCKERFILES))
def test_base_images_are_pinned(path):
    for stage in stages(path):
        name, _, tag = stage.image.partition(":")
        assert tag and tag != "latest" and re.match(r"\d+\.\d+", tag.split("-")[0] + "."), stage.image
        assert "$" not in stage.image, f"unresolved ARG in FROM {stage.image}"


@pytest.mark.parametrize("path", ALL_DOCKERFILES, ids=ids(ALL_DOCKERFILES))
def test_copied_files_exist_in_the_build_context(path, dockerignore):
    """Build context = the repository root; a COPY of a missing or .dockerignore'd path fails the build."""
    copied = 0
    for stage in stages(path):
        for instruction in stage.instructions:
            if instruction.keyword not in {"COPY", "ADD"}:
                continue
            sources, _, flags = copy_sources(instruction)
            if "from" in flags:
                continue
            for source in sources:
                matches = list(REPO.glob(source.rstrip("/"))) if any(c in source for c in "*?[") else [REPO / source]
                assert matches and all(m.exists() for m in matches), f"{path.name}: COPY {source} does not exist"
                for match in matches:
                    relative = str(match.relative_to(REPO))
                    assert not dockerignore.excluded(relative), f"COPY {source}: excluded by .dockerignore"
                copied += 1
    assert copied


def env_of(stage) -> dict[str, str]:
    """The ENV settings of a stage (KEY=value form, several per instruction)."""
    import shlex

    env = {}
    for instruction in stage.instructions:
        if instruction.keyword == "ENV":
            env.update(word.split("=", 1) for word in shlex.split(instruction.args))
    return env


def test_inference_image_builds_the_join_page_and_serves_it():
    """Issue 15: `docker compose up` must serve /join. A Node stage runs `npm ci` (exactly the
    lockfile) and the page's build; the runtime stage copies only the build and points JOIN_PAGE_DIR
    (the API's setting) at it. Without this the API answers /join with 404."""
    from classroom_inference.settings import Settings

    build = stages(REPO / "services" / "inference" / "Dockerfile")
    page = next((stage for stage in build if stage.name == PAGE_STAGE), None)
    assert page is not None, f"no {PAGE_STAGE} stage: the image has no /join page"
    assert NODE_BASE.fullmatch(page.image), f"{page.image}: pin node:<major.minor.patch>-bookworm-slim"
    runs = [i.args for i in page.instructions if i.keyword == "RUN"]
    install = next(n for n, run in enumerate(runs) if "npm " in run)
    assert re.search(r"\bnpm ci\b", runs[install]), "npm ci: exactly package-lock.json, integrity-checked"
    built = re.search(r"npm run build -- (\S+)", " ".join(runs[install + 1 :]))
    assert built, "the page is built after the install"
    copied = [copy_sources(i) for i in page.instructions if i.keyword == "COPY"]
    first = [Path(s).name for s in copied[0][0]]
    assert first == ["package.json", "package-lock.json"], "the lockfile alone first: the install layer is reused"
    sources = {s.rstrip("/") for srcs, _, _ in copied for s in srcs}
    # models/: the detector's committed weights (models/yunet), which build.mjs copies into the page
    assert {"services/capture-web/build.mjs", "services/capture-web/src", "services/capture-web/models"} <= sources

    final = build[-1]
    copies = [copy_sources(i) for i in final.instructions if i.keyword == "COPY"]
    from_page = [(srcs, dest) for srcs, dest, flags in copies if flags.get("from") == PAGE_STAGE]
    assert [srcs for srcs, _ in from_page] == [[built.group(1)]], "the runtime copies the built page, only it"
    assert "join_page_dir" in Settings.model_fields
    assert env_of(final).get("JOIN_PAGE_DIR", "").rstrip("/") == from_page[0][1].rstrip("/")
    final_runs = " ".join(i.args for i in final.instructions if i.keyword == "RUN")
    assert not re.search(r"\b(nodejs|npm)\b", final_runs), "no Node.js in the runtime image"


def test_every_base_image_of_our_dockerfiles_has_a_stand_in_that_the_engine_script_builds():
    """No registry on CI here: scripts/compose-engine.sh builds a stand-in for each base image the
    Dockerfiles name in an ARG (python, node) from tests/deploy/standins/<name>/."""
    script = (REPO / "scripts" / "compose-engine.sh").read_text()
    grep = re.search(r'grep -hoE "\(?([A-Z|]+)\)?_IMAGE=', script)
    assert grep, "compose-engine.sh does not read the base images from the Dockerfiles"
    for path in SERVICE_DOCKERFILES:
        for arg in (i.args for i in instructions(path) if i.keyword == "ARG" and "_IMAGE=" in i.args):
            name, _, image = arg.partition("=")
            assert name.removesuffix("_IMAGE") in grep.group(1).split("|"), f"{path.name}: {name} not read"
            repository = image.partition(":")[0]
            assert (REPO / "tests" / "deploy" / "standins" / repository / "Dockerfile").is_file(), repository
            assert f"images_named '^{repository}:'" in script, f"compose-engine.sh builds no {repository} stand-in"


@pytest.mark.parametrize("name", SERVICES)
def test_package_metadata_files_exist(name):
    """setuptools needs the files pyproject.toml names (e.g. the readme) to build the wheel."""
    project = tomllib.loads((REPO / "services" / name / "pyproject.toml").read_text())["project"]
    readme = project.get("readme")
    if isinstance(readme, str):
        assert (REPO / "services" / name / readme).is_file(), f"services/{name}/{readme} is missing"
    assert "classroom-contract" in project["dependencies"], "images install contract/ next to the service"


@pytest.mark.parametrize("name", SERVICES)
def test_default_command_is_a_console_script_of_the_package(name):
    final = stages(REPO / "services" / name / "Dockerfile")[-1]
    cmd = exec_form(next(i.args for i in final.instructions if i.keyword == "CMD"))
    project = tomllib.loads((REPO / "services" / name / "pyproject.toml").read_text())["project"]
    scripts = set(project.get("scripts", {}))
    _, expected = SERVICES[name]
    assert expected <= scripts, f"{project['name']} lacks {expected - scripts}"
    if cmd[0].startswith("classroom-"):
        assert cmd[0] in scripts
    else:  # gunicorn APP:FACTORY()
        module, _, factory = cmd[-1].partition(":")
        package_dir = REPO / "services" / name / module
        assert re.search(rf"^def {factory.rstrip('()')}\(", (package_dir / "__init__.py").read_text(), re.MULTILINE)


@pytest.mark.parametrize("name", ["inference", "frontend"])
def test_servers_have_a_healthcheck(name):
    final = stages(REPO / "services" / name / "Dockerfile")[-1]
    checks = [i.args for i in final.instructions if i.keyword == "HEALTHCHECK"]
    assert checks and "/usr/local/lib/classroom/healthcheck.py" in checks[-1]
    exposed = [i.args for i in final.instructions if i.keyword == "EXPOSE"]
    port = re.search(r"127\.0\.0\.1:(\d+)", checks[-1]).group(1)
    assert exposed and port in exposed[-1].split()


def test_tfserving_image_matches_compose_and_bakes_in_model_and_config():
    import yaml

    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    stage = stages(REPO / "deploy" / "tfserving" / "Dockerfile")[-1]
    assert stage.image == compose["services"]["tfserving"]["image"]
    copies = [copy_sources(i) for i in stage.instructions if i.keyword == "COPY"]
    destinations = {dest for _, dest, _ in copies}
    assert {"/config/", "/models/emotion/"} <= destinations
    cmd = exec_form(next(i.args for i in stage.instructions if i.keyword == "CMD"))
    assert "--enable_batching" in cmd and "--batching_parameters_file=/config/batching_parameters.txt" in cmd
    config_files = {Path(s).name for sources, dest, _ in copies if dest == "/config/" for s in sources}
    for flag in cmd:
        if "=/config/" in flag:
            assert flag.split("=/config/")[1] in config_files, flag


def test_dockerignore_keeps_secrets_and_clutter_out_but_not_what_images_need(dockerignore):
    for path in [
        ".git/HEAD",
        ".venv/bin/python",
        "runs/default/ckpt",
        ".cache/x",
        "tests/conftest.py",
        "tests/deploy/test_compose.py",
        ".env",
        ".env.production",
        "services/inference/classroom_inference/__pycache__/x.pyc",
        "services/inference/classroom_inference.egg-info/PKG-INFO",
        "models/emotion/1.keras",
        "services/capture-web/node_modules/esbuild/package.json",
        "services/capture-web/dist/index.html",
    ]:
        assert dockerignore.excluded(path), f"{path} must not enter the build context"
    for path in [
        "contract/pyproject.toml",
        "contract/classroom_contract/keys.py",
        "services/inference/pyproject.toml",
        "services/capture/classroom_capture/synthetic.py",
        "services/capture/classroom_capture/demo.py",
        "data/fer2013_sample.csv.gz",
        "models/emotion/1/saved_model.pb",
        "deploy/docker/healthcheck.py",
        "deploy/docker/with-secrets.sh",
        "deploy/tfserving/models.config",
        "services/capture-web/package-lock.json",
        "services/capture-web/build.mjs",
        "services/capture-web/src/join.js",
    ]:
        assert not dockerignore.excluded(path), f"{path} is needed by an image"


def test_dockerignore_matcher_semantics(tmp_path):
    ignore_file = tmp_path / ".dockerignore"
    ignore_file.write_text("**/*.log\nbuild/\n!build/keep.txt\n/secret\n")
    ignore = DockerIgnore(ignore_file)
    assert ignore.excluded("a/b/c.log") and ignore.excluded("c.log")
    assert ignore.excluded("build/out.o") and not ignore.excluded("build/keep.txt")
    assert ignore.excluded("secret/x") and not ignore.excluded("src/secret")


# --- deploy/docker/healthcheck.py, run for real --------------------------------------------------------


def probe(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), *args], capture_output=True, text=True, timeout=30, env=env
    )


@pytest.fixture
def http_server():
    statuses = {"/ok": 200, "/down": 503, "/login": 302, "/missing": 404}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            status = statuses.get(self.path, 404)
            self.send_response(status)
            if status == 302:
                self.send_header("Location", "/missing")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_probe(http_server):
    assert probe("http", f"{http_server}/ok").returncode == 0
    down = probe("http", f"{http_server}/down")
    assert down.returncode == 1 and "HTTP 503" in down.stderr
    assert probe("http", f"{http_server}/missing").returncode == 1
    assert probe("http", f"{http_server}/missing", "--any-below-500").returncode == 0
    assert probe("http", "http://127.0.0.1:9/").returncode == 1  # nothing listens on the discard port
    assert probe("bogus").returncode == 2


def test_rq_worker_probe_follows_this_hosts_worker_registration(redis_url):
    import os
    import socket

    import redis
    from rq import Worker

    env = {**os.environ, "REDIS_URL": redis_url}
    missing = probe("rq-worker", env=env)
    assert missing.returncode == 1 and "no RQ worker" in missing.stderr
    connection = redis.Redis.from_url(redis_url)
    worker = Worker(["inference"], connection=connection)
    assert worker.hostname == socket.gethostname()
    worker.register_birth()
    try:
        assert probe("rq-worker", env=env).returncode == 0
    finally:
        worker.register_death()
    assert probe("rq-worker", env=env).returncode == 1
    assert probe("rq-worker", env={**os.environ, "REDIS_URL": "redis://127.0.0.1:9/0"}).returncode == 1


LOCKED_IMAGES = {
    "services/inference/Dockerfile": ["contract", "services/inference"],
    "services/frontend/Dockerfile": ["contract", "services/frontend"],
    "services/capture/Dockerfile": ["contract", "services/capture"],
}


@pytest.mark.parametrize("dockerfile", sorted(LOCKED_IMAGES))
def test_images_install_only_hash_locked_third_party_wheels(dockerfile):
    """Issue 17: transitive pins with hashes (scripts/lock-requirements.sh), checked by pip."""

    text = (REPO / dockerfile).read_text()
    lock_path = Path(dockerfile).parent / "requirements.lock"
    assert f"COPY {lock_path} requirements.lock" in text
    assert "pip wheel --require-hashes --wheel-dir /wheels -r requirements.lock" in text
    assert re.search(r"pip wheel --no-deps --wheel-dir /wheels ", text), "own packages: no unlocked dependencies"
    assert re.search(r"pip install --no-index --find-links=/wheels ", text), "the runtime installs from /wheels only"
    lock = (REPO / lock_path).read_text()
    assert "scripts/lock-requirements.sh" in lock
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", lock, re.MULTILINE))
    assert pins and all(
        re.search(rf"^{re.escape(name)}=={re.escape(version)} \\\n    --hash=sha256:[0-9a-f]{{64}}", lock, re.M)
        for name, version in pins.items()
    )
    normal = {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in pins.items()}
    for package in LOCKED_IMAGES[dockerfile]:
        project = tomllib.loads((REPO / package / "pyproject.toml").read_text())["project"]
        deps = list(project.get("dependencies", []))
        deps += project.get("optional-dependencies", {}).get("production", [])
        for dep in deps:
            if dep.startswith("classroom-") or "==" not in dep:
                continue
            name, version = dep.split(";")[0].strip().split("==")
            name = re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()
            assert normal.get(name) == version, f"{lock_path}: {name} must be locked at {version} (rerun the lock)"


def test_the_capture_images_example_command_is_one_the_demo_accepts():
    """The Dockerfile's `docker run ... classroom-demo ...` example parses with classroom-demo's own
    options (it passed `--token`, an option the demo never had: it takes a credentials file)."""
    import shlex

    from classroom_capture.demo import _demo_parser

    lines = iter((REPO / "services" / "capture" / "Dockerfile").read_text().splitlines())
    command = next(line for line in lines if "docker run" in line)
    while command.endswith("\\"):  # its continuation lines
        command = command.removesuffix("\\") + next(lines).lstrip("#")
    words = shlex.split(command.lstrip("# "))
    args = words[words.index("classroom-demo") + 1 :]
    parsed = _demo_parser().parse_args(args)  # an unknown option exits (SystemExit 2): the test fails
    assert parsed.server and parsed.credentials, args
