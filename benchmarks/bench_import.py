"""How many milliseconds importing the operator module adds after ``import airflow.sdk``.

Each sample is a fresh interpreter: import ``airflow.sdk`` (Airflow 2: ``airflow``), then time the
operator module's import. Prints the median over the runs for this provider's operator and, side by
side in the same run, for the HTTP provider's ``HttpOperator``. Goal: at most 25 ms.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

PROBE = """
import time
try:
    import airflow.sdk
except ImportError:
    import airflow
start = time.perf_counter()
import {module}
print((time.perf_counter() - start) * 1000)
"""
MODULES = {
    "TriggerAssistantCallOperator": "airflow_provider_alta.operators.alta",
    "HttpOperator": "airflow.providers.http.operators.http",
}


def sample(module: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    results: dict[str, list[float]] = {name: [] for name in MODULES}
    for _ in range(args.runs):  # interleaved, so both see the same machine load
        for name, module in MODULES.items():
            results[name].append(sample(module))
    import airflow

    print(f"Airflow {airflow.__version__}, {args.runs} fresh interpreters each, median (min-max) ms:")
    for name, times in results.items():
        print(f"  {name:30} {statistics.median(times):7.1f}  ({min(times):.1f}-{max(times):.1f})")
    ours, http = (statistics.median(results[n]) for n in MODULES)
    print(f"  ratio TriggerAssistantCallOperator / HttpOperator: {ours / http:.2f}  (goal: ours <= 25 ms)")


if __name__ == "__main__":
    main()
