"""Redis key names and queue names, namespaced under one prefix so the system can share a Redis.

Only the server side (API, workers, dashboard) touches Redis; laptops never see it. Only keys that
more than one service reads or writes are here; a service's private keys live in that service
(`classroom_inference.redis_keys`, the dashboard's own modules), under the same PREFIX.
"""

PREFIX = "classroom"

#: RQ queue the API fills and the inference workers drain.
INFERENCE_QUEUE = "inference"
#: RQ's Redis list of the queue's waiting job ids (RQ names it "rq:queue:" + the queue's name; a
#: test checks this against RQ): the API's erasure withdraws a student's jobs from it.
INFERENCE_QUEUE_KEY = f"rq:queue:{INFERENCE_QUEUE}"


def crops(batch_id: str) -> str:
    """Hash observation_id -> raw crop bytes for one queued batch, in the CROP STORE (never in the
    main Redis, which persists to disk); deleted once predicted, else it expires on its own."""
    return f"{PREFIX}:crops:{batch_id}"


def batch_pending(batch_id: str) -> str:
    """Marker that a queued batch's results are not stored yet (set with its job, deleted when they
    are). A worker stores a batch only while this exists, in one transaction with its deletion:
    that makes a batch stored exactly once, and erasing the marker drops the batch's results."""
    return f"{PREFIX}:batch-pending:{batch_id}"


def student_batches(class_id: str, student_id: str) -> str:
    """Set of a student's batch ids not stored yet, so an erasure finds their jobs and crops."""
    return f"{PREFIX}:class:{class_id}:student:{student_id}:batches"


def erasure_generation(class_id: str, student_id: str) -> str:
    """Tombstone: how many times a student was erased. Jobs carry the value read at ingest; a
    result whose job carries an older one is dropped (work queued before an erasure)."""
    return f"{PREFIX}:class:{class_id}:student:{student_id}:erased"


def pending_batches() -> str:
    """List of queued batches' job metadata (ids, times, head pose; never pixels).

    A worker running one batch's job takes several more from here and predicts them in one model
    call. It is only an optimisation: each batch keeps its own RQ job, which does the work if no
    other worker got to it first, so an entry lost from this list loses nothing.
    """
    return f"{PREFIX}:pending-batches"


def student_prefix(class_id: str, student_id: str) -> str:
    """Prefix of every per-student key (series, seen markers, enrolment): `SCAN MATCH prefix*` finds them."""
    return f"{PREFIX}:class:{class_id}:student:{student_id}:"


def credential(credential_sha256: str) -> str:
    """Hash {class_id, student_id} of one student credential, by its SHA-256; the credential itself is never here."""
    return f"{PREFIX}:credential:{credential_sha256}"


def enrolment(class_id: str, student_id: str) -> str:
    """Hash of one enrolled student: display_name, credential_sha256, sealed_credential, enrolled_at.

    `sealed_credential` is the credential encrypted by the dashboard (only it holds the key). Not
    under `student_prefix`: erasing a student's data does not unenrol them.
    """
    return f"{PREFIX}:class:{class_id}:enrolment:{student_id}"


def class_enrolled(class_id: str) -> str:
    """Set of the student ids enrolled in a class (the roster)."""
    return f"{PREFIX}:class:{class_id}:enrolled"


def class_meta(class_id: str) -> str:
    """Hash of a class's settings (name, owner, created_at, sample_rate_hz)."""
    return f"{PREFIX}:class:{class_id}:meta"


def class_students(class_id: str) -> str:
    """Set of student ids with stored results in a class (the roster of enrolled ones is `class_enrolled`)."""
    return f"{PREFIX}:class:{class_id}:students"


def class_latest(class_id: str) -> str:
    """Hash student_id -> latest result JSON: the dashboard reads a class in O(students)."""
    return f"{PREFIX}:class:{class_id}:latest"


def class_trim_lock(class_id: str) -> str:
    """Short-lived lock: a class's latest hash was trimmed to the retention window recently."""
    return f"{PREFIX}:class:{class_id}:trimmed"


def result_classes() -> str:
    """Set of the class ids that have stored results: what the retention sweep visits."""
    return f"{PREFIX}:result-classes"


def class_events(class_id: str) -> str:
    """Capped stream of result JSON for live updates (server push)."""
    return f"{PREFIX}:class:{class_id}:events"


def student_series(class_id: str, student_id: str) -> str:
    """Sorted set of result JSON scored by capture time, trimmed to the retention window."""
    return f"{student_prefix(class_id, student_id)}series"
