"""BatchTriggerAssistantCallsOperator without a network: bad records, failing sources, stop signals.

Dry runs send nothing; a connection no request can reach guards against any send.
"""

from __future__ import annotations

import json
import signal
from functools import partial
from types import SimpleNamespace

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_alta.operators.batch import BatchTriggerAssistantCallsOperator
from alta_testing.data.odd_records import deep, looped
from alta_testing.state_store import FakeTI


@pytest.fixture(autouse=True)
def unreachable_connection(monkeypatch):
    conn = {"conn_type": "alta", "password": "tok_unit_batch_1234", "host": "http://127.0.0.1:9/v1"}
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", json.dumps(conn))


def lead(n: int, **extra) -> dict:
    return {"name": f"Lead {n}", "phone_number": f"+1202555{n:04d}", **extra}


def batch(prospects, **kwargs) -> BatchTriggerAssistantCallsOperator:
    options = {
        "task_id": "campaign",
        "prospects": prospects,
        "assistant_id": "asst_1",
        "calling_hours": False,
    }
    return BatchTriggerAssistantCallsOperator(**{**options, "dry_run": True, **kwargs})


TI = partial(FakeTI, 1)  # a first try's task instance


def test_bad_records_are_reported_in_the_summary_and_the_batch_completes():
    records = [
        lead(1),
        {**lead(2), 7: "x"},
        lead(3, data=deep(5000)),
        lead(4, data=looped()),
        None,
        ["list"],
        lead(5),
    ]
    summary = batch(records).execute({"ti": TI()})
    assert summary["total"] == len(records)
    assert summary["counts"] == {"dry_run": 2, "invalid": 5}
    reasons = {k: v.get("reason", "") for k, v in summary["outcomes"].items()}
    assert reasons["1"] == "prospect[7]: keys must be strings, not int"
    assert reasons["2"].startswith("data.x.x")
    assert reasons["2"].endswith("nested deeper than 32 levels")
    assert reasons["3"] == "data.me.me: refers to itself (a cycle): JSON cannot hold it"
    assert reasons["4"] == "prospect: must be a dict (a record), not NoneType"
    assert reasons["5"] == "prospect: must be a dict (a record), not list"


def test_a_source_that_raises_partway_fails_for_a_retry_with_the_summary_in_xcom():
    def source():
        yield lead(1)
        yield lead(2)
        raise ConnectionError("lost the cursor at +12025550143")

    ti = TI()
    with pytest.raises(AirflowException, match="record source failed after 2") as info:
        batch(source).execute({"ti": ti})
    assert not isinstance(info.value, AirflowFailException)
    assert "2025550143" not in str(info.value)
    summary = ti.xcom["summary"]
    assert summary["counts"] == {"dry_run": 2}
    assert summary["total"] == 2
    assert summary["source_error"] == "ConnectionError: lost the cursor at +1202***0143"
    assert summary["stopped"].startswith("the record source failed after 2 record(s)")


@pytest.mark.parametrize("source", [lambda: 1 / 0, lambda: None])
def test_a_source_that_cannot_be_read_at_all_is_reported(source):
    ti = TI()
    with pytest.raises(AirflowException, match="record source failed after 0"):
        batch(source).execute({"ti": ti})
    assert ti.xcom["summary"]["total"] == 0
    assert ti.xcom["summary"]["source_error"].split(":")[0] in ("ZeroDivisionError", "TypeError")


def test_sigterm_stops_the_batch_between_records_and_the_handlers_are_restored():
    def source():
        for n in range(1, 11):
            if n == 4:
                signal.raise_signal(signal.SIGTERM)  # e.g. the worker being shut down
            yield lead(n)

    task = batch(source)
    runner = signal.signal(signal.SIGTERM, lambda *_: task.on_kill())  # what Airflow 3's task runner sets
    try:
        before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        ti = TI()
        with pytest.raises(AirflowException, match="7 record\\(s\\) not reached") as info:
            task.execute({"ti": ti})
        assert not isinstance(info.value, AirflowFailException)  # a retry resumes
        summary = ti.xcom["summary"]
        assert summary["total"] == 10
        assert summary["counts"] == {"dry_run": 3, "not_reached": 7}
        assert summary["stopped"] == "asked to stop (the task received SIGTERM)"
        assert {sig: signal.getsignal(sig) for sig in before} == before
    finally:
        signal.signal(signal.SIGTERM, runner)


def test_a_second_signal_goes_to_the_handler_that_was_there_before():
    earlier: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: earlier.append(signum))
    try:

        def source():
            for n in range(1, 6):
                if n == 2:
                    signal.raise_signal(signal.SIGINT)
                    signal.raise_signal(signal.SIGINT)
                yield lead(n)

        ti = TI()
        with pytest.raises(AirflowException, match="not reached"):
            batch(source).execute({"ti": ti})
        assert earlier == [signal.SIGINT]
        assert ti.xcom["summary"]["stopped"] == "asked to stop (the task received SIGINT)"
    finally:
        signal.signal(signal.SIGINT, previous)


def test_on_kill_stops_a_running_batch_and_is_harmless_when_idle():
    def source():
        for n in range(1, 6):
            if n == 3:
                task.on_kill()
            yield lead(n)

    task = batch(source)
    task.on_kill()  # nothing running: nothing happens
    ti = TI()
    with pytest.raises(AirflowException, match="3 record\\(s\\) not reached"):
        task.execute({"ti": ti})
    assert ti.xcom["summary"]["stopped"] == "asked to stop (on_kill)"
    task.on_kill()  # finished: nothing happens


def test_without_a_ti_the_failure_still_names_the_source_error():
    ti = SimpleNamespace(try_number=1)  # no xcom_push needed when nothing failed
    assert batch([lead(1)]).execute({"ti": ti})["counts"] == {"dry_run": 1}
    with pytest.raises(AirflowException, match="TypeError"):
        batch(None).execute({})


odd_values = st.one_of(
    st.none(),
    st.integers(),
    st.floats(),
    st.text(max_size=6),
    st.binary(max_size=3),
    st.builds(dict),
    st.builds(lambda n: {"deep": deep(n)}, st.integers(30, 2000)),
    st.builds(looped),
)
records = st.one_of(
    st.builds(
        lambda n, extra: {**lead(n), **extra},
        st.integers(1, 40),
        st.dictionaries(
            st.one_of(
                st.sampled_from(["data", "email", "timezone", "phoneNumber"]), st.integers(), st.none()
            ),
            odd_values,
            max_size=2,
        ),
    ),
    odd_values,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records, max_size=10), st.one_of(st.none(), st.integers(0, 10)))
def test_fuzzed_batches_always_end_with_every_record_read_in_the_summary(batch_records, fail_after):
    def source():
        for index, record in enumerate(batch_records):
            if index == fail_after:
                raise OSError("source failed")
            yield record

    ti = TI()
    read = len(batch_records) if fail_after is None else min(fail_after, len(batch_records))
    if read < len(batch_records):
        with pytest.raises(AirflowException, match="record source failed") as info:
            batch(source).execute({"ti": ti})
        assert not isinstance(info.value, AirflowFailException)
        summary = ti.xcom["summary"]
        assert summary["source_error"] == "OSError: source failed"
    else:
        try:
            summary = batch(source).execute({"ti": ti})
        except AirflowFailException:  # too many invalid records: failed, the summary in XCom
            summary = ti.xcom["summary"]
            assert summary["counts"]["invalid"]
    assert summary["total"] == read == len(summary["outcomes"]) == sum(summary["counts"].values())
    assert set(summary["counts"]) <= {"dry_run", "invalid", "skipped_duplicate"}
