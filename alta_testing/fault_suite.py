"""Fault suite: run the batch operator against the loopback sandbox under injected faults.

Prints one row per fault: faults injected, records, calls placed (sandbox journal), duplicates
(numbers journaled more than once), ambiguous, left not reached after the retries, unaccounted, and
a verdict. A row is OK when nobody was called twice, every record is accounted for, no record is
left not reached and the row's own check (if it has one) holds. Exits 1 if any row fails, 0 otherwise.

Rows for answers a client must survive: zero waits (429s that say "retry after 0 seconds": each is
still waited out for the hook's minimum, never resent at once), interim answers (``102``/``103``
before the final ``200``: placed, read as placed), trickled answers (one byte at a time, far slower
than the read timeout allows in all but never tripping it: the answer deadline ends them) and huge
answers (50 MiB after a ``200``: placed, the body not read whole).

Accounted for means: the record has a final state; ``called`` records are in the journal; journaled
records are reported ``called`` or ``ambiguous`` (an ambiguous record may or may not be journaled).

The "restarted scheduler" row starts a real Airflow deployment (PostgreSQL, api-server, scheduler,
dag-processor, triggerer; LocalExecutor) and kills the scheduler mid-batch; it needs Airflow 3.3+
and Debian's PostgreSQL, and says "not run" (not a failure) without them.

Everything runs on loopback against ``AltaSandbox``; every number is fictional (+1 AREA 555-01xx).
Usage: python scripts/fault_suite.py [--records N] [--seed N]  (or python -m alta_testing.fault_suite)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from alta_testing.data.leads import write_leads
from alta_testing.data.numbers import fictional_numbers
from alta_testing.environment import (
    CONN_ENV,
    ROOT,
    alta_connection,
    child_env,
    environment_line,
    prepare_airflow_home,
)
from alta_testing.state_store import FakeTI, SqliteStateStore

TOKEN = "fault-suite-token"  # noqa: S105  (accepted only by the loopback sandboxes this script starts)
FAST_CPM = 60_000  # pacing is not the point here
MAX_TRIES = 4
SCHEDULER_ROW = "restarted scheduler"


@dataclass
class Row:
    """One line of the table."""

    fault: str
    injected: int = 0
    records: int = 0
    placed: int = 0
    duplicates: int = 0
    ambiguous: int = 0
    not_reached: int = 0
    unaccounted: int = 0
    tries: int = 0
    seconds: float = 0.0
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)
    failed_check: str | None = None  # the row's own check, when it did not hold

    @property
    def ok(self) -> bool:
        """Nobody called twice, nobody unaccounted for, nobody left behind, the row's check held."""
        return (
            self.skipped is None
            and self.failed_check is None
            and not (self.duplicates or self.unaccounted or self.not_reached)
        )


# --- setup ------------------------------------------------------------------------------------


def prospects(count: int, seed: int) -> list[dict[str, str]]:
    """``count`` prospects with distinct fictional numbers, in a seeded order."""
    numbers = fictional_numbers(count)
    random.Random(seed).shuffle(numbers)
    return [{"name": f"Lead {i}", "phone_number": n} for i, n in enumerate(numbers)]


def set_connection(url: str, *, read_timeout: float = 5.0) -> None:
    """Point ``alta_default`` at ``url``, with a fast pace and the given read timeout."""
    os.environ[CONN_ENV] = alta_connection(
        url, TOKEN, calls_per_minute=FAST_CPM, timeout=f"2,{read_timeout:g}"
    )


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def quiet_everything() -> None:
    """Only errors reach the terminal: the suite's output is the table. Call before importing Airflow."""
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "ERROR"
    os.environ["AIRFLOW__METRICS__TIMER_UNIT_CONSISTENCY"] = "True"  # Airflow 2's import-time warning
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)


@contextlib.contextmanager
def count_refused() -> Iterator[list[int]]:
    """Count connections refused while inside (urllib3 opens every client connection here)."""
    import urllib3.util.connection as u3

    original = u3.create_connection
    refused = [0]

    def counting(*args: Any, **kwargs: Any) -> socket.socket:
        try:
            return original(*args, **kwargs)
        except ConnectionRefusedError:
            refused[0] += 1
            raise

    u3.create_connection = counting
    try:
        yield refused
    finally:
        u3.create_connection = original


