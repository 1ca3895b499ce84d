"""`docker compose up` for real: the README's first command, its containers and its promises.

Run it with `bash scripts/compose-e2e.sh` (it starts a private Docker Engine, builds the images and
the stand-ins, runs this file with COMPOSE_E2E=1 and tears everything down). Without COMPOSE_E2E=1
(the plain `pytest` of scripts/test.sh) this module is skipped: the script runs it on its own.

With the defaults (no .env) the tests, in order, check that: every service turns healthy; Redis and
the crop store publish no port and refuse commands without their password (the host reaches them
through the bridge); /readyz through the TLS proxy (verified against Caddy's local CA) names the
model version; the demo teacher logs in through the proxy in headless Chromium and sees the demo
class's students live (screenshot: artifacts/compose-e2e/); the students' /join page, its bundle,
model weights and .wasm come through the proxy, and a student joins with it in Chromium with a fake
camera, from our origin only, their faces stored with an emotion; observations posted while a worker
container is killed mid-stream are all stored, none twice (the ledger); `--scale worker=3` gives
three registered workers; the monitoring profile's Prometheus sees every target up; a known crop
pattern is found in no file the deployment persists (volumes, container logs); `restart`, `down` +
`up`, and backup + wipe + restore (deploy/backup.sh) keep accounts and results.

Stand-ins: where an upstream image cannot be pulled (no registry here), scripts/compose-engine.sh
builds one under the same name from Debian packages, and TF Serving is the project's gRPC stand-in
(tests/support/tfserving_server.py with the official protos): the first test prints which.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import random
import re
import ssl
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("ARTIFACTS", REPO / "artifacts" / "compose-e2e"))
CHROMIUM = "/usr/bin/chromium"
DEMO_STUDENTS = 12
SECRETS = "/run/secrets/classroom"
TEST_CLASS_STUDENT = "e2e-ledger"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("COMPOSE_E2E") != "1", reason="run by scripts/compose-e2e.sh (COMPOSE_E2E=1)"),
]

LONG_RUNNING = {"redis", "crop-store", "tfserving", "api", "worker", "dashboard", "proxy", "demo-agents"}
ONE_SHOTS = {"secrets-init", "demo-setup", "demo-ca"}


def progress(message: str) -> None:
    print(f"[compose-e2e] {message}", flush=True)


# --- docker compose ------------------------------------------------------------------------------------


def compose(*args: str, check: bool = True, timeout: float = 600, stdin: bytes | None = None) -> str:
    done = subprocess.run(["docker", "compose", *args], cwd=REPO, input=stdin, capture_output=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"docker compose {' '.join(args)} failed:\n{done.stdout.decode()}\n{done.stderr.decode()}")
    return done.stdout.decode()


def docker(*args: str, check: bool = True) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def containers(*services: str, all_: bool = True) -> list[dict]:
    out = compose("--profile", "monitoring", "ps", "--format", "json", *(["-a"] if all_ else []), *services)
    text = out.strip()
    if not text:
        return []
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines()]


def wait_until(check, timeout: float, what: str, interval: float = 2.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except (AssertionError, OSError, subprocess.SubprocessError) as error:
            value, last = None, error
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def stack_state() -> dict[str, list[tuple[str, str, int]]]:
    state: dict[str, list[tuple[str, str, int]]] = {}
    for c in containers():
        state.setdefault(c["Service"], []).append((c["State"], c.get("Health", ""), int(c.get("ExitCode", 0))))
    return state


def all_healthy(expect_workers: int | None = None) -> bool:
    state = stack_state()
    for service in LONG_RUNNING:
        entries = state.get(service, [])
        if not entries or any(s != "running" or h not in ("healthy",) for s, h, _ in entries):
            return False
    if expect_workers is not None and len(state["worker"]) != expect_workers:
        return False
    for service in ONE_SHOTS:
        entries = state.get(service, [])
        if not entries or any(s != "exited" or code != 0 for s, _, code in entries):
            return False
    return True


def up(*extra: str, workers: int | None = None) -> None:
    started = time.monotonic()
    compose("up", "-d", *extra, timeout=900)
    wait_until(lambda: all_healthy(workers), timeout=300, what="every service healthy", interval=3)
    progress(f"all services healthy {time.monotonic() - started:.0f}s after `up -d {' '.join(extra)}`")


def secret(service: str, name: str) -> str:
    return compose("exec", "-T", service, "cat", f"{SECRETS}/{name}").strip()


def container_ip(service: str, index: int = 1) -> str:
    cid = compose("ps", "-q", service).split()[index - 1]
    networks = json.loads(docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", cid))
    backend = next(v for k, v in networks.items() if k.endswith("_backend"))
    return backend["IPAddress"]


# --- HTTPS through the proxy ---------------------------------------------------------------------------


class Proxy:
    """HTTPS to the proxy's published port on 127.0.0.1, verified against Caddy's local root CA."""

    def __init__(self, port: int, ca_file: Path):
        import urllib3

        self.port = port
        self.pool = urllib3.HTTPSConnectionPool(
            "127.0.0.1",
            port,
            server_hostname="localhost",
            assert_hostname="localhost",
            ca_certs=str(ca_file),
            cert_reqs=ssl.CERT_REQUIRED,
            retries=False,
            timeout=20,
        )

    def request(self, method: str, path: str, body: dict | None = None, token: str | None = None):
        headers = {"Host": "localhost"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        return self.pool.request(method, path, body=data, headers=headers)


def https_port() -> int:
    return int(compose("port", "proxy", "443").strip().rsplit(":", 1)[1])


# --- the observations of this test (the only place that knows the wire format) ----------------------------


def crop_pattern(seed: int) -> bytes:
    """2,304 seeded random bytes: recognisable on disk, and incompressible, so an RDB file's LZF
    compression cannot hide them from the scan."""
    return random.Random(seed).randbytes(2304)


def observation(crop: bytes | None, at: float) -> dict:
    item = {"observation_id": str(uuid.uuid4()), "captured_at": at, "face_count": 1 if crop else 0}
    if crop:
        item["crop"] = base64.b64encode(crop).decode()
        item["head_yaw"], item["head_pitch"] = 3.0, -2.0
    return item


class Student:
    """Sends observations as one student through the proxy, with whatever credential this build uses.

    With per-student credentials (branch creds: `classroom-dashboard enrol` exists) the student is
    enrolled in the demo class and posts with their own credential, no student id in the body;
    before that, the demo class token and the student id in the body."""

    def __init__(self, proxy: Proxy, student: str):
        self.proxy, self.student = proxy, student
        enrol = ["exec", "-T", "dashboard", "with-secrets", "classroom-dashboard", "enrol"]
        self.per_student = "--student" in compose(*enrol, "--help", check=False)
        if self.per_student:
            printed = compose(*enrol, "--class-id", "demo", "--student", student)
            self.bearer = re.search(r"code (\S+)", printed).group(1)
        else:
            self.bearer = compose("exec", "-T", "demo-agents", "cat", "/var/lib/classroom/demo-token").strip()

    def post(self, observations: list[dict]) -> dict:
        body = {"observations": observations}
        if not self.per_student:
            body["student_id"] = self.student
        response = self.proxy.request("POST", "/v1/observations", body, self.bearer)
        assert response.status == 200, (response.status, response.data[:300])
        return json.loads(response.data)


# --- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack():
    """`docker compose up -d` with the defaults, and what the tests need to talk to it."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    up()
    port = https_port()
    ca = ARTIFACTS / "caddy-local-root.crt"
    ca.write_bytes(
        subprocess.run(
            ["docker", "compose", "exec", "-T", "proxy", "cat", "/data/caddy/pki/authorities/local/root.crt"],
            cwd=REPO,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    )
    yield {"proxy": Proxy(port, ca), "port": port}


@pytest.fixture(scope="module")
def redis_client(stack):
    """The main Redis from the host, through the backend bridge (it publishes no port)."""
    import redis

    def connect():
        return redis.Redis(
            host=container_ip("redis"), port=6379, password=secret("redis", "redis-password"), socket_timeout=10
        )

    return connect


def demo_password() -> str:
    """Exactly the command that `docker compose logs demo-setup` tells the user to run (its last line:
    `run` may first print Compose's build progress for images with pull_policy: build)."""
    return (
        compose(
            "run", "--rm", "--no-deps", "-T", "--entrypoint", "cat", "demo-setup", f"{SECRETS}/demo-teacher-password"
        )
        .strip()
        .splitlines()[-1]
    )


def stored(redis_client, student: str) -> list[str]:
    from classroom_contract import keys

    members = redis_client().zrange(keys.student_series("demo", student), 0, -1)
    return [json.loads(m)["observation_id"] for m in members]


def browser_sees_demo_class(port: int, password: str, screenshot: Path | None = None) -> int:
    """Logs in as the demo teacher through the proxy, opens the demo class; returns the live tiles."""
    from playwright.sync_api import expect, sync_playwright

    from tests.support.frontend import browser_login

    base = f"https://localhost:{port}"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--host-resolver-rules=MAP localhost 127.0.0.1",  # traffic stays on loopback
            ],
        )
        try:
            # TLS itself is verified against the local CA in test_readyz...; Chromium has no way to
            # take that CA without a certificate database, so here it accepts it.
            page = browser.new_page(viewport={"width": 1280, "height": 800}, ignore_https_errors=True)
            browser_login(page, f"{base}/classes/demo", "demo", password)
            expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=20_000)
            # The demo's simulated students (the tests add students of their own to the class too).
            tiles = page.locator("#tiles .tile[data-student^='student-']")
            expect(tiles).to_have_count(DEMO_STUDENTS, timeout=60_000)
            if screenshot:
                page.screenshot(path=str(screenshot), full_page=True)
            return tiles.count()
        finally:
            browser.close()


