"""Large outcomes leave XCom: JSON lines at an ObjectStoragePath (a local one here), read back."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, ObjectStoragePath

from airflow_provider_alta.operators.batch import BatchTriggerAssistantCallsOperator
from airflow_provider_alta.outcome_sink import read_jsonl

pytestmark = pytest.mark.integration

TOKEN = "sandbox-batch-outcomes-token"


def leads(n: int, start: int = 100) -> list[dict]:
    return [
        {"lead": f"L{i}", "name": f"Lead {i}", "phone": f"+1202555{i:04d}"} for i in range(start, start + n)
    ]


class TI(SimpleNamespace):
    def xcom_push(self, key, value, **_):
        self.xcom[key] = value


def ti(map_index: int = -1) -> TI:
    return TI(dag_id="crm", run_id="manual__2026-11-24", map_index=map_index, try_number=1, xcom={})


def batch(prospects, **kwargs) -> BatchTriggerAssistantCallsOperator:
    options = {
        "task_id": "campaign",
        "prospects": prospects,
        "assistant_id": "asst_1",
        "field_map": {"lead": "data.lead_id", "phone": "phone_number"},
        "record_key": "lead",
        "calling_hours": False,
        **kwargs,
    }
    return BatchTriggerAssistantCallsOperator(**options)


def read_back(url: str) -> list[dict]:
    with ObjectStoragePath(url).open("rb") as f:  # type: ignore[no-untyped-call]
        return list(read_jsonl(f.read().splitlines()))


def test_beyond_the_limit_outcomes_go_to_the_file_and_xcom_keeps_counts_and_path(sandbox, tmp_path):
    template = f"file://{tmp_path}/{{dag_id}}/{{run_id}}/{{task_id}}.jsonl"
    summary = batch(leads(30), outcomes_xcom_limit=10, outcomes_path=template).execute({"ti": ti()})
    assert summary["counts"] == {"called": 30}
    assert summary["outcomes"] == {}
    assert summary["outcomes_count"] == 30
    assert summary["outcomes_path"] == f"file://{tmp_path}/crm/manual__2026-11-24/campaign.jsonl"
    rows = read_back(summary["outcomes_path"])
    assert [r["key"] for r in rows] == [f"L{i}" for i in range(100, 130)]
    assert rows[0] == {"key": "L100", "state": "called", "phone_number": "+1202***0100"}
    text = (tmp_path / "crm" / "manual__2026-11-24" / "campaign.jsonl").read_text()
    assert "2025550100" not in text  # masked, as the XCom outcomes are
    assert len(json.dumps(summary)) < 400


def test_under_the_limit_outcomes_stay_in_xcom_and_a_mapped_instance_gets_its_own_file(sandbox, tmp_path):
    tmp_path = tmp_path / "outcomes"
    template = f"file://{tmp_path}/{{task_id}}.jsonl"
    summary = batch(leads(3), outcomes_xcom_limit=3, outcomes_path=template).execute({"ti": ti()})
    assert len(summary["outcomes"]) == 3
    assert "outcomes_path" not in summary
    assert not tmp_path.exists()
    mapped = batch(leads(3, start=200), outcomes_xcom_limit=0, outcomes_path=template).execute({"ti": ti(2)})
    assert mapped["outcomes_path"] == f"file://{tmp_path}/campaign.2.jsonl"
    assert [r["key"] for r in read_back(mapped["outcomes_path"])] == ["L200", "L201", "L202"]


def test_a_failed_campaign_pushes_the_summary_with_the_path_and_only_problems_are_written(sandbox, tmp_path):
    records = [*leads(2), *({**lead, "phone": "12"} for lead in leads(10, start=300))]
    template = f"file://{tmp_path}/out.jsonl"
    task = batch(records, outcomes_xcom_limit=5, outcomes_path=template, xcom_outcomes="problems")
    instance = ti()
    with pytest.raises(AirflowFailException, match="10/12 records tried failed"):
        task.execute({"ti": instance})
    summary = instance.xcom["summary"]
    assert summary["outcomes_count"] == 10
    assert {r["state"] for r in read_back(summary["outcomes_path"])} == {"invalid"}


def test_a_path_that_cannot_be_written_fails_for_a_retry_with_the_counts_in_xcom(sandbox, tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    instance = ti()
    task = batch(leads(3), outcomes_xcom_limit=1, outcomes_path=f"file://{tmp_path}/taken/out.jsonl")
    with pytest.raises(AirflowException, match="Could not write 3 outcomes") as info:
        task.execute({"ti": instance})
    assert not isinstance(info.value, AirflowFailException)
    summary = instance.xcom["summary"]
    assert summary["counts"] == {"called": 3}
    assert summary["outcomes_error"]
    with pytest.raises(ValueError, match="unknown placeholder"):
        batch(leads(1), outcomes_path="file:///tmp/{ds}.jsonl")
