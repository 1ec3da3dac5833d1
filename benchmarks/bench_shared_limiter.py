"""SharedLimiter: how close several processes on one token get to Alta's limit, and never above it.

    python benchmarks/bench_shared_limiter.py                          # 3 processes, 100 per 6 s, 900 calls
    python benchmarks/bench_shared_limiter.py --processes 4 --calls 1000 --limit 100 --window 6
    python benchmarks/bench_shared_limiter.py --margin 0                # no safety margin

Starts its own redis-server (loopback, nothing persisted) and an Alta sandbox with a
time-compressed rolling window (``--limit`` per ``--window`` seconds, the same rule as Alta's 100
per minute). Each worker process builds its own ``SharedLimiter`` and ``AltaClient`` and sends
its share of real calls (fictional +1 NPA 555 01xx numbers, one per call) as fast as the limiter
lets it. Everything stays on 127.0.0.1; nothing contacts Alta.

Reported from the sandbox's journal of arrival times:

- sustained aggregate rate: ``limit / mean(t[i + limit] - t[i])``, i.e. how soon each of the
  window's slots is used again (exactly ``window`` at the limit). It ignores how the calls
  cluster inside a window, so bursts do not skew it; the ratio to ``limit / window`` is the goal
  figure (0.95 to 1.00);
- the most calls in any rolling window ``[t, t + window)`` (must be <= limit) and the 429 count
  (must be 0).

Exit status 1 when a window held more than the limit or any call drew a 429.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from typing import Any

from airflow_provider_alta.client import AltaClient, ResendPolicy
from airflow_provider_alta.config import AltaSettings
from airflow_provider_alta.exceptions import AltaRateLimitError
from airflow_provider_alta.payload import build_call
from airflow_provider_alta.sandbox import AltaSandbox
from airflow_provider_alta.shared_limiter import SharedLimiter
from alta_testing.data.campaign_checks import arrival_times, max_in_window, received_at
from alta_testing.servers import redis_server

TOKEN = "bench-shared-limiter-token"
# Area codes whose 555-0100..0199 numbers are reserved for fiction: 100 distinct numbers each.
AREA_CODES = ("202", "212", "305", "312", "415", "503", "617", "702", "713", "808", "206", "303")


def phone_number(n: int) -> str:
    """The ``n``-th fictional number: +1 NPA 555 01xx."""
    return f"+1 {AREA_CODES[n // 100]} 555 01{n % 100:02d}"


def worker(
    redis_url: str, api_url: str, first: int, count: int, options: dict[str, Any], barrier: Any, out: Any
) -> None:
    """Send ``count`` calls through one SharedLimiter; report waits, 429s and errors."""
    waits: list[float] = []
    permits: dict[int, float] = {}
    rate_limited = errors = 0
    settings = AltaSettings(base_url=api_url, token=TOKEN)
    with (
        SharedLimiter(redis_url, token=TOKEN, **options) as gate,
        AltaClient(settings, retry=ResendPolicy(rate_limit_budget=0)) as client,
    ):
        barrier.wait(30)
        for n in range(first, first + count):
            call = build_call(
                {"assistant_id": "asst_bench", "name": f"Bench {n}", "phone_number": phone_number(n)}
            )
            waits.append(gate.acquire())
            permits[n] = time.time()
            try:
                client.trigger(call)
            except AltaRateLimitError:
                rate_limited += 1
            except Exception:
                errors += 1
            finally:
                gate.release()
    out.put(
        {
            "pid": os.getpid(),
            "waits": waits,
            "permits": permits,
            "rate_limited": rate_limited,
            "errors": errors,
        }
    )


def sustained_rate(times: list[float], limit: int) -> float:
    """``limit / mean(t[i + limit] - t[i])``: calls per second once every slot is in use."""
    ordered = sorted(times)
    gaps = [ordered[i + limit] - ordered[i] for i in range(len(ordered) - limit)]
    return limit / statistics.fmean(gaps)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--processes", type=int, default=3, help="worker processes (default 3)")
    parser.add_argument("--calls", type=int, default=900, help="calls in total (default 900)")
    parser.add_argument("--limit", type=int, default=100, help="calls per window (default 100)")
    parser.add_argument("--window", type=float, default=6.0, help="window in seconds (default 6)")
    parser.add_argument("--margin", type=float, default=None, help="SharedLimiter margin (default its own)")
    args = parser.parse_args()
    if args.calls <= 2 * args.limit or args.calls > 100 * len(AREA_CODES):
        parser.error(f"--calls must be above 2 x --limit and at most {100 * len(AREA_CODES)}")

    options: dict[str, Any] = {
        "calls_per_minute": args.limit * 60 / args.window,
        "window_seconds": args.window,
    }
    if args.margin is not None:
        options["margin"] = args.margin
    shares = [args.calls // args.processes + (i < args.calls % args.processes) for i in range(args.processes)]
    starts = [sum(shares[:i]) for i in range(args.processes)]
    context = multiprocessing.get_context("spawn")  # independent interpreters, as separate workers are

    with (
        redis_server.RedisServer() as redis,
        AltaSandbox(token=TOKEN, rate_limit=f"{args.limit}/{args.window:g}") as sandbox,
    ):
        probe = SharedLimiter(redis.url, token=TOKEN, **options)
        print(
            f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; {args.processes} processes, "
            f"{args.calls} calls; sandbox limit {args.limit} per {args.window:g} s; limiter {probe.limit} "
            f"per {probe.interval_ms / 1000:g} s (margin {probe.margin:g}); redis-server pid {redis.pid}"
        )
        probe.close()
        barrier, out = context.Barrier(args.processes + 1), context.Queue()
        workers = [
            context.Process(target=worker, args=(redis.url, sandbox.url, first, count, options, barrier, out))
            for first, count in zip(starts, shares, strict=True)
        ]
        for process in workers:
            process.start()
        barrier.wait(60)
        started = time.monotonic()
        results = [out.get(timeout=600) for _ in workers]
        elapsed = time.monotonic() - started
        for process in workers:
            process.join(30)
        stats = sandbox.stats()
        journal = sandbox.calls()

    arrivals = arrival_times(journal)
    limit_rate = args.limit / args.window
    rate = sustained_rate(arrivals, args.limit)
    busiest = max_in_window(arrivals, args.window)
    http_429 = stats["responses"].get("429", 0)
    waits = [w for result in results for w in result["waits"]]
    permits = {n: t for result in results for n, t in result["permits"].items()}
    # Permit to arrival: how late a call reaches the server after its permit (the margin absorbs it).
    delays = sorted(
        received_at(record).timestamp() - permits[int(record["body"]["name"].split()[-1])]
        for record in journal
    )
    errors = sum(result["errors"] for result in results)
    per_process = sorted(len(result["waits"]) for result in results)
    print(
        f"wall time {elapsed:.2f} s; accepted {stats['accepted']}; per process {per_process}; errors {errors}"
    )
    print(
        f"plain average {len(arrivals) / (max(arrivals) - min(arrivals)):.2f} calls/s "
        "over the whole run (first burst included)"
    )
    print(
        f"sustained aggregate {rate:.3f} calls/s; limit {limit_rate:.3f} calls/s; "
        f"ratio {rate / limit_rate:.4f}"
    )
    print(f"max calls in any {args.window:g} s rolling window: {busiest} (limit {args.limit})")
    print(f"429 answers: {http_429} (clients saw {sum(r['rate_limited'] for r in results)})")
    slack = probe.interval_ms / 1000 - args.window
    print(
        f"permit to arrival: median {statistics.median(delays) * 1000:.1f} ms, "
        f"p99 {delays[int(0.99 * (len(delays) - 1))] * 1000:.1f} ms, max {delays[-1] * 1000:.1f} ms "
        f"(the margin leaves {slack * 1000:.0f} ms)"
    )
    print(f"acquire wait: median {statistics.median(waits) * 1000:.1f} ms, max {max(waits):.3f} s")
    ok = busiest <= args.limit and http_429 == 0 and errors == 0 and stats["accepted"] == args.calls
    goal = 0.95 <= rate / limit_rate <= 1.0
    verdict = "never above the limit" if ok else "LIMIT EXCEEDED OR CALLS FAILED"
    print(f"verdict: {verdict}; ratio goal 0.95-1.00 {'met' if goal else 'missed'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
