"""Soak run: the real stack under classroom load through a schedule of faults, then a nothing-lost ledger.

    python -m bench.soak --agents 200 --minutes 10 --out reports/soak

What runs, all as real processes on 127.0.0.1 (issue #7):
- a private redis-server with AOF (`appendfsync always`), so a Redis restart loses nothing committed;
- the crop store: a second redis-server with persistence off (CROP_STORE_URL), where crops wait;
- `classroom-api` (uvicorn) and `--workers` `classroom-worker` processes with PREDICTOR_BACKEND=tfserving;
- the stand-in TF Serving of tests/support/tfserving_server.py as its own process: a real gRPC server
  speaking TF Serving's PredictionService/ModelService with the official protos, backed by the real
  SavedModel. The `tensorflow_model_server` binary itself cannot be installed on this machine (no
  package or image for it here), so this stand-in is what the workers talk to;
- N simulated agents (threads). Each has its own student id and the product's own SQLite `Outbox`
  and HTTP `Sender` (backoff with jitter, Retry-After), so what happens during an outage is the
  product's behaviour, not a re-implementation. Agents capture real FER2013 faces at a classroom
  rate (default 0.5/s each, jittered; a few absences) and record every observation id they capture.
  A group of agents (default 10%) reaches the API through a loopback TCP proxy of this script,
  which a "network cut" closes: new connections refused, open ones reset (RST).

Fault schedule (positions are fractions of the run; outage lengths are given for a 10-minute run
and scale with --minutes). Faults run one after another, each logged with timestamps; the next
starts once the previous one has recovered (bounded waits):
1. SIGKILL one worker while its job holds unfinished batches (the worker is frozen with SIGSTOP
   first and killed only if so), start a replacement like a restart policy would; recovered when
   the batches it held are stored (RQ retries the abandoned job, or another job's commit). The
   victim is by default not the worker running RQ's scheduler: that one's scheduler lock outlives
   it by a minute, during which no retry is enqueued (--kill-scheduler-host for that case);
2. restart Redis: SIGTERM, down 10 s, start again on the same port and directory (AOF on);
   recovered when results are stored again;
3. stop TF Serving for 60 s, then start it again on the same port; recovered when results are
   stored again (jobs that failed meanwhile wait for their RQ retry; the ledger checks them);
4. restart the API: SIGTERM, start again on the same port; recovered when results flow;
5. cut the proxied agents' network for 2 minutes; recovered when their outboxes are empty again;
6. restart the crop store (memory only, so every crop waiting in it is lost): the workers are frozen
   (SIGSTOP) for a moment first so crops pile up, the crop store is stopped, down 5 s, started
   again empty, the workers resume; recovered when results flow. The observations whose crops were
   lost are still stored (presence and head pose, emotion None): the ledger counts them as stored
   and reports how many (`stored_without_emotion`).
The API runs with RATE_LIMIT_PER_MINUTE=0 unless --rate-limit says otherwise, so the run measures the
pipeline, not the limiter (the product default, 600 requests a minute per student credential, is far
above one agent's sender, which posts about once a second). Every agent has its own credential.
A supervisor restarts any service process that exits on its own (like compose's
`restart: unless-stopped`) and the report counts those restarts.

At the end: capture stops, senders drain (bounded), results are awaited (bounded by --results-s,
ended early when every delivered observation has a result or no job is left anywhere), and the LEDGER
compares, per student and in total: captured by the agents = acknowledged to the agents (left their
outbox on a 2xx) = accepted by the API (its dedup marker exists in Redis) = results stored. `lost`
is captured minus stored, `doubled` is stored entries beyond unique ids. It also checks that no
crop bytes remain in Redis and that RQ's failed registry is empty.

Outputs in --out: ledger.json, timeline.csv (5-s buckets: captured/s, stored crops/s, end-to-end
latency percentiles from capture to result stored, sampled backlog, active faults), README.md
(summary) and soak.png (throughput and latency over time, fault windows shaded). Service logs, the
outboxes and the Redis AOF live in a scratch directory, kept when something was lost (or with
--keep-workdir). Exit status 0 when nothing was lost or doubled and every fault happened.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import redis
from classroom_capture.agent import make_observation
from classroom_capture.detector import FrameFacts
from classroom_capture.outbox import Outbox
from classroom_capture.sender import Sender
from classroom_contract import keys, store, tokens
from classroom_inference import redis_keys
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from tests.support.inference import fer_faces, service_env
from tests.support.procs import BIN, PYTHON, Proc, free_port, http_ok, redis_ping, start_redis, wait_until

REPO = Path(__file__).resolve().parents[1]

log = logging.getLogger("soak")
CLASS_ID = "soak"
BUCKET_S = 5.0
FAULT_NAMES = (
    "worker_sigkill",
    "redis_restart",
    "tfserving_outage",
    "api_restart",
    "network_cut",
    "crop_store_restart",
)


# --- time and events ------------------------------------------------------------------------------


class Clock:
    """Wall-clock seconds since the start of capture (captured_at / processed_at are wall-clock too)."""

    def __init__(self):
        self.t0 = time.time()

    def rel(self, t: float | None = None) -> float:
        return (time.time() if t is None else t) - self.t0


class Events:
    """Timestamped progress and fault lines: printed, and kept for the report."""

    def __init__(self, clock: Clock):
        self.clock, self.lines, self._lock = clock, [], threading.Lock()

    def __call__(self, message: str) -> None:
        line = f"[{self.clock.rel():7.1f}s] {message}"
        with self._lock:
            self.lines.append(line)
        print(line, flush=True)


# --- a network we can cut -------------------------------------------------------------------------


def _reset(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0), after waking any thread blocked in recv on it."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Pair:
    def __init__(self, client: socket.socket, upstream: socket.socket):
        self.client, self.upstream = client, upstream
        self._lock, self.closed = threading.Lock(), False

    def close(self, reset: bool) -> bool:
        with self._lock:
            if self.closed:
                return False
            self.closed = True
        for sock in (self.client, self.upstream):
            if reset:
                _reset(sock)
            else:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
        return True


class CuttableProxy:
    """A loopback TCP proxy to `target_port`. `cut()`: nothing listens any more (connections are
    refused) and every open connection is reset; `restore()`: listens again on the same port."""

    def __init__(self, target_port: int):
        self.port, self.target_port = free_port(), target_port
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._accepter: threading.Thread | None = None
        self._pairs: set[_Pair] = set()
        self.connections = 0
        self.resets = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def open(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(256)
        listener.settimeout(0.1)
        with self._lock:
            self._listener = listener
        self._accepter = threading.Thread(target=self._accept, args=(listener,), name="proxy-accept", daemon=True)
        self._accepter.start()

    def _accept(self, listener: socket.socket) -> None:
        try:
            while self._listener is listener:
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    break
                client.settimeout(None)
                try:
                    upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                    upstream.settimeout(None)
                except OSError:  # the API is down: the agent sees its connection reset
                    _reset(client)
                    continue
                pair = _Pair(client, upstream)
                with self._lock:
                    if self._listener is not listener:
                        pair.close(reset=True)
                        continue
                    self._pairs.add(pair)
                    self.connections += 1
                for src, dst in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pump, args=(pair, src, dst), daemon=True).start()
        finally:
            listener.close()  # only this thread closes it: no fd is closed under a blocked accept()

    def _pump(self, pair: _Pair, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._pairs.discard(pair)
            pair.close(reset=False)

    def cut(self) -> int:
        """Stop listening and reset every open connection; returns how many were reset."""
        with self._lock:
            self._listener = None
            pairs, self._pairs = list(self._pairs), set()
        if self._accepter is not None:
            self._accepter.join(5)
        reset = sum(pair.close(reset=True) for pair in pairs)
        self.resets += reset
        return reset

    def restore(self) -> None:
        self.open()

    def close(self) -> None:
        self.cut()


# --- services as processes, with a restart policy ------------------------------------------------


@dataclass
class Restart:
    service: str
    at: float  # seconds since capture start
    planned: bool
    reason: str


class Service:
    """One service process: `start()` spawns it (a new log file per incarnation), `ready()` says it serves."""

    def __init__(self, name: str, spawn, ready, logs: Path):
        self.name, self._spawn, self._ready, self.logs = name, spawn, ready, logs
        self.proc: Proc | None = None
        self.incarnation = 0
        self.held = False  # a fault is working on it: the supervisor leaves it alone
        self.lock = threading.RLock()
        self.pids: list[int] = []

    def start(self) -> Proc:
        with self.lock:
            self.incarnation += 1
            self.proc = self._spawn(self)
            self.pids.append(self.proc.popen.pid)
            return self.proc

    def log_path(self, suffix: str = "log") -> Path:
        return self.logs / f"{self.name}-{self.incarnation}.{suffix}"

    def ready(self) -> bool:
        return self.proc is not None and self.proc.alive() and self._ready(self)

    def wait_ready(self, timeout: float) -> float:
        started = time.monotonic()
        wait_until(self.ready, timeout=timeout, interval=0.2, what=f"{self.name} ready")
        return time.monotonic() - started

    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive()

    def tail(self, lines: int = 8) -> str:
        if self.proc is None:
            return ""
        return "\n".join(self.proc.output().splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> int | None:
        with self.lock:
            return self.proc.stop(timeout) if self.proc is not None else None


class Stack:
    """Redis, stand-in TF Serving, the API and the workers; a supervisor restarts what dies on its own."""

    def __init__(self, workdir: Path, workers: int, overrides: dict[str, str], events: Events, clock: Clock):
        self.workdir, self.events, self.clock = workdir, events, clock
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.redis_dir = workdir / "redis"
        self.redis_dir.mkdir(exist_ok=True)
        self.redis_port, self.api_port, self.tf_port = free_port(), free_port(), free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.crop_store_dir = workdir / "crop-store"
        self.crop_store_dir.mkdir(exist_ok=True)
        self.crop_store_port = free_port()
        self.crop_store_url = f"redis://127.0.0.1:{self.crop_store_port}/0"
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.tf_address = f"127.0.0.1:{self.tf_port}"
        self.env = service_env(
            self.redis_url,
            predictor_backend="tfserving",
            tfserving_address=self.tf_address,
            crop_store_url=self.crop_store_url,
            **overrides,
        )
        self.restarts: list[Restart] = []
        self.redis = Service("redis", self._spawn_redis, lambda s: redis_ping(self.redis_port), self.logs)
        self.crop_store = Service(
            "crop-store", self._spawn_crop_store, lambda s: redis_ping(self.crop_store_port), self.logs
        )
        self.tfserving = Service("tfserving", self._spawn_tfserving, lambda s: "serving" in s.proc.output(), self.logs)
        self.api = Service("api", self._spawn_api, lambda s: http_ok(self.api_url + "/healthz"), self.logs)
        self.workers = [
            Service(f"worker{i}", self._spawn_worker, lambda s: "Listening on" in s.proc.output(), self.logs)
            for i in range(workers)
        ]
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None

    @property
    def services(self) -> list[Service]:
        return [self.redis, self.crop_store, self.tfserving, self.api, *self.workers]

    # spawners: each incarnation gets its own log file and (workers) its own RQ name
    def _spawn_redis(self, service: Service) -> Proc:
        default_log = self.redis_dir / f"redis-{self.redis_port}.log"
        if default_log.exists():
            default_log.rename(self.logs / f"redis-{service.incarnation - 1}.log")
        aof = ["--appendonly", "yes", "--appendfsync", "always"]
        return start_redis(self.redis_port, self.redis_dir, extra=aof)

    def _spawn_crop_store(self, service: Service) -> Proc:
        """Persistence off (start_redis's default), as the API and workers insist."""
        default_log = self.crop_store_dir / f"redis-{self.crop_store_port}.log"
        if default_log.exists():
            default_log.rename(self.logs / f"crop-store-{service.incarnation - 1}.log")
        return start_redis(self.crop_store_port, self.crop_store_dir)

    def _spawn_tfserving(self, service: Service) -> Proc:
        args = [PYTHON, "-m", "tests.support.tfserving_server", "--port", str(self.tf_port)]
        return Proc(args, service.log_path(), env=service_env(self.redis_url))

    def _spawn_api(self, service: Service) -> Proc:
        env = {**self.env, "API_HOST": "127.0.0.1", "API_PORT": str(self.api_port), "LOG_LEVEL": "WARNING"}
        return Proc([str(BIN / "classroom-api")], service.log_path(), env=env)

    def _spawn_worker(self, service: Service) -> Proc:
        name = f"soak-{service.name}-{service.incarnation}-{uuid.uuid4().hex[:4]}"
        service.rq_name = name
        return Proc([str(BIN / "classroom-worker"), "--name", name], service.log_path(), env=self.env)

    def start(self) -> None:
        self.redis.start()
        self.crop_store.start()
        self.tfserving.start()
        self.api.start()
        for worker in self.workers:
            worker.start()
        for service in (self.tfserving, self.api, *self.workers):
            try:
                service.wait_ready(180)
            except AssertionError:
                raise RuntimeError(f"{service.name} did not start:\n{service.tail(30)}") from None
        self._supervisor = threading.Thread(target=self._supervise, name="supervisor", daemon=True)
        self._supervisor.start()

    def _supervise(self) -> None:
        """`restart: unless-stopped`: a process that exited on its own is started again, and counted."""
        while not self._stop.wait(1.0):
            for service in self.services:
                with service.lock:
                    if service.held or self._stop.is_set() or service.proc is None or service.proc.alive():
                        continue
                    code = service.proc.popen.returncode
                    tail = service.tail(3).replace("\n", " | ")
                    self.events(f"SUPERVISOR: {service.name} exited on its own (code {code}); restarting. {tail}")
                    self.restarts.append(Restart(service.name, self.clock.rel(), False, f"exit {code}: {tail}"))
                    try:
                        service.proc.stop()
                        service.start()
                    except Exception as exc:  # noqa: BLE001 - keep supervising the others
                        self.events(f"SUPERVISOR: could not restart {service.name}: {exc}")

    def planned_restart(self, service: Service, reason: str) -> None:
        self.restarts.append(Restart(service.name, self.clock.rel(), True, reason))

    def stop(self) -> None:
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join(5)
        for service in [*self.workers, self.api, self.tfserving, self.crop_store, self.redis]:
            try:
                service.stop()
            except Exception:  # noqa: BLE001 - stop the rest whatever happens
                traceback.print_exc()


def hosts_scheduler(worker: Service) -> bool:
    """Whether this worker process runs RQ's scheduler now (a forked child; its lock outlives a
    SIGKILL by about a minute, during which no other scheduler starts and no retry is enqueued)."""
    if not worker.alive():
        return False
    started = re.findall(r"Scheduler for \S+ started with PID (\d+)", worker.proc.output())
    if not started:
        return False
    try:
        fields = Path(f"/proc/{started[-1]}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z" and int(fields[2]) == worker.proc.popen.pid


# --- simulated agents ---------------------------------------------------------------------------


def student_id(n: int) -> str:
    return f"st{n:04d}"


class SimAgent:
    """One student's laptop: the product's Outbox and Sender; captures are made by the Fleet."""

    def __init__(self, n: int, server: str, credential: str, outbox_dir: Path, proxied: bool, rng: random.Random):
        self.student_id = student_id(n)
        self.proxied = proxied
        self.outbox = Outbox(outbox_dir / f"{self.student_id}.sqlite")
        self.sender = Sender(server, credential, self.outbox)
        self.stop, self.wake = threading.Event(), threading.Event()
        self.captured: dict[str, tuple[float, bool]] = {}  # observation id -> (captured_at, face)
        self.thread = threading.Thread(
            target=self.sender.run, args=(self.stop, self.wake, 1.0), name=f"sender-{n}", daemon=True
        )
        self.face_offset = rng.randrange(10_000)


class Fleet:
    """N agents; one capture thread paces every agent's samples (like Agent._capture: late = skip)."""

    def __init__(self, agents: list[SimAgent], faces: np.ndarray, rate: float, absent: float, seed: int):
        self.agents, self.faces, self.rate, self.absent = agents, faces, rate, absent
        self.rng = random.Random(seed)
        self._stop = threading.Event()
        self._capture = threading.Thread(target=self._run, name="capture", daemon=True)
        self.captured = 0
        self.late = 0

    def start(self) -> None:
        for agent in self.agents:
            agent.thread.start()
        self._capture.start()

    def _run(self) -> None:
        period = 1.0 / self.rate
        now = time.monotonic()
        due = [now + self.rng.uniform(0, period) for _ in self.agents]
        while not self._stop.is_set():
            i = int(np.argmin(due))
            delay = due[i] - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            agent = self.agents[i]
            if -delay > period:
                self.late += 1
            due[i] = max(due[i] + period * self.rng.uniform(0.8, 1.2), time.monotonic())
            face = self.rng.random() >= self.absent
            crop = self.faces[agent.face_offset % len(self.faces)] if face else None
            agent.face_offset += 1
            observation = make_observation(FrameFacts(1 if face else 0, crop), time.time())
            dropped = agent.outbox.put(agent.sender.owner, observation)
            agent.captured[str(observation.observation_id)] = (observation.captured_at, face)
            self.captured += 1
            if dropped:
                log.warning("%s: outbox full, dropped %d", agent.student_id, dropped)
            if len(agent.captured) == 1 or len(agent.outbox) >= agent.sender.batch_size:
                agent.wake.set()

    def stop_capture(self) -> None:
        self._stop.set()
        self._capture.join(10)

    def backlog(self, agents: list[SimAgent] | None = None) -> int:
        return sum(len(a.outbox) for a in (self.agents if agents is None else agents))

    def wake_all(self) -> None:
        for agent in self.agents:
            agent.wake.set()

    def stop_senders(self, timeout: float = 30.0) -> None:
        for agent in self.agents:
            agent.stop.set()
            agent.wake.set()
        deadline = time.monotonic() + timeout
        for agent in self.agents:
            agent.thread.join(max(0.0, deadline - time.monotonic()))

    def retries(self, agents: list[SimAgent]) -> int:
        return sum(a.sender.stats.retries for a in agents)


# --- the soak run ---------------------------------------------------------------------------------


@dataclass
class Fault:
    name: str
    planned_at: float
    started_at: float | None = None
    recovered_at: float | None = None
    ok: bool = False
    details: dict = field(default_factory=dict)
    error: str | None = None


class Soak:
    def __init__(self, args):
        self.args = args
        self.clock = Clock()
        self.events = Events(self.clock)
        self.scale = args.minutes / 10.0
        self.duration = args.minutes * 60.0
        self.workdir = Path(args.workdir or tempfile.mkdtemp(prefix="soak-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        overrides = {"rate_limit_per_minute": args.rate_limit, "log_level": "INFO"}
        overrides.update(dict(kv.split("=", 1) for kv in args.service_env))
        self.overrides = {k.upper(): str(v) for k, v in overrides.items()}
        self.stack: Stack | None = None
        self.proxy: CuttableProxy | None = None
        self.fleet: Fleet | None = None
        self.client: redis.Redis | None = None
        self.faults: list[Fault] = []
        self.samples: list[dict] = []  # every 5 s: outbox backlog, queue length, stored count
        self.active_fault: str = "-"
        self.stop_event = threading.Event()  # ends the monitor
        self.faults_stop = threading.Event()  # ends the fault schedule and its waits
        self.kill_held: set[str] = set()  # batches the SIGKILLed worker's job held
        self.kill_held_stored_at: float | None = None
        self.capture_started = self.capture_stopped = 0.0
        self.results_wait_s = 0.0

    # settings as the services see them (for bounded waits)
    def setting(self, name: str, default: float) -> float:
        return float(self.overrides.get(name.upper(), default))

    def retry_intervals(self) -> list[int]:
        return json.loads(self.overrides.get("JOB_RETRY_INTERVALS", "[2, 10, 30]"))

    # --- helpers reading Redis (a client that tolerates Redis being down) ---------------------
    def redis_client(self) -> redis.Redis:
        return redis.Redis.from_url(self.stack.redis_url, socket_timeout=3, socket_connect_timeout=1)

    def stored_count(self) -> int | None:
        try:
            pipe = self.client.pipeline(transaction=False)
            for agent in self.fleet.agents:
                pipe.zcard(keys.student_series(CLASS_ID, agent.student_id))
            return sum(pipe.execute())
        except redis.RedisError:
            return None

    def queue_counts(self) -> dict[str, int] | None:
        try:
            queue = Queue(keys.INFERENCE_QUEUE, connection=self.client)
            return {
                "queued": queue.count,
                "started": StartedJobRegistry(queue=queue).count,
                "scheduled": ScheduledJobRegistry(queue=queue).count,
                "failed": FailedJobRegistry(queue=queue).count,
            }
        except redis.RedisError:
            return None

    def wait_for(self, check, timeout: float, interval: float = 0.5) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.faults_stop.is_set():
            try:
                if check():
                    return True
            except Exception:  # noqa: BLE001 - a probe that fails is "not yet"
                pass
            time.sleep(interval)
        return False

    def results_resumed(self, timeout: float) -> bool:
        """True once a result is stored after now (throughput is back)."""
        before = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.faults_stop.is_set():
            count = self.stored_count()
            if count is not None:
                if before is None:
                    before = count
                elif count > before:
                    return True
            time.sleep(0.5)
        return False

    # --- setup --------------------------------------------------------------------------------
    def start(self) -> None:
        args = self.args
        self.machine = machine_info()
        self.events(f"workdir {self.workdir}; starting redis, stand-in TF Serving, API, {args.workers} workers")
        t = time.monotonic()
        self.stack = Stack(self.workdir, args.workers, self.overrides, self.events, self.clock)
        self.stack.start()
        self.events(
            f"stack ready in {time.monotonic() - t:.1f}s (api {self.stack.api_url}, tf {self.stack.tf_address})"
        )
        self.client = self.redis_client()
        store.create_class(self.client, CLASS_ID, "Soak class", "soak")
        credentials = [tokens.new_credential() for _ in range(args.agents)]
        for n, credential in enumerate(credentials):
            store.enrol_student(self.client, CLASS_ID, student_id(n), student_id(n), credential)
        self.proxy = CuttableProxy(self.stack.api_port)
        self.proxy.open()
        rng = random.Random(args.seed)
        n_proxied = 0 if args.proxied_fraction <= 0 else max(1, round(args.agents * args.proxied_fraction))
        outboxes = self.workdir / "outbox"
        agents = [
            SimAgent(
                n,
                self.proxy.url if n < n_proxied else self.stack.api_url,
                credentials[n],
                outboxes,
                proxied=n < n_proxied,
                rng=rng,
            )
            for n in range(args.agents)
        ]
        self.fleet = Fleet(agents, fer_faces(512), args.rate, args.absent_fraction, args.seed)

    # --- the faults ---------------------------------------------------------------------------
    def schedule(self) -> list[tuple[float, str, callable]]:
        T = self.duration
        return [
            (0.08 * T, "worker_sigkill", self.fault_worker_sigkill),
            (0.20 * T, "redis_restart", self.fault_redis_restart),
            (0.32 * T, "tfserving_outage", self.fault_tfserving_outage),
            (0.50 * T, "api_restart", self.fault_api_restart),
            (0.60 * T, "network_cut", self.fault_network_cut),
            (0.80 * T, "crop_store_restart", self.fault_crop_store_restart),
        ]

    def run_faults(self) -> None:
        for at, name, action in self.schedule():
            if name not in self.args.faults:
                continue
            fault = Fault(name, at)
            self.faults.append(fault)
            delay = self.clock.rel(self.capture_started) + at - self.clock.rel()
            if delay > 0 and self.faults_stop.wait(delay):
                return
            if self.faults_stop.is_set():
                return
            fault.started_at = self.clock.rel()
            self.active_fault = name
            self.events(f"FAULT {name}: start")
            try:
                fault.ok = bool(action(fault))
            except Exception as exc:  # noqa: BLE001 - report it, carry on with the next fault
                fault.error = f"{type(exc).__name__}: {exc}"
                self.events(f"FAULT {name}: error {fault.error}")
                traceback.print_exc()
            fault.recovered_at = self.clock.rel()
            self.active_fault = "-"
            self.events(
                f"FAULT {name}: {'recovered' if fault.ok else 'NOT recovered'} after "
                f"{fault.recovered_at - fault.started_at:.1f}s {json.dumps(fault.details, default=str)}"
            )

    def held_batches(self, exclude: set[str] = frozenset()) -> set[str]:
        """Batches taken by a running job: still pending (not stored), no longer in the coalescing list."""
        match = keys.batch_pending("*")
        parked = {k.decode().rsplit(":", 1)[1] for k in self.client.scan_iter(match=match, count=1000)}
        pending = {json.loads(m)["batch_id"] for m in self.client.lrange(keys.pending_batches(), 0, -1)}
        return parked - pending - exclude

    def fault_worker_sigkill(self, fault: Fault) -> bool:
        """SIGKILL a worker in the middle of a job that holds unfinished batches, start a replacement.

        The worker is frozen first (SIGSTOP) and killed only if the job it runs still has work to
        commit: its own batch (crops still parked), or, once 10 s passed without that (under load
        the batches of a queued job are usually predicted already by another job's coalescing),
        batches taken from the coalescing list whose crops are still parked. Otherwise it is let go
        (SIGCONT) and the next job is tried. The batches it held must then be stored by others."""
        workers = self.stack.workers
        victims = [w for w in workers if hosts_scheduler(w) == self.args.kill_scheduler_host] or workers[:1]
        worker = victims[0]
        fault.details["hosted_rq_scheduler"] = hosts_scheduler(worker)
        worker.held = True
        started = time.monotonic()
        job_id, held, mode = None, set(), None
        try:
            key = f"rq:worker:{worker.rq_name}"
            while time.monotonic() - started < 60 and job_id is None:
                current = self.client.hget(key, "current_job")
                if current is None:
                    time.sleep(0.002)
                    continue
                worker.proc.signal(signal.SIGSTOP)
                time.sleep(0.05)  # let Redis apply whatever the worker had already sent
                if self.client.hget(key, "current_job") == current:
                    current = current.decode()
                    if self.client.exists(keys.batch_pending(current)):
                        job_id, mode, held = current, "own batch unfinished", {current}
                    elif time.monotonic() - started > 10:
                        others = [self.client.hget(f"rq:worker:{w.rq_name}", "current_job") for w in workers]
                        held = self.held_batches({j.decode() for j in others if j and j != current.encode()})
                        if held:
                            job_id, mode = current, "coalesced batches unfinished"
                    if job_id is not None:
                        break
                worker.proc.signal(signal.SIGCONT)
                time.sleep(0.01)
            pid = worker.proc.popen.pid
            worker.proc.signal(signal.SIGKILL)
            worker.proc.popen.wait(10)
            fault.details.update(pid=pid, returncode=worker.proc.popen.returncode, job_id=job_id, mode=mode)
            fault.details["held_batches"] = len(held)
            self.events(
                f"  killed {worker.name} pid {pid} (code {worker.proc.popen.returncode}) in job {job_id}: {mode}"
            )
            worker.proc.stop()
            worker.start()
            self.stack.planned_restart(worker, "replacement after SIGKILL")
            fault.details["replacement_pid"] = worker.proc.popen.pid
            fault.details["replacement_ready_s"] = round(worker.wait_ready(180), 1)
        finally:
            worker.held = False
        self.kill_held = held
        if job_id is None:
            return False
        # the batches it held come back through RQ (abandoned job retried) or another job's commit
        # (the next fault waits for that at most 30% of the run; the monitor notes when it happens)
        bound = self.setting("job_timeout_s", 60) + self.setting("abandoned_grace_s", 15)
        bound += self.setting("maintenance_interval_s", 30) + max(self.retry_intervals() or [0]) + 30
        self.wait_for(self.kill_held_stored, min(bound, 0.3 * self.duration), 1.0)
        return True

    def kill_held_stored(self) -> bool:
        """Whether every batch the SIGKILLed worker held is stored now (no longer pending); notes when."""
        if self.kill_held_stored_at is None and self.kill_held:
            if not any(self.client.exists(keys.batch_pending(b)) for b in self.kill_held):
                self.kill_held_stored_at = self.clock.rel()
                self.events(f"  the {len(self.kill_held)} batch(es) the killed worker held are all stored now")
        return self.kill_held_stored_at is not None

    def fault_tfserving_outage(self, fault: Fault) -> bool:
        down_s = self.args.tfserving_outage if self.args.tfserving_outage is not None else max(5.0, 60 * self.scale)
        service = self.stack.tfserving
        service.held = True
        try:
            failed_before = (self.queue_counts() or {}).get("failed")
            pid = service.proc.popen.pid
            code = service.stop()
            fault.details.update(pid=pid, returncode=code, down_s=down_s)
            self.faults_stop.wait(down_s)
            service.start()
            self.stack.planned_restart(service, f"back after a {down_s:.0f}s outage")
            fault.details["restart_ready_s"] = round(service.wait_ready(180), 1)
            fault.details["new_pid"] = service.proc.popen.pid
        finally:
            service.held = False
        # recovered: results flow again; jobs that failed meanwhile wait in `scheduled` for their retry
        # (the ledger checks at the end that they all came back and nothing stayed `failed`)
        fault.details["results_resumed"] = self.results_resumed(60)
        after = self.queue_counts() or {}
        fault.details["scheduled_retries"] = after.get("scheduled")
        fault.details["failed_registry_delta"] = (after.get("failed") or 0) - (failed_before or 0)
        return fault.details["results_resumed"]

    def fault_redis_restart(self, fault: Fault) -> bool:
        down_s = self.args.redis_down if self.args.redis_down is not None else max(1.0, 10 * self.scale)
        service = self.stack.redis
        service.held = True
        try:
            dbsize = self.client.dbsize()
            pid = service.proc.popen.pid
            code = service.stop(30)
            fault.details.update(pid=pid, returncode=code, dbsize_before=dbsize, down_s=down_s)
            self.faults_stop.wait(down_s)
            service.start()  # start_redis: same port, same --dir, AOF on; waits for PING
            self.stack.planned_restart(service, f"SIGTERM, down {down_s:.0f}s, started again (AOF)")
            fault.details["new_pid"] = service.proc.popen.pid
            fault.details["dbsize_after"] = self.client.dbsize()
            fault.details["aof_files"] = sorted(p.name for p in (self.stack.redis_dir / "appendonlydir").glob("*"))
        finally:
            service.held = False
        fault.details["results_resumed"] = self.results_resumed(90)
        return fault.details["results_resumed"]

    def fault_crop_store_restart(self, fault: Fault) -> bool:
        """Restart the memory-only crop store with crops waiting in it: they are lost, their
        observations must still be stored (emotion None), nothing lost or doubled."""
        down_s = max(1.0, 5 * self.scale)
        service, workers = self.stack.crop_store, [w for w in self.stack.workers if w.alive()]
        service.held = True
        crops = redis.Redis.from_url(self.stack.crop_store_url, socket_timeout=3, socket_connect_timeout=1)
        try:
            for worker in workers:  # crops pile up for a moment, as under a burst
                worker.proc.signal(signal.SIGSTOP)
            self.faults_stop.wait(min(3.0, down_s))
            waiting = set(crops.scan_iter(match=keys.crops("*"), count=1000))
            fault.details["crop_keys_lost"] = len(waiting)
            fault.details["crops_lost"] = sum(crops.hlen(k) for k in waiting)
            pid = service.proc.popen.pid
            code = service.stop(30)
            fault.details.update(pid=pid, returncode=code, down_s=down_s)
            self.faults_stop.wait(down_s)
            service.start()
            self.stack.planned_restart(service, f"SIGTERM, down {down_s:.0f}s, started again empty")
            fault.details["new_pid"] = service.proc.popen.pid
            # Which of the crops waiting before the restart came back (a persisting crop store). Not
            # "is it empty": the API may already have parked a new batch (a new batch id) by now.
            back = waiting & set(crops.scan_iter(match=keys.crops("*"), count=1000))
            fault.details["crop_keys_back_after"] = len(back)
        finally:
            for worker in workers:
                worker.proc.signal(signal.SIGCONT)
            service.held = False
            crops.close()
        fault.details["results_resumed"] = self.results_resumed(90)
        return fault.details["results_resumed"]

    def fault_api_restart(self, fault: Fault) -> bool:
        service = self.stack.api
        service.held = True
        try:
            retries = self.fleet.retries(self.fleet.agents)
            pid = service.proc.popen.pid
            code = service.stop(30)
            fault.details.update(pid=pid, returncode=code)
            service.start()
            self.stack.planned_restart(service, "SIGTERM, started again on the same port")
            fault.details["restart_ready_s"] = round(service.wait_ready(120), 1)
            fault.details["new_pid"] = service.proc.popen.pid
        finally:
            service.held = False
        fault.details["results_resumed"] = self.results_resumed(90)
        fault.details["sender_retries_during"] = self.fleet.retries(self.fleet.agents) - retries
        return fault.details["results_resumed"]

    def fault_network_cut(self, fault: Fault) -> bool:
        cut_s = self.args.network_cut if self.args.network_cut is not None else max(10.0, 120 * self.scale)
        group = [a for a in self.fleet.agents if a.proxied]
        if not group:
            fault.details["skipped"] = "no proxied agents"
            return False
        retries = self.fleet.retries(group)
        fault.details.update(agents=len(group), cut_s=cut_s, connections_reset=self.proxy.cut())
        probe_refused = False
        try:
            socket.create_connection(("127.0.0.1", self.proxy.port), timeout=1).close()
        except ConnectionRefusedError:
            probe_refused = True
        fault.details["probe_refused"] = probe_refused
        self.faults_stop.wait(cut_s)
        fault.details["backlog_at_restore"] = self.fleet.backlog(group)
        fault.details["sender_retries_during"] = self.fleet.retries(group) - retries
        self.proxy.restore()
        # recovered: the cut-off agents' outboxes are empty again (what they kept offline arrived)
        capture_gap = 2.0 / self.args.rate + 35  # backoff cap (30 s) + a send interval
        drained = self.wait_for(lambda: self.fleet.backlog(group) <= len(group), capture_gap + cut_s, 0.5)
        fault.details["drained"] = drained
        return probe_refused and fault.details["sender_retries_during"] > 0 and drained

    # --- monitoring -----------------------------------------------------------------------------
    def monitor(self) -> None:
        last_print = 0.0
        while not self.stop_event.wait(BUCKET_S):
            stored, counts = self.stored_count(), self.queue_counts()
            try:
                self.kill_held_stored()
            except redis.RedisError:
                pass
            sample = {
                "t": self.clock.rel(),
                "captured": self.fleet.captured,
                "backlog": self.fleet.backlog(),
                "stored": stored,
                "queued": None if counts is None else counts["queued"],
                "fault": self.active_fault,
            }
            self.samples.append(sample)
            if sample["t"] - last_print >= 9.5:
                last_print = sample["t"]
                q = "?" if counts is None else f"{counts['queued']}/{counts['scheduled']}/{counts['failed']}"
                self.events(
                    f"captured {sample['captured']:6d}  stored {stored if stored is not None else '?':>6}  "
                    f"outbox backlog {sample['backlog']:5d}  queue/scheduled/failed {q}  fault {self.active_fault}"
                )

    # --- the run --------------------------------------------------------------------------------
    def run(self) -> dict:
        args = self.args
        self.start()
        self.clock.t0 = time.time()
        self.capture_started = time.time()
        self.events(
            f"capturing: {args.agents} agents at {args.rate}/s ({sum(a.proxied for a in self.fleet.agents)} behind"
            f" the cuttable proxy), {args.minutes:g} min"
        )
        self.fleet.start()
        threads = [
            threading.Thread(target=self.monitor, name="monitor", daemon=True),
            threading.Thread(target=self.run_faults, name="faults", daemon=True),
        ]
        for thread in threads:
            thread.start()
        self.stop_event.wait(self.duration)
        # a fault still running (slow recovery on a loaded machine) keeps the load on until it is over
        faults = threads[1]
        faults.join(max(0.0, 1.5 * self.duration - self.clock.rel()))
        if faults.is_alive():
            self.events("faults still running at 1.5x the run length: stopping capture anyway")
        self.fleet.stop_capture()
        self.capture_stopped = time.time()
        self.events(f"capture stopped: {self.fleet.captured} captured; draining outboxes (<= {args.drain_s:.0f}s)")
        self.fleet.wake_all()
        drained = self.wait_for(lambda: self.fleet.backlog() == 0, args.drain_s, 0.5)
        self.events(f"outboxes {'empty' if drained else f'NOT empty: {self.fleet.backlog()} left'}")
        self.fleet.stop_senders()
        self.faults_stop.set()
        faults.join(30)
        # results: wait until every delivered observation has one, or nothing queued could still make one
        self.active_fault = "(after capture)"
        expected = self.fleet.captured - self.fleet.backlog()
        started, idle_checks = time.monotonic(), 0
        while time.monotonic() - started < args.results_s:
            stored, counts = self.stored_count(), self.queue_counts()
            if stored is not None and stored >= expected:
                break
            busy = counts is None or counts["queued"] or counts["started"] or counts["scheduled"]
            idle_checks = 0 if busy else idle_checks + 1
            if idle_checks >= 6:  # 3 s with no job anywhere: what is missing will not come
                break
            time.sleep(0.5)
        time.sleep(1.0)  # a batch that was being written when the count matched
        self.results_wait_s = time.monotonic() - started
        self.stop_event.set()
        self.events(f"results after {self.results_wait_s:.0f}s of waiting: stored {self.stored_count()} of {expected}")
        return self.ledger()

    def ledger(self) -> dict:
        client, agents = self.client, self.fleet.agents
        per_student, lost_ids = {}, []
        results_all = []
        seen_total = 0
        for agent in agents:
            series = store.student_series(client, CLASS_ID, agent.student_id)
            results_all.extend(series)
            stored_ids = [r.observation_id for r in series]
            unique = set(stored_ids)
            captured = agent.captured
            ids = list(captured)
            seen = 0
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                markers = [redis_keys.seen(CLASS_ID, agent.student_id, x) for x in chunk]
                seen += sum(v is not None for v in client.mget(markers))
            seen_total += seen
            pending = {str(p.observation.observation_id) for p in agent.outbox.oldest(10_000)}
            dropped, rejected = agent.outbox.counter("dropped"), agent.outbox.counter("rejected")
            missing = [x for x in ids if x not in unique]
            for x in missing:
                lost_ids.append({"student_id": agent.student_id, "observation_id": x, "captured_at": captured[x][0]})
            per_student[agent.student_id] = {
                "proxied": agent.proxied,
                "captured": len(captured),
                "acked": len(captured) - len(agent.outbox) - dropped - rejected,
                "pending_in_outbox": len(agent.outbox),
                "dropped": dropped,
                "rejected": rejected,
                "accepted_by_api": seen,
                "stored_unique": len(unique & set(ids)),
                "stored_entries": len(stored_ids),
                "lost": len(missing),
                "doubled": len(stored_ids) - len(unique),
                "unexpected": len(unique - set(ids)),
                "sender": vars(agent.sender.stats).copy(),
                "_pending": pending,
            }
        totals = {
            key: sum(s[key] for s in per_student.values())
            for key in (
                "captured", "acked", "pending_in_outbox", "dropped", "rejected", "accepted_by_api",
                "stored_unique", "stored_entries", "lost", "doubled", "unexpected",
            )
        }  # fmt: skip
        totals["faces"] = sum(f for a in agents for _, f in a.captured.values())
        totals["stored_without_emotion"] = without_emotion(results_all)
        totals["absences"] = totals["captured"] - totals["faces"]
        sender = {k: sum(s["sender"][k] for s in per_student.values()) for k in ("requests", "accepted", "duplicates")}
        sender["retries"] = sum(s["sender"]["retries"] for s in per_student.values())
        # where is what was lost?
        crop_store = redis.Redis.from_url(self.stack.crop_store_url)
        crop_keys = list(crop_store.scan_iter(match=keys.crops("*"), count=1000))
        queued_crops = {}
        for key in crop_keys:
            for oid in crop_store.hkeys(key):
                queued_crops[oid.decode()] = key.decode()
        crop_store.close()
        pending_batches = sum(1 for _ in client.scan_iter(match=keys.batch_pending("*"), count=1000))
        for item in lost_ids:
            oid = item["observation_id"]
            if oid in queued_crops:
                item["where"] = "crops still queued in the crop store (job not done or failed)"
                item["batch_id"] = queued_crops[oid].rsplit(":", 1)[1]
            elif client.exists(redis_keys.seen(CLASS_ID, item["student_id"], oid)):
                item["where"] = "accepted by the API, no result and no crops: LOST"
            elif oid in per_student[item["student_id"]]["_pending"]:
                item["where"] = "still in the agent's outbox (not delivered)"
            else:
                item["where"] = "never accepted and not in the outbox: LOST"
        for student in per_student.values():
            student.pop("_pending")
        where = {}
        for item in lost_ids:
            where[item["where"]] = where.get(item["where"], 0) + 1
        totals["lost_for_good"] = sum(n for w, n in where.items() if w.endswith("LOST"))
        totals["still_queued"] = where.get("crops still queued in the crop store (job not done or failed)", 0)
        totals["still_in_outbox"] = where.get("still in the agent's outbox (not delivered)", 0)
        queue = Queue(keys.INFERENCE_QUEUE, connection=client)
        failed = FailedJobRegistry(queue=queue)
        failed_jobs = []
        for job_id in failed.get_job_ids()[:50]:
            job = Job.fetch(job_id, connection=client)
            info = (job.exc_info or "").strip().splitlines()
            failed_jobs.append({"job_id": job_id, "error": info[-1][:200] if info else "?"})
        redis_after = {
            "crop_keys": len(crop_keys),
            "crops_left": len(queued_crops),
            "batches_pending": pending_batches,
            "crops_in_main_redis": sum(1 for _ in client.scan_iter(match=keys.crops("*"), count=1000)),
            **(self.queue_counts() or {}),
            "failed_jobs": failed_jobs,
        }
        slowest = sorted(results_all, key=lambda r: r.captured_at - r.processed_at)[:5]
        slowest = [
            {
                "observation_id": r.observation_id,
                "student_id": r.student_id,
                "captured_s": round(r.captured_at - self.capture_started, 1),
                "stored_s": round(r.processed_at - self.capture_started, 1),
                "batch_id": (client.get(redis_keys.seen(CLASS_ID, r.student_id, r.observation_id)) or b"").decode(),
            }
            for r in slowest
        ]
        restarts = [vars(r) for r in self.stack.restarts]
        faults = [vars(f) for f in self.faults]
        happened = {f.name: f.started_at is not None and f.error is None for f in self.faults}
        ok = (
            totals["lost"] == 0
            and totals["doubled"] == 0
            and totals["unexpected"] == 0
            and totals["captured"] == totals["acked"] == totals["accepted_by_api"] == totals["stored_unique"]
            and redis_after["crops_left"] == 0
            and redis_after["batches_pending"] == 0
            and redis_after["crops_in_main_redis"] == 0
            and redis_after.get("failed", 1) == 0
            and all(happened.get(name) for name in self.args.faults)
            and all(f.ok for f in self.faults)
        )
        return {
            "ok": ok,
            "config": {
                **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(self.args).items()},
                "service_env": self.overrides,
            },
            "machine": self.machine,
            "capture_seconds": round(self.capture_stopped - self.capture_started, 1),
            "totals": totals,
            "sender_stats": sender,
            "lost_where": where,
            "lost_ids": lost_ids[:500],
            "redis_after": redis_after,
            "faults": faults,
            "restarts": restarts,
            "unplanned_restarts": sum(not r["planned"] for r in restarts),
            "late_captures": self.fleet.late,
            "slowest_results": slowest,
            "results_wait_s": round(self.results_wait_s, 1),
            "rq_queue_peak": max((x["queued"] or 0 for x in self.samples), default=0),
            "killed_job_batches_stored": None if not self.kill_held else self.kill_held_stored(),
            "killed_job_batches_stored_at_s": self.kill_held_stored_at,
            "per_student": per_student,
            "_results": results_all,  # popped before writing
        }


def without_emotion(results) -> int:
    """Faces stored with emotion None: their crops were lost (crop store restarted), not the observation."""
    return sum(1 for r in results if r.face_count > 0 and r.emotion is None)


# --- reports --------------------------------------------------------------------------------------


def machine_info() -> dict:
    """CPUs, load, and other processes busy on this machine (a shared CPU changes every number)."""
    busy = []
    try:
        out = subprocess.run(
            ["ps", "-eo", "pid,pcpu,args", "--sort=-pcpu", "--no-headers"], capture_output=True, text=True, timeout=5
        ).stdout
        for line in out.splitlines()[:8]:
            pid, pcpu, cmd = line.split(None, 2)
            if float(pcpu) >= 20 and int(pid) != os.getpid():
                busy.append({"pid": int(pid), "cpu_percent": float(pcpu), "command": cmd[:160]})
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    return {"cpus": os.cpu_count(), "loadavg_before": os.getloadavg(), "other_busy_processes": busy}


def percentile_ms(values, q) -> float | None:
    return None if len(values) == 0 else round(float(np.percentile(np.asarray(values) * 1000, q)), 1)


def timeline(ledger: dict, samples: list[dict], t0: float) -> list[dict]:
    results = ledger["_results"]
    captured_at = [t - t0 for t in ledger["_captured_times"]]
    end = max([r.processed_at - t0 for r in results] + [s["t"] for s in samples] + [BUCKET_S])
    n = int(end // BUCKET_S) + 1
    stored = [[] for _ in range(n)]
    for r in results:
        i = int((r.processed_at - t0) // BUCKET_S)
        if 0 <= i < n and r.face_count > 0:
            stored[i].append(r.processed_at - r.captured_at)
    captured = np.bincount([int(t // BUCKET_S) for t in captured_at if 0 <= t < n * BUCKET_S], minlength=n)
    windows = [(f["name"], f["started_at"], f["recovered_at"]) for f in ledger["faults"] if f["started_at"] is not None]
    rows = []
    for i in range(n):
        lo, hi = i * BUCKET_S, (i + 1) * BUCKET_S
        near = [s for s in samples if lo <= s["t"] < hi]
        rows.append(
            {
                "t_start_s": lo,
                "captured_per_s": round(captured[i] / BUCKET_S, 2),
                "stored_crops_per_s": round(len(stored[i]) / BUCKET_S, 2),
                "e2e_p50_ms": percentile_ms(stored[i], 50),
                "e2e_p95_ms": percentile_ms(stored[i], 95),
                "e2e_p99_ms": percentile_ms(stored[i], 99),
                "outbox_backlog": near[-1]["backlog"] if near else None,
                "rq_queued": near[-1]["queued"] if near else None,
                "faults": " ".join(name for name, a, b in windows if a < hi and (b or end) > lo),
            }
        )
    return rows


def summary(ledger: dict, rows: list[dict], t0: float) -> dict:
    results, capture_s = ledger["_results"], ledger["capture_seconds"]
    faces = [r for r in results if r.face_count > 0]
    e2e = [r.processed_at - r.captured_at for r in faces]
    faults = [f for f in ledger["faults"] if f["started_at"] is not None]
    first_fault = min((f["started_at"] for f in faults), default=capture_s) + t0
    windows = [(f["started_at"] + t0, (f["recovered_at"] or capture_s) + t0) for f in faults]
    calm = [r.processed_at - r.captured_at for r in faces if not any(a <= r.captured_at <= b for a, b in windows)]
    baseline = [r.processed_at - r.captured_at for r in faces if r.captured_at < first_fault]
    stored_while_capturing = sum(1 for r in faces if r.processed_at <= t0 + capture_s)
    last = max((r.processed_at for r in results), default=t0 + capture_s)

    def pcts(values):
        return {f"p{q}": percentile_ms(values, q) for q in (50, 95, 99)} | {"n": len(values)}

    return {
        "captured_per_s": round(ledger["totals"]["captured"] / capture_s, 2),
        "faces_captured_per_s": round(ledger["totals"]["faces"] / capture_s, 2),
        "stored_crops_per_s_while_capturing": round(stored_while_capturing / capture_s, 2),
        "peak_stored_crops_per_s": max((r["stored_crops_per_s"] for r in rows), default=None),
        "last_result_after_capture_stop_s": round(last - (t0 + capture_s), 1),
        "e2e_ms_all": pcts(e2e) | {"max": percentile_ms(e2e, 100)},
        "e2e_ms_before_first_fault": pcts(baseline),
        "e2e_ms_outside_fault_windows": pcts(calm),
    }


def write_timeline(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def plot(path: Path, rows: list[dict], ledger: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [r["t_start_s"] + BUCKET_S / 2 for r in rows]
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(12, 9), sharex=True)
    ax1.plot(t, [r["captured_per_s"] for r in rows], label="captured/s", color="grey", lw=1)
    ax1.plot(t, [r["stored_crops_per_s"] for r in rows], label="crops stored/s", color="tab:blue")
    ax1.set_ylabel("per second")
    nan = float("nan")
    ax2.plot(t, [r["e2e_p50_ms"] or nan for r in rows], label="p50", color="tab:green")
    ax2.plot(t, [r["e2e_p95_ms"] or nan for r in rows], label="p95", color="tab:red")
    ax2.set_yscale("log")
    ax2.set_ylabel("capture -> stored (ms)")
    ax3.plot(t, [r["outbox_backlog"] if r["outbox_backlog"] is not None else nan for r in rows], label="in outboxes")
    ax3.plot(t, [r["rq_queued"] if r["rq_queued"] is not None else nan for r in rows], label="RQ queued jobs")
    ax3.set_ylabel("backlog")
    ax3.set_xlabel("seconds since capture start")
    palette = ["tab:purple", "tab:orange", "tab:red", "tab:brown", "tab:cyan", "tab:olive"]
    colors = dict(zip(FAULT_NAMES, palette, strict=True))
    for fault in ledger["faults"]:
        if fault["started_at"] is None:
            continue
        for ax in (ax1, ax2, ax3):
            ax.axvspan(fault["started_at"], fault["recovered_at"] or t[-1], color=colors[fault["name"]], alpha=0.15)
        ax1.text(
            fault["started_at"],
            0.97 - 0.09 * FAULT_NAMES.index(fault["name"]),
            " " + fault["name"],
            transform=ax1.get_xaxis_transform(),
            fontsize=8,
            va="top",
        )
    for ax in (ax1, ax2, ax3):
        ax.legend(loc="upper right", fontsize=8)
        ax.grid(alpha=0.3)
    totals = ledger["totals"]
    fig.suptitle(
        f"soak: {ledger['config']['agents']} agents, {ledger['capture_seconds']:.0f}s; captured {totals['captured']}, "
        f"stored {totals['stored_unique']}, lost {totals['lost']}, doubled {totals['doubled']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def readme(ledger: dict, stats: dict, events: list[str]) -> str:
    t, cfg, m = ledger["totals"], ledger["config"], ledger["machine"]
    busy = "; ".join(f"`{p['command'][:90]}` ({p['cpu_percent']:.0f}% CPU)" for p in m["other_busy_processes"])
    lines = [
        "# Soak run",
        "",
        f"**{'PASS' if ledger['ok'] else 'FAIL'}**: {cfg['agents']} agents at {cfg['rate']}/s for "
        f"{ledger['capture_seconds']:.0f} s of capture through {len(ledger['faults'])} faults; "
        f"lost {t['lost']}, doubled {t['doubled']}.",
        "",
        "Produced by `bench/soak.py` (real redis-server with AOF, a memory-only crop store, `classroom-api`, "
        f"{cfg['workers']} `classroom-worker` on the tfserving backend, the stand-in TF Serving of "
        "tests/support/tfserving_server.py; agents use the product's Outbox and Sender).",
        "",
        f"Machine: {m['cpus']} CPUs, load average before the run {m['loadavg_before'][0]:.2f}. "
        + (f"**The CPU was shared** with: {busy}." if busy else "No other busy process."),
        f"Service settings: `{json.dumps(cfg['service_env'])}`.",
        "",
        "## Ledger",
        "",
        "| | count |",
        "| --- | ---: |",
        f"| captured by agents | {t['captured']} ({t['faces']} faces, {t['absences']} absences) |",
        f"| acknowledged to agents (left the outbox on a 2xx) | {t['acked']} |",
        f"| accepted by the API (dedup marker in Redis) | {t['accepted_by_api']} |",
        f"| results stored (unique ids) | {t['stored_unique']} |",
        f"| of which faces stored without emotion (crops lost to a crop store restart) | "
        f"{t['stored_without_emotion']} |",
        f"| still in outboxes / dropped (full) / rejected | {t['pending_in_outbox']} / {t['dropped']} / "
        f"{t['rejected']} |",
        f"| **lost** (captured, no result at the end) | **{t['lost']}** |",
        f"| of which still queued in the crop store / still in an outbox / gone for good | {t['still_queued']} / "
        f"{t['still_in_outbox']} / {t['lost_for_good']} |",
        f"| **doubled** (entries beyond unique ids) | **{t['doubled']}** |",
        f"| stored but never captured | {t['unexpected']} |",
        "",
        f"Sender requests {ledger['sender_stats']['requests']}, retries {ledger['sender_stats']['retries']}, "
        f"duplicates answered {ledger['sender_stats']['duplicates']}. Afterwards: "
        f"{ledger['redis_after']['crops_left']} crops in {ledger['redis_after']['crop_keys']} crop keys in the crop "
        f"store, {ledger['redis_after']['crops_in_main_redis']} in the main Redis, "
        f"{ledger['redis_after']['batches_pending']} batches pending, "
        f"RQ failed registry {ledger['redis_after'].get('failed')}, queued {ledger['redis_after'].get('queued')}, "
        f"scheduled {ledger['redis_after'].get('scheduled')}. RQ queue peak {ledger['rq_queue_peak']} jobs; "
        f"results awaited {ledger['results_wait_s']:.0f} s after the outboxes drained.",
    ]
    if ledger["lost_where"]:
        lines += ["", "Where the missing observations are:", ""]
        lines += [f"- {where}: {n}" for where, n in ledger["lost_where"].items()]
    lines += [
        "",
        "## Throughput and latency",
        "",
        f"- captured {stats['captured_per_s']} observations/s ({stats['faces_captured_per_s']} faces/s); "
        f"stored {stats['stored_crops_per_s_while_capturing']} crops/s while capturing (faults included), peak "
        f"{stats['peak_stored_crops_per_s']} crops/s in a 5-s bucket; last result "
        f"{stats['last_result_after_capture_stop_s']} s after capture stopped",
        f"- end to end (capture -> result stored), all faces: {_fmt(stats['e2e_ms_all'])}",
        f"- faces captured before the first fault: {_fmt(stats['e2e_ms_before_first_fault'])}",
        f"- faces captured outside every fault window: {_fmt(stats['e2e_ms_outside_fault_windows'])}",
        "",
        "![soak](soak.png)",
        "",
        "## Faults",
        "",
        "| fault | start (s) | recovered (s) | ok | details |",
        "| --- | ---: | ---: | --- | --- |",
    ]
    for f in ledger["faults"]:
        details = {k: v for k, v in f["details"].items() if k != "observations"}
        lines.append(
            f"| {f['name']} | {_num(f['started_at'])} | {_num(f['recovered_at'])} | {'yes' if f['ok'] else 'NO'} "
            f"| {json.dumps(details, default=str)}{' error: ' + f['error'] if f['error'] else ''} |"
        )
    lines += ["", f"Restarts: {len(ledger['restarts'])}, of which unplanned (supervisor): "
              f"{ledger['unplanned_restarts']}.", ""]  # fmt: skip
    for r in ledger["restarts"]:
        lines.append(f"- {r['at']:.1f}s {r['service']}: {'planned' if r['planned'] else 'UNPLANNED'}: {r['reason']}")
    lines += [
        "",
        "## How to read this",
        "",
        "- *lost* = captured by an agent and without a result when the run ended (after a bounded wait for the",
        "  queue); the breakdown says whether such an observation was still queued in Redis, still in an outbox,",
        "  or gone for good. *doubled* = result entries beyond one per observation id.",
        "- Fault windows (shaded) run from the fault to its recovery: the killed worker's batches stored (waited",
        "  for at most 30% of the run), Redis/TF Serving/API serving and results flowing again, the cut-off",
        "  agents' outboxes empty again.",
        "- TF Serving is the stand-in of tests/support/tfserving_server.py (official protos, real SavedModel): the",
        "  `tensorflow_model_server` binary cannot be installed on this machine. Redis runs with",
        "  `appendfsync always`; the API with RATE_LIMIT_PER_MINUTE as listed above (0 = off).",
        "- The simulated agents run in the soak's own process on the same CPUs as the services: on a shared",
        "  2-CPU machine every throughput and latency figure is a lower bound for a real deployment.",
        "",
        "## Event log",
        "",
        "```",
        *events,
        "```",
        "",
    ]
    return "\n".join(lines)


def _fmt(d: dict) -> str:
    return ", ".join(f"{k} {v} ms" if k != "n" else f"n={v}" for k, v in d.items())


def _num(v) -> str:
    return "-" if v is None else f"{v:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=10.0, help="capture time (faults scale with it)")
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "soak")
    parser.add_argument("--rate", type=float, default=0.5, help="samples per second per agent")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--proxied-fraction", type=float, default=0.1, help="agents behind the cuttable proxy")
    parser.add_argument("--absent-fraction", type=float, default=0.05, help="samples without a face")
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=0,
        help="RATE_LIMIT_PER_MINUTE of the API (default 0 = off; the product default is 600 per student)",
    )
    parser.add_argument("--service-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra setting of the API and workers, e.g. JOB_TIMEOUT_S=8 (repeatable)")  # fmt: skip
    parser.add_argument("--tfserving-outage", type=float, help="seconds TF Serving is down (default 60 per 10 min)")
    parser.add_argument("--redis-down", type=float, help="seconds Redis is down (default 10 per 10 min)")
    parser.add_argument("--network-cut", type=float, help="seconds of network cut (default 120 per 10 min)")
    parser.add_argument("--drain-s", type=float, default=90.0, help="most seconds to wait for outboxes to empty")
    parser.add_argument(
        "--results-s", type=float, default=600.0, help="most seconds to wait for results once the outboxes are empty"
    )
    parser.add_argument(
        "--faults",
        type=lambda v: [f for f in v.split(",") if f],
        default=list(FAULT_NAMES),
        help=f"comma-separated subset of {','.join(FAULT_NAMES)} (default all; '' for none)",
    )
    parser.add_argument(
        "--kill-scheduler-host",
        action="store_true",
        help="SIGKILL the worker that runs RQ's scheduler (default: another one; see the README)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, help="scratch dir (logs, outboxes, AOF); default a new temp dir")
    parser.add_argument("--keep-workdir", action="store_true")
    args = parser.parse_args(argv)
    if unknown := set(args.faults) - set(FAULT_NAMES):
        parser.error(f"unknown fault(s) {', '.join(sorted(unknown))}")

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    soak = Soak(args)
    # senders log every outage per agent: to a file, so the progress lines stay readable
    handler = logging.FileHandler(soak.workdir / "agents.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().handlers[:] = [handler]

    def on_term(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    ledger = None
    try:
        ledger = soak.run()
    finally:
        soak.stop_event.set()
        if soak.fleet is not None:
            soak.fleet.stop_capture()
            soak.fleet.stop_senders(timeout=10)
        if soak.proxy is not None:
            soak.proxy.close()
        if soak.stack is not None:
            soak.stack.stop()
        if soak.fleet is not None:
            for agent in soak.fleet.agents:
                agent.outbox.close()
    ledger["_captured_times"] = [t for a in soak.fleet.agents for t, _ in a.captured.values()]
    rows = timeline(ledger, soak.samples, soak.capture_started)
    stats = summary(ledger, rows, soak.capture_started)
    ledger.pop("_results")
    ledger.pop("_captured_times")
    ledger["throughput_latency"] = stats
    (args.out / "ledger.json").write_text(json.dumps(ledger, indent=1, default=str))
    write_timeline(args.out / "timeline.csv", rows)
    plot(args.out / "soak.png", rows, ledger)
    (args.out / "README.md").write_text(readme(ledger, stats, soak.events.lines))
    t = ledger["totals"]
    print(
        f"LEDGER captured {t['captured']} = acked {t['acked']} = accepted {t['accepted_by_api']} = stored "
        f"{t['stored_unique']}; lost {t['lost']}, doubled {t['doubled']}; failed jobs "
        f"{ledger['redis_after'].get('failed')}, crops left {ledger['redis_after']['crops_left']}; "
        f"unplanned restarts {ledger['unplanned_restarts']}"
    )
    print(f"throughput/latency {json.dumps(stats)}")
    print(f"{'PASS' if ledger['ok'] else 'FAIL'}: report in {args.out}")
    if ledger["ok"] and not args.keep_workdir and not args.workdir:
        shutil.rmtree(soak.workdir, ignore_errors=True)
    else:
        print(f"logs, outboxes and AOF kept in {soak.workdir}")
    return 0 if ledger["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
