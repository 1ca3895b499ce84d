"""Issue #7: a short soak of the real stack through every fault, and its nothing-lost ledger.

Runs bench/soak.py as a subprocess with small numbers (12 agents for a minute, outages scaled down,
RQ's job timeout and sweeps shortened so a SIGKILLed worker's job comes back within the run) and
reads its ledger: every observation the agents captured has exactly one result, and every fault
really happened. The long run is `python -m bench.soak --agents 200 --minutes 10`.
"""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

from tests.support.procs import PYTHON, REPO

pytestmark = pytest.mark.slow

AGENTS, RATE, MINUTES = 12, 1.0, 1.0
#: RQ settings that fit a one-minute run: a SIGKILLed job is abandoned after 8 + 1 s, swept every 2 s.
FAST_RQ = ["JOB_TIMEOUT_S=8", "ABANDONED_GRACE_S=1", "MAINTENANCE_INTERVAL_S=2"]
#: The soak bounds every phase itself; this only guards against a hang of the harness.
HARD_LIMIT_S = 420


@pytest.fixture(scope="module")
def soak(tmp_path_factory):
    """Run the short soak once; (ledger, report dir, exit code, output)."""
    tmp = tmp_path_factory.mktemp("soak")
    out = tmp / "report"
    args = [PYTHON, "-m", "bench.soak", "--agents", str(AGENTS), "--rate", str(RATE)]
    args += ["--minutes", str(MINUTES), "--out", str(out), "--workdir", str(tmp / "work")]
    args += ["--drain-s", "30", "--results-s", "90"]
    for setting in FAST_RQ:
        args += ["--service-env", setting]
    log = tmp / "soak.log"
    with open(log, "wb") as handle:
        proc = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
        try:
            proc.wait(HARD_LIMIT_S)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)  # the soak stops its services in `finally`
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    output = log.read_text(errors="replace")
    ledger_path = out / "ledger.json"
    assert ledger_path.is_file(), f"no ledger (exit {proc.returncode}):\n{output[-6000:]}"
    return json.loads(ledger_path.read_text()), out, proc.returncode, output


def _lost(ledger: dict) -> str:
    """What was lost, for assertion messages: where the missing observations are, and some of them."""
    t = ledger["totals"]
    return (
        f"captured {t['captured']}, acked {t['acked']}, accepted {t['accepted_by_api']}, stored {t['stored_unique']}; "
        f"lost {t['lost']} ({ledger['lost_where']}), first lost: {ledger['lost_ids'][:5]}; "
        f"doubled {t['doubled']}; redis after: {ledger['redis_after']}"
    )


def test_nothing_lost_nothing_doubled(soak):
    ledger, _, _, output = soak
    t = ledger["totals"]
    assert t["captured"] >= AGENTS * RATE * MINUTES * 60 / 2, f"too little load to mean anything: {_lost(ledger)}"
    assert t["lost"] == 0, f"observations lost: {_lost(ledger)}\n{output[-4000:]}"
    assert t["doubled"] == 0, "results stored twice: " + str(
        {s: v["doubled"] for s, v in ledger["per_student"].items() if v["doubled"]}
    )
    assert t["unexpected"] == 0, f"results of observations nobody captured: {_lost(ledger)}"
    assert t["captured"] == t["acked"] == t["accepted_by_api"] == t["stored_unique"], _lost(ledger)
    assert t["pending_in_outbox"] == t["dropped"] == t["rejected"] == 0, f"left on laptops or dropped: {_lost(ledger)}"
    per_student = {s: v["lost"] for s, v in ledger["per_student"].items() if v["lost"] or v["captured"] == 0}
    assert not per_student, f"students with losses (or nothing captured): {per_student}"


