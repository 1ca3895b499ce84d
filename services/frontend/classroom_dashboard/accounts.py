"""Teacher accounts and class ownership, stored in Redis under the dashboard's own keys (keys.py).

Passwords are stored only as werkzeug hashes (scrypt). Usernames are lower-cased. Each account has
a random ``session_epoch``: a new one with every password set (creation, reset, change), and a
dashboard session is valid only while the epoch it was made under is current (``sessions.py``).
"""

from __future__ import annotations

import re
import secrets
import time

from classroom_contract import store
from classroom_contract.messages import ID_REGEX
from werkzeug.security import check_password_hash, generate_password_hash

from classroom_dashboard import keys

#: Use with `fullmatch` only, as every id pattern: `match` with `$` accepts a trailing newline, and such
#: an id then reached Redis (stream ids: a 500) and keys (issue 14, finding 11).
USERNAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.@-]{0,63}")
#: Class ids appear in URLs and Redis keys: the same safe alphabet as student ids.
CLASS_ID_PATTERN = re.compile(ID_REGEX)
MIN_PASSWORD_LENGTH = 8
# Checked when the username is unknown, so a login takes as long as for a real account.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class AccountError(ValueError):
    """A request the accounts store refuses; the message is safe to show to an operator."""


def _text(value) -> str | None:
    """Works with clients made with or without decode_responses (the CLI's, the tests')."""
    return value.decode() if isinstance(value, bytes) else value


def normalise(username: str) -> str:
    return (username or "").strip().lower()


def create_teacher(client, username: str, password: str, admin: bool = False, replace: bool = False) -> str:
    """Create a teacher (or, with `replace`, reset their password and admin flag); returns the username."""
    username = normalise(username)
    if not USERNAME_PATTERN.fullmatch(username):
        raise AccountError("username must be 1-64 characters: a-z, 0-9, and _ . @ - (not first)")
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if client.exists(keys.teacher(username)) and not replace:
        raise AccountError(f"teacher {username!r} already exists")
    client.hset(
        keys.teacher(username),
        mapping={
            "password_hash": generate_password_hash(password),
            "admin": "1" if admin else "0",
            "created_at": f"{time.time():.0f}",
            "session_epoch": new_epoch(),
        },
    )
    client.sadd(keys.teachers(), username)
    return username


def new_epoch() -> str:
    return secrets.token_hex(16)


def set_password(client, username: str, password: str) -> None:
    """Change an existing teacher's password; every session made before it stops working."""
    username = normalise(username)
    if get_teacher(client, username) is None:
        raise AccountError(f"no teacher {username!r}")
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    client.hset(
        keys.teacher(username),
        mapping={"password_hash": generate_password_hash(password), "session_epoch": new_epoch()},
    )


def get_teacher(client, username: str) -> dict | None:
    """{"username", "admin"} of an existing teacher, else None."""
    username = normalise(username)
    if not USERNAME_PATTERN.fullmatch(username):
        return None
    admin = _text(client.hget(keys.teacher(username), "admin"))
    return None if admin is None else {"username": username, "admin": admin == "1"}


def check_password(client, username: str, password: str) -> bool:
    username = normalise(username)
    stored = (
        _text(client.hget(keys.teacher(username), "password_hash")) if USERNAME_PATTERN.fullmatch(username) else None
    )
    ok = check_password_hash(stored or _DUMMY_HASH, password or "")
    return ok and stored is not None


def create_class(client, teacher: str, class_id: str, name: str) -> None:
    """Register a new class owned by `teacher`; AccountError if the id is taken (even a moment ago).

    Students are enrolled separately (roster.py), each with their own credential.
    """
    teacher = normalise(teacher)
    if get_teacher(client, teacher) is None:
        raise AccountError(f"no teacher {teacher!r}; create it first with create-teacher")
    if not CLASS_ID_PATTERN.fullmatch(class_id or ""):
        raise AccountError("class id must be 1-64 characters: letters, digits, and _ . - (not first)")
    try:
        store.create_class(client, class_id, name.strip() or class_id, teacher)
    except store.RecordExists as exc:
        raise AccountError(f"{exc}; choose another class id") from None
    client.sadd(keys.teacher_classes(teacher), class_id)


def classes_of(client, username: str, admin: bool = False) -> list[dict]:
    """The classes a teacher may open ({"class_id", "name", "owner"}), sorted by name; all for an admin."""
    if admin:
        owners = [_text(o) for o in client.smembers(keys.teachers())]
        ids = set().union(*(client.smembers(keys.teacher_classes(o)) for o in owners)) if owners else set()
    else:
        ids = client.smembers(keys.teacher_classes(normalise(username)))
    ids = {_text(i) for i in ids}
    classes = []
    for class_id in ids:
        info = store.class_info(client, class_id)
        if info and (admin or info.get("owner") == normalise(username)):
            classes.append({"class_id": class_id, "name": info.get("name", class_id), "owner": info.get("owner")})
    return sorted(classes, key=lambda c: (c["name"].lower(), c["class_id"]))


def list_teachers(client) -> list[dict]:
    """Every teacher ({"username", "admin", "created_at", "classes"}), sorted by username."""
    names = sorted(_text(n) for n in client.smembers(keys.teachers()))
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hmget(keys.teacher(name), "admin", "created_at")
        pipe.scard(keys.teacher_classes(name))
    replies = pipe.execute()
    teachers = []
    for i, name in enumerate(names):
        (admin, created_at), classes = replies[2 * i], replies[2 * i + 1]
        if admin is None:  # account hash gone; stale set member
            continue
        teachers.append(
            {
                "username": name,
                "admin": _text(admin) == "1",
                "created_at": float(_text(created_at) or 0),
                "classes": int(classes),
            }
        )
    return teachers
