"""Security events as structured log lines: one JSON object per line on the `classroom.security` logger.

Call ``security_log.event(name, **fields)`` wherever something security-relevant happens (a login,
a failed or throttled login, a logout, a password change, a token or credential rotation, an
erasure, a new account). Each line carries ``ts`` (UTC, ISO 8601), ``event`` and, inside a request,
``client`` (the client address as the throttle sees it, after TRUSTED_PROXY_HOPS) and ``user`` (the
logged-in teacher), plus the caller's fields (``username``, ``class_id``, ``student_id``, ...).

Why JSON: the values include attacker-chosen text (a username typed into the login form); JSON
escapes newlines and quotes, so nobody can forge a log line. A field whose name looks like a secret
(password, token, credential, cookie, secret, session) is never written, whatever the caller
passes: the log must not become a place where secrets leak.

Events used today: login_succeeded, login_failed, login_throttled, logout, session_rejected,
password_changed, teacher_created, class_created, student_enrolled, student_renamed,
student_credential_rotated, student_removed, student_erased.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from flask import g, has_request_context, request

LOGGER_NAME = "classroom.security"
logger = logging.getLogger(LOGGER_NAME)

#: Field names (substrings, lower case) that are never logged.
SECRET_NAMES = ("password", "token", "credential", "cookie", "secret", "session")
#: Longest string value written (an attacker's username could be megabytes).
MAX_VALUE_CHARS = 200


def _clean(value):
    if value is None or isinstance(value, bool | int | float):
        return value
    text = str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "..."


def _context() -> dict:
    if not has_request_context():
        return {"client": "cli"}
    user = g.get("user")
    return {"client": request.remote_addr, "user": user["username"] if user else None}


def record(name: str, **fields) -> dict:
    """The dict `event` logs (without secrets); separate so tests can check it without a log handler."""
    line = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": name, **_context()}
    for key, value in fields.items():
        if any(secret in key.lower() for secret in SECRET_NAMES):
            continue
        line[key] = _clean(value)
    return line


def event(name: str, **fields) -> None:
    """Log one security event as a JSON line (see the module docstring for the fields)."""
    logger.info(json.dumps(record(name, **fields), separators=(",", ":"), ensure_ascii=True))


def ensure_handler() -> None:
    """Send the events to stderr (gunicorn's error log, the container log) unless logging is configured."""
    if logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