# --- the tests, in the order a person would try them ----------------------------------------------------


def test_every_service_turns_healthy_and_stand_ins_say_so(stack):
    state = stack_state()
    assert LONG_RUNNING <= state.keys() and ONE_SHOTS <= state.keys(), state
    for service in sorted(state):
        image = compose("images", "--format", "json", service)
        progress(f"{service}: {state[service]}")
    for image in sorted(set(compose("config", "--images").split())):
        label = docker("image", "inspect", "-f", '{{index .Config.Labels "classroom.stand-in"}}', image).strip()
        if label and label != "<no value>":
            progress(f"STAND-IN {image}: {label}")
    tfs = docker("image", "inspect", "-f", '{{index .Config.Labels "classroom.stand-in"}}', "tensorflow/serving:2.21.0")
    if "tfserving_server.py" in tfs:
        progress("NOTE: TF Serving here is the project's gRPC stand-in, not TensorFlow Serving")
        assert "STAND-IN tensorflow_model_server" in compose("logs", "tfserving")
    del image


def test_redis_and_crop_store_publish_nothing_and_need_their_password(stack):
    import redis

    for service, password_file in (("redis", "redis-password"), ("crop-store", "crop-store-password")):
        for c in containers(service):
            assert not c.get("Publishers") or all(not p.get("PublishedPort") for p in c["Publishers"]), c
        host = container_ip(service)
        # Reachable from this host through the bridge: only the password protects it.
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host=host, port=6379, socket_timeout=5).ping()
        assert redis.Redis(host=host, port=6379, password=secret(service, password_file), socket_timeout=5).ping()
        progress(f"{service}: no published port; from the host {host}:6379 refuses commands without its password")