def test_redis_is_clean_afterwards(soak):
    ledger, *_ = soak
    after = ledger["redis_after"]
    assert after["crops_left"] == 0, f"{after['crops_left']} crops still in Redis (not predicted): {_lost(ledger)}"
    assert after["failed"] == 0, f"RQ failed registry not empty, their observations have no result: {after}"
    # jobs may still wait in `queued`/`scheduled` (retries of batches another job's coalescing has
    # stored meanwhile: they find nothing to do); what matters is that no crop is left without a result
    assert ledger["killed_job_batches_stored"], f"the SIGKILLed worker's batches were not stored: {_lost(ledger)}"


def test_every_fault_happened_and_recovered(soak):
    ledger, *_ = soak
    faults = {f["name"]: f for f in ledger["faults"]}
    assert set(faults) == {
        "worker_sigkill",
        "redis_restart",
        "tfserving_outage",
        "api_restart",
        "network_cut",
        "crop_store_restart",
    }
    for name, fault in faults.items():
        assert fault["started_at"] is not None and fault["error"] is None, f"{name} did not happen: {fault}"
        assert fault["ok"], f"{name} did not recover: {fault}"

    kill = faults["worker_sigkill"]["details"]
    assert kill["returncode"] == -signal.SIGKILL, f"worker was not SIGKILLed: {kill}"
    assert kill["job_id"] and kill["held_batches"] >= 1, f"no batch was in flight when the worker died: {kill}"
    assert kill["replacement_pid"] != kill["pid"]

    redis_restart = faults["redis_restart"]["details"]
    assert redis_restart["returncode"] == 0 and redis_restart["new_pid"] != redis_restart["pid"], redis_restart
    assert any(name.endswith(".manifest") for name in redis_restart["aof_files"]), f"no AOF: {redis_restart}"

    tf = faults["tfserving_outage"]["details"]
    assert tf["new_pid"] != tf["pid"] and tf["down_s"] > 0, tf
    api = faults["api_restart"]["details"]
    assert api["new_pid"] != api["pid"], api

    cut = faults["network_cut"]["details"]
    assert cut["probe_refused"], f"the proxy still accepted connections during the cut: {cut}"
    assert cut["sender_retries_during"] > 0, f"the cut-off agents never noticed the cut: {cut}"
    assert cut["drained"], f"the cut-off agents' outboxes did not empty after the cut: {cut}"

    planned = [r for r in ledger["restarts"] if r["planned"]]
    assert {r["service"] for r in planned} >= {"redis", "crop-store", "tfserving", "api"}, planned
    assert any(r["service"].startswith("worker") for r in planned), planned


def test_report_files(soak):
    ledger, out, code, output = soak
    assert code == 0 and ledger["ok"], f"soak exit {code}: {_lost(ledger)}\n{output[-3000:]}"
    for name in ("ledger.json", "timeline.csv", "README.md"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "soak.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "lost** (captured, no result at the end) | **0**" in (out / "README.md").read_text()
    rows = (out / "timeline.csv").read_text().splitlines()
    assert rows[0].startswith("t_start_s,") and len(rows) > MINUTES * 60 / 5


def test_crops_lost_to_a_crop_store_restart_are_stored_without_emotion(soak):
    """Issue #14: the crop store (memory only) restarts with crops waiting; their observations are
    still stored once each - presence and head pose, emotion None - and counted by the ledger."""
    ledger, *_ = soak
    restart = next(f for f in ledger["faults"] if f["name"] == "crop_store_restart")["details"]
    assert restart["returncode"] == 0 and restart["new_pid"] != restart["pid"], restart
    assert restart["crops_lost"] > 0, f"no crop was waiting when the crop store restarted: {restart}"
    assert restart["crop_keys_back_after"] == 0, f"crops from before the restart came back (it persists?): {restart}"
    t = ledger["totals"]
    assert t["stored_without_emotion"] > 0, f"no observation was stored without emotion: {restart}; {_lost(ledger)}"
    assert t["lost"] == 0 and t["doubled"] == 0, _lost(ledger)
    after = ledger["redis_after"]
    assert after["crops_in_main_redis"] == 0 and after["batches_pending"] == 0, after
