"""Reading and writing the shared Redis records, defined once for the API, workers and dashboard.

Functions take a redis-py client (or pipeline) as their first argument, so this module needs no
Redis import and the capture agent, which installs the contract too, never pulls a Redis client.

Records:
- a class: `class_meta` hash (name, owner, created_at, sample_rate_hz);
- an enrolled student: `enrolment` hash (display name, credential hash, the dashboard's sealed copy),
  the class's `class_enrolled` set, and `credential(sha)` -> {class_id, student_id};
- a result: JSON of `ObservationResult` in the student's time series (sorted set by capture time,
  trimmed to the retention window), in the class's `latest` hash (one entry per student) and in
  the class's capped event stream (for server push).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from classroom_contract import keys
from classroom_contract.messages import DEFAULT_SAMPLE_RATE_HZ, ObservationResult
from classroom_contract.tokens import credential_sha256

try:  # the server side always has redis-py; the capture agent imports this module without it
    from redis.exceptions import WatchError
except ImportError:  # pragma: no cover - agents never call the Redis functions

    class WatchError(Exception):
        pass


#: Entries kept in a class's live event stream (approximate trimming, O(1)).
EVENTS_MAXLEN = 10_000


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


# --- classes and enrolled students --------------------------------------------------------------


class RecordExists(ValueError):
    """A class or an enrolment with that id exists already (perhaps created a moment ago by someone else)."""


class UnknownRecord(LookupError):
    """No such class or enrolled student."""


@dataclass(frozen=True)
class Enrolment:
    """Who a credential belongs to, as the API resolves it."""

    class_id: str
    student_id: str


def create_class(client, class_id: str, name: str, owner: str, sample_rate_hz: float = DEFAULT_SAMPLE_RATE_HZ) -> None:
    """Create a class; RecordExists if the id is taken, also by a concurrent creation.

    WATCH + MULTI: of two concurrent creations of one id exactly one commits; the other sees the
    class (or a WatchError) and is refused, never silently overwriting the first (issue 14, finding 4).
    """
    meta = keys.class_meta(class_id)
    mapping = {"name": name, "owner": owner, "created_at": f"{time.time():.0f}", "sample_rate_hz": repr(sample_rate_hz)}
    with client.pipeline(transaction=True) as pipe:
        try:
            pipe.watch(meta)
            if pipe.exists(meta):
                raise RecordExists(f"class {class_id!r} already exists")
            pipe.multi()
            pipe.hset(meta, mapping=mapping)
            pipe.execute()
        except WatchError:
            raise RecordExists(f"class {class_id!r} was just created by someone else") from None


def class_info(client, class_id: str) -> dict[str, str] | None:
    meta = client.hgetall(keys.class_meta(class_id))
    return {_text(k): _text(v) for k, v in meta.items()} if meta else None


def enrol_student(
    client, class_id: str, student_id: str, display_name: str, credential: str, sealed_credential: str = ""
) -> None:
    """Enrol a student with their credential (stored as its hash; `sealed_credential` is the dashboard's
    encrypted copy). UnknownRecord without the class, RecordExists when the student is enrolled."""
    digest = _digest(credential)
    record, meta = keys.enrolment(class_id, student_id), keys.class_meta(class_id)
    fields = {
        "display_name": display_name,
        "credential_sha256": digest,
        "sealed_credential": sealed_credential,
        "enrolled_at": f"{time.time():.0f}",
    }

    def enrol(pipe) -> None:
        if not pipe.exists(meta):
            raise UnknownRecord(f"no class {class_id!r}")
        if pipe.exists(record):
            raise RecordExists(f"student {student_id!r} is already enrolled in {class_id!r}")
        pipe.multi()
        pipe.hset(record, mapping=fields)
        pipe.sadd(keys.class_enrolled(class_id), student_id)
        pipe.hset(keys.credential(digest), mapping={"class_id": class_id, "student_id": student_id})

    client.transaction(enrol, record, meta)


def rotate_credential(client, class_id: str, student_id: str, credential: str, sealed_credential: str = "") -> None:
    """Give an enrolled student a new credential; the old one stops working in the same transaction.

    The old hash is read under WATCH and deleted in the MULTI that installs the new one, so under
    concurrent rotations the last commit wins and every other credential is revoked (issue 14,
    finding 4: the old code read the old hash outside the transaction and left one valid for good).
    """
    digest, record = _digest(credential), keys.enrolment(class_id, student_id)

    def rotate(pipe) -> None:
        old = _text(pipe.hget(record, "credential_sha256"))
        if old is None:
            raise UnknownRecord(f"student {student_id!r} is not enrolled in {class_id!r}")
        pipe.multi()
        pipe.delete(keys.credential(old))
        pipe.hset(record, mapping={"credential_sha256": digest, "sealed_credential": sealed_credential})
        pipe.hset(keys.credential(digest), mapping={"class_id": class_id, "student_id": student_id})

    client.transaction(rotate, record)


def rename_student(client, class_id: str, student_id: str, display_name: str) -> None:
    """Change an enrolled student's display name; UnknownRecord when not enrolled."""
    record = keys.enrolment(class_id, student_id)

    def rename(pipe) -> None:
        if not pipe.exists(record):
            raise UnknownRecord(f"student {student_id!r} is not enrolled in {class_id!r}")
        pipe.multi()
        pipe.hset(record, "display_name", display_name)

    client.transaction(rename, record)