def test_each_container_gets_only_the_secrets_it_uses(stack):
    expected = {
        "api": {"redis-password", "crop-store-password"},
        "worker": {"redis-password", "crop-store-password"},
        "dashboard": {"redis-password", "crop-store-password", "secret-key"},
        "redis": {"redis-password"},
        "crop-store": {"crop-store-password"},
    }
    for service, files in expected.items():
        assert set(compose("exec", "-T", service, "ls", SECRETS).split()) == files, service
    for service in ("api", "worker"):
        env = compose("exec", "-T", service, "with-secrets", "env")
        assert "SECRET_KEY=" not in env and "DEMO_TEACHER_PASSWORD=" not in env
        assert "REDIS_URL=redis://" in env and "CROP_STORE_URL=redis://" in env
    assert secret("dashboard", "secret-key")


def test_readyz_through_the_tls_proxy_names_the_model_version(stack):
    response = stack["proxy"].request("GET", "/readyz")
    body = json.loads(response.data)
    assert response.status == 200 and body["ready"] is True, body
    versions = sorted(p.name for p in (REPO / "models" / "emotion").iterdir() if p.name.isdigit())
    assert body["model_versions"] and str(body["model_versions"][-1]) == versions[-1], body
    progress(f"/readyz over HTTPS (Caddy local CA verified): {body}")


