"""Account budget: two tokens of one Alta account, and outside clients, against the account's limit.

    python benchmarks/bench_account_budget.py                        # 20 per 6 s, 60 calls per batch
    python benchmarks/bench_account_budget.py --limit 100 --window 6 --calls 300
    python benchmarks/bench_account_budget.py --scenarios a,c-headers --strict

Alta's limit (100 requests a minute) is per account, shared by all its tokens. The sandbox runs
one account, ``acme``, holding two tokens, with a time-compressed rolling window (``--limit`` per
``--window`` seconds); a fresh sandbox per scenario, one real redis-server (loopback, nothing
persisted) for all of them. Scenarios, each a batch per worker process (``spawn``):

- ``a``: two batches on two different tokens of the account, both connections naming
  ``account`` and ``rate_limiter_url``: the shared limiter in Redis is keyed on the account;
  ``a-no-headers``: the same with the sandbox's ``RateLimit-*`` headers off: the limiter alone;
- ``b``: the same two tokens and ``account`` without ``rate_limiter_url``: only the RateLimit
  headers (one HeaderBudget per process) protect them;
- ``c-headers``: one batch (the ``a`` connection) while the sandbox's outside client spends
  ``--outside-share`` of every window; ``c-no-headers``: the same with the sandbox's
  ``RateLimit-*`` headers off (``Retry-After`` kept), to show what the headers buy.

Each batch is the pure bulk path the operator runs (``bulk.run_pass`` with the operator's Pacer,
an ``AltaClient`` with the account's HeaderBudget and, with ``rate_limiter_url``, the hook's
SharedLimiter), built from an ``alta`` connection (``alta_testing.environment.alta_connection``)
read by ``config.settings_from_fields``. The one difference from ``AltaHook``: the limiter gets
``window_seconds=--window`` (the hook's is always 60 s, which a compressed window cannot use).

Reported per scenario: the requests the account's window counted (batch calls and the outside
client's, sampled from the sandbox every 0.1 s) per window in the steady state (the most whole
windows ending at the last batch call, from one window after the start), their ratio to the limit,
the mean window count over the same span as a share of the limit ("fill"), the 429 answers, the
outside client's refused requests, the client's waits (429s, full windows) and the durations.
Only 127.0.0.1 is contacted; numbers are fictional (+1 NPA 555-01xx). ``--strict``: exit 1 unless
every batch placed all its calls and, with the limiter on and no outside client, there was no 429
and the steady ratio was at least 0.95.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import multiprocessing
import os
import queue
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

from _common import fictional_numbers

from alta_testing.data.campaign_checks import arrival_times, max_in_window
from alta_testing.environment import alta_connection

ACCOUNT = "acme"
TOKENS = ("bench-acme-token-a", "bench-acme-token-b")  # sandbox tokens; printed only as "A" and "B"
LABELS = dict(zip(TOKENS, "AB", strict=True))
SAMPLE_EVERY = 0.1  # seconds between samples of the sandbox's window count
WAIT_BUDGET = 60.0  # the operator's default defer_threshold: its hook's ResendPolicy wait budget
GOAL_RATIO = 0.95  # bench_shared_limiter's goal for the limiter's steady ratio


@dataclass(frozen=True)
class Scenario:
    """One measurement: a batch per token in ``tokens``, on one fresh sandbox."""

    key: str
    title: str
    tokens: tuple[str, ...]
    limiter: bool
    headers: bool = True
    outside: bool = False


SCENARIOS = (
    Scenario("a", "2 batches, tokens A+B of one account, shared Redis limiter", TOKENS, True),
    Scenario("a-no-headers", "as a, with the sandbox's RateLimit headers OFF (the limiter alone)", TOKENS,
             True, headers=False),
    Scenario("b", "2 batches, tokens A+B of one account, no limiter (headers only)", TOKENS, False),
    Scenario("c-headers", "1 batch (limiter on) + outside client, RateLimit headers on", TOKENS[:1], True,
             outside=True),
    Scenario("c-no-headers", "1 batch (limiter on) + outside client, RateLimit headers OFF", TOKENS[:1],
             True, headers=False, outside=True),
)  # fmt: skip


# --- one batch, in its own process -------------------------------------------------------------


class _WaitLog(logging.Handler):
    """Counts the client's waits from its INFO lines: 429s waited out and full windows waited for."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.waits: dict[str, list[float]] = {"429": [], "room": []}

    def emit(self, record: logging.LogRecord) -> None:
        message = str(record.msg)
        kind = "429" if "429, waiting" in message else "room" if "window is spent" in message else None
        seconds = record.args[-1] if isinstance(record.args, tuple) and record.args else None
        if kind is not None and isinstance(seconds, int | float):
            self.waits[kind].append(float(seconds))


