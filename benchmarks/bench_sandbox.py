"""Throughput of the Alta sandbox on loopback, with the rate limit off.

    python benchmarks/bench_sandbox.py                       # server in its own process (default)
    python benchmarks/bench_sandbox.py --inprocess           # server in this process (shares the GIL)
    python benchmarks/bench_sandbox.py --requests 3000 --threads 4 --journal

Each client thread reuses one keep-alive ``requests.Session``. Prints requests/s and latency
percentiles, and checks that the sandbox journaled exactly the calls it answered with 200.
Only loopback is contacted; the run is bounded by --requests and stops by itself.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time

import requests
from _common import sandbox_process

from airflow_provider_alta.sandbox import AltaSandbox

TOKEN = "bench-token"
BODY = {
    "assistantId": "asst_bench",
    "name": "Bench Example",
    "phoneNumber": "+12025550142",
    "timezone": "America/New_York",
    "data": {"order": 1234, "items": ["a", "b", "c"]},
    "callTransfer": {"phoneNumber": "+442079460999", "receiverMessageMode": "summary"},
}


def drive(url: str, total: int, threads: int) -> tuple[float, list[float], dict[int, int]]:
    """Send ``total`` calls from ``threads`` keep-alive sessions; return wall time, latencies, statuses."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(threads + 1)
    shares = [total // threads + (1 if index < total % threads else 0) for index in range(threads)]

    def worker(count: int) -> None:
        mine: list[float] = []
        seen: dict[int, int] = {}
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with requests.Session() as session:
            session.post(url, json=BODY, headers=headers, timeout=30)  # open the connection (not timed)
            barrier.wait()
            for _ in range(count):
                started = time.perf_counter()
                response = session.post(url, json=BODY, headers=headers, timeout=30)
                mine.append(time.perf_counter() - started)
                seen[response.status_code] = seen.get(response.status_code, 0) + 1
        with lock:
            latencies.extend(mine)
            for status, number in seen.items():
                statuses[status] = statuses.get(status, 0) + number

    workers = [threading.Thread(target=worker, args=(share,)) for share in shares]
    for thread in workers:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in workers:
        thread.join()
    return time.perf_counter() - started, latencies, statuses


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def report(label: str, wall: float, latencies: list[float], statuses: dict[int, int]) -> float:
    rate = len(latencies) / wall
    print(
        f"{label}: {len(latencies)} calls in {wall:.2f} s = {rate:.0f} req/s; "
        f"latency p50 {percentile(latencies, 0.50) * 1000:.2f} ms, "
        f"p90 {percentile(latencies, 0.90) * 1000:.2f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.2f} ms, "
        f"max {max(latencies) * 1000:.2f} ms, mean {statistics.fmean(latencies) * 1000:.2f} ms; "
        f"statuses {dict(sorted(statuses.items()))}"
    )
    return rate


def run_inprocess(args: argparse.Namespace, journal: str | None) -> float:
    with AltaSandbox(token=TOKEN, rate_limit=None, journal_path=journal) as sandbox:
        wall, latencies, statuses = drive(sandbox.calls_url, args.requests, args.threads)
        stats = sandbox.stats()
        assert stats["accepted"] == statuses.get(200, 0) + args.threads, stats
        assert stats["max_in_flight"] <= args.threads, stats
    return report("in-process server", wall, latencies, statuses)


def run_subprocess(args: argparse.Namespace, journal: str | None) -> float:
    with sandbox_process(token=TOKEN, extra_args=["--journal", journal] if journal else []) as base:
        wall, latencies, statuses = drive(base + "/v1/assistant/calls", args.requests, args.threads)
        stats = requests.get(base + "/_sandbox/stats", timeout=10).json()
        assert stats["accepted"] == statuses.get(200, 0) + args.threads, stats
    return report("separate server process", wall, latencies, statuses)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000, help="timed calls in total (default 3000)")
    parser.add_argument("--threads", type=int, default=4, help="client threads, one session each (default 4)")
    parser.add_argument("--inprocess", action="store_true", help="run the server in this process")
    parser.add_argument("--both", action="store_true", help="run both set-ups")
    parser.add_argument("--journal", action="store_true", help="also write the JSONL journal file")
    parser.add_argument(
        "--min-rps", type=float, default=0.0, help="exit 1 below this rate (default: no check)"
    )
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.threads} client threads, limit off")
    with tempfile.TemporaryDirectory() as tmp:
        journal = os.path.join(tmp, "journal.jsonl") if args.journal else None
        rates = []
        if args.both or not args.inprocess:
            rates.append(run_subprocess(args, journal))
        if args.both or args.inprocess:
            rates.append(run_inprocess(args, journal and journal + ".inprocess"))
    if min(rates) < args.min_rps:
        print(f"below the required {args.min_rps:.0f} req/s")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
