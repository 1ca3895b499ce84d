"""Sends the outbox to the API, oldest first, in batches of up to 64 observations of one student.

`POST {server}/v1/observations`, `Authorization: Bearer <student credential>`, body = ObservationBatch
(observations only: the server knows the student from the credential). A sender sends only the
observations captured under its own credential (`owner_key`), so what one student left in a shared
laptop's outbox is never sent as another student.
An observation leaves the outbox only when the server answered 2xx for it (accepted or duplicate),
so delivery is at-least-once, and the server's id check makes it exactly-once.

| answer | what the sender does |
| --- | --- |
| 2xx | acknowledge: delete from the outbox |
| 401, 403 | stop the agent: `AuthRejected` (wrong or revoked credential); the outbox is kept |
| 413, 422, 400 | halve the batch until the culprit is alone, then drop that one observation (counted) |
| 404, 405, other 4xx | stop the agent: `SenderFatal` (wrong --server URL): never retried forever |
| 429, 503 with Retry-After | wait that long (capped at 5 min), then resend the same batch |
| 408, 429, 5xx, network error | exponential backoff with jitter (0.5 s doubling to 30 s), same batch |
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from dataclasses import dataclass, field

import requests
from classroom_contract import IngestResponse, ObservationBatch, StudentIdentity
from classroom_contract.messages import MAX_OBSERVATIONS_PER_REQUEST
from classroom_contract.tokens import credential_sha256, normalise

from classroom_capture import __version__
from classroom_capture.outbox import Outbox

log = logging.getLogger(__name__)

INGEST_PATH = "/v1/observations"
ME_PATH = "/v1/me"


def owner_key(credential: str) -> str:
    """The outbox label of what is captured under `credential`: a short hash, never the credential."""
    digest = credential_sha256(credential)
    if digest is None:
        raise ValueError("not a valid code: 16 letters and digits, as on the join card (dashes optional)")
    return digest[:16]


class SenderFatal(Exception):
    """The server refuses in a way a retry cannot fix; str() is a one-line message for the user."""


class AuthRejected(SenderFatal):
    pass


@dataclass
class Backoff:
    """Exponential backoff with "equal jitter": half the step fixed, half random (never 0, never in lockstep)."""

    base: float = 0.5
    cap: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def next(self) -> float:
        step = min(self.cap, self.base * (2**self.attempt))
        self.attempt += 1
        return step / 2 + self.rng.uniform(0, step / 2)

    def reset(self) -> None:
        self.attempt = 0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass
class Stats:
    accepted: int = 0
    duplicates: int = 0
    requests: int = 0
    retries: int = 0
    rejected: int = 0


@dataclass(frozen=True)
class Step:
    kind: str  # "sent", "empty", "wait", "shrunk"
    count: int = 0
    delay: float = 0.0
    reason: str = ""


class Sender:
    def __init__(
        self,
        server: str,
        credential: str,
        outbox: Outbox,
        *,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (5.0, 20.0),
        backoff: Backoff | None = None,
        batch_size: int = MAX_OBSERVATIONS_PER_REQUEST,
        max_retry_after: float = 300.0,
    ):
        self.owner = owner_key(credential)  # ValueError for a malformed credential
        self.server = server.rstrip("/")
        self.url = self.server + INGEST_PATH
        self.outbox, self.timeout = outbox, timeout
        self.batch_size = max(1, min(batch_size, MAX_OBSERVATIONS_PER_REQUEST))
        self._limit = self.batch_size
        self._isolating = False  # halving after a 4xx: stay small until the culprit is found
        self.backoff = backoff or Backoff()
        self.max_retry_after = max_retry_after
        self.session = session or requests.Session()
        self.session.headers.update(
            {
                "Authorization": f"Bearer {normalise(credential)}",
                "Content-Type": "application/json",
                "User-Agent": f"classroom-capture/{__version__}",
            }
        )
        self.stats = Stats()
        self.reachable: bool | None = None  # unknown until the first answer
        self.fatal: SenderFatal | None = None

    def pending(self) -> int:
        """Observations of this sender's credential still in the outbox."""
        return self.outbox.count(self.owner)

    def whoami(self) -> StudentIdentity | None:
        """`GET /v1/me` with this sender's credential: see `fetch_identity`."""
        return fetch_identity(self.server, self.session, self.timeout)

    # --- one request ----------------------------------------------------------------------------

    def step(self, deadline: float | None = None) -> Step:
        """POST the oldest batch once. Raises SenderFatal/AuthRejected for answers a retry cannot fix.
        With a `deadline` (monotonic), the request's timeouts end there at the latest."""
        pending = self.outbox.oldest(self._limit, owner=self.owner)
        if not pending:
            return Step("empty")
        batch = ObservationBatch(observations=[p.observation for p in pending])
        seqs = [p.seq for p in pending]
        timeout = self.timeout
        if deadline is not None:
            remaining = max(0.1, deadline - time.monotonic())
            timeout = (min(timeout[0], remaining), min(timeout[1], remaining))
        self.stats.requests += 1
        try:
            response = self.session.post(
                self.url, data=batch.model_dump_json(exclude_none=True), timeout=timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            return self._wait(None, f"server unreachable ({type(exc).__name__})")
        status = response.status_code
        self._mark_reachable(True)
        if 200 <= status < 300:
            self.outbox.ack(seqs)
            self._count_ack(response, len(seqs))
            self.backoff.reset()
            if not self._isolating:
                self._limit = min(self.batch_size, self._limit * 2)
            return Step("sent", len(seqs))
        detail = _detail(response)
        if status in (401, 403):
            raise AuthRejected(_auth_message(status))
        if status in (400, 413, 422):
            if len(seqs) > 1:  # bisect towards the culprit, keeping the order of everything else
                self._limit, self._isolating = max(1, len(seqs) // 2), True
                return Step("shrunk", len(seqs), reason=f"HTTP {status}")
            self._limit, self._isolating = self.batch_size, False
            self.outbox.reject(seqs)
            self.stats.rejected += 1
            log.warning("server refused an observation (HTTP %s: %s); dropped it", status, detail)
            return Step("sent", 0, reason=f"rejected HTTP {status}")
        if status == 408 or status == 429 or status >= 500:
            return self._wait(response, f"HTTP {status}")
        raise SenderFatal(f"the server answered HTTP {status} to POST {self.url}: check --server ({detail})")

    def _wait(self, response: requests.Response | None, reason: str) -> Step:
        self.stats.retries += 1
        if response is None:
            self._mark_reachable(False, reason)
        retry_after = parse_retry_after(response.headers.get("Retry-After")) if response is not None else None
        if retry_after is not None:
            delay = min(retry_after, self.max_retry_after)
        else:
            delay = self.backoff.next()
        return Step("wait", delay=delay, reason=reason)

    def _count_ack(self, response: requests.Response, sent: int) -> None:
        try:
            answer = IngestResponse.model_validate_json(response.content)
            self.stats.accepted += answer.accepted
            self.stats.duplicates += answer.duplicates
        except ValueError:
            self.stats.accepted += sent

    def _mark_reachable(self, ok: bool, reason: str = "") -> None:
        if ok and self.reachable is False:
            log.info("server reachable again; sending the %d observations kept in the outbox", self.pending())
        elif not ok and self.reachable is not False:
            log.warning("%s at %s; observations are kept in the outbox and sent when it is back", reason, self.url)
        self.reachable = ok

    # --- loops ----------------------------------------------------------------------------------

    def drain(self, stop: threading.Event | None = None, deadline: float | None = None) -> bool:
        """Send until the outbox is empty (True), `stop` is set or `deadline` (monotonic) passes (False)."""
        stop = stop or threading.Event()
        while not stop.is_set():
            step = self.step(deadline)
            if step.kind == "empty":
                return True
            if step.kind == "wait":
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= step.delay:
                    return False
                stop.wait(step.delay)
            elif deadline is not None and time.monotonic() > deadline:
                return self.pending() == 0
        return self.pending() == 0

    def run(self, stop: threading.Event, wake: threading.Event, interval: float = 1.0) -> None:
        """Background loop: every `interval` s (or when woken), send everything pending. A fatal answer
        is kept in `self.fatal` and sets `stop`, so the agent ends with its message."""
        try:
            while not stop.is_set():
                wake.wait(interval)
                wake.clear()
                self.drain(stop)
        except SenderFatal as exc:
            self.fatal = exc
            stop.set()
        except Exception as exc:  # noqa: BLE001 - a bug must end the agent with a message, not hang it
            log.debug("sender crashed", exc_info=True)
            self.fatal = SenderFatal(f"sender stopped unexpectedly: {type(exc).__name__}: {exc}")
            stop.set()


def fetch_identity(
    server: str, session_or_credential: requests.Session | str, timeout: tuple[float, float] = (5.0, 20.0)
) -> StudentIdentity | None:
    """`GET /v1/me`: whom the credential belongs to; None when the server cannot be reached now.

    AuthRejected for an unknown or revoked credential, SenderFatal for a URL that is not a class server.
    """
    session = session_or_credential
    if isinstance(session, str):
        session = requests.Session()
        session.headers.update({"Authorization": f"Bearer {normalise(session_or_credential)}"})
    url = server.rstrip("/") + ME_PATH
    try:
        response = session.get(url, timeout=timeout, allow_redirects=False)
    except requests.RequestException:
        return None
    if response.status_code in (401, 403):
        raise AuthRejected(_auth_message(response.status_code))
    if response.status_code == 429 or response.status_code >= 500:
        return None
    if response.status_code != 200:
        raise SenderFatal(f"the server answered HTTP {response.status_code} to GET {url}: check --server")
    try:
        return StudentIdentity.model_validate_json(response.content)
    except ValueError:
        raise SenderFatal(f"{url} did not answer like a class server: check --server") from None


def _auth_message(status: int) -> str:
    return (
        f"the server refused your code (HTTP {status}): it is wrong or was replaced; "
        "ask your teacher for your join link (CLASSROOM_TOKEN / --join-link)"
    )


def _detail(response: requests.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:200] if text else response.reason or ""
