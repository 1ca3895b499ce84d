"""Secrets never logged or stored in clear, and no crop left in Redis once predicted.

Real processes on loopback: Redis, `classroom-api` and `classroom-worker` (local SavedModel) at
DEBUG, and the dashboard under gunicorn with its access log. With a known student credential, teacher
password and session key, the test ingests real faces, lets the worker predict them, logs in
(once wrongly), reads the class, its roster and join cards and issues the student a new credential
in the UI; then it reads every process log
and every Redis key (RQ job payloads decompressed) and looks for each secret and each crop.
"""

from __future__ import annotations

import base64
import re
import secrets
import urllib.parse

import pytest
import redis
import requests
from classroom_contract import store, tokens
from classroom_dashboard import accounts, credentials

from tests.support.inference import (
    Api,
    Worker,
    crops_left,
    fer_faces,
    observation,
    post,
    service_env,
    worker_done,
)
from tests.support.procs import BIN, Proc, free_port, http_ok, wait_until
from tests.support.redis_dump import decompressed, values_of

pytestmark = pytest.mark.slow

CLASS = f"sec-{secrets.token_hex(3)}"
TEACHER = f"teacher-{secrets.token_hex(3)}"  # the session's Redis is shared: names of our own


def _variants(secret: str) -> list[bytes]:
    """The forms in which a secret could leak: as is, URL-quoted, base64 (as in a Basic header)."""
    forms = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}
    forms.add(base64.b64encode(f"{TEACHER}:{secret}".encode()).decode())
    return [f.encode() for f in forms]


def _redis_dump(client: redis.Redis) -> dict[bytes, bytes]:
    """Every key's content as bytes; RQ job payloads (zlib-compressed pickles) decompressed."""
    dump = {}
    for key in client.scan_iter(count=1000):
        expanded = []
        for part in values_of(client, key):
            expanded.append(part)
            if (plain := decompressed(part)) is not None:
                expanded.append(plain)
        dump[key] = b"\x00".join([key, *expanded])
    return dump


@pytest.fixture(scope="module")
def system(redis_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("secrets")
    api = Api(tmp, redis_server, log_level="DEBUG")
    procs = [api.proc]
    try:
        worker = Worker(tmp, redis_server, log_level="DEBUG")
        procs.append(worker.proc)
        port = free_port()
        secret_key = secrets.token_hex(32)
        env = {
            **service_env(redis_server),
            "SECRET_KEY": secret_key,
            "DASHBOARD_ENV": "production",
            "SESSION_COOKIE_SECURE": "0",  # plain HTTP on loopback
            "SSE_BLOCK_MS": "200",
            "SSE_MAX_SECONDS": "1",
        }
        args = [str(BIN / "gunicorn"), "-k", "gthread", "--threads", "4", "-w", "1", "--no-control-socket"]
        args += ["--log-level", "debug", "--access-logfile", "-", "-b", f"127.0.0.1:{port}"]
        dashboard = Proc([*args, "classroom_dashboard:create_app()"], tmp / "dashboard.log", env=env)
        procs.append(dashboard)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: http_ok(url + "/healthz"), timeout=30, what="dashboard to serve")
        yield {"api": api, "worker": worker, "dashboard": url, "secret_key": secret_key, "procs": procs}
    finally:
        for proc in reversed(procs):
            proc.stop()