def batch(connection: str, window: float, numbers: list[str], barrier: Any, out: Any) -> None:
    """Run one batch over ``numbers`` through the connection's gates; put its figures on ``out``."""
    from airflow_provider_alta.bulk import MemoryProgress, Plan, run_pass
    from airflow_provider_alta.client import AltaClient, ResendPolicy
    from airflow_provider_alta.config import settings_from_fields
    from airflow_provider_alta.pacing import Gate, Pacer
    from airflow_provider_alta.payload import build_call
    from airflow_provider_alta.rate_budget import budget_for
    from airflow_provider_alta.shared_limiter import SharedLimiter

    waits = _WaitLog()
    client_log = logging.getLogger("airflow_provider_alta.client")
    client_log.addHandler(waits)
    client_log.setLevel(logging.INFO)
    client_log.propagate = False
    conn = json.loads(connection)
    settings = settings_from_fields(host=conn["host"], password=conn["password"], extra=conn.get("extra"))
    budget = budget_for(settings.budget_key)  # as AltaHook.rate_budget
    gates: tuple[Gate, ...] = ()
    if settings.rate_limiter_url:  # as AltaHook._shared_limiter, with the compressed window
        gates = (
            SharedLimiter(
                settings.rate_limiter_url,
                budget_key=settings.budget_key,
                calls_per_minute=settings.calls_per_minute,
                window_seconds=window,
                ceiling=lambda: budget.stated_calls_per_minute,
            ),
        )
    client = AltaClient(
        settings,
        retry=ResendPolicy(rate_limit_budget=WAIT_BUDGET),
        success_log_level=logging.DEBUG,
        gates=gates,
        budget=budget,
    )
    pacer = Pacer(settings.calls_per_minute, ceiling=lambda: budget.stated_calls_per_minute)
    plan = Plan(
        prepare=lambda record: build_call({"assistant_id": "asst_bench", **record}),
        send=client.trigger,
        progress=MemoryProgress(),
        gates=(pacer,),  # as the operator's _gates with concurrent_tasks=1
    )
    records = [{"name": f"Bench {i}", "phone_number": number} for i, number in enumerate(numbers)]
    with client:
        barrier.wait(60)
        started = time.time()
        result = run_pass(records, plan)
        ended = time.time()
    out.put(
        {
            "token": conn["password"],
            "counts": {state: n for state, n in result.counts.items() if n},
            "sent": result.sent,
            "stopped": result.stopped,
            "waits_429": waits.waits["429"],
            "waits_room": waits.waits["room"],
            "started": started,
            "ended": ended,
        }
    )


# --- one scenario --------------------------------------------------------------------------------


def flush(redis_url: str) -> None:
    """Empty the limiter's database, so no window of an earlier scenario (same port reused) lingers."""
    import redis

    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()


def run(scenario: Scenario, args: argparse.Namespace, redis_url: str, context: Any) -> dict[str, Any]:
    """Run ``scenario`` on a fresh sandbox; return its raw figures."""
    from airflow_provider_alta.sandbox import AltaSandbox

    flush(redis_url)
    per_minute = round(args.limit * 60 / args.window)
    numbers = fictional_numbers(args.calls * len(scenario.tokens))
    outside_per_window = args.limit * args.outside_share if scenario.outside else 0.0
    with AltaSandbox(
        accounts={ACCOUNT: list(TOKENS)},
        rate_limit=f"{args.limit}/{args.window:g}",
        ratelimit_headers=scenario.headers,
    ) as sandbox:
        extra: dict[str, Any] = {"calls_per_minute": per_minute, "account": ACCOUNT}
        if scenario.limiter:
            extra["rate_limiter_url"] = redis_url
        barrier, out = context.Barrier(len(scenario.tokens) + 1), context.Queue()
        workers = [
            context.Process(
                target=batch,
                args=(
                    alta_connection(sandbox.url, token, **extra),
                    args.window,
                    numbers[i * args.calls : (i + 1) * args.calls],
                    barrier,
                    out,
                ),
            )
            for i, token in enumerate(scenario.tokens)
        ]
        for process in workers:
            process.start()
        try:
            barrier.wait(120)
            started = time.time()
            if outside_per_window:
                sandbox.set_outside_rate(outside_per_window, account=ACCOUNT)
            samples: list[tuple[float, int, int]] = []  # (time, window count, requests counted so far)
            results: list[dict[str, Any]] = []
            while len(results) < len(workers):
                with contextlib.suppress(queue.Empty):
                    results.append(out.get(timeout=SAMPLE_EVERY))
                samples.append(_sample(sandbox.stats()))
                if time.time() - started > 1800:
                    raise SystemExit(f"scenario {scenario.key}: the batches did not finish in 30 min")
            ended = time.time()
            stats = sandbox.stats()
            sandbox.set_outside_rate(0, account=ACCOUNT)
            journal = sandbox.calls()
        finally:
            for process in workers:
                process.join(30)
                if process.is_alive():
                    process.terminate()
                    process.join(10)
    return {
        "scenario": scenario,
        "started": started,
        "ended": ended,
        "samples": samples,
        "stats": stats,
        "journal": journal,
        "results": sorted(results, key=lambda r: LABELS[r["token"]]),
        "outside_per_window": outside_per_window,
    }


