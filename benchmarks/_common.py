"""Helpers shared by the bulk and client benchmarks. Nothing here imports Airflow at import time.

Call :func:`prepare_airflow_home` before anything imports Airflow, so that no benchmark touches a
real Airflow installation. Every phone number comes from a fictional range (NANP 555-0100..0199).
What the suites and the fault suite share too (the Airflow home, fictional numbers, child
environments) comes from the test harness, :mod:`alta_testing`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence

from alta_testing.data.numbers import area_codes, fictional_numbers
from alta_testing.environment import (
    CONN_ENV,
    alta_connection,
    child_env,
    environment_line,
    prepare_airflow_home,
)

__all__ = [
    "CONN_ENV",
    "TOKEN",
    "area_codes",
    "child_env",
    "environment_line",
    "fictional_numbers",
    "percentile",
    "prepare_airflow_home",
    "proc_status_kib",
    "quiet",
    "sandbox_process",
    "set_alta_connection",
]

TOKEN = "bench-token"  # a sandbox token, accepted only by the loopback sandbox these scripts start


def set_alta_connection(url: str, *, token: str = TOKEN, calls_per_minute: int | None = None) -> None:
    """Define ``alta_default`` through the environment, pointing at the sandbox ``url``."""
    extra = {} if calls_per_minute is None else {"calls_per_minute": calls_per_minute}
    os.environ[CONN_ENV] = alta_connection(url, token, **extra)


def quiet(*names: str, level: int = logging.WARNING) -> None:
    """Raise the level of the named loggers (e.g. the per-call INFO lines of client and sandbox)."""
    for name in names:
        logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def sandbox_process(
    *, rate_limit: str = "off", token: str = TOKEN, extra_args: Sequence[str] = ()
) -> Iterator[str]:
    """Run the sandbox in its own process (so it does not share this one's GIL); yield its base URL.

    The URL is ``http://127.0.0.1:PORT`` (no path); the process is stopped on exit.
    """
    command = [sys.executable, "-m", "airflow_provider_alta.sandbox", "--port", "0", "--token", token]
    command += ["--rate-limit", rate_limit, "--quiet", *extra_args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=child_env())
    try:
        assert process.stdout is not None
        port = None
        for line in process.stdout:
            if line.startswith("PORT="):
                port = int(line.split("=", 1)[1])
                break
        if port is None:
            raise SystemExit("the sandbox did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)


def proc_status_kib(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``: now, ``VmHWM``: peak), in KiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of ``values`` (``fraction`` in [0, 1])."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]
