"""The fault plan: parsing, the exact script, seeded rates."""

from __future__ import annotations

from collections import Counter

import pytest

from airflow_provider_alta.sandbox.faults import FAULT_KINDS, Fault, FaultPlan


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ok", Fault("ok")),
        ("latency", Fault("latency", seconds=1.0)),
        ("latency:2.5", Fault("latency", seconds=2.5)),
        ("5xx", Fault("5xx", status=500)),
        ("5xx:503", Fault("5xx", status=503)),
        ("error_5xx:502", Fault("5xx", status=502)),
        ("429", Fault("429", seconds=1.0)),
        ("429:30", Fault("429", seconds=30.0)),
        ("storm_429", Fault("429", seconds=1.0)),
        ("drop_before_body", Fault("drop_before_body")),
        (" RESET_AFTER_ACCEPT ", Fault("reset_after_accept")),
    ],
)
def test_parse(text: str, expected: Fault) -> None:
    assert Fault.parse(text) == expected


def test_parse_uses_plan_defaults() -> None:
    assert Fault.parse("latency", latency=0.25) == Fault("latency", seconds=0.25)
    assert Fault.parse("429", retry_after=7) == Fault("429", seconds=7.0)


@pytest.mark.parametrize("text", ["latency:-1", "latency:x", "5xx:404", "5xx:abc", "429:-2", "ok:1"])
def test_parse_rejects_bad_arguments(text: str) -> None:
    with pytest.raises(ValueError, match="invalid argument"):
        Fault.parse(text)


def test_parse_rejects_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="unknown fault 'explode'"):
        Fault.parse("explode")


@pytest.mark.parametrize(
    "text", ["ok", "latency:2.5", "5xx:502", "429:3", "drop_before_body", "reset_after_accept"]
)
def test_str_round_trips(text: str) -> None:
    assert str(Fault.parse(text)) == text
    assert Fault.parse(str(Fault.parse(text))) == Fault.parse(text)


def test_empty_plan_is_always_ok() -> None:
    plan = FaultPlan()
    assert {plan.next() for _ in range(100)} == {Fault("ok")}


def test_script_comes_first_then_rates() -> None:
    script = ["ok", "5xx", "reset_after_accept", "drop_before_body", "429", "latency:2.5"]
    plan = FaultPlan({"5xx": 1.0}, script=script)
    assert [str(plan.next()) for _ in script] == ["ok", "5xx:500", *script[2:4], "429:1", "latency:2.5"]
    assert plan.remaining_script == []
    assert all(plan.next().kind == "5xx" for _ in range(20))


def test_remaining_script_shrinks() -> None:
    plan = FaultPlan(script=["5xx", "ok"])
    assert plan.remaining_script == ["5xx:500", "ok"]
    plan.next()
    assert plan.remaining_script == ["ok"]


def test_same_seed_same_sequence() -> None:
    rates = {"latency": 0.1, "5xx": 0.1, "429": 0.1, "drop_before_body": 0.1, "reset_after_accept": 0.1}
    first = _draw(FaultPlan(rates, seed=42), 500)
    second = _draw(FaultPlan(rates, seed=42), 500)
    other = _draw(FaultPlan(rates, seed=43), 500)
    assert first == second
    assert first != other


def test_rates_are_honoured_roughly() -> None:
    plan = FaultPlan({"5xx": 0.25, "drop_before_body": 0.25}, seed=1)
    counts = Counter(fault.kind for fault in _draw(plan, 4000))
    assert set(counts) == {"ok", "5xx", "drop_before_body"}
    assert 1700 < counts["ok"] < 2300
    assert 800 < counts["5xx"] < 1200
    assert 800 < counts["drop_before_body"] < 1200


def test_random_5xx_uses_several_statuses_and_latency_uses_plan_latency() -> None:
    statuses = {fault.status for fault in _draw(FaultPlan({"5xx": 1.0}, seed=3), 200)}
    assert statuses == {500, 502, 503}
    assert _draw(FaultPlan({"latency": 1.0}, latency=0.3), 1) == [Fault("latency", seconds=0.3)]
    assert _draw(FaultPlan({"429": 1.0}, retry_after=9), 1) == [Fault("429", seconds=9.0)]


@pytest.mark.parametrize(
    ("rates", "match"),
    [
        ({"boom": 0.1}, "unknown fault kind"),
        ({"5xx": 1.5}, "between 0 and 1"),
        ({"5xx": -0.1}, "between 0 and 1"),
        ({"5xx": True}, "between 0 and 1"),
        ({"5xx": "0.5"}, "between 0 and 1"),
        ({"5xx": 0.6, "429": 0.6}, "at most 1"),
    ],
)
def test_bad_rates(rates: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FaultPlan(rates)  # type: ignore[arg-type]


def test_dict_round_trip() -> None:
    plan = FaultPlan({"latency": 0.5}, script=["5xx:503", "ok"], latency=2.0, retry_after=3.0, seed=9)
    data = plan.to_dict()
    assert data == {
        "rates": {"latency": 0.5},
        "script": ["5xx:503", "ok"],
        "latency": 2.0,
        "retry_after": 3.0,
        "seed": 9,
    }
    again = FaultPlan.from_dict(data)
    assert _draw(again, 50) == _draw(FaultPlan.from_dict(data), 50)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"rate": {}}, "unknown fault plan keys: rate"),
        ({"rates": [1]}, "rates: must be an object"),
        ({"script": "ok"}, "script: must be a list"),
        ({"script": ["nope"]}, "unknown fault"),
        ({"seed": "x"}, "seed: must be an integer"),
        ({"latency": "slow"}, "must be numbers"),
        ({"latency": -1}, "must not be negative"),
    ],
)
def test_from_dict_rejects(data: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FaultPlan.from_dict(data)


def test_every_kind_is_known() -> None:
    assert set(FAULT_KINDS) == {"latency", "5xx", "429", "drop_before_body", "reset_after_accept"}


def _draw(plan: FaultPlan, count: int) -> list[Fault]:
    return [plan.next() for _ in range(count)]
