"""Peak memory of a 100,000-prospect dry run streamed from a generator.

    python benchmarks/bench_bulk_memory.py                       # three set-ups, 100,000 records each
    python benchmarks/bench_bulk_memory.py --records 20000 --setups dedupe-off
    python benchmarks/bench_bulk_memory.py --trace --setups dedupe-off   # + top tracemalloc sites

Each set-up runs in a fresh interpreter: it imports the operator, Airflow, ``phonenumbers`` and
``pendulum``, reads its RSS (the base), then runs ``BatchTriggerAssistantCallsOperator(dry_run=True,
prospects=<callable returning a generator>).execute({})`` and reads the peak RSS (``VmHWM``).
Set-ups: ``dedupe-off`` (``dedupe_key=None``, calling hours off), ``dedupe-on`` (a distinct dedupe
key per record, so the seen-key table holds all of them; calling hours off) and ``hours`` (dedupe
off, the operator's default calling window with ``outside_calling_hours="skip"``: its outcome counts
depend on the time of day). Records cycle through the fictional US numbers (``+1 AAA 555-01XX``,
geographic area codes, about 36,000 distinct), more than the normaliser's cache holds, so every
record is really validated.
Nothing is sent and no sandbox is needed. Goal: peak - base <= 150 MB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from _common import area_codes, child_env, environment_line, prepare_airflow_home, proc_status_kib, quiet

GOAL_MB = 150.0
SETUPS = ("dedupe-off", "dedupe-on", "hours")


def child(setup: str, records: int, trace: bool) -> dict[str, Any]:
    """Run one set-up in this (fresh) process; return its figures."""
    prepare_airflow_home()
    import resource

    import pendulum  # noqa: F401
    import phonenumbers  # noqa: F401

    import airflow_provider_alta.calling_hours  # noqa: F401
    from airflow_provider_alta.operators.batch import BatchTriggerAssistantCallsOperator
    from airflow_provider_alta.sandbox import AltaSandbox  # noqa: F401  (imported by the other benchmarks)

    quiet("airflow.task", "airflow_provider_alta")
    codes = area_codes()  # loads the US metadata of phonenumbers, as the first record would

    def prospects() -> Iterator[dict[str, str]]:
        for i in range(records):
            area, line = codes[(i // 100) % len(codes)], 100 + i % 100
            yield {"name": f"Prospect {i}", "phone_number": f"+1{area}555{line:04d}"}

    dedupe: str | Callable[[Any], Any] | None = None
    if setup == "dedupe-on":
        dedupe = lambda record: record["name"]  # noqa: E731 - one distinct key per record
    operator = BatchTriggerAssistantCallsOperator(
        task_id=f"bench_bulk_memory_{setup.replace('-', '_')}",
        prospects=prospects,
        assistant_id="asst_bench",
        dry_run=True,
        dedupe_key=dedupe,
        calling_hours=None if setup == "hours" else False,
        outside_calling_hours="skip",
        outcomes_xcom_limit=None,  # every outcome in the summary, as before the outcome files
        progress_interval=3600.0,
    )
    if trace:
        import tracemalloc

        tracemalloc.start(5)
    base = proc_status_kib("VmRSS")
    started = time.perf_counter()
    summary = operator.execute({})
    elapsed = time.perf_counter() - started
    figures: dict[str, Any] = {
        "setup": setup,
        "records": records,
        "base_kib": base,
        "peak_kib": proc_status_kib("VmHWM"),
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "after_kib": proc_status_kib("VmRSS"),
        "seconds": elapsed,
        "counts": summary["counts"],
        "outcomes": len(summary["outcomes"]),
        "xcom_bytes": len(json.dumps(summary)),  # the summary is the task's return value (XCom)
    }
    if trace:
        import tracemalloc

        snapshot = tracemalloc.take_snapshot()
        _, traced_peak = tracemalloc.get_traced_memory()
        figures["traced_peak_kib"] = traced_peak // 1024
        figures["top"] = [
            f"{stat.size / 2**20:7.1f} MB {stat.count:>8} blocks  {stat.traceback[-1]}"
            for stat in snapshot.statistics("lineno")[:10]
        ]
    return figures


def run_child(setup: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run ``setup`` in a fresh interpreter and read its JSON line."""
    command = [sys.executable, __file__, "--child", setup, "--records", str(args.records)]
    command += ["--trace"] if args.trace else []
    out = subprocess.run(command, capture_output=True, text=True, env=child_env(), check=False)
    if out.returncode != 0:
        raise SystemExit(f"set-up {setup} failed:\n{out.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=100_000, help="records per set-up (default 100000)")
    parser.add_argument(
        "--setups", default=",".join(SETUPS), help=f"comma-separated, among {', '.join(SETUPS)} (default all)"
    )
    parser.add_argument("--trace", action="store_true", help="also print the top tracemalloc sites (slower)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the goal is missed")
    parser.add_argument("--child", choices=SETUPS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.records, args.trace)))
        return 0
    setups = [s.strip() for s in args.setups.split(",") if s.strip()]
    unknown = sorted(set(setups) - set(SETUPS))
    if unknown:
        parser.error(f"unknown set-up(s): {', '.join(unknown)}")
    prepare_airflow_home()
    print(f"{environment_line()}; {args.records} records per set-up, each in a fresh interpreter")
    print(
        f"  {'set-up':<11} {'base MB':>8} {'peak MB':>8} {'delta MB':>9} {'after MB':>9} "
        f"{'seconds':>8} {'records/s':>10} {'XCom MB':>8}  counts"
    )
    ok = True
    results = []
    for setup in setups:
        r = run_child(setup, args)
        results.append(r)
        delta = (r["peak_kib"] - r["base_kib"]) / 1024
        ok = ok and delta <= GOAL_MB
        print(
            f"  {setup:<11} {r['base_kib'] / 1024:8.1f} {r['peak_kib'] / 1024:8.1f} {delta:9.1f} "
            f"{r['after_kib'] / 1024:9.1f} {r['seconds']:8.1f} {r['records'] / r['seconds']:10.0f} "
            f"{r['xcom_bytes'] / 2**20:8.1f}  "
            f"{r['counts']} (outcomes {r['outcomes']})"
        )
    print(f"Goal: peak - base <= {GOAL_MB:.0f} MB: {'met' if ok else 'MISSED'} (" + ", ".join(
        f"{r['setup']} {(r['peak_kib'] - r['base_kib']) / 1024:.1f} MB" for r in results
    ) + ")")  # fmt: skip
    print(
        "  peak = VmHWM; ru_maxrss for comparison: "
        + ", ".join(f"{r['setup']} {r['maxrss_kib'] / 1024:.1f} MB" for r in results)
    )
    print("  XCom MB: JSON size of the summary execute() returns (outcomes of every record)")
    print("  per record: " + ", ".join(
        f"{r['setup']} {(r['peak_kib'] - r['base_kib']) * 1024 / r['records']:.0f} B" for r in results
    ))  # fmt: skip
    for r in results:
        if "top" in r:
            print(
                f"tracemalloc, {r['setup']}: traced peak {r['traced_peak_kib'] / 1024:.1f} MB; top "
                "allocation sites still held after execute() (the returned summary). "
                "Tracing inflates the RSS above."
            )
            for line in r["top"]:
                print(f"  {line}")
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