def unenrol_student(client, class_id: str, student_id: str) -> bool:
    """Remove a student from the roster and revoke their credential at once; False if not enrolled.

    Their stored data is erased separately (the dashboard calls the erasure right after this).
    """
    record = keys.enrolment(class_id, student_id)

    def unenrol(pipe) -> bool:
        old = _text(pipe.hget(record, "credential_sha256"))
        pipe.multi()
        if old:
            pipe.delete(keys.credential(old))
        pipe.delete(record)
        pipe.srem(keys.class_enrolled(class_id), student_id)
        return old is not None

    return client.transaction(unenrol, record, value_from_callable=True)


def enrolled_students(client, class_id: str) -> list[dict[str, str]]:
    """The roster: one dict per enrolled student (student_id, display_name, sealed_credential, ...), by id."""
    ids = sorted(_text(s) for s in client.smembers(keys.class_enrolled(class_id)))
    pipe = client.pipeline(transaction=False)
    for student_id in ids:
        pipe.hgetall(keys.enrolment(class_id, student_id))
    roster = []
    for student_id, record in zip(ids, pipe.execute(), strict=True):
        if record:
            roster.append({"student_id": student_id, **{_text(k): _text(v) for k, v in record.items()}})
    return roster


def enrolment(client, class_id: str, student_id: str) -> dict[str, str] | None:
    record = client.hgetall(keys.enrolment(class_id, student_id))
    return {"student_id": student_id, **{_text(k): _text(v) for k, v in record.items()}} if record else None


def student_for_credential(client, credential: str) -> Enrolment | None:
    """Whose credential this is, or None for a malformed, unknown or revoked one."""
    digest = credential_sha256(credential)
    if digest is None:
        return None
    class_id, student_id = client.hmget(keys.credential(digest), "class_id", "student_id")
    if class_id is None or student_id is None:
        return None
    return Enrolment(_text(class_id), _text(student_id))


def _digest(credential: str) -> str:
    digest = credential_sha256(credential)
    if digest is None:
        raise ValueError("not a credential: 16 Crockford base32 characters")
    return digest


# --- results ---------------------------------------------------------------------------------


def write_results(client, results: list[ObservationResult], retention_seconds: float) -> None:
    """Store results atomically in every view the dashboard reads, dropping expired history."""
    if not results:
        return
    pipe = client.pipeline(transaction=True)
    add_results(pipe, results, retention_seconds)
    pipe.execute()


