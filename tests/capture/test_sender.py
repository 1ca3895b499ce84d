"""The sender against a real HTTP server on 127.0.0.1: retries, Retry-After, 401, bad data."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from classroom_capture.outbox import Outbox
from classroom_capture.sender import AuthRejected, Backoff, Sender, SenderFatal, owner_key, parse_retry_after
from classroom_contract import Observation, encode_crop

from tests.support.fake_api import TOKEN, FakeApi
from tests.support.procs import free_port


def fill(box: Outbox, count: int, credential: str = TOKEN) -> list[str]:
    """`count` observations captured under `credential` (the outbox labels them with its short hash)."""
    student = owner_key(credential)
    ids = []
    for t in range(count):
        face = t % 3 != 0
        o = Observation(
            observation_id=uuid.uuid4(),
            captured_at=1000.0 + t,
            face_count=int(face),
            crop=encode_crop(bytes([t % 256]) * 2304) if face else None,
            head_yaw=5.0 if face else None,
        )
        box.put(student, o)
        ids.append(str(o.observation_id))
    return ids


def fast_backoff() -> Backoff:
    return Backoff(base=0.01, cap=0.05)


def test_503_then_200_everything_arrives_once_oldest_first(api, tmp_path):
    box = Outbox(tmp_path / "o.sqlite3")
    ids = fill(box, 150)  # 3 requests of 64, 64, 22
    api.script = lambda n: (503, {"Retry-After": "0"}) if n < 4 else None
    sender = Sender(api.url, TOKEN, box, backoff=fast_backoff())
    assert sender.drain(deadline=time.monotonic() + 10)
    assert api.ids() == ids  # exactly once each, in capture order
    assert api.statuses == [503] * 4 + [200] * 3
    assert api.duplicates == 0 and len(box) == 0
    assert sender.stats.accepted == 150


def test_retry_after_is_honoured(api, tmp_path):
    box = Outbox(tmp_path / "o.sqlite3")
    fill(box, 3)
    api.script = lambda n: (429, {"Retry-After": "1"}) if n == 0 else None
    sender = Sender(api.url, TOKEN, box, backoff=fast_backoff())
    started = time.monotonic()
    assert sender.drain(deadline=time.monotonic() + 10)
    assert time.monotonic() - started >= 0.95
    assert api.statuses == [429, 200]


def test_5xx_without_retry_after_backs_off_with_jitter(api, tmp_path):
    box = Outbox(tmp_path / "o.sqlite3")
    fill(box, 2)
    api.script = lambda n: (500, {}) if n < 3 else None
    sender = Sender(api.url, TOKEN, box, backoff=fast_backoff())
    assert sender.drain(deadline=time.monotonic() + 10)
    assert api.statuses == [500, 500, 500, 200] and sender.stats.retries == 3
    assert len(api.ids()) == 2


def test_401_stops_and_keeps_the_outbox(api, tmp_path):
    box = Outbox(tmp_path / "o.sqlite3")
    fill(box, 5)
    fill(box, 5, credential="ZZZZ-ZZZZ-ZZZZ-ZZZZ")
    sender = Sender(api.url, "ZZZZ-ZZZZ-ZZZZ-ZZZZ", box, backoff=fast_backoff())  # well-formed, not issued
    with pytest.raises(AuthRejected, match="401"):
        sender.drain(deadline=time.monotonic() + 10)
    assert api.statuses == [401]  # asked once, not forever
    assert len(box) == 10
    with pytest.raises(ValueError, match="code"):
        Sender(api.url, "wrong-token", box)  # not even the shape of a credential


def test_a_sender_sends_only_what_was_captured_under_its_own_credential(tmp_path):
    """A shared laptop: what one student left in the outbox is never sent as (or by) another student."""
    other = "MNPQ-RSTV-WXYZ-0123"
    with FakeApi(credentials={TOKEN: "alice", other: "bob"}) as api:
        box = Outbox(tmp_path / "o.sqlite3")
        alices = fill(box, 3)
        bobs = fill(box, 4, credential=other)
        alices += fill(box, 2)
        bob = Sender(api.url, other, box, backoff=fast_backoff())
        assert bob.drain(deadline=time.monotonic() + 10)
        assert api.ids() == bobs and {o["student_id"] for o in api.accepted} == {"bob"}
        assert len(box) == 5 and bob.pending() == 0
        alice = Sender(api.url, TOKEN, box, backoff=fast_backoff())
        assert alice.whoami().student_id == "alice"
        assert alice.drain(deadline=time.monotonic() + 10)
        assert api.ids() == bobs + alices and len(box) == 0


def test_wrong_url_is_fatal_not_retried(api, tmp_path):
    box = Outbox(tmp_path / "o.sqlite3")
    fill(box, 1)
    sender = Sender(api.url + "/wrong", TOKEN, box, backoff=fast_backoff())
    with pytest.raises(SenderFatal, match="HTTP 404"):
        sender.drain(deadline=time.monotonic() + 10)
    assert api.statuses == [404]


def test_422_isolates_and_drops_only_the_bad_observation(api, tmp_path):
    box = Outbox(tmp_path / "o.sqlite3")
    ids = fill(box, 20)
    api.bad_ids = {ids[13]}
    sender = Sender(api.url, TOKEN, box, backoff=fast_backoff())
    assert sender.drain(deadline=time.monotonic() + 10)
    assert api.ids() == ids[:13] + ids[14:]  # the rest arrived, still in order
    assert box.counter("rejected") == 1 and sender.stats.rejected == 1
    assert api.statuses.count(422) <= 6  # bisection, never an endless resend


def test_413_splits_the_batch(tmp_path):
    with FakeApi(token=TOKEN, max_body=60_000) as api:  # ~18 observations with crops per request
        box = Outbox(tmp_path / "o.sqlite3")
        ids = fill(box, 64)
        sender = Sender(api.url, TOKEN, box, backoff=fast_backoff())
        assert sender.drain(deadline=time.monotonic() + 10)
        assert api.ids() == ids
        assert 413 in api.statuses


def test_server_down_then_up_loses_nothing(tmp_path):
    """Unreachable server: observations wait; once it listens, they all arrive, oldest first, once."""
    port = free_port()
    box = Outbox(tmp_path / "o.sqlite3")
    ids = fill(box, 70)
    sender = Sender(f"http://127.0.0.1:{port}", TOKEN, box, backoff=fast_backoff(), timeout=(0.5, 2))
    assert not sender.drain(deadline=time.monotonic() + 0.3)
    assert sender.reachable is False and len(box) == 70
    api = FakeApi(token=TOKEN)
    api.server.server_close()  # rebind on the port the sender already targets
    from http.server import ThreadingHTTPServer

    api.server = ThreadingHTTPServer(("127.0.0.1", port), api.server.RequestHandlerClass)
    api.url = f"http://127.0.0.1:{port}"
    api.thread = threading.Thread(target=api.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    with api:
        assert sender.drain(deadline=time.monotonic() + 10)
        assert api.ids() == ids


def test_retry_after_parsing():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)


def test_backoff_grows_is_capped_and_jittered():
    backoff = Backoff(base=0.5, cap=30.0)
    delays = [backoff.next() for _ in range(12)]
    assert 0.25 <= delays[0] <= 0.5
    assert all(15.0 <= d <= 30.0 for d in delays[8:])
    assert len(set(delays)) == len(delays)  # jitter: no two equal
    backoff.reset()
    assert backoff.next() <= 0.5
