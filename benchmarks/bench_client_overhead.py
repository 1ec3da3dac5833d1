"""Per-call cost of the hook path next to a plain ``requests`` post of the same JSON body.

    python benchmarks/bench_client_overhead.py                  # sandbox in its own process (default)
    python benchmarks/bench_client_overhead.py --inprocess      # sandbox in this process (shares the GIL)
    python benchmarks/bench_client_overhead.py --rounds 5000

Each round runs every row below once, in a rotating order, so that all see the same load:
  hook          ``AltaHook.trigger_assistant_call(...)``: validation, normalisation, secrets check and
                send, its per-call INFO line going through Airflow's log handler (output to /dev/null);
  hook-nolog    the same with the client's INFO line off;
  client-nolog  ``AltaClient.trigger(call)`` of a call validated beforehand: the transport alone;
  session       ``requests.Session().post(url, json=body)`` + ``raise_for_status()`` + ``.json()``
                (keep-alive like the hook: the fair baseline, the one the goal applies to);
  post          ``requests.post(...)``: a new connection per call;
and, not sent, the hook's local steps: ``validate`` (``AltaHook.build_call``) and ``secrets check``
(the JSON + ``redact`` of ``send_call``), plus ``zone lookup`` (``pendulum.timezone``, which
validation runs once per call). Every call uses a different fictional number (no ``phonenumbers``
cache hit), and the script checks that the sandbox journaled exactly the expected body for each.
Rate limit off; loopback only. Goal: hook / session <= 1.10 (median per-call time).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import requests
from _common import (
    TOKEN,
    environment_line,
    fictional_numbers,
    percentile,
    prepare_airflow_home,
    quiet,
    sandbox_process,
    set_alta_connection,
)

GOAL = 1.10
SENT = ("hook", "hook-nolog", "client-nolog", "session", "post")
LOCAL = ("validate", "secrets check", "zone lookup")
ROWS = SENT + LOCAL
TRANSFER = "+12025550199"
ZONE = "America/New_York"


def fields_for(index: int, number: str) -> dict[str, Any]:
    """Keyword arguments of ``trigger_assistant_call`` for one call."""
    return {
        "assistant_id": "asst_bench",
        "name": f"Prospect {index}",
        "phone_number": number,
        "timezone": ZONE,
        "data": {"order": index, "items": ["a", "b", "c"], "plan": "gold"},
        "call_transfer": {"phone_number": TRANSFER, "receiver_message_mode": "summary"},
    }


def body_for(index: int, number: str) -> dict[str, Any]:
    """The JSON body the hook sends for ``fields_for(index, number)`` (built by hand: no cache warming)."""
    return {
        "assistantId": "asst_bench",
        "name": f"Prospect {index}",
        "phoneNumber": number,
        "timezone": ZONE,
        "data": {"order": index, "items": ["a", "b", "c"], "plan": "gold"},
        "callTransfer": {"phoneNumber": TRANSFER, "receiverMessageMode": "summary"},
    }


@contextlib.contextmanager
def sandbox(inprocess: bool) -> Iterator[tuple[str, Callable[[], list[dict[str, Any]]]]]:
    """Start the sandbox (rate limit off); yield its ``/v1`` URL and a function returning its journal."""
    if inprocess:
        from airflow_provider_alta.sandbox import AltaSandbox

        with AltaSandbox(token=TOKEN, rate_limit=None) as box:
            yield box.url, box.calls
    else:
        with sandbox_process(rate_limit="off") as base:

            def journal() -> list[dict[str, Any]]:
                answer = requests.get(base + "/_sandbox/calls", timeout=60)
                calls: list[dict[str, Any]] = answer.json()["calls"]
                return calls

            yield base + "/v1", journal


def airflow_logs_to_devnull() -> None:
    """Keep Airflow's log handlers and formatters (their cost is part of the path) but drop the output."""
    sink = open(os.devnull, "w")  # noqa: SIM115 - lives until the process exits
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sink)


class Rounds:
    """The rows of one run: each takes a fresh index into the number pool and does its one thing."""

    def __init__(self, url: str, pool: list[str]) -> None:
        from airflow.providers.common.compat.sdk import redact

        from airflow_provider_alta.hooks.alta import AltaHook

        self.pool = pool
        self.calls_url = url + "/assistant/calls"
        self.hook = AltaHook()
        self.session = requests.Session()
        self.auth = {"Authorization": f"Bearer {TOKEN}"}
        self.redact = redact
        self.client_log = logging.getLogger("airflow_provider_alta.client")
        self.expected: list[dict[str, Any]] = []

    def time(self, row: str, index: int) -> float:
        """Set up ``row`` for ``pool[index]`` untimed, then time it alone."""
        import pendulum

        number = self.pool[index]
        fields = fields_for(index, number)
        self.client_log.setLevel(logging.INFO if row == "hook" else logging.WARNING)
        if row in SENT:
            self.expected.append(body_for(index, number))
        prepared = self.hook.build_call(fields) if row in ("client-nolog", "secrets check") else None
        body = body_for(index, number)
        started = time.perf_counter()
        if row in ("hook", "hook-nolog"):
            self.hook.trigger_assistant_call(**fields)
        elif row == "client-nolog":
            assert prepared is not None
            self.hook.client.trigger(prepared)
        elif row in ("session", "post"):
            poster = self.session.post if row == "session" else requests.post
            response = poster(self.calls_url, json=body, headers=self.auth, timeout=30)
            response.raise_for_status()
            response.json()
        elif row == "validate":
            self.hook.build_call(fields)
        elif row == "secrets check":
            assert prepared is not None
            self.redact(json.dumps(prepared.to_json()))
        elif row == "zone lookup":
            pendulum.timezone(ZONE)
        return time.perf_counter() - started

    def close(self) -> None:
        self.client_log.setLevel(logging.INFO)
        self.hook.close()
        self.session.close()


