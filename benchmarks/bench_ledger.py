"""The contact ledger's cost: per call, and on a 100,000-record streamed batch pass next to none.

    python benchmarks/bench_ledger.py                         # both parts, SQLite and PostgreSQL
    python benchmarks/bench_ledger.py --part a --calls 5000   # per-call cost only
    python benchmarks/bench_ledger.py --part b --n 20000 --backends sqlite --trace

(a) Per call, one process: ``reserve`` + ``confirm(CALLED)`` of distinct fictional numbers under
    ``"1/7d"`` (what every placed call costs), each half alone, and a refused ``reserve`` (the
    person was just called: ``Blocked``), on a SQLite file and on a real PostgreSQL this script
    starts (``alta_testing``'s throwaway server: fsync and synchronous_commit are off there, so its
    figures leave out a production disk's flush) and stops.
(b) ``bulk.run_pass`` (the batch's pure pass: validation, progress records before and after each
    send, the contact gate, the client) over ``--n`` records streamed from a generator against the
    sandbox in its own process, rate limit off, no pacing gates, progress in memory; once without a
    ledger and once per backend with one (``--policy``, default ``"5/1d"``: the fictional pool
    holds about 36,000 numbers, so 100,000 records repeat each number about three times, all
    allowed). Each set-up runs in a fresh interpreter with a fresh sandbox: wall time, records/s,
    peak RSS over the base (``VmHWM``), with ``--trace`` also tracemalloc's peak (slower), and
    the ratios to the run without a ledger.
Figures only: nothing here asserts a time. Only loopback is contacted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _common import (
    TOKEN,
    child_env,
    environment_line,
    fictional_numbers,
    percentile,
    prepare_airflow_home,
    proc_status_kib,
    quiet,
    sandbox_process,
)

BACKENDS = ("sqlite", "postgresql")
ACCOUNT = "bench"


@contextlib.contextmanager
def ledger_urls(backends: list[str]) -> Iterator[dict[str, str]]:
    """A SQLAlchemy URL per backend: a SQLite file in a temporary folder, a PostgreSQL started here."""
    from alta_testing.servers.postgres_server import PostgresServer

    with tempfile.TemporaryDirectory(prefix="alta-bench-ledger-") as folder:
        urls = {"sqlite": f"sqlite:///{Path(folder) / 'ledger.db'}"} if "sqlite" in backends else {}
        server = PostgresServer(databases=("ledger",)).start() if "postgresql" in backends else None
        try:
            if server is not None:
                urls["postgresql"] = server.url("ledger")
            yield urls
        finally:
            if server is not None:
                server.stop()


def fresh_url(url: str, name: str) -> str:
    """For SQLite, a new file beside ``url`` (each set-up starts empty); PostgreSQL: the same URL."""
    if url.startswith("sqlite:///"):
        return f"sqlite:///{Path(url[len('sqlite:///') :]).with_name(name + '.db')}"
    return url


# -- (a) per call ------------------------------------------------------------------------------


def per_call(backend: str, url: str, calls: int) -> dict[str, Any]:
    """Time ``reserve`` + ``confirm``, each half, and a refused ``reserve``, ``calls`` times each."""
    from airflow_provider_alta.ledger import CALLED, Blocked, ContactLedger, Reservation

    numbers = fictional_numbers(calls + 50)
    account = f"{ACCOUNT}-{backend}-{time.time_ns()}"  # PostgreSQL is shared between the parts
    both: list[float] = []
    reserve: list[float] = []
    confirm: list[float] = []
    refused: list[float] = []
    with ContactLedger(url, account) as ledger:
        for number in numbers[:50]:  # warm-up: connections, statement caches
            outcome = ledger.reserve(number, "1/7d", by="bench/warm-up")
            assert isinstance(outcome, Reservation)
            ledger.confirm(outcome, CALLED)
        for number in numbers[50:]:
            started = time.perf_counter()
            outcome = ledger.reserve(number, "1/7d", by="bench/run/task")
            reserved = time.perf_counter()
            assert isinstance(outcome, Reservation)
            ledger.confirm(outcome, CALLED)
            ended = time.perf_counter()
            again = ledger.reserve(number, "1/7d", by="bench/run/task")
            refused.append(time.perf_counter() - ended)
            assert isinstance(again, Blocked)
            both.append(ended - started)
            reserve.append(reserved - started)
            confirm.append(ended - reserved)
        settings = _sqlite_settings(ledger) if backend == "sqlite" else "fsync=off, synchronous_commit=off"
    return {
        "backend": backend,
        "settings": settings,
        "rows": {
            "reserve+confirm": both,
            "reserve": reserve,
            "confirm": confirm,
            "refused reserve": refused,
        },
    }


def _sqlite_settings(ledger: Any) -> str:
    with ledger.engine.connect() as conn:
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
    return f"journal_mode={mode}, synchronous={sync} (the driver's defaults)"


def part_a(urls: dict[str, str], calls: int) -> None:
    print(f"(a) the ledger's cost per call, one process, {calls} distinct numbers per backend (ms)")
    print(f"  {'backend':<11} {'row':<16} {'mean':>7} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}")
    for backend, url in urls.items():
        figures = per_call(backend, fresh_url(url, "per-call"), calls)
        for row, values in figures["rows"].items():
            ms = [v * 1000 for v in values]
            print(
                f"  {backend:<11} {row:<16} {statistics.fmean(ms):7.2f} {percentile(ms, 0.5):7.2f} "
                f"{percentile(ms, 0.95):7.2f} {percentile(ms, 0.99):7.2f} {max(ms):7.2f}"
            )
        print(f"  {backend:<11} settings: {figures['settings']}")


# -- (b) a streamed batch pass -----------------------------------------------------------------


def child(
    setup: str, base_url: str, ledger_url: str | None, n: int, policy: str, trace: bool
) -> dict[str, Any]:
    """One set-up of (b) in this fresh interpreter: a pass over ``n`` streamed records; its figures."""
    prepare_airflow_home()
    import logging

    from airflow_provider_alta.bulk import Plan, run_pass
    from airflow_provider_alta.client import AltaClient
    from airflow_provider_alta.config import settings_from_fields
    from airflow_provider_alta.contact_gate import ContactGate
    from airflow_provider_alta.contact_policy import ContactPolicy
    from airflow_provider_alta.ledger import ContactLedger
    from airflow_provider_alta.payload import build_call
    from airflow_provider_alta.send_record import MemoryProgress

    quiet("airflow_provider_alta", "urllib3")
    pool = fictional_numbers()
    settings = settings_from_fields(host=base_url, password=TOKEN, extra={"account": ACCOUNT})
    client = AltaClient(settings, success_log_level=logging.DEBUG)
    ledger = ContactLedger(ledger_url, f"{ACCOUNT}-{setup}-{time.time_ns()}") if ledger_url else None

    def records() -> Iterator[dict[str, str]]:
        for i in range(n):
            yield {"assistant_id": "asst_bench", "name": f"Prospect {i}", "phone_number": pool[i % len(pool)]}

    plan = Plan(
        prepare=build_call,
        send=client.trigger,
        progress=MemoryProgress(),
        contact=None if ledger is None else ContactGate(ledger, ContactPolicy.parse(policy)),
        contact_by="bench/run/task",
        progress_every=3600.0,
    )
    warm = build_call({"assistant_id": "asst_bench", "name": "Warm", "phone_number": pool[0]})
    client.trigger(warm)  # connection and imports, outside the figures (and outside the ledger)
    if trace:
        import tracemalloc

        tracemalloc.start(1)
    base = proc_status_kib("VmRSS")
    started = time.perf_counter()
    result = run_pass(records(), plan)
    elapsed = time.perf_counter() - started
    figures: dict[str, Any] = {
        "setup": setup,
        "records": n,
        "distinct": min(n, len(pool)),
        "base_kib": base,
        "peak_kib": proc_status_kib("VmHWM"),
        "seconds": elapsed,
        "sent": result.sent,
        "counts": {state: count for state, count in result.counts.items() if count},
    }
    if trace:
        import tracemalloc

        figures["traced_peak_kib"] = tracemalloc.get_traced_memory()[1] // 1024
    client.close()
    if ledger is not None:
        ledger.close()
    return figures


def run_child(setup: str, ledger_url: str | None, args: argparse.Namespace) -> dict[str, Any]:
    """``setup`` in a fresh interpreter, against a fresh sandbox; its JSON line."""
    with sandbox_process(rate_limit="off") as base_url:
        command = [sys.executable, __file__, "--child", setup, "--base-url", base_url, "--n", str(args.n)]
        command += ["--policy", args.policy] + (["--ledger-url", ledger_url] if ledger_url else [])
        command += ["--trace"] if args.trace else []
        out = subprocess.run(command, capture_output=True, text=True, env=child_env(), check=False)
    if out.returncode != 0:
        raise SystemExit(f"set-up {setup} failed:\n{out.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def part_b(urls: dict[str, str], args: argparse.Namespace) -> None:
    print(
        f"(b) bulk.run_pass over {args.n} streamed records, sandbox rate limit off, policy {args.policy!r}; "
        "each set-up in a fresh interpreter with a fresh sandbox"
    )
    runs = [run_child("no ledger", None, args)]
    runs += [run_child(backend, fresh_url(url, "batch"), args) for backend, url in urls.items()]
    plain = runs[0]
    traced = "traced MB" if args.trace else ""
    print(
        f"  {'set-up':<10} {'seconds':>8} {'records/s':>10} {'base MB':>8} {'peak MB':>8} {'delta MB':>9} "
        f"{traced:>9} {'time x':>7} {'delta x':>8}  counts"
    )
    for r in runs:
        delta = (r["peak_kib"] - r["base_kib"]) / 1024
        plain_delta = max((plain["peak_kib"] - plain["base_kib"]) / 1024, 0.1)
        traced_mb = f"{r['traced_peak_kib'] / 1024:9.1f}" if "traced_peak_kib" in r else f"{'':>9}"
        print(
            f"  {r['setup']:<10} {r['seconds']:8.1f} {r['records'] / r['seconds']:10.0f} "
            f"{r['base_kib'] / 1024:8.1f} {r['peak_kib'] / 1024:8.1f} {delta:9.1f} {traced_mb} "
            f"{r['seconds'] / plain['seconds']:7.2f} {delta / plain_delta:8.2f}  {r['counts']}"
        )
    print(
        "  peak = VmHWM; delta = peak - base (RSS after imports and one warm-up call); x: ratio to "
        f"'no ledger'; {runs[0]['distinct']} distinct numbers"
    )
    for r in runs[1:]:
        extra_ms = (r["seconds"] - plain["seconds"]) * 1000 / r["records"]
        print(f"  {r['setup']}: the ledger adds {extra_ms:.2f} ms per record on this pass")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=("a", "b", "both"), default="both")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated: sqlite, postgresql")
    parser.add_argument("--calls", type=int, default=2000, help="(a) calls per backend (default 2000)")
    parser.add_argument("--n", type=int, default=100_000, help="(b) records per set-up (default 100000)")
    parser.add_argument("--policy", default="5/1d", help="(b) the contact policy (default 5/1d)")
    parser.add_argument("--trace", action="store_true", help="(b) also tracemalloc's peak (slower)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--ledger-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.base_url, args.ledger_url, args.n, args.policy, args.trace)))
        return 0
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown backend(s): {', '.join(unknown)}")
    prepare_airflow_home()
    print(environment_line())
    with ledger_urls(backends) as urls:
        if args.part in ("a", "both"):
            part_a(urls, args.calls)
        if args.part in ("b", "both"):
            part_b(urls, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
