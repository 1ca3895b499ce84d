"""A small real HTTP server on 127.0.0.1 that speaks the ingest API the way the real one does:
per-student bearer credentials (the student comes from the credential, as on the real API),
GET /v1/me, ObservationBatch validation (the contract's own model), id de-duplication, and
scripted failures (503/429 with Retry-After, 500, 413, 422 for chosen ids)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from classroom_contract import ObservationBatch
from classroom_contract.tokens import normalise
from pydantic import ValidationError

#: A well-formed student credential (Crockford base32), alice's on the fake API of tests/capture.
TOKEN = "ABCD-EFGH-JKMN-PQRS"


class FakeApi:
    def __init__(self, token: str | None = None, max_body: int = 1_000_000, credentials: dict | None = None):
        """`credentials`: {credential: student id}; or one `token`, the credential of student "alice"."""
        self.credentials = {normalise(c): s for c, s in (credentials or {token: "alice"}).items()}
        self.max_body = max_body
        self.lock = threading.Lock()
        self.accepted: list[dict] = []  # in arrival order: {"id", "student_id", "captured_at", "face_count", ...}
        self.seen: set[str] = set()
        self.duplicates = 0
        self.statuses: list[int] = []
        #: Called per request before the normal handling; return (status, headers) to answer that instead.
        self.script: Callable[[int], tuple[int, dict] | None] | None = None
        self.bad_ids: set[str] = set()  # observations answered with 422
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FakeApi:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def ids(self) -> list[str]:
        with self.lock:
            return [o["id"] for o in self.accepted]

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _answer(self, status: int, body: dict | None = None, headers: dict | None = None) -> None:
                with api.lock:
                    api.statuses.append(status)
                data = json.dumps(body or {}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, str(value))
                self.end_headers()
                self.wfile.write(data)

            def _student(self) -> str | None:
                scheme, _, credential = (self.headers.get("Authorization") or "").partition(" ")
                return api.credentials.get(normalise(credential)) if scheme == "Bearer" else None

            def do_GET(self):  # noqa: N802 - http.server's name
                if self.path != "/v1/me":
                    return self._answer(404, {"detail": "not found"})
                student = self._student()
                if student is None:
                    return self._answer(401, {"detail": "unknown or revoked student credential"})
                me = {"class_id": "room-1", "class_name": "Room 1", "student_id": student}
                me.update(display_name=student.title(), sample_rate_hz=2.0, attention_only=False)
                return self._answer(200, me)

            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path != "/v1/observations":
                    return self._answer(404, {"detail": "not found"})
                student = self._student()
                if student is None:
                    return self._answer(401, {"detail": "unknown or revoked student credential"})
                if length > api.max_body:
                    return self._answer(413, {"detail": "too large"})
                with api.lock:
                    n = len(api.statuses)
                scripted = api.script(n) if api.script else None
                if scripted:
                    return self._answer(scripted[0], {"detail": "scripted"}, scripted[1])
                try:
                    batch = ObservationBatch.model_validate_json(raw)
                except ValidationError as exc:
                    return self._answer(422, {"detail": str(exc)[:200]})
                if any(str(o.observation_id) in api.bad_ids for o in batch.observations):
                    return self._answer(422, {"detail": "bad observation"})
                accepted = duplicates = 0
                with api.lock:
                    for o in batch.observations:
                        oid = str(o.observation_id)
                        if oid in api.seen:
                            duplicates += 1
                            continue
                        api.seen.add(oid)
                        accepted += 1
                        api.accepted.append(
                            {
                                "id": oid,
                                "student_id": student,
                                "captured_at": o.captured_at,
                                "face_count": o.face_count,
                                "crop": o.crop,
                                "head_yaw": o.head_yaw,
                                "head_pitch": o.head_pitch,
                            }
                        )
                    api.duplicates += duplicates
                return self._answer(200, {"accepted": accepted, "duplicates": duplicates})

        return Handler
