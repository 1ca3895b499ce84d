"""Issue #14, finding 1: no crop pixels are recoverable from any file on disk.

Real processes on loopback: a main Redis with AOF (appendfsync always) AND RDB snapshots on, in its
own temp dir, as production runs it; the crop store, a second redis-server with persistence off;
`classroom-api` and a `classroom-worker` (local SavedModel) at DEBUG. Crops with a distinctive
2,304-byte pattern go through the API, wait in the queue (an RDB snapshot is taken then), are
predicted, and then Redis is made to write everything it has (BGSAVE, BGREWRITEAOF). Every file in
both Redis data dirs and every process log is then scanned for the pattern, for long slices of
it and for its base64 form (the wire encoding).

Also: crops still queued when the crop store restarts are not lost - each observation is stored
with presence and head pose and emotion None; and the services refuse a crop store that persists.
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import numpy as np
import pytest
import redis
from classroom_contract import CROP_SIZE, store, tokens

from tests.support.inference import Api, Worker, get, observation, post, service_env, worker_done
from tests.support.procs import BIN, Proc, free_port, start_redis, wait_until

pytestmark = pytest.mark.slow

#: A crop no camera would produce: 2,304 (48x48) bytes of a fixed-seed random stream. Random, so
#: that an RDB snapshot's LZF compression cannot hide it (a regular pattern would compress away
#: and the scan would miss a crop that is there).
PATTERN = np.random.default_rng(14).integers(0, 256, CROP_SIZE * CROP_SIZE, dtype=np.uint8).tobytes()


def _needles(raw: bytes) -> dict[str, bytes]:
    """The whole crop, three 64-byte slices of it, and slices of its base64 (the JSON wire form)."""
    encoded = base64.b64encode(raw)
    needles = {"whole crop": raw}
    needles.update({f"pixels[{i}:{i + 64}]": raw[i : i + 64] for i in (0, 1000, 2240)})
    needles.update({f"base64[{i}:{i + 88}]": encoded[i : i + 88] for i in (0, 400, 2000)})
    return needles


def _files(*folders: Path) -> list[Path]:
    return [path for folder in folders for path in folder.rglob("*") if path.is_file()]


def _leaks(folders, when: str) -> list[str]:
    """Where a piece of the pattern crop is in any file under `folders` now, named with `when`."""
    found = []
    for path in _files(*folders):
        content = path.read_bytes()
        found += [f"{when}: {name} in {path.name}" for name, needle in _needles(PATTERN).items() if needle in content]
    return found


def _wait_persisted(client: redis.Redis) -> None:
    """Until no BGSAVE / AOF rewrite runs (ours, or one `save 1 1` started by itself)."""

    def idle() -> bool:
        info = client.info("persistence")
        return not info["rdb_bgsave_in_progress"] and not info["aof_rewrite_in_progress"]

    wait_until(idle, timeout=30, what="Redis to finish writing its files")


def _persist(client: redis.Redis, command, counter: str) -> None:
    """Run BGSAVE / BGREWRITEAOF to completion (after any background save already running).

    `counter` (INFO persistence: rdb_saves, aof_rewrites) rises when Redis starts the child, even one
    it scheduled to run after a save in progress; then no child running means this one is done.
    """
    _wait_persisted(client)
    before = client.info("persistence")[counter]
    command()
    wait_until(lambda: client.info("persistence")[counter] > before, timeout=30, what=f"Redis to start ({counter})")
    _wait_persisted(client)


@pytest.fixture
def deployment(tmp_path):
    """A persisting main Redis, the crop store, the API; `start_worker()` adds the worker later."""
    main_dir, crop_dir, logs = tmp_path / "redis-main", tmp_path / "crop-store", tmp_path / "logs"
    for folder in (main_dir, crop_dir, logs):
        folder.mkdir()
    persist = ["--appendonly", "yes", "--appendfsync", "always", "--save", "1 1"]
    main_port, crop_port = free_port(), free_port()
    procs = [start_redis(main_port, main_dir, extra=persist), start_redis(crop_port, crop_dir)]
    urls = {"redis_url": f"redis://127.0.0.1:{main_port}/0", "crop_store_url": f"redis://127.0.0.1:{crop_port}/0"}
    env = {"log_level": "DEBUG", "crop_store_url": urls["crop_store_url"]}
    api = Api(logs, urls["redis_url"], **env)
    procs.append(api.proc)
    client = redis.Redis.from_url(urls["redis_url"])
    class_id = f"disk-{secrets.token_hex(3)}"
    store.create_class(client, class_id, "Class", "teacher")
    enrolled: dict[str, str] = {}

    def credential(student_id: str) -> str:
        """The student's own credential, enrolling them on first use."""
        if student_id not in enrolled:
            enrolled[student_id] = tokens.new_credential()
            store.enrol_student(client, class_id, student_id, student_id, enrolled[student_id])
        return enrolled[student_id]

    def start_worker():
        worker = Worker(logs, urls["redis_url"], **env)
        procs.append(worker.proc)
        return worker

    yield {
        "api": api,
        "client": client,
        "class_id": class_id,
        "credential": credential,
        "dirs": (main_dir, crop_dir, logs),
        "procs": procs,
        "start_worker": start_worker,
        "crop_port": crop_port,
        "crop_dir": crop_dir,
        **urls,
    }
    client.close()
    for proc in reversed(procs):
        proc.stop()


