"""Mapped single calls: the map index label, the default map_index_template and the record key."""

from __future__ import annotations

import datetime
import json

import pytest
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_alta.operators._mapped import (
    DEFAULT_MAP_INDEX_TEMPLATE,
    MAX_LABEL,
    keyed_context,
    shown_key,
)
from airflow_provider_alta.operators.alta import TriggerAssistantCallOperator

ADA = "+12025550143"


@pytest.fixture(autouse=True)
def unreachable_connection(monkeypatch):
    """A connection no request can reach: these tests must never send anything."""
    conn = {"conn_type": "alta", "password": "tok_unit_map_1234", "host": "http://127.0.0.1:9/v1"}
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", json.dumps(conn))


def op(**kwargs) -> TriggerAssistantCallOperator:
    return TriggerAssistantCallOperator(task_id="call", **{"assistant_id": "asst_1", **kwargs})


def mapped(**partial):
    with DAG("mapped_labels", schedule=None, start_date=datetime.datetime(2026, 1, 1)):
        return TriggerAssistantCallOperator.partial(task_id="calls", assistant_id="a", **partial).expand(
            phone_number=[ADA]
        )


def test_a_mapped_call_gets_the_default_map_index_template():
    assert mapped().partial_kwargs["map_index_template"] == DEFAULT_MAP_INDEX_TEMPLATE


@pytest.mark.parametrize(
    ("partial", "expected"),
    [
        ({"map_index_template": "{{ task.record_key }}"}, "{{ task.record_key }}"),
        ({"map_index_template": None}, None),
        ({"default_args": {"map_index_template": "call {{ ti.map_index }}"}}, "call {{ ti.map_index }}"),
    ],
)
def test_the_dag_authors_map_index_template_wins(partial, expected):
    assert mapped(**partial).partial_kwargs["map_index_template"] == expected


def test_the_label_is_the_record_key_else_the_masked_number():
    assert op(phone_number=ADA, record_key="lead-0001").call_label == "lead-0001"
    assert op(phone_number=ADA, record_key=1001).call_label == "1001"
    assert op(phone_number=ADA).call_label == "+1202***0143"


def test_the_label_reads_the_number_from_the_record_normalized_with_the_tasks_region():
    task = op(
        prospect={"mobile": "(202) 555-0178"}, field_map={"mobile": "phone_number"}, default_region="US"
    )
    assert task.call_label == "+1202***0178"
    assert op(prospect={"phoneNumber": ADA}).call_label == "+1202***0143"


def test_the_label_never_shows_the_full_number():
    assert op(prospect={"phone_number": "(202) 555-0178"}).call_label == "(20***0178"  # no region
    assert op(phone_number=ADA, record_key=ADA).call_label == "+1202***0143"  # the key is the number
    assert op(phone_number=ADA, record_key="ada (202) 555-0143").call_label == "+1202***0143"
    assert op(record_key="202-555-0143").call_label == "202***0143"  # no number known: masked anyway


def test_the_label_is_empty_rather_than_failing():
    assert op().call_label == ""
    assert op(prospect="not a record").call_label == ""  # type: ignore[arg-type]
    assert len(op(phone_number=ADA, record_key="k" * 400).call_label) == MAX_LABEL


def test_the_default_template_renders_the_label():
    task = op(phone_number=ADA, record_key="lead-0001")
    assert task.render_template(DEFAULT_MAP_INDEX_TEMPLATE, {"task": task}) == "lead-0001"


def test_the_record_key_is_kept_as_given_except_the_persons_own_number():
    assert shown_key("lead-0001", ADA, None) == "lead-0001"
    assert shown_key(20255501, ADA, None) == 20255501  # other digits are kept
    assert shown_key(2025550143, ADA, None) == "+1202***0143"
    assert shown_key("ada@example.com", ADA, "ada@example.com") == "a***@example.com"
    assert shown_key(("crm", 7), ADA, None) == "('crm', 7)"
    assert shown_key(None, ADA, None) is None


def test_the_xcom_result_carries_the_record_key(monkeypatch):
    result = op(
        name="Ada", phone_number=ADA, record_key="lead-0001", calling_hours=False, dry_run=True
    ).execute({})
    assert result == {
        "status": "dry_run",
        "assistant_id": "asst_1",
        "phone_number": "+1202***0143",
        "record_key": "lead-0001",
    }
    assert "record_key" not in op(name="Ada", phone_number=ADA, calling_hours=False, dry_run=True).execute({})


class Pushes:
    def __init__(self) -> None:
        self.pushed: dict[str, object] = {}
        self.try_number = 3

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


def test_a_keyed_context_adds_the_record_key_to_what_it_pushes():
    ti = Pushes()
    context = keyed_context({"ti": ti, "run_id": "r"}, "lead-0001")
    context["ti"].xcom_push(key="contact", value={"state": "opted_out"})
    assert ti.pushed == {"contact": {"state": "opted_out", "record_key": "lead-0001"}}
    assert context["ti"].try_number == 3
    assert context["run_id"] == "r"
    plain = {"ti": ti}
    assert keyed_context(plain, None) is plain
