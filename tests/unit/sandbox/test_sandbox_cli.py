"""The command line, parsed without starting a server."""

from __future__ import annotations

import pytest

from airflow_provider_alta.sandbox.__main__ import _fault_plan, build_parser, main


def test_defaults() -> None:
    args = build_parser().parse_args([])
    assert (args.host, args.port, args.token, args.journal) == ("127.0.0.1", 0, None, None)
    assert args.rate_limit == "100/60"
    assert args.retry_after_header is True
    assert args.ratelimit_headers is True
    assert args.account == []
    assert (args.call_id_field, args.call_start_delay, args.call_duration) == ("id", 2.0, 30.0)


def test_accounts_and_call_options() -> None:
    args = build_parser().parse_args(
        [
            *("--account", "acme=tok-a,tok-b", "--account", "globex=tok-g", "--token", "loner"),
            *("--no-ratelimit-headers", "--call-id-field", "none"),
            *("--call-start-delay", "0.1", "--call-duration", "0"),
        ]
    )
    assert args.account == [("acme", ["tok-a", "tok-b"]), ("globex", ["tok-g"])]
    assert args.token == ["loner"]
    assert args.ratelimit_headers is False
    assert (args.call_id_field, args.call_start_delay, args.call_duration) == ("none", 0.1, 0.0)


def test_fault_options_build_a_plan() -> None:
    parser = build_parser()
    args = parser.parse_args(
        [
            "--fault-rate",
            "5xx=0.1",
            "--fault-rate",
            "latency=0.2",
            "--fault-script",
            "ok,reset_after_accept,latency:2.5",
            "--latency",
            "0.5",
            "--seed",
            "7",
            "--no-retry-after",
        ]
    )
    plan = _fault_plan(args, parser)
    assert plan is not None
    assert plan.to_dict() == {
        "rates": {"5xx": 0.1, "latency": 0.2},
        "script": ["ok", "reset_after_accept", "latency:2.5"],
        "latency": 0.5,
        "retry_after": 1.0,
        "seed": 7,
    }
    assert args.retry_after_header is False


def test_no_fault_options_no_plan() -> None:
    parser = build_parser()
    assert _fault_plan(parser.parse_args([]), parser) is None


@pytest.mark.parametrize(
    "argv",
    [
        ["--fault-rate", "5xx"],
        ["--fault-rate", "5xx=lots"],
        ["--fault-rate", "boom=0.1"],
        ["--fault-script", "ok,explode"],
        ["--rate-limit", "fast"],
        ["--port", "http"],
        ["--latency", "inf"],
        ["--latency", "nan"],
        ["--latency", "-1"],
        ["--fault-rate", "429=nan"],
        ["--fault-rate", "latency=inf"],
        ["--fault-script", "latency:inf"],
        ["--fault-script", "429:nan"],
        ["--fault-script", "interim:101"],
        ["--account", "acme"],
        ["--account", "acme="],
        ["--account", "=tok"],
        ["--account", "acme=t", "--account", "globex=t"],
        ["--account", "acme=t", "--token", "t"],
        ["--call-id-field", "call_id"],
        ["--call-duration", "-1"],
        ["--call-start-delay", "inf"],
        ["--call-duration", "86401"],
    ],
)
def test_bad_options_exit_with_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(argv)
    assert excinfo.value.code == 2
    assert "usage: alta-sandbox" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["--latency", "inf"], "--latency"),
        (["--fault-rate", "429=nan"], "rates.429"),
        (["--fault-script", "ok,429:nan"], "429"),
    ],
)
def test_non_finite_settings_name_the_field(
    argv: list[str], field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(argv)
    err = capsys.readouterr().err
    assert field in err
    assert "finite" in err or "probability" in err


def test_new_fault_kinds_on_the_command_line() -> None:
    parser = build_parser()
    args = parser.parse_args(["--fault-script", "interim,trickle:0.1,trickle_body,huge_body:2,429:0"])
    plan = _fault_plan(args, parser)
    assert plan is not None
    assert plan.remaining_script == ["interim:102", "trickle:0.1", "trickle_body:1", "huge_body:2", "429:0"]