def add_results(pipe, results: list[ObservationResult], retention_seconds: float) -> None:
    """Queue the writes of `write_results` on the caller's transaction pipeline, without executing.

    For a writer whose results must commit together with its own writes (the API marking
    observations seen, a worker deleting the crops it predicted): all in one MULTI/EXEC or none.
    A result captured before the retention horizon is already expired: it is stored nowhere.
    Every view the result goes into is trimmed to the horizon here (the series and the stream at
    once, the latest hash and student set at most every TRIM_INTERVAL_S per class); the periodic
    `sweep_retention` does the same for classes nobody writes to any more.
    """
    horizon = time.time() - retention_seconds
    results = [r for r in results if r.captured_at >= horizon]
    for result in results:
        body = result.model_dump_json()
        series = keys.student_series(result.class_id, result.student_id)
        pipe.zadd(series, {body: result.captured_at})
        pipe.zremrangebyscore(series, "-inf", horizon)
        pipe.expire(series, int(retention_seconds) + 60)
        pipe.sadd(keys.class_students(result.class_id), result.student_id)
        pipe.xadd(keys.class_events(result.class_id), {"result": body}, maxlen=EVENTS_MAXLEN, approximate=True)
    for class_id, student_id, body, captured_at in _newest_per_student(results):
        pipe.eval(_SET_IF_NEWER, 1, keys.class_latest(class_id), student_id, body, repr(captured_at))
    for class_id in sorted({r.class_id for r in results}):
        pipe.sadd(keys.result_classes(), class_id)
        _queue_trim(pipe, class_id, horizon, TRIM_INTERVAL_S)


#: HSET latest[student] = result unless the stored one was captured later. Writers finish out of
#: capture order (the API stores an absence at once, a worker stores older faces seconds later);
#: without this check an older face would replace a newer absence as the student's latest state.
_SET_IF_NEWER = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local ok, old = pcall(cjson.decode, current)
  if ok and type(old) == 'table' and tonumber(old['captured_at']) and
     tonumber(old['captured_at']) > tonumber(ARGV[3]) then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


def event_student(fields: dict) -> str | None:
    """The student of one live-stream entry (written by `add_results` as {"result": JSON}), or None
    for an entry that is not a result. Fields may be bytes or str, as the Redis client returns them."""
    raw = fields.get("result", fields.get(b"result"))
    if raw is None:
        return None
    try:
        return json.loads(raw).get("student_id")
    except (ValueError, AttributeError):
        return None


def _newest_per_student(results: list[ObservationResult]) -> list[tuple[str, str, str, float]]:
    newest: dict[tuple[str, str], ObservationResult] = {}
    for result in results:
        key = (result.class_id, result.student_id)
        if key not in newest or result.captured_at >= newest[key].captured_at:
            newest[key] = result
    return [(c, s, r.model_dump_json(), r.captured_at) for (c, s), r in newest.items()]


def latest_results(client, class_id: str, since: float | None = None) -> dict[str, ObservationResult]:
    """student_id -> newest result, for every student of a class: one HGETALL.

    `since` (the retention horizon): leave out students whose newest result is older, so a read
    between two retention sweeps never shows an expired entry.
    """
    raw = client.hgetall(keys.class_latest(class_id))
    latest = {_text(k): ObservationResult.model_validate_json(v) for k, v in raw.items()}
    return {s: r for s, r in latest.items() if since is None or r.captured_at >= since}


def student_series(
    client, class_id: str, student_id: str, since: float = 0.0, until: float | None = None
) -> list[ObservationResult]:
    """A student's results captured in [since, until] (until None: up to now), oldest first."""
    raw = client.zrangebyscore(keys.student_series(class_id, student_id), since, "+inf" if until is None else until)
    return [ObservationResult.model_validate_json(v) for v in raw]


def class_series(client, class_id: str, since: float, until: float | None = None) -> dict[str, list[ObservationResult]]:
    """student_id -> results captured in [since, until], oldest first: one pipelined read per student."""
    students = class_students(client, class_id)
    pipe = client.pipeline(transaction=False)
    for student_id in students:
        pipe.zrangebyscore(keys.student_series(class_id, student_id), since, "+inf" if until is None else until)
    replies = pipe.execute()
    return {
        student_id: [ObservationResult.model_validate_json(v) for v in raw]
        for student_id, raw in zip(students, replies, strict=True)
    }


def class_students(client, class_id: str) -> list[str]:
    return sorted(_text(s) for s in client.smembers(keys.class_students(class_id)))


# --- retention ------------------------------------------------------------------------------

#: A class's latest hash and student set are trimmed on write at most this often (each trim reads
#: the whole latest hash); the stream and the series are trimmed on every write.
TRIM_INTERVAL_S = 60