def run(args: argparse.Namespace) -> tuple[dict[str, list[float]], int, int, list[str]]:
    """Time every row each round; return the samples, calls sent, calls journaled, journal mismatches."""
    pool = fictional_numbers((args.rounds + args.warmup) * len(ROWS))
    samples: dict[str, list[float]] = {row: [] for row in ROWS}
    with sandbox(args.inprocess) as (url, journal):
        set_alta_connection(url)
        rounds = Rounds(url, pool)
        index = 0
        try:
            for round_ in range(args.warmup + args.rounds):
                shift = round_ % len(ROWS)
                for row in ROWS[shift:] + ROWS[:shift]:
                    elapsed = rounds.time(row, index)
                    index += 1
                    if round_ >= args.warmup:
                        samples[row].append(elapsed)
        finally:
            rounds.close()
        calls = journal()
    got = {call["body"]["phoneNumber"]: call["body"] for call in calls}
    mismatches = [
        f"{body['phoneNumber']}: {'missing' if body['phoneNumber'] not in got else 'different body'}"
        for body in rounds.expected
        if got.get(body["phoneNumber"]) != body
    ]
    return samples, len(rounds.expected), len(calls), mismatches


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2500, help="timed rounds (default 2500)")
    parser.add_argument("--warmup", type=int, default=50, help="untimed rounds first (default 50)")
    parser.add_argument("--inprocess", action="store_true", help="run the sandbox in this process")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the goal is missed")
    args = parser.parse_args()
    if (args.rounds + args.warmup) * len(ROWS) > len(fictional_numbers()):
        parser.error(
            f"at most {len(fictional_numbers()) // len(ROWS) - args.warmup} rounds (distinct numbers)"
        )
    prepare_airflow_home()
    import airflow_provider_alta.hooks.alta  # noqa: F401  (Airflow configures logging on import)

    airflow_logs_to_devnull()
    quiet("airflow_provider_alta.sandbox")
    samples, sent, journaled, mismatches = run(args)
    where = "in this process" if args.inprocess else "in its own process"
    print(f"{environment_line()}; sandbox {where}, rate limit off")
    print(f"{args.rounds} rounds, rows in rotating order; per-call time in µs:")
    print(f"  {'row':<14} {'median':>8} {'mean':>8} {'p90':>8} {'p99':>8}")
    medians, means = {}, {}
    for row, values in samples.items():
        medians[row], means[row] = statistics.median(values), statistics.fmean(values)
        print(
            f"  {row:<14} {medians[row] * 1e6:8.0f} {means[row] * 1e6:8.0f} "
            f"{percentile(values, 0.9) * 1e6:8.0f} {percentile(values, 0.99) * 1e6:8.0f}"
            + ("   (local, not sent)" if row in LOCAL else "")
        )
    print("Ratios of medians [of means]:")
    for top, bottom, note in (
        ("hook", "session", f"goal <= {GOAL:.2f}; the fair baseline (keep-alive, like the hook)"),
        ("hook-nolog", "session", "the client's per-call INFO line off"),
        ("client-nolog", "session", "transport alone (validated beforehand, INFO line off)"),
        ("hook", "post", "baseline opening a new connection per call"),
        ("session", "post", "what keep-alive saves"),
    ):
        ratio = medians[top] / medians[bottom]
        verdict = ("  met" if ratio <= GOAL else "  MISSED") if note.startswith("goal") else ""
        print(
            f"  {top + ' / ' + bottom:<24} {ratio:5.3f} [{means[top] / means[bottom]:5.3f}]  {note}{verdict}"
        )
    extra = {
        "INFO line (hook - hook-nolog)": medians["hook"] - medians["hook-nolog"],
        "validation etc. (hook-nolog - client-nolog)": medians["hook-nolog"] - medians["client-nolog"],
        "transport (client-nolog - session)": medians["client-nolog"] - medians["session"],
    }
    print("Where the hook's extra time goes (differences of medians, µs):")
    for label, seconds in extra.items():
        print(f"  {label:<46} {seconds * 1e6:7.0f}")
    print(f"Journal: {journaled} calls for {sent} sent; {len(mismatches)} body mismatches")
    for line in mismatches[:5]:
        print(f"  {line}")
    ok = medians["hook"] / medians["session"] <= GOAL and not mismatches and journaled == sent
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
