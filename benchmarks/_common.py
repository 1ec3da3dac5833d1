"""Helpers shared by the bulk and client benchmarks. Nothing here imports Airflow at import time.

Call :func:`prepare_airflow_home` before anything imports Airflow, so that no benchmark touches a
real Airflow installation. Every phone number comes from a fictional range (NANP 555-0100..0199).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(ROOT))

TOKEN = "bench-token"  # a sandbox token, accepted only by the loopback sandbox these scripts start
CONN_ENV = "AIRFLOW_CONN_ALTA_DEFAULT"


def prepare_airflow_home() -> str:
    """Point ``AIRFLOW_HOME`` at a throwaway directory (removed at exit). Call before importing Airflow."""
    if "airflow" in sys.modules:
        raise RuntimeError("prepare_airflow_home() must run before Airflow is imported")
    home = tempfile.mkdtemp(prefix="alta-bench-airflow-home-")
    os.environ["AIRFLOW_HOME"] = home
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = os.path.join(home, "dags")
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    return home


def set_alta_connection(url: str, *, token: str = TOKEN, calls_per_minute: int | None = None) -> None:
    """Define ``alta_default`` through the environment, pointing at the sandbox ``url``."""
    conn: dict[str, object] = {"conn_type": "alta", "password": token, "host": url}
    if calls_per_minute is not None:
        conn["extra"] = {"calls_per_minute": calls_per_minute}
    os.environ[CONN_ENV] = json.dumps(conn)


def quiet(*names: str, level: int = logging.WARNING) -> None:
    """Raise the level of the named loggers (e.g. the per-call INFO lines of client and sandbox)."""
    for name in names:
        logging.getLogger(name).setLevel(level)


@cache
def area_codes() -> tuple[int, ...]:
    """US geographic area codes (no toll-free, premium or personal) valid with 555-0100..0199."""
    import phonenumbers

    geographic = {
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    }
    codes = []
    for area in range(201, 1000):
        numbers = [phonenumbers.parse(f"+1{area}555{line:04d}") for line in (100, 199)]
        if all(
            phonenumbers.is_valid_number(n)
            and phonenumbers.region_code_for_number(n) == "US"
            and phonenumbers.number_type(n) in geographic
            for n in numbers
        ):
            codes.append(area)
    return tuple(codes)


def fictional_numbers(count: int | None = None) -> list[str]:
    """Up to ``count`` distinct valid E.164 numbers from the fictional 555-0100..0199 range.

    Varies the area code, line 0100..0199, and checks each with ``phonenumbers.is_valid_number``.
    ``None`` returns the whole pool (about 36,000).
    """
    import phonenumbers

    out: list[str] = []
    for area in area_codes():
        for line in range(100, 200):
            number = f"+1{area}555{line:04d}"
            if phonenumbers.is_valid_number(phonenumbers.parse(number)):
                out.append(number)
                if count is not None and len(out) >= count:
                    return out
    if count is not None and len(out) < count:
        raise ValueError(f"only {len(out)} distinct fictional numbers available, {count} asked")
    return out


def child_env() -> dict[str, str]:
    """This process's environment, with the checkout first on ``PYTHONPATH``."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path)


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


def environment_line() -> str:
    """Python, CPUs and Airflow version, for the first line of a report."""
    import airflow

    return f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, Airflow {airflow.__version__}"


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of ``values`` (``fraction`` in [0, 1])."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]