def test_secrets_are_never_logged_nor_stored_in_clear_and_crops_are_gone(system, redis_server):
    client = redis.Redis.from_url(redis_server)
    password = "pw-" + secrets.token_urlsafe(18)
    accounts.create_teacher(client, TEACHER, password)
    accounts.create_class(client, TEACHER, CLASS, "Class 7b")
    token = credentials.enrol(client, system["secret_key"], CLASS, "s1", "Student One")  # as the roster does

    # ingest: real faces for the worker, an absence stored at once; a resend; a wrong token
    faces = fer_faces(4)
    batch = {"observations": [observation(f) for f in faces] + [observation(None)]}
    url = system["api"].url + "/v1/observations"
    assert post(url, batch, token).body == {"accepted": 5, "duplicates": 0}
    assert post(url, batch, token).body == {"accepted": 0, "duplicates": 5}
    assert post(url, batch, tokens.new_credential()).status == 401
    wait_until(
        lambda: len([r for r in store.student_series(client, CLASS, "s1") if r.emotion]) == 4,
        timeout=60,
        interval=0.2,
        what="the worker to predict the four faces",
    )
    wait_until(lambda: not crops_left(), timeout=10, what="crops to be deleted from the crop store")

    # dashboard: a wrong login, a right one, the class page, JSON, SSE, CSV, the roster, a credential rotation
    web = requests.Session()
    base = system["dashboard"]
    page = web.get(base + "/auth/login", timeout=10).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    wrong = web.post(base + "/auth/login", data={"username": TEACHER, "password": password + "!", "csrf_token": csrf})
    assert wrong.status_code == 401
    right = web.post(base + "/auth/login", data={"username": TEACHER, "password": password, "csrf_token": csrf})
    assert right.status_code == 200 and right.url.endswith("/")
    pages = ("", "/roster", "/roster/print", "/export.csv")
    for path in [f"/classes/{CLASS}{page}" for page in pages] + [f"/api/classes/{CLASS}/students"]:
        assert web.get(base + path, timeout=10).status_code == 200, path
    assert web.get(base + f"/api/classes/{CLASS}/events", timeout=10).status_code == 200
    assert requests.get(base + f"/api/classes/{CLASS}/students", auth=(TEACHER, password), timeout=10).ok
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', web.get(base + "/").text).group(1)
    rotated = web.post(base + f"/classes/{CLASS}/roster/s1/rotate", data={"csrf_token": csrf}, timeout=10)
    new_token = re.search(r'<code class="credential">([^<]+)</code>', rotated.text).group(1)
    assert post(url, {"observations": [observation(None)]}, new_token).status == 200
    assert post(url, {"observations": [observation(None)]}, token).status == 401
    # each process's log of the last thing it did above, waited for instead of a pause: the API's
    # second 401, the dashboard's access line of the rotation, the worker's job done
    api_log, worker_log, dashboard_log = system["procs"]
    wait_until(lambda: api_log.output().count('/v1/observations HTTP/1.1" 401') >= 2, timeout=10, what="API log")
    wait_until(lambda: f"/classes/{CLASS}/roster/s1/rotate" in dashboard_log.output(), timeout=10, what="access log")
    wait_until(lambda: worker_done(worker_log, client), timeout=10, what="the worker's log of its last job")

    secrets_by_name = {
        "student credential": token,
        "student credential (printed form)": tokens.display(token),
        "rotated student credential": tokens.normalise(new_token),
        "rotated student credential (printed form)": new_token,
        "teacher password": password,
        "dashboard SECRET_KEY": system["secret_key"],
    }
    logs = {proc.log_path.name: proc.log_path.read_bytes() for proc in system["procs"]}
    assert all(logs.values()), "a process wrote no log at all: the check would prove nothing"
    assert b"POST /auth/login" in logs["dashboard.log"] and b"POST /v1/observations" in b"".join(logs.values())
    dump = _redis_dump(client)
    for name, secret in secrets_by_name.items():
        for form in _variants(secret):
            for log_name, text in logs.items():
                assert form not in text, f"{name} appears in {log_name}"
            leaked = [key for key, content in dump.items() if form in content]
            assert not leaked, f"{name} stored in clear in Redis under {leaked[:3]}"

    # no crop anywhere in Redis once predicted: no crops key, no pixels, no base64 of them
    assert not [k for k in dump if k.startswith(b"classroom:crops:")]
    everything = b"".join(dump.values())
    for face in faces:
        raw = face.tobytes()
        for needle in (raw[:64], raw[1000:1064], base64.b64encode(raw)[:88]):
            assert needle not in everything, "a crop (or part of one) is still in Redis"
    assert any(b":seen:" in k for k in dump)  # the scan did see the ingest's keys
    client.close()
