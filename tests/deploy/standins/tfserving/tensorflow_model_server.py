"""`tensorflow_model_server` of the TF Serving stand-in image (see the Dockerfile beside this file).

Takes the real server's flags that docker-compose.yml passes, serves the newest SavedModel version
of the one model in --model_config_file over gRPC (tfserving_server.FakeTFServing: the official
protos), and answers on --rest_api_port what the compose healthcheck and Prometheus ask:
GET /v1/models/<name> (model status, AVAILABLE) and the --monitoring_config_file metrics path.
Every answer carries `X-Stand-In: tfserving_server.py` so nobody mistakes it for TF Serving.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# tests/support/tfserving_server.py, copied beside this script in the image (/opt/standin), whose folder
# Python puts first on sys.path when it runs this file.
from tfserving_server import FakeTFServing


class AllInterfaces(FakeTFServing):
    """The stand-in listens on the container's network, not only its loopback."""

    @property
    def address(self) -> str:
        return f"0.0.0.0:{self.port}"


def parse_flags(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tensorflow_model_server (stand-in)")
    parser.add_argument("--port", type=int, default=8500)
    parser.add_argument("--rest_api_port", type=int, default=8501)
    parser.add_argument("--model_config_file", type=Path, required=True)
    parser.add_argument("--monitoring_config_file", type=Path)
    parser.add_argument("--tensorflow_intra_op_parallelism", type=int)
    parser.add_argument("--tensorflow_inter_op_parallelism", type=int)
    flags, ignored = parser.parse_known_args(argv)  # batching and polling flags: TF Serving's only
    flags.ignored = ignored
    return flags


def model_config(path: Path) -> tuple[str, Path]:
    text = path.read_text()
    name = re.search(r'name:\s*"([^"]+)"', text).group(1)
    base = re.search(r'base_path:\s*"([^"]+)"', text).group(1)
    return name, Path(base)


def metrics_path(path: Path | None) -> str | None:
    if path is None:
        return None
    match = re.search(r'path:\s*"([^"]+)"', path.read_text())
    return match.group(1) if match else None


def rest_handler(name: str, server: FakeTFServing, metrics: str | None):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's method name
            if self.path == f"/v1/models/{name}":
                body = {"model_version_status": [{"version": str(server.version), "state": "AVAILABLE"}]}
                self.answer(200, json.dumps(body), "application/json")
            elif metrics and self.path == metrics:
                lines = [
                    "# TYPE :tensorflow:serving:request_count counter",
                    f':tensorflow:serving:request_count{{model_name="{name}",entrypoint="Predict"}} '
                    f"{server.prediction.calls}",
                ]
                self.answer(200, "\n".join(lines) + "\n", "text/plain; version=0.0.4")
            else:
                self.answer(404, "not found\n", "text/plain")

        def answer(self, status: int, body: str, content_type: str):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Stand-In", "tfserving_server.py")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    return Handler


def main(argv: list[str]) -> int:
    flags = parse_flags(argv)
    name, base = model_config(flags.model_config_file)
    grpc_server = AllInterfaces(flags.port, base).start()
    handler = rest_handler(name, grpc_server, metrics_path(flags.monitoring_config_file))
    rest = ThreadingHTTPServer(("0.0.0.0", flags.rest_api_port), handler)
    threading.Thread(target=rest.serve_forever, daemon=True).start()
    print(
        f"STAND-IN tensorflow_model_server (tests/support/tfserving_server.py, not TF Serving): model {name!r} "
        f"version {grpc_server.version} on gRPC :{flags.port}, REST :{flags.rest_api_port}; "
        f"ignored flags: {' '.join(flags.ignored) or 'none'}",
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    rest.shutdown()
    grpc_server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
