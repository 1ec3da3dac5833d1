"""Bulk throughput against the sandbox's rate limit, in a time-compressed window.

    python benchmarks/bench_bulk_throughput.py                      # 1,000 prospects, 100 per 6 s (~61 s)
    python benchmarks/bench_bulk_throughput.py --prospects 300 --window 3

Runs ``BatchTriggerAssistantCallsOperator.execute({})`` (outside a DAG run: in-memory progress)
on distinct fictional numbers against an in-process sandbox limiting the token to LIMIT calls per
WINDOW seconds; the operator paces at the same limit expressed per minute. From the sandbox's
journal (arrival times) it prints the calls achieved per window over the steady state divided by
the limit (goal >= 0.98), the most calls in any rolling window (must be <= the limit), the 429s
answered, duplicates (numbers journaled more than once) and whether every record is accounted for.
Only loopback is contacted.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections import Counter
from typing import Any

from _common import (
    TOKEN,
    environment_line,
    fictional_numbers,
    percentile,
    prepare_airflow_home,
    quiet,
    set_alta_connection,
)

from alta_testing.data.campaign_checks import arrival_times, max_in_window

GOAL_RATIO = 0.98


def min_headroom(times: list[float], limit: int, window: float) -> float | None:
    """Least ``t[j] - t[j - limit] - window``: how close a window came to holding ``limit + 1`` calls.

    Negative means some window ``(t - window, t]`` held more than ``limit`` calls.
    """
    gaps = [times[j] - times[j - limit] - window for j in range(limit, len(times))]
    return min(gaps) if gaps else None


def fixed_windows(times: list[float], window: float) -> list[int]:
    """Calls in each whole window ``[t0 + k*window, t0 + (k+1)*window)`` from the first arrival."""
    if not times:
        return []
    t0 = times[0]
    whole = int((times[-1] - t0) // window)
    counts = [0] * whole
    for t in times:
        k = int((t - t0) // window)
        if k < whole:
            counts[k] += 1
    return counts


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the batch against a fresh sandbox; return what the report needs."""
    from airflow_provider_alta.operators.batch import BatchTriggerAssistantCallsOperator
    from airflow_provider_alta.sandbox import AltaSandbox

    numbers = fictional_numbers(args.prospects)
    prospects = [{"name": f"Prospect {i}", "phone_number": n} for i, n in enumerate(numbers)]
    per_minute = args.limit * 60.0 / args.window
    with AltaSandbox(token=TOKEN, rate_limit=f"{args.limit}/{args.window:g}") as sandbox:
        set_alta_connection(sandbox.url, calls_per_minute=round(per_minute))
        operator = BatchTriggerAssistantCallsOperator(
            task_id="bench_bulk_throughput",
            prospects=prospects,
            assistant_id="asst_bench",
            calls_per_minute=per_minute,
            calling_hours=False,
            outcomes_xcom_limit=None,  # every outcome in the summary, as before the outcome files
            progress_interval=args.progress_interval,
        )
        started = time.perf_counter()
        summary = operator.execute({})
        wall = time.perf_counter() - started
        return {"summary": summary, "wall": wall, "calls": sandbox.calls(), "stats": sandbox.stats()}