# --- running tries ----------------------------------------------------------------------------


def make_task(people: list[dict[str, str]], defer_threshold: float) -> Any:
    """A fresh batch operator for the campaign (one per try, as Airflow would build it)."""
    from airflow_provider_alta.operators.batch import BatchTriggerAssistantCallsOperator

    return BatchTriggerAssistantCallsOperator(
        task_id="fault_suite",
        prospects=people,
        assistant_id="asst_fault_suite",
        calling_hours=False,
        calls_per_minute=FAST_CPM,
        defer_threshold=defer_threshold,
        include_phone_in_xcom=True,
    )


def execute_try(task: Any, context: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """``execute``, resuming through deferrals the way the triggerer would (sleep, then resume)."""
    from airflow.providers.common.compat.sdk import TaskDeferred

    try:
        return dict(task.execute(context))
    except TaskDeferred as deferred:
        exc = deferred
    while True:
        moment = getattr(exc.trigger, "moment", None)
        if moment is not None:
            time.sleep(max(0.0, (moment - datetime.now(timezone.utc)).total_seconds()))
        notes.append("deferred")
        try:
            return dict(task.execute_complete(context, **(exc.kwargs or {})))
        except TaskDeferred as again:
            exc = again


def run_tries(
    people: list[dict[str, str]],
    store: SqliteStateStore,
    notes: list[str],
    *,
    defer_threshold: float = 30.0,
    before_try: Callable[[int], None] | None = None,
    first_try: int = 1,
) -> tuple[dict[str, Any] | None, int]:
    """Run tries as Airflow's retries would, until one succeeds or fails for good.

    Returns the last try's summary (from its return value or its XCom) and the last try number.
    """
    from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

    summary: dict[str, Any] | None = None
    try_number = first_try
    for try_number in range(first_try, first_try + MAX_TRIES):
        if before_try is not None:
            before_try(try_number)
        ti = FakeTI(try_number)
        context = {"task_state_store": store, "ti": ti}
        try:
            return execute_try(make_task(people, defer_threshold), context, notes), try_number
        except AirflowFailException as exc:
            notes.append(f"try {try_number} failed for good: {str(exc)[:120]}")
            return ti.xcom.get("summary"), try_number
        except AirflowException as exc:
            summary = ti.xcom.get("summary")
            notes.append(f"try {try_number}: {str(exc)[:80]}")
    return summary, try_number


def account(
    row: Row, people: list[dict[str, str]], summary: dict[str, Any] | None, calls: list[dict[str, Any]]
) -> Row:
    """Fill the journal and outcome columns of ``row``."""
    journal = Counter(str(call["body"]["phoneNumber"]) for call in calls)
    outcomes: Mapping[str, Any] = (summary or {}).get("outcomes", {})
    row.records = len(people)
    row.placed = sum(journal.values())
    row.duplicates = sum(1 for n in journal.values() if n > 1)
    numbers = {p["phone_number"] for p in people}
    strangers = set(journal) - numbers  # placed, but for nobody in the campaign
    row.unaccounted = len(strangers)
    for index, person in enumerate(people):
        state = (outcomes.get(str(index)) or {}).get("state")
        journaled = person["phone_number"] in journal
        if state == "ambiguous":
            row.ambiguous += 1
        elif state == "not_reached":
            row.not_reached += 1
        if (
            state is None
            or (state == "called" and not journaled)
            or (journaled and state not in ("called", "ambiguous"))
        ):
            row.unaccounted += 1
    if summary is None:
        row.notes.append("no summary")
    return row


def faults_injected(sandbox: Any, settle: float = 5.0) -> int:
    """Faults the sandbox injected (every kind but ``ok``).

    A fault is counted when its answer is written, so first let requests still in flight (a slow
    answer the client already gave up on) finish.
    """
    deadline = time.monotonic() + settle
    while sandbox.stats()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)
    return sum(n for kind, n in sandbox.stats()["faults"].items() if kind != "ok")


# --- rows -------------------------------------------------------------------------------------


#: A row's own check: given the row, the sandbox's stats and the seconds the tries took, what failed.
Check = Callable[[Row, Mapping[str, Any], float], str | None]


