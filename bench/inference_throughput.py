"""Inference throughput: the bare model vs the whole pipeline (HTTP -> Redis/RQ -> worker -> Redis).

    python -m bench.inference_throughput [--seconds 8] [--batch 16] [--clients 4] [--workers 1]
                                         [--backend local|tfserving] [--bfloat16 auto|on|off]
                                         [--rate R]

Two load shapes:
- closed loop (default): each agent keeps one request in flight and sends the next as soon as
  the previous one's results are stored; this finds the maximum sustained throughput;
- open loop (`--rate R`): each agent sends `--batch` crops R times a second whatever happens,
  like real agents in a classroom (e.g. `--clients 40 --batch 1 --rate 2`); this gives the
  latency at that load.

Everything runs on this machine over loopback: a private redis-server, `classroom-api`,
`classroom-worker` processes and, for `--backend tfserving`, the stand-in TF Serving of
tests/support/tfserving_server.py. Crops are real FER2013 faces from data/fer2013_sample.csv.gz.
Each phase is bounded by --seconds (the drain of queued work by --drain-seconds).

Prints crops/s of the bare model (one process calling predict in a loop), crops/s of the
pipeline, and latency percentiles: model call per batch, HTTP acknowledgement per request, and
end to end (capture time to result stored) per observation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
from classroom_contract import encode_crop, keys, store, tokens

from tests.support.inference import fer_faces
from tests.support.procs import BIN, Proc, free_port, http_ok, start_redis, wait_until

REPO = Path(__file__).resolve().parents[1]


def percentiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    p50, p95, p99 = np.percentile(np.asarray(values) * 1000, [50, 95, 99])
    return f"p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  p99 {p99:7.1f} ms  (n={len(values)})"


def bare_model(predictor, faces: np.ndarray, batch: int, seconds: float) -> tuple[float, list[float]]:
    """crops/s of back-to-back predict calls on `batch` crops, and each call's latency."""
    predictor.predict(faces[:batch])  # warm-up
    latencies, crops, started = [], 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        offset = (crops // batch * batch) % (len(faces) - batch)
        t0 = time.perf_counter()
        predictor.predict(faces[offset : offset + batch])
        latencies.append(time.perf_counter() - t0)
        crops += batch
    return crops / (time.perf_counter() - started), latencies


def post(url: str, token: str, body: dict) -> float:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Bearer {token}")
    t0 = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as answer:
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"HTTP {answer.status}")
    return time.perf_counter() - t0


