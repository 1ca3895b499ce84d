"""Redis keys only the inference service (API and workers) reads and writes.

Keys another service touches too (crops, queued batches, results, credentials, enrolment,
erasure tombstones) are in `classroom_contract.keys`; these never cross the service boundary, so
they live with their only owner. All are under the contract's prefix, so one Redis can be shared.
"""

from classroom_contract.keys import PREFIX, student_prefix


def seen(class_id: str, student_id: str, observation_id: str) -> str:
    """Marker that a student's observation id was accepted once: makes resends idempotent.

    Keyed by class and student, under the contract's `student_prefix`: nobody's id can suppress
    another's observation, and the dashboard's erasure (which deletes by that prefix) removes them.
    """
    return f"{student_prefix(class_id, student_id)}seen:{observation_id}"


def batch_done(batch_id: str) -> str:
    """Short-lived marker that a batch's results are stored (by its own job or another's)."""
    return f"{PREFIX}:batch-done:{batch_id}"


def retention_sweep_lock() -> str:
    """Short-lived lock: one worker swept every class to the retention window recently."""
    return f"{PREFIX}:retention-sweep"


def rate_limit(credential_sha256: str, window: int) -> str:
    """Counter of requests one student credential made in one fixed rate-limit window, expiring on its own."""
    return f"{PREFIX}:ratelimit:{credential_sha256}:{window}"
