"""How many milliseconds the operator adds to a task process, after ``import airflow.sdk``.

Each sample is a fresh interpreter: import ``airflow.sdk`` (Airflow 2: ``airflow``), then time the
operator module's import (what parsing a DAG file costs). With ``--task``, also what a mapped task's
execute adds on first use in that process: the hook and client (with ``requests``), a call built
and validated (``phonenumbers``), its calling window checked (``pendulum``) and an answer scrubbed;
for ``HttpOperator``, its hook. Prints the median over the runs for this provider's operator and,
side by side in the same run, for the HTTP provider's ``HttpOperator``. Goal: at most 25 ms for
the import.

Python writes no ``.pyc`` when ``PYTHONDONTWRITEBYTECODE`` is set (as in this project's CI, whose
venvs uv installs without bytecode): each process then compiles every module it imports.
``--bytecode-cache`` gives the probes a throwaway ``PYTHONPYCACHEPREFIX`` (warmed by one untimed
run), as a pip-installed deployment has.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

PROBE = """
import time
try:
    import airflow.sdk
except ImportError:
    import airflow
start = time.perf_counter()
import {module}
parsed = time.perf_counter()
{task}
print((parsed - start) * 1000, (time.perf_counter() - parsed) * 1000)
"""
ALTA_TASK = """
from airflow_provider_alta.hooks.alta import AltaHook
from airflow_provider_alta.operators import _common
from airflow_provider_alta.payload import build_call
from airflow_provider_alta.masking import scrub_answer
fields = {"assistant_id": "asst_1", "name": "Ada", "phone_number": "+12025550143",
          "timezone": "America/New_York", "data": {"plan": "pro"}}
call = build_call(fields)
_common.call_window(None)(call)
scrub_answer({"id": "call_1", "status": "queued"}, call.phone_number, call.email)
"""
HTTP_TASK = "from airflow.providers.http.hooks.http import HttpHook"
MODULES = {
    "TriggerAssistantCallOperator": ("airflow_provider_alta.operators.alta", ALTA_TASK),
    "HttpOperator": ("airflow.providers.http.operators.http", HTTP_TASK),
}


def sample(module: str, task: str, env: dict[str, str]) -> tuple[float, float]:
    code = PROBE.format(module=module, task=task)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    parsed, executed = out.stdout.strip().splitlines()[-1].split()
    return float(parsed), float(executed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--task", action="store_true", help="also time a mapped task's first use")
    parser.add_argument("--bytecode-cache", action="store_true", help="probes keep .pyc (throwaway dir)")
    args = parser.parse_args()
    env = dict(os.environ)
    prefix = None
    if args.bytecode_cache:
        prefix = tempfile.mkdtemp(prefix="alta-bench-pycache-")
        env.update(PYTHONDONTWRITEBYTECODE="", PYTHONPYCACHEPREFIX=prefix)
    try:
        modules = {name: (m, t if args.task else "") for name, (m, t) in MODULES.items()}
        if prefix:
            for module, task in modules.values():
                sample(module, task, env)  # writes the cache
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in modules}
        for _ in range(args.runs):  # interleaved, so both see the same machine load
            for name, (module, task) in modules.items():
                results[name].append(sample(module, task, env))
    finally:
        if prefix:
            shutil.rmtree(prefix, ignore_errors=True)
    import airflow

    cache = (
        "with a bytecode cache"
        if prefix
        else "bytecode "
        + (
            "not written (PYTHONDONTWRITEBYTECODE)"
            if os.environ.get("PYTHONDONTWRITEBYTECODE")
            else "as usual"
        )
    )
    print(
        f"Airflow {airflow.__version__}, {args.runs} fresh interpreters each, {cache}; median (min-max) ms:"
    )
    columns = ("import", "task's first use", "both") if args.task else ("import",)
    print(f"  {'':30} " + " ".join(f"{c:>24}" for c in columns))
    medians: dict[str, float] = {}
    for name, samples in results.items():
        parts = [[s[0] for s in samples]]
        if args.task:
            parts += [[s[1] for s in samples], [s[0] + s[1] for s in samples]]
        cells = [f"{statistics.median(p):7.1f} ({min(p):.1f}-{max(p):.1f})" for p in parts]
        print(f"  {name:30} " + " ".join(f"{c:>24}" for c in cells))
        medians[name] = statistics.median(parts[-1])
    ours, http = (medians[n] for n in MODULES)
    what = "import + first use" if args.task else "import"
    print(
        f"  ratio TriggerAssistantCallOperator / HttpOperator ({what}): {ours / http:.2f}"
        "  (goal: import <= 25 ms)"
    )


if __name__ == "__main__":
    main()
