"""``alta-sandbox`` / ``python -m airflow_provider_alta.sandbox``: run the sandbox until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType

from airflow_provider_alta.sandbox.accounts import parse_account
from airflow_provider_alta.sandbox.core import (
    CALL_ID_FIELDS,
    DEFAULT_CALL_DURATION,
    DEFAULT_CALL_START_DELAY,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_TOKEN,
)
from airflow_provider_alta.sandbox.faults import FAULT_KINDS, FaultPlan, seconds_value
from airflow_provider_alta.sandbox.ratelimit import RateLimit
from airflow_provider_alta.sandbox.runtime import AltaSandbox


def _seconds(option: str) -> Callable[[str], float]:
    """An ``option`` of finite seconds, 0 or more (``inf``, ``nan`` and negatives are refused)."""

    def parse(text: str) -> float:
        try:
            return seconds_value(option, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{option}: ")) from None

    return parse


def _account(text: str) -> tuple[str, list[str]]:
    """``--account NAME=TOKEN[,TOKEN...]``."""
    try:
        return parse_account(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="alta-sandbox",
        description="A local server that behaves like the Alta API (POST /v1/assistant/calls, "
        "GET /v1/calls/{callId}). It never contacts Alta and places no real phone call.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default: 0)")
    parser.add_argument(
        "--token",
        action="append",
        help="accepted bearer token, an account of its own (named after its fingerprint); repeat for "
        f"several (default: {DEFAULT_TOKEN!r} when no --account is given)",
    )
    parser.add_argument(
        "--account",
        action="append",
        type=_account,
        default=[],
        metavar="NAME=TOKEN[,TOKEN...]",
        help="an account and its tokens, which share one rate window; repeatable",
    )
    parser.add_argument("--journal", metavar="PATH", help="append every accepted call to this JSONL file")
    parser.add_argument(
        "--rate-limit",
        default="100/60",
        metavar="N/SECONDS",
        help="rolling window per account, or 'off' (default: %(default)s)",
    )
    parser.add_argument(
        "--no-retry-after",
        dest="retry_after_header",
        action="store_false",
        help="send 429s without a Retry-After header (the wait is then only in the message)",
    )
    parser.add_argument(
        "--no-ratelimit-headers",
        dest="ratelimit_headers",
        action="store_false",
        help="send no RateLimit-Limit/-Remaining/-Reset/-Policy headers",
    )
    parser.add_argument(
        "--call-id-field",
        choices=CALL_ID_FIELDS,
        default="id",
        help="what the 200 answer names the call's id; 'none' answers without an id (default: id)",
    )
    parser.add_argument(
        "--call-start-delay",
        type=_seconds("--call-start-delay"),
        default=DEFAULT_CALL_START_DELAY,
        metavar="SECONDS",
        help="a placed call starts this long after it was placed (default: %(default)g)",
    )
    parser.add_argument(
        "--call-duration",
        type=_seconds("--call-duration"),
        default=DEFAULT_CALL_DURATION,
        metavar="SECONDS",
        help="and lasts this long, unless its data has sandbox_duration (default: %(default)g)",
    )
    parser.add_argument(
        "--fault-rate",
        action="append",
        default=[],
        metavar="KIND=P",
        help=f"probability of a fault per request; KIND is one of {', '.join(FAULT_KINDS)}; repeatable",
    )
    parser.add_argument(
        "--fault-script",
        metavar="LIST",
        help="comma-separated faults for the next requests, e.g. ok,5xx,reset_after_accept,latency:2.5,"
        "interim:102,trickle:0.5,trickle_body:0.5,huge_body:50",
    )
    parser.add_argument(
        "--latency",
        type=_seconds("--latency"),
        default=1.0,
        help="seconds a 'latency' fault adds (default: 1)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault RNG (default: 0)")
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help="larger bodies get 413 (default: 1 MiB)",
    )
    parser.add_argument("--quiet", action="store_true", help="do not log one line per request")
    return parser


def _fault_plan(args: argparse.Namespace, parser: argparse.ArgumentParser) -> FaultPlan | None:
    rates: dict[str, float] = {}
    for item in args.fault_rate:
        kind, sep, value = item.partition("=")
        try:
            rates[kind.strip()] = float(value)
        except ValueError:
            parser.error(f"--fault-rate {item!r}: expected KIND=PROBABILITY")
        if not sep:
            parser.error(f"--fault-rate {item!r}: expected KIND=PROBABILITY")
    script = [part for part in (args.fault_script or "").split(",") if part.strip()]
    if not rates and not script:
        return None
    try:
        return FaultPlan(rates, script=script, latency=args.latency, seed=args.seed)
    except ValueError as exc:
        parser.error(str(exc))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox in the foreground; print its URL; stop cleanly on SIGINT or SIGTERM."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rate_limit = RateLimit.parse(args.rate_limit)
    except ValueError as exc:
        parser.error(str(exc))
    faults = _fault_plan(args, parser)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    accounts: dict[str, list[str]] = {}
    for name, tokens in args.account:
        accounts.setdefault(name, []).extend(tokens)
    try:
        sandbox = AltaSandbox(
            token=args.token or (() if accounts else DEFAULT_TOKEN),
            accounts=accounts,
            host=args.host,
            port=args.port,
            rate_limit=rate_limit,
            retry_after_header=args.retry_after_header,
            ratelimit_headers=args.ratelimit_headers,
            call_id_field=args.call_id_field,
            call_start_delay=args.call_start_delay,
            call_duration=args.call_duration,
            faults=faults,
            journal_path=args.journal,
            max_body_bytes=args.max_body_bytes,
        )
    except ValueError as exc:
        parser.error(str(exc))
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            sandbox.start()
        except OSError as exc:
            print(f"alta-sandbox: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 1
        print(f"Alta sandbox listening on {sandbox.url} (port {sandbox.port})", flush=True)
        print(f"Accounts, one rate window each: {', '.join(sandbox.accounts)}", flush=True)
        print(f"PORT={sandbox.port}", flush=True)
        print(
            f"Set the connection host to {sandbox.url}; controls under {sandbox.base_url}/_sandbox/",
            flush=True,
        )
        while not stop.wait(0.5):
            pass
        print("Alta sandbox stopping", flush=True)
    finally:
        sandbox.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