def test_demo_teacher_logs_in_through_the_proxy_and_sees_the_demo_class_live(stack):
    shot = ARTIFACTS / "dashboard.png"
    tiles = browser_sees_demo_class(stack["port"], demo_password(), shot)
    assert tiles == DEMO_STUDENTS and shot.stat().st_size > 10_000
    progress(f"demo teacher sees {tiles} live students; screenshot {shot}")


def join_page_assets_through_the_proxy(proxy: Proxy) -> dict[str, int]:
    """GET /join and every file it needs through Caddy; returns the sizes. Every URL in the page is
    relative (this origin), and the model weights are as long as their manifests say."""
    page = proxy.request("GET", "/join")
    assert page.status == 200, (page.status, page.data[:300])
    assert page.headers["Content-Type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    # the page's own policy, not the proxy's default: the URL carries the student's credential
    assert page.headers["Referrer-Policy"] == "no-referrer", page.headers["Referrer-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp, csp
    links = re.findall(r'(?:src|href)="([^"]+)"', page.data.decode())
    assert "join/assets/join.js" in links and not [u for u in links if re.match(r"[a-z]+:|/", u)], links

    def get(path: str) -> bytes:
        response = proxy.request("GET", path)
        assert response.status == 200, (path, response.status)
        return response.data

    sizes = {link: len(get(f"/{link}")) for link in links}
    assert sizes["join/assets/join.js"] > 300_000, "the bundle has the detector (tfjs and YuNet) in it"
    manifest = json.loads(get("/join/assets/model/yunet/yunet.json"))
    weights = get(f"/join/assets/model/yunet/{manifest['weights']}")
    assert len(weights) == 4 * sum(math.prod(t["shape"]) for t in manifest["tensors"]) > 0
    assert hashlib.sha256(weights).hexdigest() == manifest["weights_sha256"]
    sizes["yunet"] = len(weights)
    for name in ("tfjs-backend-wasm.wasm", "tfjs-backend-wasm-simd.wasm"):
        wasm = proxy.request("GET", f"/join/assets/wasm/{name}")
        assert wasm.status == 200 and wasm.headers["Content-Type"] == "application/wasm", (name, wasm.status)
        assert wasm.data[:4] == b"\0asm"
        sizes[name] = len(wasm.data)
    return sizes


def fake_camera(path: Path) -> Path:
    """10 s of a webcam (FER2013 faces placed in frames) for Chromium's fake capture device."""
    from classroom_capture.synthetic import FrameMaker, load_fer_faces

    from tests.support.join import FPS, write_y4m

    maker = FrameMaker(load_fer_faces(), seed=5, no_face_ratio=0.0, hold=FPS, fixed_scene=True)
    write_y4m(path, [maker.next().image for _ in range(10 * FPS)])
    return path


def test_join_page_is_served_through_the_proxy_and_a_student_joins_from_our_origin_only(stack, redis_client, tmp_path):
    """Issue 15: a fresh `docker compose up` serves the students' /join page (built in the API image).
    The page, its bundle, model weights and .wasm through Caddy; then a student opens their join link
    in Chromium with a fake camera, agrees, and the worker stores their faces with an emotion, while
    every request to any other origin is blocked (none is made)."""
    from classroom_contract import store
    from playwright.sync_api import expect, sync_playwright

    from tests.support.procs import CHROMIUM_ARGS

    sizes = join_page_assets_through_the_proxy(stack["proxy"])
    progress(f"/join through the proxy: page, bundle, weights and .wasm from this origin {sizes}")

    student = Student(stack["proxy"], "e2e-join-page")
    assert student.per_student, "join links need per-student credentials"
    camera = fake_camera(tmp_path / "camera.y4m")
    origin = f"https://localhost:{stack['port']}"
    foreign: list[str] = []

    def only_our_origin(route):
        url = urlsplit(route.request.url)  # (Chromium drops the port when it is 443)
        if (url.scheme, url.hostname, url.port or 443) == ("https", "localhost", stack["port"]):
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                *CHROMIUM_ARGS,
                "--host-resolver-rules=MAP localhost 127.0.0.1",  # traffic stays on loopback
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-video-capture={camera}",
            ],
        )
        try:
            # TLS is verified against the local CA by the Proxy requests above; Chromium accepts it.
            context = browser.new_context(ignore_https_errors=True)
            context.route("**/*", only_our_origin)
            page = context.new_page()
            page.goto(f"{origin}/join#{student.bearer}")
            expect(page.locator("#student-name")).to_have_text("e2e-join-page")
            page.locator("#agree").click()
            expect(page.locator("#state")).to_have_text("SHARING with your class")
            wait_until(lambda: int(page.locator("#sent").inner_text()) >= 6, timeout=120, what="6 observations sent")
            page.locator("#toggle").click()
            expect(page.locator("#state")).to_have_text("PAUSED: nothing is being sent")
            sent = int(page.locator("#sent").inner_text())
        finally:
            browser.close()
    assert foreign == []

    def results():
        return store.student_series(redis_client(), "demo", "e2e-join-page")

    wait_until(lambda: len(results()) >= sent, timeout=120, what=f"the worker to store the {sent} observations")
    faces = [r for r in results() if r.face_count]
    assert faces and all(r.emotion is not None for r in faces), results()
    progress(f"a student joined through the proxy: {sent} sent, {len(faces)} faces stored with an emotion")


