"""The outcome sink: outcomes as JSON lines on any binary file object, and the path template."""

from __future__ import annotations

import io

import pytest

from airflow_provider_alta.outcome_sink import DEFAULT_OUTCOMES_PATH, read_jsonl, render_path, write_jsonl


def test_outcomes_round_trip_as_one_json_line_each_key_first():
    outcomes = {
        "L1": {"state": "called", "phone_number": "+1202***0143"},
        "L2": {"state": "invalid", "reason": "name: is required and must not be empty"},
        "Zoë": {
            "state": "skipped_recently_called",
            "reason": "x",
            "next_allowed": "2026-12-01T00:00:00+00:00",
        },
    }
    out = io.BytesIO()
    assert write_jsonl(outcomes, out) == 3
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(b'{"key": "L1"')
    back = list(read_jsonl(io.BytesIO(out.getvalue())))
    assert {row.pop("key"): row for row in back} == outcomes
    assert list(read_jsonl(["", "\n"])) == []


def test_the_path_template_takes_the_task_instance_and_keeps_mapped_instances_apart():
    values = {"dag_id": "d", "run_id": "manual__2026-01-01T00:00:00+00:00", "task_id": "t", "map_index": -1}
    assert render_path(DEFAULT_OUTCOMES_PATH, values) == (
        "file:///tmp/alta/d/manual__2026-01-01T00:00:00+00:00/t.jsonl"
    )
    assert render_path(DEFAULT_OUTCOMES_PATH, {**values, "map_index": 3}).endswith("/t.3.jsonl")
    assert render_path("s3://b/{dag_id}/{map_index}.jsonl", {**values, "map_index": 3}) == "s3://b/d/3.jsonl"
    assert render_path("file:///x/{run_id}", {"run_id": "a/b"}) == "file:///x/a_b"  # one path segment
    assert render_path("file:///x/out", {"map_index": 2}) == "file:///x/out.2"


def test_an_unknown_placeholder_is_named():
    with pytest.raises(ValueError, match=r"unknown placeholder\(s\) \['ds'\]"):
        render_path("file:///tmp/{ds}.jsonl", {})