def sandbox_row(
    name: str,
    people: list[dict[str, str]],
    tmp: Path,
    faults: Mapping[str, Any],
    *,
    read_timeout: float = 5.0,
    defer_threshold: float = 30.0,
    check: Check | None = None,
) -> Row:
    """A batch against a sandbox that injects ``faults``; retries run until done (or MAX_TRIES)."""
    from airflow_provider_alta.sandbox import AltaSandbox

    row = Row(name)
    store = SqliteStateStore(str(tmp / f"{name.replace(' ', '_')}.sqlite"))
    with AltaSandbox(token=TOKEN, rate_limit=None, faults=dict(faults)) as sandbox:
        set_connection(sandbox.url, read_timeout=read_timeout)
        started = time.monotonic()
        summary, row.tries = run_tries(people, store, row.notes, defer_threshold=defer_threshold)
        took = time.monotonic() - started
        row.injected = faults_injected(sandbox)
        row = account(row, people, summary, sandbox.calls())
        if check is not None:
            row.failed_check = check(row, sandbox.stats(), took)
        return row


def sprinkled(count: int, rate: float, kinds: list[str], seed: int) -> list[str]:
    """A fault script of ``count`` entries: each one of ``kinds`` with probability ``rate``, else ok."""
    rng = random.Random(seed)
    return [rng.choice(kinds) if rng.random() < rate else "ok" for _ in range(count)]


def waited_out(row: Row, stats: Mapping[str, Any], took: float) -> str | None:
    """Every zero-wait 429 was still waited out for the hook's minimum (no resend at once)."""
    from airflow_provider_alta.client import MIN_RATE_LIMIT_WAIT

    storms = int(stats["responses"].get("429", 0))
    row.notes.append(f"{storms} zero-wait 429s, {took:.1f} s of tries")
    if storms == 0:
        return "no 429 was injected"
    if took < storms * MIN_RATE_LIMIT_WAIT:  # sleeping never ends early: a shorter run resent at once
        return f"{storms} zero-wait 429s in {took:.1f} s: some were resent without waiting"
    return None


def read_as_placed(row: Row, stats: Mapping[str, Any], took: float) -> str | None:
    """The status line said 200 (after an interim answer, or before a huge body): no record ambiguous."""
    if row.ambiguous:
        return f"{row.ambiguous} placed calls reported ambiguous although their 200 arrived"
    return None


def refused_row(people: list[dict[str, str]], tmp: Path) -> Row:
    """Try 1 against a closed port (nothing can be placed), try 2 against the sandbox."""
    from airflow_provider_alta.sandbox import AltaSandbox

    row = Row("refused connections")
    store = SqliteStateStore(str(tmp / "refused.sqlite"))
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    with AltaSandbox(token=TOKEN, rate_limit=None) as sandbox, count_refused() as refused:

        def point(try_number: int) -> None:
            set_connection(dead if try_number == 1 else sandbox.url)

        summary, row.tries = run_tries(people, store, row.notes, before_try=point)
        row.injected = refused[0]
        row = account(row, people, summary, sandbox.calls())
    if row.placed != row.records:
        row.notes.append(f"{row.records - row.placed} never called")
        row.not_reached = max(row.not_reached, row.records - row.placed)
    return row


def worker_command(store: Path, try_number: int, args: argparse.Namespace) -> list[str]:
    """The command line of a worker process running one try of the batch."""
    worker = [sys.executable, "-m", "alta_testing.fault_suite", "--worker", str(store), str(try_number)]
    return [*worker, *forwarded(args)]


def forwarded(args: argparse.Namespace) -> list[str]:
    """The options a worker needs to build the same campaign."""
    return ["--records", str(args.records), "--seed", str(args.seed)]