#: Trim one class to the retention horizon: latest entries captured before it, students with no
#: result left, series entries and stream entries (stream ids are write times, which are never
#: before the capture time, so MINID never drops an entry still inside the window).
#: KEYS: latest, students, events, trim lock; ARGV: horizon, lock seconds (0: no lock), series key
#: prefix and suffix (around the student id), stream MINID.
_TRIM_CLASS = """
if ARGV[2] ~= '0' and not redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[2]) then
  return -1
end
local horizon = tonumber(ARGV[1])
local removed = 0
local latest = redis.call('HGETALL', KEYS[1])
for i = 1, #latest, 2 do
  local ok, r = pcall(cjson.decode, latest[i + 1])
  if ok and type(r) == 'table' and tonumber(r['captured_at']) and tonumber(r['captured_at']) < horizon then
    redis.call('HDEL', KEYS[1], latest[i])
    removed = removed + 1
  end
end
for _, student in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local series = ARGV[3] .. student .. ARGV[4]
  redis.call('ZREMRANGEBYSCORE', series, '-inf', '(' .. ARGV[1])
  if redis.call('ZCARD', series) == 0 and redis.call('HEXISTS', KEYS[1], student) == 0 then
    redis.call('SREM', KEYS[2], student)
    removed = removed + 1
  end
end
redis.call('XTRIM', KEYS[3], 'MINID', ARGV[5])
return removed
"""


def _queue_trim(client, class_id: str, horizon: float, lock_seconds: int):
    series_prefix, series_suffix = keys.student_series(class_id, "\0").split("\0")
    return client.eval(
        _TRIM_CLASS,
        4,
        keys.class_latest(class_id),
        keys.class_students(class_id),
        keys.class_events(class_id),
        keys.class_trim_lock(class_id),
        repr(horizon),
        str(lock_seconds),
        series_prefix,
        series_suffix,
        f"{int(horizon * 1000)}-0",
    )


def trim_class(client, class_id: str, retention_seconds: float) -> int:
    """Drop everything of one class captured before the retention horizon; how many entries went."""
    return int(_queue_trim(client, class_id, time.time() - retention_seconds, 0))


def classes_with_results(client) -> list[str]:
    """Ids of the classes that have results: the `result_classes` set every write adds to.

    The first call on a Redis (results may predate that set) also SCANs once for the classes with
    a latest hash, a student set or an event stream and adds them; a marker key remembers it.
    """
    scanned = f"{keys.result_classes()}:scanned"
    if not client.exists(scanned):
        found = set()
        for view in ("latest", "students", "events"):
            for key in client.scan_iter(match=f"{keys.PREFIX}:class:*:{view}", count=1000):
                found.add(_text(key)[len(f"{keys.PREFIX}:class:") : -len(view) - 1])
        if found:
            client.sadd(keys.result_classes(), *found)
        client.set(scanned, 1)
    return sorted(_text(m) for m in client.smembers(keys.result_classes()))


def sweep_retention(client, retention_seconds: float) -> int:
    """Trim every class to the retention window, also the quiet ones nobody writes to any more.

    Run periodically by the inference workers (`classroom_inference.retention`), so every
    deployment that processes observations also expires them. A class left with nothing is
    dropped from `result_classes` (its next write adds it again).
    """
    removed = 0
    for class_id in classes_with_results(client):
        removed += trim_class(client, class_id, retention_seconds)
        _forget_if_empty(client, class_id)
    return removed


#: SREM a class from result_classes when it has no latest hash, student set or stream left (atomic,
#: so a result written at the same moment keeps it listed).
_FORGET_IF_EMPTY = """
if redis.call('EXISTS', KEYS[2], KEYS[3], KEYS[4]) == 0 then
  return redis.call('SREM', KEYS[1], ARGV[1])
end
return 0
"""


def _forget_if_empty(client, class_id: str) -> None:
    client.eval(
        _FORGET_IF_EMPTY,
        4,
        keys.result_classes(),
        keys.class_latest(class_id),
        keys.class_students(class_id),
        keys.class_events(class_id),
        class_id,
    )
