"""Redis key names and queue names, namespaced under one prefix so the system can share a Redis.

Only the server side (API, workers, dashboard) touches Redis; laptops never see it.
"""

PREFIX = "classroom"

#: RQ queue the API fills and the inference workers drain.
INFERENCE_QUEUE = "inference"
#: Dotted path of the RQ job function, so the API can enqueue without importing TensorFlow.
PREDICT_JOB = "classroom_inference.jobs.predict_batch"


def crops(batch_id: str) -> str:
    """Hash observation_id -> raw crop bytes for one queued batch; deleted once predicted."""
    return f"{PREFIX}:crops:{batch_id}"


def seen(observation_id: str) -> str:
    """Marker that an observation id was accepted once: makes resends idempotent."""
    return f"{PREFIX}:seen:{observation_id}"


def class_token(token_sha256: str) -> str:
    """Maps the SHA-256 of a class token to its class id; the token itself is never stored."""
    return f"{PREFIX}:token:{token_sha256}"


def class_meta(class_id: str) -> str:
    """Hash of a class's settings (name, owner, current token hash)."""
    return f"{PREFIX}:class:{class_id}:meta"


def class_students(class_id: str) -> str:
    """Set of student ids seen in a class."""
    return f"{PREFIX}:class:{class_id}:students"


def class_latest(class_id: str) -> str:
    """Hash student_id -> latest result JSON: the dashboard reads a class in O(students)."""
    return f"{PREFIX}:class:{class_id}:latest"


def class_events(class_id: str) -> str:
    """Capped stream of result JSON for live updates (server push)."""
    return f"{PREFIX}:class:{class_id}:events"


def student_series(class_id: str, student_id: str) -> str:
    """Sorted set of result JSON scored by capture time, trimmed to the retention window."""
    return f"{PREFIX}:class:{class_id}:student:{student_id}:series"
