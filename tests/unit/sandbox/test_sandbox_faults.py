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
        ({"latency": "slow"}, "latency: must be a number of seconds"),
        ({"latency": -1}, "latency: must be a finite number of seconds from 0"),
    ],
)
def test_from_dict_rejects(data: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FaultPlan.from_dict(data)


def test_every_kind_is_known() -> None:
    assert set(FAULT_KINDS) == {
        "latency",
        "5xx",
        "429",
        "drop_before_body",
        "reset_after_accept",
        "interim",
        "trickle",
        "trickle_body",
        "huge_body",
    }
    assert FAULT_KINDS[:5] == ("latency", "5xx", "429", "drop_before_body", "reset_after_accept")


def _draw(plan: FaultPlan, count: int) -> list[Fault]:
    return [plan.next() for _ in range(count)]


# --- the answers a client must survive: interim, trickled, huge; zero waits --------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("interim", Fault("interim", status=102)),
        ("102", Fault("interim", status=102)),
        ("interim:103", Fault("interim", status=103)),
        ("interim:100", Fault("interim", status=100)),
        ("trickle", Fault("trickle", seconds=1.0)),
        ("trickle:0.05", Fault("trickle", seconds=0.05)),
        ("trickle_body:0.2", Fault("trickle_body", seconds=0.2)),
        ("huge_body", Fault("huge_body", mib=50.0)),
        ("huge_body:0.5", Fault("huge_body", mib=0.5)),
        ("429:0", Fault("429", seconds=0.0)),
    ],
)
def test_parse_new_kinds(text: str, expected: Fault) -> None:
    assert Fault.parse(text) == expected
    assert Fault.parse(str(expected)) == expected


def test_huge_body_size_is_in_mebibytes() -> None:
    assert Fault.parse("huge_body").size == 50 * 1024 * 1024
    assert Fault.parse("huge_body:0.5").size == 512 * 1024


@pytest.mark.parametrize(
    "text",
    ["interim:101", "interim:200", "interim:x", "huge_body:0", "huge_body:-1", "huge_body:nan", "trickle:x"],
)
def test_new_kinds_reject_bad_arguments(text: str) -> None:
    with pytest.raises(ValueError, match="invalid argument"):
        Fault.parse(text)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("latency:inf", "latency"),
        ("latency:nan", "latency"),
        ("latency:-inf", "latency"),
        ("429:nan", "429"),
        ("429:inf", "429"),
        ("429:-1", "429"),
        ("trickle:inf", "trickle"),
        ("trickle_body:nan", "trickle_body"),
        ("latency:1e9", "latency"),
    ],
)
def test_non_finite_or_negative_seconds_are_refused_naming_the_field(text: str, field: str) -> None:
    with pytest.raises(ValueError, match=f"{field}: must be a finite number of seconds"):
        Fault.parse(text)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"latency": float("inf")}, "latency: must be a finite number"),
        ({"latency": float("nan")}, "latency: must be a finite number"),
        ({"retry_after": float("nan")}, "retry_after: must be a finite number"),
        ({"retry_after": float("-inf")}, "retry_after: must be a finite number"),
        ({"retry_after": -1}, "retry_after: must be a finite number"),
        ({"latency": True}, "latency: must be a number of seconds"),
        ({"rates": {"429": float("nan")}}, "rates.429: must be a probability"),
        ({"rates": {"latency": float("inf")}}, "rates.latency: must be a probability"),
        ({"script": ["429:nan"]}, "429: must be a finite number"),
    ],
)
def test_non_finite_plans_are_refused(data: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FaultPlan.from_dict(data)


@pytest.mark.parametrize("kwargs", [{"latency": float("inf")}, {"retry_after": float("nan")}])
def test_plan_constructor_refuses_non_finite_seconds(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be a finite number"):
        FaultPlan(**kwargs)


def test_a_zero_retry_after_is_usable() -> None:
    plan = FaultPlan({"429": 1.0}, script=["429:0", "429"], retry_after=0)
    assert _draw(plan, 3) == [Fault("429", seconds=0.0)] * 3
    assert plan.to_dict()["retry_after"] == 0.0


def test_new_kinds_are_drawn_with_their_defaults() -> None:
    drawn = {fault.kind: fault for fault in _draw(FaultPlan(dict.fromkeys(FAULT_KINDS[5:], 0.25)), 200)}
    assert drawn == {
        "interim": Fault("interim", status=102),
        "trickle": Fault("trickle", seconds=1.0),
        "trickle_body": Fault("trickle_body", seconds=1.0),
        "huge_body": Fault("huge_body", mib=50.0),
    }


def test_adding_kinds_kept_the_old_seeded_draws() -> None:
    rates = {"latency": 0.1, "5xx": 0.1, "429": 0.1, "drop_before_body": 0.1, "reset_after_accept": 0.1}
    with_new = {**rates, "interim": 0.0, "huge_body": 0.0}
    assert _draw(FaultPlan(rates, seed=5), 300) == _draw(FaultPlan(with_new, seed=5), 300)


def test_plan_dict_stays_valid_json() -> None:
    import json

    plan = FaultPlan({"interim": 0.5}, script=["trickle:0.5", "huge_body:2"], latency=0.0, retry_after=0)
    text = json.dumps(plan.to_dict(), allow_nan=False)
    assert FaultPlan.from_dict(json.loads(text)).remaining_script == ["trickle:0.5", "huge_body:2"]
