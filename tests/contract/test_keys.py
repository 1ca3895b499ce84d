"""Names shared across services are defined once and match what the libraries they stand for use."""

from __future__ import annotations

from classroom_contract import keys, store
from rq import Queue


def test_the_inference_queue_key_is_the_list_rq_fills():
    """The contract names RQ's list of waiting jobs without importing RQ (the agent does not install it)."""
    assert keys.INFERENCE_QUEUE_KEY == Queue.redis_queue_namespace_prefix + keys.INFERENCE_QUEUE


def test_event_student_reads_both_bytes_and_text_entries():
    assert store.event_student({b"result": b'{"student_id": "s1"}'}) == "s1"
    assert store.event_student({"result": '{"student_id": "s2"}'}) == "s2"
    assert store.event_student({"other": "x"}) is None and store.event_student({"result": "not json"}) is None
