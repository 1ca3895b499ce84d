"""Lessons: a teacher starts and stops one for a class; its time range scopes the CSV and the timeline.

A lesson is (class_id, lesson_id, started_at, ended_at), stored in Redis under the dashboard's own
keys (keys.py): a hash per lesson, a sorted set of the class's lessons by start time (the newest
``MAX_LESSONS`` kept) and a "current lesson" key that exists only while one runs - at most one per class, enforced
with WATCH/MULTI so two clicks (or two teachers) cannot start two lessons. Times are the server's
clock; results are matched to a lesson by their capture time. Storage only: the start and stop
buttons are views in classes.py.
"""

from __future__ import annotations

import time
import uuid

import redis

from classroom_dashboard import accounts, keys

#: Lessons remembered per class; older ones are forgotten when a new one starts.
MAX_LESSONS = 500


class LessonError(ValueError):
    """A lesson action that does not fit the class's state (the message is shown to the teacher)."""


def _text(value) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _lesson(raw: dict) -> dict | None:
    if not raw:
        return None
    raw = {_text(k): _text(v) for k, v in raw.items()}
    ended = raw.get("ended_at") or ""
    return {
        "class_id": raw.get("class_id"),
        "lesson_id": raw.get("lesson_id"),
        "started_at": float(raw.get("started_at") or 0),
        "ended_at": float(ended) if ended else None,
        "started_by": raw.get("started_by") or "",
    }


def get_lesson(client, class_id: str, lesson_id: str) -> dict | None:
    """{"class_id", "lesson_id", "started_at", "ended_at" (None while running), "started_by"} or None."""
    if not accounts.CLASS_ID_PATTERN.fullmatch(lesson_id or ""):
        return None
    return _lesson(client.hgetall(keys.class_lesson(class_id, lesson_id)))


def current_lesson(client, class_id: str) -> dict | None:
    """The running lesson of a class, or None."""
    lesson_id = _text(client.get(keys.class_current_lesson(class_id)))
    return get_lesson(client, class_id, lesson_id) if lesson_id else None


def recent_lessons(client, class_id: str, count: int = 10) -> list[dict]:
    """The newest `count` finished lessons, newest first."""
    ids = [_text(i) for i in client.zrevrange(keys.class_lessons(class_id), 0, count)]
    pipe = client.pipeline(transaction=False)
    for lesson_id in ids:
        pipe.hgetall(keys.class_lesson(class_id, lesson_id))
    lessons = [lesson for lesson in map(_lesson, pipe.execute()) if lesson and lesson["ended_at"] is not None]
    return lessons[:count]


def start_lesson(client, class_id: str, teacher: str, now: float | None = None) -> dict:
    """Start a lesson now; LessonError if one is already running."""
    now = time.time() if now is None else now
    lesson_id = f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}-{uuid.uuid4().hex[:6]}"
    current, index = keys.class_current_lesson(class_id), keys.class_lessons(class_id)
    with client.pipeline(transaction=True) as pipe:
        try:
            pipe.watch(current)
            if pipe.exists(current):
                raise LessonError("A lesson is already running.")
            forgotten = [_text(i) for i in pipe.zrange(index, 0, -MAX_LESSONS)]
            pipe.multi()
            pipe.hset(
                keys.class_lesson(class_id, lesson_id),
                mapping={
                    "class_id": class_id,
                    "lesson_id": lesson_id,
                    "started_at": repr(now),
                    "ended_at": "",
                    "started_by": teacher,
                },
            )
            pipe.zadd(index, {lesson_id: now})
            pipe.set(current, lesson_id)
            if forgotten:
                pipe.zrem(index, *forgotten)
                pipe.delete(*(keys.class_lesson(class_id, i) for i in forgotten))
            pipe.execute()
        except redis.WatchError:
            raise LessonError("A lesson was started meanwhile.") from None
    return get_lesson(client, class_id, lesson_id)


def stop_lesson(client, class_id: str, now: float | None = None) -> dict:
    """End the running lesson now; LessonError if none runs."""
    now = time.time() if now is None else now
    current = keys.class_current_lesson(class_id)
    with client.pipeline(transaction=True) as pipe:
        try:
            pipe.watch(current)
            lesson_id = _text(pipe.get(current))
            if not lesson_id:
                raise LessonError("No lesson is running.")
            pipe.multi()
            pipe.hset(keys.class_lesson(class_id, lesson_id), "ended_at", repr(now))
            pipe.delete(current)
            pipe.execute()
        except redis.WatchError:
            raise LessonError("The lesson was stopped meanwhile.") from None
    return get_lesson(client, class_id, lesson_id)


def lesson_range(lesson: dict, now: float | None = None) -> tuple[float, float]:
    """(start, end) of a lesson; a running lesson ends now."""
    end = lesson["ended_at"] if lesson["ended_at"] is not None else (time.time() if now is None else now)
    return lesson["started_at"], max(end, lesson["started_at"])