def pipeline(args, faces: np.ndarray, env: dict[str, str], workdir: Path) -> dict:
    import redis

    crops_b64 = [encode_crop(f.tobytes()) for f in faces]
    redis_port, crop_store_port = free_port(), free_port()
    (workdir / "crop-store").mkdir(exist_ok=True)
    procs = [start_redis(redis_port, workdir), start_redis(crop_store_port, workdir / "crop-store")]
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    env = {**env, "REDIS_URL": redis_url, "RATE_LIMIT_PER_MINUTE": "0", "LOG_LEVEL": "WARNING"}
    env["CROP_STORE_URL"] = f"redis://127.0.0.1:{crop_store_port}/0"
    try:
        api_port = free_port()
        api_env = {**env, "API_PORT": str(api_port)}
        procs.append(Proc([str(BIN / "classroom-api")], workdir / "api.log", env=api_env))
        url = f"http://127.0.0.1:{api_port}"
        wait_until(lambda: http_ok(url + "/healthz"), timeout=60, what="classroom-api")
        for i in range(args.workers):
            log = workdir / f"worker-{i}.log"
            procs.append(
                Proc([str(BIN / "classroom-worker"), "--name", f"bench-{i}"], log, env={**env, "LOG_LEVEL": "INFO"})
            )
        for i in range(args.workers):
            wait_until(lambda i=i: "Listening on" in (workdir / f"worker-{i}.log").read_text(), 120, what="worker")

        client = redis.Redis.from_url(redis_url)
        store.create_class(client, "bench", "Bench", "bench")
        credentials = [tokens.new_credential() for _ in range(args.clients)]  # one per simulated student
        for n, credential in enumerate(credentials):
            store.enrol_student(client, "bench", f"st{n}", f"st{n}", credential)
        acks: list[float] = []
        sent = [0]
        lock = threading.Lock()
        deadline = time.monotonic() + args.seconds

        def agent(n: int) -> None:
            agent_client = redis.Redis.from_url(redis_url)
            i = 0
            next_send = time.monotonic() + (n / args.clients) / args.rate if args.rate else 0.0
            while time.monotonic() < deadline:
                if args.rate:  # open loop: keep the schedule, never wait for results
                    time.sleep(max(0.0, next_send - time.monotonic()))
                    next_send += 1.0 / args.rate
                observations = [
                    {
                        "observation_id": str(uuid.uuid4()),
                        "captured_at": time.time(),
                        "face_count": 1,
                        "crop": crops_b64[(i + k) % len(crops_b64)],
                    }
                    for k in range(args.batch)
                ]
                ack = post(url + "/v1/observations", credentials[n], {"observations": observations})
                i += args.batch
                with lock:
                    acks.append(ack)
                    sent[0] += args.batch
                if args.rate:
                    continue
                # one batch in flight per agent (closed loop): measures sustainable throughput, not a backlog
                series = keys.student_series("bench", f"st{n}")
                while agent_client.zcard(series) < i and time.monotonic() < deadline + args.drain_seconds:
                    time.sleep(0.005)

        started = time.perf_counter()
        threads = [threading.Thread(target=agent, args=(n,)) for n in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stored = lambda: sum(len(store.student_series(client, "bench", f"st{n}")) for n in range(args.clients))  # noqa: E731
        drain_deadline = time.monotonic() + args.drain_seconds
        while stored() < sent[0] and time.monotonic() < drain_deadline:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        results = [r for n in range(args.clients) for r in store.student_series(client, "bench", f"st{n}")]
        client.close()
        return {
            "sent": sent[0],
            "stored": len(results),
            "elapsed": elapsed,
            "acks": acks,
            "e2e": [r.processed_at - r.captured_at for r in results],
        }
    finally:
        for proc in reversed(procs):
            proc.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each measured phase")
    parser.add_argument("--drain-seconds", type=float, default=30.0, help="most time to wait for queued work")
    parser.add_argument("--batch", type=int, default=16, help="crops per request / per model call")
    parser.add_argument("--clients", type=int, default=4, help="concurrent agents posting")
    parser.add_argument("--workers", type=int, default=1, help="classroom-worker processes")
    parser.add_argument("--backend", choices=["local", "tfserving"], default="local")
    parser.add_argument("--bfloat16", choices=["auto", "on", "off"], default="auto", help="local backend precision")
    parser.add_argument("--rate", type=float, default=0.0, help="open loop: requests per second per agent")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from classroom_inference.predictor import LocalPredictor, TFServingPredictor, use_bfloat16
    from classroom_inference.versions import resolve_version

    faces = fer_faces(256)
    env = {
        "MODEL_DIR": str(REPO / "models" / "emotion"),
        "PREDICTOR_BACKEND": args.backend,
        "PREDICTOR_BFLOAT16": args.bfloat16,
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    with tempfile.TemporaryDirectory(prefix="bench-inference-") as tmp:
        workdir = Path(tmp)
        server = None
        if args.backend == "tfserving":
            port = free_port()
            server = Proc([sys.executable, "-m", "tests.support.tfserving_server", "--port", str(port)],
                          workdir / "tfserving.log")  # fmt: skip
            env["TFSERVING_ADDRESS"] = f"127.0.0.1:{port}"
        try:
            if server is not None:
                predictor = TFServingPredictor(env["TFSERVING_ADDRESS"], timeout_s=30)
                wait_until(predictor.ready, timeout=120, interval=0.5, what="stand-in TF Serving")
            else:
                predictor = LocalPredictor(resolve_version(REPO / "models" / "emotion"), use_bfloat16(args.bfloat16))
            rate, calls = bare_model(predictor, faces, args.batch, args.seconds)
            predictor.close()
            del predictor  # free the model before the worker processes load theirs
            result = pipeline(args, faces, env, workdir)
        finally:
            if server is not None:
                server.stop()

    piped = result["stored"] / result["elapsed"]
    precision = "bfloat16" if args.backend == "local" and use_bfloat16(args.bfloat16) else "float32"
    load = f"open loop {args.rate:g} req/s per agent" if args.rate else "closed loop"
    print(f"backend {args.backend} ({precision}), batch {args.batch}, {args.clients} agents, {load}, "
          f"{args.workers} worker(s), {os.cpu_count()} CPUs")  # fmt: skip
    print(f"bare model     {rate:8.1f} crops/s   model call  {percentiles(calls)}")
    stored = f"{result['stored']}/{result['sent']} stored in {result['elapsed']:.1f}s"
    print(f"full pipeline  {piped:8.1f} crops/s   ({stored})")
    print(f"HTTP ack per request         {percentiles(result['acks'])}")
    print(f"end to end per observation   {percentiles(result['e2e'])}")
    print(f"pipeline / bare model: {piped / rate:.0%}")
    return 0 if result["stored"] == result["sent"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
