"""The notifier's pure core: one key per failure and person, the default data, the record file."""

from __future__ import annotations

import multiprocessing

import pytest

from airflow_provider_alta.incident import MAX_ERROR_CHARS, Incident, IncidentRecords, short_error
from airflow_provider_alta.send_record import CALLED, SENDING, UNSENT, record

ON_CALL = "+12025550188"
FAILURE = Incident(dag_id="load", run_id="manual__1", task_id="extract", map_index=2, try_number=3)


def test_the_key_is_a_hash_stable_for_one_failure_and_person():
    key = FAILURE.key("asst_1", ON_CALL)
    assert key == Incident("load", "manual__1", "extract", 2, 3, error="other").key("asst_1", ON_CALL)
    assert key.startswith("alta:")
    assert "2025550188" not in key


@pytest.mark.parametrize(
    "other",
    [
        Incident("load", "manual__1", "extract", 2, 4),  # another try: a new failure
        Incident("load", "manual__1", "extract", 1, 3),  # another mapped instance
        Incident("load", "manual__2", "extract", 2, 3),  # another run
        Incident("load", "manual__1", None),  # the run's own failure
    ],
)
def test_another_failure_has_another_key(other):
    assert other.key("asst_1", ON_CALL) != FAILURE.key("asst_1", ON_CALL)


def test_another_person_or_assistant_has_another_key():
    keys = {
        FAILURE.key("asst_1", ON_CALL),
        FAILURE.key("asst_2", ON_CALL),
        FAILURE.key("asst_1", "+12025550189"),
    }
    assert len(keys) == 3


def test_a_dag_run_key_ignores_try_numbers():
    assert Incident("d", "r", try_number=1).key("a", ON_CALL) == Incident("d", "r", try_number=2).key(
        "a", ON_CALL
    )


def test_default_data_names_the_failure_and_leaves_out_what_is_unknown():
    incident = Incident("load", "manual__1", "extract", -1, 2, error="E: boom", log_url="http://x/log")
    assert incident.data() == {
        "dag_id": "load",
        "task_id": "extract",
        "run_id": "manual__1",
        "try_number": 2,
        "error": "E: boom",
        "log_url": "http://x/log",
    }
    assert Incident("load", "manual__1", reason="task_failure").data() == {
        "dag_id": "load",
        "run_id": "manual__1",
        "reason": "task_failure",
    }
    assert FAILURE.describe() == "load.extract[2] (run manual__1, try 3)"


def test_short_error_is_masked_and_short():
    assert short_error(ValueError("call +12025550177 or a@example.com")) == (
        "ValueError: call +1202***0177 or a***@example.com"
    )
    long = short_error("x" * 1000)
    assert long is not None
    assert len(long) == MAX_ERROR_CHARS
    assert short_error(None) is None


def test_a_claim_is_granted_once_and_survives_a_new_connection(tmp_path):
    path = str(tmp_path / "r.sqlite3")
    records = IncidentRecords(path)
    assert records.claim("k", record(SENDING, "a")) is None
    assert records.claim("k", record(SENDING, "b")) == {"state": SENDING, "by": "a"}
    records.set("k", record(CALLED, "a", call_id="c1"))
    records.close()
    again = IncidentRecords(path)
    assert again.claim("k", record(SENDING, "c")) == {"state": CALLED, "by": "a", "call_id": "c1"}
    assert again.get("other") is None


def test_an_unsent_record_may_be_claimed_again(tmp_path):
    records = IncidentRecords(str(tmp_path / "r.sqlite3"))
    records.set("k", record(UNSENT, "a"))
    assert records.claim("k", record(SENDING, "b")) is None
    assert records.get("k") == {"state": SENDING, "by": "b"}


def _claim(path: str, barrier: multiprocessing.synchronize.Barrier, results: multiprocessing.Queue) -> None:
    records = IncidentRecords(path)
    barrier.wait()
    results.put(records.claim("k", record(SENDING, "p")) is None)


def test_of_processes_claiming_one_key_at_once_one_gets_it(tmp_path):
    path = str(tmp_path / "r.sqlite3")
    IncidentRecords(path).close()
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_claim, args=(path, barrier, results)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert sorted(results.get(timeout=5) for _ in procs) == [False, False, False, True]


def test_a_failed_claim_leaves_no_lock(tmp_path):
    records = IncidentRecords(str(tmp_path / "r.sqlite3"))
    with pytest.raises(TypeError):
        records.claim("k", {"state": SENDING, "bad": object()})
    assert records.claim("k", record(SENDING, "a")) is None  # the transaction was rolled back