def _sample(stats: dict[str, Any]) -> tuple[float, int, int]:
    outside = stats["outside"].get(ACCOUNT, {}).get("counted", 0)
    return time.time(), stats["windows"][ACCOUNT], stats["accepted"] + outside


# --- figures -------------------------------------------------------------------------------------


def figures(run_: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """What the report prints for one scenario."""
    stats, journal, samples = run_["stats"], run_["journal"], run_["samples"]
    outside = stats["outside"].get(ACCOUNT, {"sent": 0, "counted": 0, "refused": 0})
    counted = stats["accepted"] + outside["counted"]
    wall = run_["ended"] - run_["started"]
    arrivals = arrival_times(journal)
    # Steady state: the most whole windows that end at the last batch call's arrival and begin at
    # least one window after the start. No whole window can count more than the limit, so the ratio
    # of requests counted in them to windows x limit is at most 1, whatever the phase.
    hi = arrivals[-1] if arrivals else run_["ended"]
    whole = math.floor((hi - run_["started"] - args.window) / args.window)
    steady_ratio = fill = None
    if whole >= 1:
        lo = hi - whole * args.window
        first = min(samples, key=lambda s: abs(s[0] - lo))
        last = next((s for s in samples if s[0] >= hi), samples[-1])
        steady_ratio = (last[2] - first[2]) / (whole * args.limit)
        fill = statistics.fmean(s[1] for s in samples if lo <= s[0] <= hi)
    results = run_["results"]
    return {
        "wall": wall,
        "batch_seconds": [r["ended"] - r["started"] for r in results],
        "accepted": stats["accepted"],
        "per_token": {LABELS[r["token"]]: r["counts"] for r in results},
        "all_called": all(r["counts"].get("called", 0) == args.calls for r in results),
        "stopped": [r["stopped"] for r in results if r["stopped"]],
        "outside": outside,
        "counted": counted,
        "steady_ratio": steady_ratio,
        "fill": fill,
        "peak_fill": max((s[1] for s in samples), default=0),
        "http_429": stats["responses"].get("429", 0),
        "waits_429": {LABELS[r["token"]]: r["waits_429"] for r in results},
        "waits_room": {LABELS[r["token"]]: r["waits_room"] for r in results},
        "busiest": max_in_window(arrivals, args.window),
        "responses": stats["responses"],
    }


def _waits(waits: dict[str, list[float]]) -> str:
    return ", ".join(f"{label} {len(w)} ({sum(w):.1f} s)" for label, w in waits.items())


def report(scenario: Scenario, f: dict[str, Any], args: argparse.Namespace, outside_rate: float) -> None:
    """Print one scenario's figures."""
    outside = f["outside"]
    steady = "-" if f["steady_ratio"] is None else f"{f['steady_ratio']:.3f}"
    per_window = "-" if f["steady_ratio"] is None else f"{f['steady_ratio'] * args.limit:.2f}"
    fill = "-" if f["fill"] is None else f"{f['fill']:.1f}"
    fill_ratio = "-" if f["fill"] is None else f"{f['fill'] / args.limit:.3f}"
    rows = [
        ("set-up", f"limiter {'on' if scenario.limiter else 'off'}, RateLimit headers "
         f"{'on' if scenario.headers else 'OFF'}, account extra '{ACCOUNT}' on every connection"),
        ("duration", f"{f['wall']:.1f} s (batches: {', '.join(f'{s:.1f} s' for s in f['batch_seconds'])})"),
        ("batch outcomes", "; ".join(f"token {k}: {v}" for k, v in f["per_token"].items())
         + (f"; stopped: {f['stopped']}" if f["stopped"] else "")),
        ("outside client", "-" if not scenario.outside else
         f"{outside_rate:.2f} per window: sent {outside['sent']}, counted {outside['counted']}, "
         f"refused {outside['refused']}"),
        ("requests counted", f"{f['counted']} (batch calls {f['accepted']} + outside {outside['counted']}) "
         f"in {f['wall']:.1f} s; steady state {per_window} per {args.window:g} s window "
         f"(limit {args.limit})"),
        ("ratio to the limit", f"steady {steady}; mean window fill {fill} of {args.limit} = {fill_ratio}; "
         f"peak {f['peak_fill']}"),
        ("429 answers", f"{f['http_429']} (waited out by the batches: {_waits(f['waits_429'])})"),
        ("waits for the reset", f"{_waits(f['waits_room'])} (HeaderBudget: RateLimit-Remaining spent)"),
        ("batch calls, max in a rolling window", f"{f['busiest']} (limit {args.limit})"),
        ("sandbox answers", f"{f['responses']}"),
    ]  # fmt: skip
    width = max(len(label) for label, _ in rows)
    print(f"({scenario.key}) {scenario.title}")
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")


def summary_table(done: list[tuple[Scenario, dict[str, Any]]], args: argparse.Namespace) -> None:
    """One line per scenario, side by side."""
    print(
        f"Side by side (limit {args.limit} per {args.window:g} s; steady state; requests counted by the "
        "account's window, the outside client's included; fill = mean window count / limit):"
    )
    header = f"  {'scenario':<13} {'req/window':>10} {'ratio':>6} {'fill':>6} {'429s':>5} "
    print(header + f"{'outside refused':>15} {'duration':>9}")
    for scenario, f in done:
        steady = f["steady_ratio"]
        per_window = "-" if steady is None else f"{steady * args.limit:.2f}"
        ratio = "-" if steady is None else f"{steady:.3f}"
        fill = "-" if f["fill"] is None else f"{f['fill'] / args.limit:.3f}"
        refused = f["outside"]["refused"] if scenario.outside else "-"
        print(
            f"  {scenario.key:<13} {per_window:>10} {ratio:>6} {fill:>6} "
            f"{f['http_429']:>5} {refused!s:>15} {f['wall']:>8.1f}s"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=20, help="requests per window (default 20)")
    parser.add_argument("--window", type=float, default=6.0, help="window in seconds (default 6)")
    parser.add_argument("--calls", type=int, default=60, help="calls per batch (default 60)")
    parser.add_argument(
        "--outside-share", type=float, default=1 / 3, help="share of each window the outside client spends"
    )
    parser.add_argument(
        "--scenarios", default=",".join(s.key for s in SCENARIOS), help="comma-separated (default: all)"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args()
    per_minute = args.limit * 60 / args.window
    if args.limit < 1 or args.window <= 0 or abs(per_minute - round(per_minute)) > 1e-9:
        parser.error("--limit * 60 / --window must be a whole number of calls per minute")
    if args.calls < 1 or not 0 < args.outside_share < 1:
        parser.error("--calls must be positive and --outside-share in (0, 1)")
    chosen = args.scenarios.split(",")
    unknown = set(chosen) - {s.key for s in SCENARIOS}
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")

    from alta_testing.servers import redis_server

    logging.getLogger("airflow_provider_alta.sandbox").setLevel(logging.WARNING)
    context = multiprocessing.get_context("spawn")  # independent interpreters, as separate workers are
    load = os.getloadavg()
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {load[0]:.2f} {load[1]:.2f}; "
        f"sandbox account '{ACCOUNT}' with tokens A and B, rolling window {args.limit} per "
        f"{args.window:g} s ({per_minute:g}/min); {args.calls} calls per batch; batches pace at "
        f"{per_minute:g}/min each (Pacer, 1% margin)"
    )
    done: list[tuple[Scenario, dict[str, Any]]] = []
    with redis_server.RedisServer() as redis:
        print(f"redis-server pid {redis.pid} on {redis.url}")
        for scenario in (s for s in SCENARIOS if s.key in chosen):
            raw = run(scenario, args, redis.url, context)
            result = figures(raw, args)
            report(scenario, result, args, raw["outside_per_window"])
            done.append((scenario, result))
    summary_table(done, args)
    load = os.getloadavg()
    print(f"load at the end {load[0]:.2f} {load[1]:.2f}")
    limited = [(s, f) for s, f in done if s.limiter and not s.outside]
    goals = [
        ("every batch placed all its calls", all(f["all_called"] for _, f in done)),
        ("no 429 with the shared limiter on (a, a-no-headers)", all(f["http_429"] == 0 for _, f in limited)),
        (
            f"steady ratio >= {GOAL_RATIO} with the shared limiter on (a, a-no-headers)",
            all((f["steady_ratio"] or 0) >= GOAL_RATIO for _, f in limited),
        ),
    ]
    for i, (text, met) in enumerate(goals):
        verdict = "not run" if i and not limited else "met" if met else "MISSED"
        print(f"goal: {text}: {verdict}")
    ok = all(met for _, met in goals)
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
