"""Reading and writing the shared Redis records, defined once for the API, workers and dashboard.

Functions take a redis-py client (or pipeline) as their first argument, so this module needs no
Redis import and the capture agent, which installs the contract too, never pulls a Redis client.

Records:
- a class: `class_meta` hash (name, owner, token_sha256) and `class_token(sha)` -> class id;
- a result: JSON of `ObservationResult` in the student's time series (sorted set by capture time,
  trimmed to the retention window), in the class's `latest` hash (one entry per student) and in
  the class's capped event stream (for server push).
"""

from __future__ import annotations

import time
from typing import Any

from classroom_contract import keys
from classroom_contract.messages import ObservationResult
from classroom_contract.tokens import hash_token

#: Entries kept in a class's live event stream (approximate trimming, O(1)).
EVENTS_MAXLEN = 10_000


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


# --- classes and their tokens ----------------------------------------------------------------


def register_class(client, class_id: str, name: str, owner: str, token: str) -> None:
    """Create or update a class and make `token` (stored hashed) the one agents must present."""
    digest = hash_token(token)
    old = _text(client.hget(keys.class_meta(class_id), "token_sha256"))
    pipe = client.pipeline(transaction=True)
    if old and old != digest:
        pipe.delete(keys.class_token(old))
    pipe.hset(keys.class_meta(class_id), mapping={"name": name, "owner": owner, "token_sha256": digest})
    pipe.set(keys.class_token(digest), class_id)
    pipe.execute()


def rotate_token(client, class_id: str, new_token: str) -> None:
    """Replace a class's token: the old one stops working at once."""
    meta = class_info(client, class_id)
    if meta is None:
        raise KeyError(f"unknown class {class_id!r}")
    register_class(client, class_id, meta["name"], meta["owner"], new_token)


def class_info(client, class_id: str) -> dict[str, str] | None:
    meta = client.hgetall(keys.class_meta(class_id))
    return {_text(k): _text(v) for k, v in meta.items()} if meta else None


def class_for_token(client, token: str) -> str | None:
    """The class id a token belongs to, or None for an unknown or rotated-out token."""
    return _text(client.get(keys.class_token(hash_token(token))))


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
    """
    horizon = time.time() - retention_seconds
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


def _newest_per_student(results: list[ObservationResult]) -> list[tuple[str, str, str, float]]:
    newest: dict[tuple[str, str], ObservationResult] = {}
    for result in results:
        key = (result.class_id, result.student_id)
        if key not in newest or result.captured_at >= newest[key].captured_at:
            newest[key] = result
    return [(c, s, r.model_dump_json(), r.captured_at) for (c, s), r in newest.items()]


def latest_results(client, class_id: str) -> dict[str, ObservationResult]:
    """student_id -> newest result, for every student of a class: one HGETALL."""
    raw = client.hgetall(keys.class_latest(class_id))
    return {_text(k): ObservationResult.model_validate_json(v) for k, v in raw.items()}


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


def delete_student(client, class_id: str, student_id: str) -> None:
    """Erase everything stored about one student of a class (on request)."""
    pipe = client.pipeline(transaction=True)
    pipe.delete(keys.student_series(class_id, student_id))
    pipe.hdel(keys.class_latest(class_id), student_id)
    pipe.srem(keys.class_students(class_id), student_id)
    pipe.execute()
