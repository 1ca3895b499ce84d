"""Redis keys only the dashboard reads and writes: teacher accounts, login throttling, sessions, lessons.

Keys that cross a service boundary (results, classes, enrolments, credentials) are the contract's
(``classroom_contract.keys``); these stay here, under the same prefix so the system still shares
one Redis namespace.
"""

from classroom_contract.keys import PREFIX


def teachers() -> str:
    """Set of all teacher usernames."""
    return f"{PREFIX}:teachers"


def teacher(username: str) -> str:
    """Hash of one teacher account: password_hash (werkzeug), admin ("0"/"1"), created_at, session_epoch
    (random; replaced by a password change or reset, which ends every session made before it)."""
    return f"{PREFIX}:teacher:{username}"


def teacher_classes(username: str) -> str:
    """Set of the class ids a teacher owns (the owner is also in the contract's `class_meta`, authoritative)."""
    return f"{PREFIX}:teacher:{username}:classes"


def login_failures(scope: str) -> str:
    """Counter of recent failed logins for a scope ("user:NAME@ADDR" or "ip:ADDR"), expiring on its own."""
    return f"{PREFIX}:login-failures:{scope}"


def dashboard_session(digest: str) -> str:
    """Hash of one dashboard login session (username, epoch, created_at) under the SHA-256 of its id;
    expires with the session; deleted by logout."""
    return f"{PREFIX}:dashboard-session:{digest}"


def class_lessons(class_id: str) -> str:
    """Sorted set of a class's lesson ids scored by start time (server clock), oldest trimmed away."""
    return f"{PREFIX}:class:{class_id}:lessons"


def class_lesson(class_id: str, lesson_id: str) -> str:
    """Hash of one lesson: class_id, lesson_id, started_at, ended_at ("" while running), started_by."""
    return f"{PREFIX}:class:{class_id}:lesson:{lesson_id}"


def class_current_lesson(class_id: str) -> str:
    """The id of the class's running lesson; absent while no lesson runs."""
    return f"{PREFIX}:class:{class_id}:current-lesson"