def test_killing_a_worker_mid_stream_loses_nothing_and_doubles_nothing(stack, redis_client):
    student = Student(stack["proxy"], TEST_CLASS_STUDENT)
    sent: list[str] = []
    workers = compose("ps", "-q", "worker").split()
    for i in range(60):
        batch = [observation(crop_pattern(i * 8 + k), time.time()) for k in range(8)]
        student.post(batch)
        sent += [o["observation_id"] for o in batch]
        if i == 20:  # a crash, not a stop: SIGKILL to the worker's process from the host
            pid = docker("inspect", "-f", "{{.State.Pid}}", workers[0]).strip()
            os.kill(int(pid), 9)
            progress(f"killed worker container {workers[0][:12]} (pid {pid}) mid-stream")
        time.sleep(0.05)
    wait_until(
        lambda: len(set(stored(redis_client, TEST_CLASS_STUDENT))) >= len(sent),
        timeout=300,
        what=f"all {len(sent)} observations stored",
    )
    ids = stored(redis_client, TEST_CLASS_STUDENT)
    assert set(ids) == set(sent) and len(ids) == len(sent), (len(ids), len(set(ids)), len(sent))
    wait_until(all_healthy, timeout=180, what="the killed worker back and healthy")
    progress(f"ledger: {len(sent)} sent = {len(ids)} stored, 0 lost, 0 doubled; killed worker restarted")


def test_scale_to_three_workers(stack, redis_client):
    from rq import Worker

    up("--scale", "worker=3", workers=3)
    wait_until(lambda: len(Worker.all(connection=redis_client())) == 3, timeout=120, what="3 RQ workers registered")
    progress("--scale worker=3: three workers healthy and registered")


def test_monitoring_profile_scrapes_every_target(stack):
    compose("--profile", "monitoring", "up", "-d", "prometheus", timeout=300)

    def targets():
        raw = compose(
            "--profile",
            "monitoring",
            "exec",
            "-T",
            "prometheus",
            "wget",
            "-qO-",
            "http://127.0.0.1:9090/api/v1/targets",
        )
        active = json.loads(raw)["data"]["activeTargets"]
        jobs = {}
        for t in active:
            jobs.setdefault(t["labels"]["job"], []).append(t["health"])
        if jobs.get("worker") and len(jobs["worker"]) == 3 and all(h == "up" for hs in jobs.values() for h in hs):
            return jobs
        return None

    jobs = wait_until(targets, timeout=120, what="Prometheus reporting api, 3 workers and tfserving up", interval=5)
    assert set(jobs) == {"api", "worker", "tfserving"}
    rules = json.loads(
        compose(
            "--profile", "monitoring", "exec", "-T", "prometheus", "wget", "-qO-", "http://127.0.0.1:9090/api/v1/rules"
        )
    )
    names = {r["name"] for g in rules["data"]["groups"] for r in g["rules"]}
    assert {"InferenceQueueBacklog", "InferenceJobsFailing", "ModelErrors", "IngestLatencyHigh"} <= names
    progress(f"Prometheus: every target up {jobs}; {len(names)} alert rules loaded")