def sigkill_row(people: list[dict[str, str]], tmp: Path, args: argparse.Namespace) -> Row:
    """SIGKILL a worker while a send is in flight, then run the next try with the same store."""
    from airflow_provider_alta.sandbox import AltaSandbox

    row = Row("SIGKILLed worker")
    store = tmp / "sigkill.sqlite"
    env = child_env()  # the checkout on PYTHONPATH: the worker imports alta_testing
    slow = {"rates": {"latency": 1.0}, "latency": 0.3, "seed": args.seed}
    with AltaSandbox(token=TOKEN, rate_limit=None, faults=slow) as sandbox:
        set_connection(sandbox.url)
        env[CONN_ENV] = os.environ[CONN_ENV]
        first = subprocess.Popen(
            worker_command(store, 1, args), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        kill_at = max(3, min(15, len(people) // 8))
        deadline = time.monotonic() + 90
        while len(sandbox.calls()) < kill_at and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.02)
        time.sleep(0.15)  # inside a send: journaled, answer not yet written (0.3 s latency)
        if first.poll() is None:
            first.send_signal(signal.SIGKILL)
            row.injected = 1
        first.communicate(timeout=30)
        if first.returncode != -signal.SIGKILL:
            row.notes.append(f"first worker was not killed (exit {first.returncode})")
        row.notes.append(f"killed after {len(sandbox.calls())} placed")
        sandbox.set_faults(None)
        summary: dict[str, Any] | None = None
        try_number = 2
        for try_number in range(2, 2 + MAX_TRIES):
            done = subprocess.run(
                worker_command(store, try_number, args),
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            summary = parse_summary(done.stdout)
            if done.returncode == 0:
                break
            row.notes.append(f"try {try_number} exit {done.returncode}: {done.stdout[-200:]!r}")
            if done.returncode != 3:  # 3: records not reached; anything else will not get better
                break
        row.tries = try_number
        return account(row, people, summary, sandbox.calls())


def scheduler_row(people: list[dict[str, str]], tmp: Path) -> Row:
    """A real deployment (LocalExecutor, PostgreSQL): SIGKILL the scheduler and its workers mid-batch.

    The example bulk campaign runs under a real scheduler. While it calls, the scheduler's process
    group (the scheduler and the LocalExecutor worker running the batch) is killed, as a host or
    container restart would, and a new scheduler is started. It finds the task without a heartbeat,
    fails that try, and Airflow's retry resumes from the task state store.
    """
    from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS

    if not AIRFLOW_V_3_3_PLUS:
        return Row(SCHEDULER_ROW, skipped="not run: needs Airflow 3.3+ (the task state store)")
    from airflow_provider_alta.sandbox import AltaSandbox
    from alta_testing.servers.deployment import AirflowStack
    from alta_testing.servers.postgres_server import PostgresServerError, find_bindir

    try:
        find_bindir()
    except PostgresServerError as exc:
        return Row(SCHEDULER_ROW, skipped=f"not run: {exc}")
    row = Row(SCHEDULER_ROW)
    leads = [
        {"lead_id": str(i), "full_name": p["name"], "phone": p["phone_number"], "email": "",
         "timezone": "America/New_York", "plan": "pro", "consent": "yes"}
        for i, p in enumerate(people)
    ]  # fmt: skip
    dag_id = "example_alta_bulk_campaign"
    with AltaSandbox(token=TOKEN, rate_limit=None) as sandbox:
        # 10 a second: the restart lands mid-batch
        os.environ[CONN_ENV] = alta_connection(sandbox.url, TOKEN, calls_per_minute=600)
        stack = AirflowStack(
            dags=[ROOT / "example_dags"],
            env={
                "AIRFLOW__CORE__DEFAULT_TASK_RETRIES": "2",
                "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "2",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
                # a new scheduler adopts or resets the dead one's tasks once that one's heartbeat is
                # older than the threshold, at start and every check interval (default 300 s)
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "15",
                "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "10",
            },
        )
        with stack:
            write_leads(stack.dags / "data" / "sample_leads.csv", leads)
            stack.wait_for_dags([dag_id])
            run = stack.trigger(dag_id, {"calling_hours": "off"})
            deadline = time.monotonic() + 300
            while len(sandbox.calls()) < len(people) // 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            placed_at_kill = len(sandbox.calls())
            stack.kill_component("scheduler", signal.SIGKILL)
            if not 0 < placed_at_kill < len(people):
                raise RuntimeError(
                    f"the kill did not land mid-batch ({placed_at_kill} of {len(people)} placed)"
                )
            row.injected = 1
            row.notes.append(f"scheduler and its task processes killed after {placed_at_kill} placed")
            stack.start_component("scheduler")
            restarted = time.monotonic()
            state = stack.wait_for_run(dag_id, run, timeout=600)
            row.notes.append(f"run finished {time.monotonic() - restarted:.0f} s after the restart")
            [ti] = stack.task_instances(dag_id, run)
            row.tries = int(ti["try_number"])
            if row.tries < 2:
                raise RuntimeError("the batch was not retried after the scheduler restart")
            row.notes.append(f"run {state}, task {ti['state']}")
            summary = stack.xcom(dag_id, run, "call_campaign") if ti["state"] == "success" else None
        return account(row, people, summary, sandbox.calls())


def parse_summary(out: str) -> dict[str, Any] | None:
    """The summary line a worker printed, if any."""
    for line in out.splitlines():
        if line.startswith("SUMMARY "):
            return dict(json.loads(line[len("SUMMARY ") :]))
    return None


def worker(store_path: str, try_number: int, args: argparse.Namespace) -> int:
    """Run one try in this process; print its summary. Exit 3 when records were not reached."""
    from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

    people = prospects(args.records, args.seed)
    ti = FakeTI(try_number)
    context = {"task_state_store": SqliteStateStore(store_path), "ti": ti}
    code = 0
    summary: dict[str, Any] | None
    try:
        summary = execute_try(make_task(people, 30.0), context, [])
    except AirflowFailException:
        summary, code = ti.xcom.get("summary"), 4
    except AirflowException:
        summary, code = ti.xcom.get("summary"), 3
    print("SUMMARY " + json.dumps(summary), flush=True)
    return code


# --- table ------------------------------------------------------------------------------------

COLUMNS = (
    ("fault", 22),
    ("faults injected", 15),
    ("records", 7),
    ("calls placed", 12),
    ("duplicates", 10),
    ("ambiguous", 9),
    ("not reached", 11),
    ("unaccounted", 11),
    ("tries", 5),
    ("secs", 5),
    ("verdict", 7),
)


def table_line(row: Row) -> str:
    """One row of the table."""
    if row.skipped is not None:
        return f"{row.fault:<22}  {row.skipped}"
    verdict = "OK" if row.ok else "FAIL"
    values = (
        row.fault,
        row.injected,
        row.records,
        row.placed,
        row.duplicates,
        row.ambiguous,
        row.not_reached,
        row.unaccounted,
        row.tries,
        f"{row.seconds:.1f}",
        verdict,
    )
    cells = [
        f"{v:<{w}}" if i == 0 else f"{v!s:>{w}}"
        for i, (v, (_, w)) in enumerate(zip(values, COLUMNS, strict=True))
    ]
    return "  ".join(cells)


def header() -> str:
    """The table header and its rule."""
    names = "  ".join(f"{n:<{w}}" if i == 0 else f"{n:>{w}}" for i, (n, w) in enumerate(COLUMNS))
    return names + "\n" + "-" * len(names)


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=150, help="prospects per row (at most ~36,000)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the fault plans and the record order")
    parser.add_argument("--only", metavar="TEXT", help="run only the rows whose name contains TEXT")
    parser.add_argument("--worker", nargs=2, metavar=("STORE", "TRY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.records < 1:
        parser.error("--records must be at least 1")
    return args


def suite(args: argparse.Namespace) -> list[Row]:
    """Run every row; print each as it finishes."""
    people = prospects(args.records, args.seed)
    seed = args.seed
    slow = 1.0  # sandbox latency, past the 0.5 s read timeout of the rows that use it
    rows: list[tuple[str, Callable[[Path], Row]]] = [
        (
            "429 storm",
            # 30 429s in a row on one call (Retry-After: 0), two 1 s waits inside the hook's budget,
            # one wait past it (ends the pass and defers), then 429s at random
            lambda tmp: sandbox_row(
                "429 storm",
                people,
                tmp,
                {
                    "script": ["429:0"] * 30 + ["ok", "429:1", "429:1", "429:3"],
                    "rates": {"429": 0.3},
                    "retry_after": 0,
                    "seed": seed,
                },
                defer_threshold=2.0,
            ),
        ),
        ("5xx", lambda tmp: sandbox_row("5xx", people, tmp, {"rates": {"5xx": 0.1}, "seed": seed})),
        ("refused connections", lambda tmp: refused_row(people, tmp)),
        (
            "drop before body",
            lambda tmp: sandbox_row(
                "drop before body", people, tmp, {"rates": {"drop_before_body": 0.1}, "seed": seed}
            ),
        ),
        (
            "accept then reset",
            lambda tmp: sandbox_row(
                "accept then reset", people, tmp, {"rates": {"reset_after_accept": 0.1}, "seed": seed}
            ),
        ),
        (
            "slow past read timeout",
            lambda tmp: sandbox_row(
                "slow past read timeout",
                people,
                tmp,
                {"rates": {"latency": 0.08}, "latency": slow, "seed": seed},
                read_timeout=0.5,
            ),
        ),
        (
            "all of the above",
            lambda tmp: sandbox_row(
                "all of the above",
                people,
                tmp,
                {
                    "rates": {
                        "429": 0.1,
                        "5xx": 0.03,
                        "drop_before_body": 0.03,
                        "reset_after_accept": 0.03,
                        "latency": 0.03,
                    },
                    "retry_after": 0,
                    "latency": slow,
                    "seed": seed,
                },
                read_timeout=0.5,
            ),
        ),
        (
            "zero waits",
            # 429s saying "retry after 0 seconds" (Retry-After: 0): three in a row, then at random
            lambda tmp: sandbox_row(
                "zero waits",
                people,
                tmp,
                {"script": ["429:0"] * 3, "rates": {"429": 0.04}, "retry_after": 0, "seed": seed},
                check=waited_out,
            ),
        ),
        (
            "interim answers",
            # 102 Processing (and a 103 Early Hints) before the final 200 of a placed call
            lambda tmp: sandbox_row(
                "interim answers",
                people,
                tmp,
                {"script": ["interim:103"], "rates": {"interim": 0.1}, "seed": seed},
                check=read_as_placed,
            ),
        ),
        (
            "trickled answers",
            # one byte every 0.05 s: the 0.5 s read timeout never fires, the 1 s answer deadline does;
            # from the status line (ambiguous) or after it (placed, the body unknown)
            lambda tmp: sandbox_row(
                "trickled answers",
                people,
                tmp,
                {"script": sprinkled(len(people), 0.08, ["trickle:0.05", "trickle_body:0.05"], seed)},
                read_timeout=0.5,
            ),
        ),
        (
            "huge answers",
            # 50 MiB of JSON after the 200 of a placed call: read up to the client's 1 MiB limit
            lambda tmp: sandbox_row(
                "huge answers",
                people,
                tmp,
                {"rates": {"huge_body": 0.08}, "seed": seed},
                check=read_as_placed,
            ),
        ),
        ("SIGKILLed worker", lambda tmp: sigkill_row(people, tmp, args)),
        (SCHEDULER_ROW, lambda tmp: scheduler_row(people, tmp)),
    ]
    rows = [(name, run) for name, run in rows if args.only is None or args.only in name]
    results: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="alta-fault-suite-") as tmp:
        for name, run in rows:
            started = time.monotonic()
            try:
                row = run(Path(tmp))
            except Exception as exc:  # a crashed row is a failed row, not a crashed suite
                row = Row(name, unaccounted=len(people), notes=[f"crashed: {type(exc).__name__}: {exc}"])
            row.seconds = time.monotonic() - started
            results.append(row)
            print(table_line(row), flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the suite (or, with ``--worker``, one try of the SIGKILL row's batch)."""
    args = parse_args(argv)
    quiet_everything()
    if args.worker:
        return worker(args.worker[0], int(args.worker[1]), args)
    prepare_airflow_home()
    started = time.monotonic()
    print(f"Alta fault suite: {args.records} records per row, seed {args.seed}")
    print(environment_line())
    print(header(), flush=True)
    rows = suite(args)
    ran = [row for row in rows if row.skipped is None]
    failed = [row for row in ran if not row.ok]
    not_run = f", {len(rows) - len(ran)} not run" if len(ran) < len(rows) else ""
    print(f"\n{len(ran) - len(failed)}/{len(ran)} rows OK{not_run} in {time.monotonic() - started:.0f} s")
    for row in rows:
        if row.failed_check is not None:
            print(f"  {row.fault}: check failed: {row.failed_check}")
        if row.notes and (not row.ok or os.environ.get("FAULT_SUITE_VERBOSE")):
            print(f"  {row.fault}: " + "; ".join(row.notes))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