def report(args: argparse.Namespace, result: dict[str, Any]) -> bool:
    """Print the table; return whether every goal was met."""
    summary, calls, stats = result["summary"], result["calls"], result["stats"]
    times = arrival_times(calls)
    n = len(times)
    span = times[-1] - times[0] if n > 1 else 0.0
    per_window = (n - 1) / span * args.window if span else 0.0
    ratio = per_window / args.limit
    wall_ratio = n / result["wall"] * args.window / args.limit
    rolling = max_in_window(times, args.window)
    headroom = min_headroom(times, args.limit, args.window)
    margin = args.window / 0.99 - args.window  # the Pacer's 1% margin, per window
    windows = fixed_windows(times, args.window)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    responses = {int(k): v for k, v in stats["responses"].items()}
    too_many = responses.get(429, 0)
    numbers = Counter(call["body"]["phoneNumber"] for call in calls)
    duplicates = sum(c - 1 for c in numbers.values() if c > 1)
    counts = summary["counts"]
    outcomes = summary["outcomes"]
    rate_limited = sum(1 for o in outcomes.values() if "rate limited" in o.get("reason", ""))
    accounted = summary["total"] == args.prospects == len(outcomes) == sum(counts.values())
    all_called = counts.get("called", 0) == args.prospects == summary["sent"] == n

    rows = [
        ("prospects", f"{args.prospects}"),
        ("sandbox limit", f"{args.limit} calls / {args.window:g} s (rolling window)"),
        ("operator pace", f"calls_per_minute={args.limit * 60 / args.window:g} (Pacer, 1% margin)"),
        ("summary counts", f"{counts} (sent {summary['sent']})"),
        ("journaled calls", f"{n}"),
        ("responses", f"{dict(sorted(responses.items()))}; max in flight {stats['max_in_flight']}"),
        ("execute() wall time", f"{result['wall']:.2f} s"),
        ("first -> last arrival", f"{span:.3f} s"),
        ("gap between arrivals", f"median {percentile(gaps, 0.5) * 1000:.1f} ms, "
         f"min {min(gaps) * 1000:.1f}, p99 {percentile(gaps, 0.99) * 1000:.1f}, "
         f"max {max(gaps) * 1000:.1f} ms" if gaps else "-"),
        ("calls per window (steady)", f"{per_window:.2f}  = (n-1) / span * window"),
        ("calls per window (wall)", f"{n / result['wall'] * args.window:.2f}  = n / execute() time * window"),
        ("whole fixed windows", f"{len(windows)}: min {min(windows, default=0)}, "
         f"max {max(windows, default=0)} calls"),
        ("max in any rolling window", f"{rolling} (limit {args.limit})"),
        ("least headroom", "-" if headroom is None else f"{headroom * 1000:.1f} ms short of a window with "
         f"{args.limit + 1} calls (ideal {margin * 1000:.1f} ms: the 1% margin)"),
    ]  # fmt: skip
    width = max(len(label) for label, _ in rows)
    print(environment_line())
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    checks = [
        (f"ratio steady calls/window / limit = {ratio:.4f}", ratio >= GOAL_RATIO, f">= {GOAL_RATIO}"),
        (f"ratio incl. start-up (wall) = {wall_ratio:.4f}", None, "for information"),
        (f"max in a rolling window = {rolling}", rolling <= args.limit, f"<= {args.limit}"),
        (f"429 answers = {too_many}; records failed by 429 = {rate_limited}",
         too_many == 0 and rate_limited == 0, "0"),
        (f"duplicate calls in the journal = {duplicates}", duplicates == 0, "0"),
        (f"every record accounted (total {summary['total']}, outcomes {len(outcomes)})", accounted, "yes"),
        (f"every record called once (called {counts.get('called', 0)}, journal {n})", all_called, "yes"),
    ]  # fmt: skip
    print("Figures vs goals:")
    ok = True
    for text, met, goal in checks:
        verdict = "" if met is None else ("  met" if met else "  MISSED")
        ok = ok and met is not False
        print(f"  {text:<70} goal {goal}{verdict}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prospects", type=int, default=1000, help="distinct prospects (default 1000)")
    parser.add_argument("--limit", type=int, default=100, help="calls allowed per window (default 100)")
    parser.add_argument(
        "--window", type=float, default=6.0, help="rate window in seconds; 60 is Alta's real one (default 6)"
    )
    parser.add_argument(
        "--progress-interval",
        type=float,
        default=10.0,
        help="seconds between progress log lines (default 10)",
    )
    parser.add_argument("--verbose", action="store_true", help="keep the per-call INFO log lines")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args()
    prepare_airflow_home()
    # Airflow configures logging on import: set the levels after it.
    import airflow_provider_alta.operators.batch  # noqa: F401

    if not args.verbose:
        quiet("airflow_provider_alta.client", "airflow_provider_alta.sandbox")
    result = run(args)
    ok = report(args, result)
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