def test_no_crop_pixels_reach_any_file_on_disk(deployment):
    client, class_id, credential = deployment["client"], deployment["class_id"], deployment["credential"]
    url = deployment["api"].url + "/v1/observations"
    crop = np.frombuffer(PATTERN, np.uint8).reshape(CROP_SIZE, CROP_SIZE)
    for i in range(4):
        batch = {"observations": [observation(crop) for _ in range(3)]}
        assert post(url, batch, credential(f"s{i}")).body == {"accepted": 3, "duplicates": 0}
    # queued, not predicted yet: an RDB snapshot now would catch crops kept in the main Redis
    _persist(client, client.bgsave, "rdb_saves")
    leaks = _leaks(deployment["dirs"], "queued, after BGSAVE")

    deployment["start_worker"]()
    wait_until(
        lambda: (
            sum(len([r for r in store.student_series(client, class_id, f"s{i}") if r.emotion]) for i in range(4)) == 12
        ),
        timeout=120,
        interval=0.3,
        what="the worker to predict the twelve pattern crops",
    )
    # predicted and deleted: the AOF's history (rewritten only past 64 MB) would still hold them
    leaks += _leaks(deployment["dirs"], "predicted")
    _persist(client, client.bgrewriteaof, "aof_rewrites")
    _persist(client, client.bgsave, "rdb_saves")
    worker = deployment["procs"][-1]
    wait_until(lambda: worker_done(worker, client), timeout=30, what="the worker's log of its last job")
    leaks += _leaks(deployment["dirs"], "after BGREWRITEAOF + BGSAVE")

    files = _files(*deployment["dirs"])
    assert any(f.name.endswith(".incr.aof") for f in files) and any(f.suffix == ".rdb" for f in files), (
        f"the main Redis wrote no AOF or RDB, so the scan would prove nothing: {[f.name for f in files]}"
    )
    assert any(b"POST /v1/observations" in f.read_bytes() for f in files), "no API access log was scanned"
    assert not leaks, f"crop pixels on disk ({len(leaks)}): {leaks[:8]}"