def test_no_crop_reaches_any_file_the_deployment_persists(stack, redis_client):
    """Issue 14, finding 1: known crop patterns through the proxy, then every persisted byte scanned."""
    student = Student(stack["proxy"], "e2e-crop-scan")
    patterns = [crop_pattern(100_000 + i) for i in range(16)]
    sent = []
    for i in range(0, len(patterns), 8):
        batch = [observation(p, time.time()) for p in patterns[i : i + 8]]
        student.post(batch)
        sent += [o["observation_id"] for o in batch]
    wait_until(lambda: set(stored(redis_client, "e2e-crop-scan")) >= set(sent), timeout=120, what="crops predicted")
    # A fresh RDB snapshot too. No AOF rewrite: the append-only history as Redis keeps it is exactly
    # where crops stayed before the crop store (a rewrite would drop deleted keys and hide them).
    client = redis_client()
    client.bgsave()
    wait_until(lambda: client.info("persistence")["rdb_bgsave_in_progress"] == 0, timeout=60, what="the RDB snapshot")
    needles = [p for p in patterns] + [base64.b64encode(p) for p in patterns]
    needles += [p[:64] for p in patterns]  # a fragment is a leak too
    roots = []
    for volume in docker("volume", "ls", "-q", "--filter", "label=com.docker.compose.project=classroom").split():
        roots.append(Path(docker("volume", "inspect", "-f", "{{.Mountpoint}}", volume).strip()))
    for cid in compose("--profile", "monitoring", "ps", "-a", "-q").split():
        roots.append(Path(docker("inspect", "-f", "{{.LogPath}}", cid).strip()))
    scanned = 0
    for root in roots:
        for path in [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]:
            data = path.read_bytes()
            scanned += 1
            if any(needle in data for needle in needles):  # (no assert: pytest would print the file)
                pytest.fail(f"crop bytes found in {path}")
    progress(f"no crop pattern in {scanned} files of {len(roots)} volumes and container logs")


def test_restart_and_down_up_keep_accounts_and_results(stack, redis_client):
    before = set(stored(redis_client, TEST_CLASS_STUDENT))
    assert before
    password = demo_password()
    compose("restart", timeout=600)
    wait_until(lambda: all_healthy(3), timeout=300, what="every service healthy after restart", interval=3)
    assert set(stored(redis_client, TEST_CLASS_STUDENT)) == before
    assert browser_sees_demo_class(https_port(), password) == DEMO_STUDENTS
    progress("docker compose restart: teacher logs in, results kept")
    compose("down", timeout=600)
    up()
    assert set(stored(redis_client, TEST_CLASS_STUDENT)) == before
    assert browser_sees_demo_class(https_port(), password) == DEMO_STUDENTS
    progress("docker compose down + up: teacher logs in, results kept")


def test_backup_wipe_restore_keeps_accounts_and_results(stack, redis_client, tmp_path):
    before = set(stored(redis_client, TEST_CLASS_STUDENT))
    password = demo_password()
    backup = tmp_path / "backup"
    run = subprocess.run(
        ["bash", "deploy/backup.sh", "backup", str(backup)], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stdout + run.stderr
    compose("down", "-v", timeout=600)
    progress("backed up, then `docker compose down -v` (every volume gone)")
    run = subprocess.run(
        ["bash", "deploy/backup.sh", "restore", str(backup)], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stdout + run.stderr
    up()
    assert set(stored(redis_client, TEST_CLASS_STUDENT)) == before
    assert demo_password() == password
    assert browser_sees_demo_class(https_port(), password) == DEMO_STUDENTS
    progress("restored: same secrets, teacher logs in, results kept")
