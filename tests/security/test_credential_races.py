"""Races on real Redis with real threads (issue 14, finding 4).

- Concurrent rotations of one student's credential: afterwards exactly one credential works, the
  one the enrolment names; every other one issued on the way is revoked. (The old rotation read
  the current hash outside its MULTI, so two rotations could each delete the same old hash and
  leave the other's new credential valid for good.)
- Two teachers creating the same class id at once: exactly one succeeds, the others get a clear
  error. (The old check-then-write let both succeed, and one was handed a token that did not work.)

Each round starts its threads at a barrier, so the calls really overlap; many rounds make an
interleaving that the old code got wrong all but certain (checked: both tests fail on it).
"""

from __future__ import annotations

import threading

import pytest
import redis
from classroom_contract import keys, store, tokens
from classroom_dashboard import accounts
from classroom_dashboard.keys import teacher_classes

ROUNDS = 25
THREADS = 8


def _together(target, n: int) -> list:
    """Run `target(i)` in `n` threads released at once; their results (or exceptions) in order."""
    barrier, results = threading.Barrier(n), [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target(i)
        except Exception as exc:  # noqa: BLE001 - the test inspects what each call raised
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def _valid(client, credential: str) -> bool:
    return store.student_for_credential(client, credential) is not None


@pytest.fixture
def pool(redis_url):
    """One client per thread would be closer to several API replicas; a shared pool is what one process has."""
    client = redis.Redis.from_url(redis_url, max_connections=THREADS * 2)
    yield client
    client.close()


def test_concurrent_rotations_leave_exactly_one_valid_credential(pool):
    store.create_class(pool, "race", "Race", "teacher")
    first = tokens.new_credential()
    store.enrol_student(pool, "race", "anna", "Anna", first)
    issued = [first]
    for _ in range(ROUNDS):
        fresh = [tokens.new_credential() for _ in range(THREADS)]
        issued += fresh
        outcomes = _together(lambda i, fresh=fresh: store.rotate_credential(pool, "race", "anna", fresh[i]), THREADS)
        assert all(o is None for o in outcomes), outcomes
        valid = [c for c in issued if _valid(pool, c)]
        current = store.enrolment(pool, "race", "anna")["credential_sha256"]
        assert [tokens.credential_sha256(c) for c in valid] == [current], f"{len(valid)} credentials still work"
        assert len(list(pool.scan_iter(keys.credential("*")))) == 1


def test_concurrent_creations_of_one_class_id_let_exactly_one_succeed(pool):
    for n in range(THREADS):
        accounts.create_teacher(pool, f"teacher{n}", "a long password")
    for round_ in range(ROUNDS):
        class_id = f"dup-{round_}"
        outcomes = _together(
            lambda i, c=class_id: accounts.create_class(pool, f"teacher{i}", c, f"Class of {i}"), THREADS
        )
        failures = [o for o in outcomes if isinstance(o, accounts.AccountError)]
        winners = [i for i, o in enumerate(outcomes) if not isinstance(o, Exception)]
        assert len(winners) == 1, f"round {round_}: {len(winners)} teachers created {class_id}: {outcomes}"
        assert len(failures) == THREADS - 1 and all("exists" in str(f) or "created" in str(f) for f in failures)
        owner = store.class_info(pool, class_id)["owner"]
        assert owner == f"teacher{winners[0]}"
        holders = [n for n in range(THREADS) if pool.sismember(teacher_classes(f"teacher{n}"), class_id)]
        assert holders == winners  # the losers do not list a class they do not own