def test_crops_queued_when_the_crop_store_restarts_are_stored_without_emotion(deployment):
    client, class_id = deployment["client"], deployment["class_id"]
    token = deployment["credential"]("lost")
    url = deployment["api"].url + "/v1/observations"
    crop = np.frombuffer(PATTERN, np.uint8).reshape(CROP_SIZE, CROP_SIZE)
    sent = [observation(crop, head_yaw=10.0 * i, head_pitch=-5.0) for i in range(5)]
    assert post(url, {"observations": sent}, token).body == {"accepted": 5, "duplicates": 0}

    crop_store = next(p for p in deployment["procs"] if f"redis-{deployment['crop_port']}" in p.log_path.name)
    crop_store.stop()  # the crop store goes down and comes back empty (memory only)
    ready = get(deployment["api"].url + "/readyz")
    assert ready.status == 503 and ready.body["crop_store"] is False and ready.body["redis"] is True
    during = [observation(crop)]  # sent while it is down: refused, nothing committed, resent later
    assert post(url, {"observations": during}, token).status == 503
    deployment["procs"].append(start_redis(deployment["crop_port"], deployment["crop_dir"]))
    assert post(url, {"observations": during}, token).body == {"accepted": 1, "duplicates": 0}

    worker = deployment["start_worker"]()
    wait_until(
        lambda: len(store.student_series(client, class_id, "lost")) == 6,
        timeout=120,
        interval=0.3,
        what="the five observations whose crops were lost, and the one resent, to be stored",
    )
    results = {r.observation_id: r for r in store.student_series(client, class_id, "lost")}
    for i, o in enumerate(sent):
        result = results[o["observation_id"]]
        assert result.emotion is None and result.probabilities is None, result
        assert result.face_count == 1 and result.head_yaw == 10.0 * i and result.head_pitch == -5.0
    assert results[during[0]["observation_id"]].emotion  # its crop arrived after the restart
    assert "5 crops gone from the crop store; stored without emotion" in worker.proc.output()
    # and a resend is still a duplicate: stored once, not twice
    assert post(url, {"observations": sent}, token).body == {"accepted": 0, "duplicates": 5}
    assert len(store.student_series(client, class_id, "lost")) == 6


@pytest.mark.parametrize("program", ["classroom-api", "classroom-worker"])
def test_services_refuse_a_crop_store_that_persists(tmp_path, redis_url, program):
    crop_port = free_port()
    persisting = start_redis(crop_port, tmp_path, extra=["--appendonly", "yes"])
    crop_store_url = f"redis://127.0.0.1:{crop_port}/0"
    try:
        env = service_env(redis_url, crop_store_url=crop_store_url, api_port=free_port())
        refused = Proc([str(BIN / program)], tmp_path / f"{program}.log", env=env)
        try:
            refused.popen.wait(90)
        finally:
            refused.stop()
        output = refused.log_path.read_text()
        assert refused.popen.returncode == 2, output
        assert "refusing to start" in output and "appendonly is yes" in output
        assert "CROP_STORE_ALLOW_PERSISTENCE=1" in output

        env["CROP_STORE_ALLOW_PERSISTENCE"] = "1"  # the documented override: starts, with a warning
        allowed = Proc([str(BIN / program)], tmp_path / f"{program}-allowed.log", env=env)
        try:
            wait_until(
                lambda: "Starting anyway: CROP_STORE_ALLOW_PERSISTENCE is set" in allowed.output(),
                timeout=90,
                what=f"{program} to start with the override",
            )
            assert allowed.alive(), allowed.output()
        finally:
            allowed.stop()
    finally:
        persisting.stop()


def test_persistence_check_fails_closed_where_config_is_disabled(tmp_path):
    """A managed Redis may disable CONFIG: the RDB schedule cannot be read, so it counts as persisting."""
    from classroom_inference.cropstore import CropStorePersists, check_crop_store, persistence
    from classroom_inference.settings import Settings

    port = free_port()
    hidden = start_redis(port, tmp_path, extra=["--rename-command", "CONFIG", ""])
    client = redis.Redis.from_url(f"redis://127.0.0.1:{port}/0")
    try:
        assert persistence(client) == ["CONFIG GET is not allowed, so the RDB `save` schedule cannot be checked"]
        with pytest.raises(CropStorePersists, match="CROP_STORE_ALLOW_PERSISTENCE=1"):
            check_crop_store(Settings(), client)
        check_crop_store(Settings(crop_store_allow_persistence=True), client)  # the override: a warning only
    finally:
        client.close()
        hidden.stop()
    rdb = start_redis(port, tmp_path, extra=["--save", "3600 1"])
    client = redis.Redis.from_url(f"redis://127.0.0.1:{port}/0")
    try:
        assert persistence(client) == ['RDB snapshots are on (save "3600 1")']
    finally:
        client.close()
        rdb.stop()
