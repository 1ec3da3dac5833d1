"""What a mapped call task costs on a real deployment, side by side with what the machine allows.

    python benchmarks/bench_mapped_deployment.py                    # N=300, a 3-slot pool, 100/60
    python benchmarks/bench_mapped_deployment.py --n 120 --pool 2 --pool 4 --rounds 2 --preload
    python benchmarks/bench_mapped_deployment.py --shared-limiter --cpu-hogs 2   # Redis; contention

Starts a real Airflow 3 deployment (``alta_testing.servers.deployment.AirflowStack``: PostgreSQL,
api-server, scheduler, dag-processor, triggerer, LocalExecutor) and a sandbox limiting the token to
``--rate-limit`` (Alta's 100 a minute by default; ``off`` for none), then, for each pool size, in
one run and in the same ``alta_api`` pool, the same N records through:

- ``noop``: N mapped no-op ``@task``s: the machine's ceiling for mapped tasks in that pool;
- ``alta``: N mapped ``TriggerAssistantCallOperator`` tasks (calling hours on, in the records' zone);
- ``http``: N mapped ``HttpOperator`` tasks posting the same JSON bodies to the sandbox;
- ``batch``: one ``BatchTriggerAssistantCallsOperator`` task for the N records.

Per phase: calls placed per minute (the sandbox's journal, first to last arrival; no-op: tasks
finished per minute), its ratio to the limit and to the no-op ceiling, the median task time and
pool-slot time (queued to end) of the tasks that succeeded, the deployment's CPU time per record
(every process this script started, less what they use idle: a cost that other programs' load
barely changes), failed tasks, the sandbox's 429s, whether every number was called exactly once,
and how much CPU other programs on the machine used meanwhile. A second table splits a task's time
by its log lines: before the first (process start), DAG file parse, the rest of pre-execute
(rendering), execute, post-execute up to the recorded end. Last, the goal: ``alta`` reaches 0.9 of
the lower of the limit and the no-op ceiling, with no failed task, and places calls no slower than
``http``. Each DAG first runs once with a few records (warm-up); ``--rounds`` repeats the phases,
interleaved, and adds a table of medians.

N defaults to 300: the sandbox's window is rolling, so the first 100 calls may go in a burst, and a
shorter run measures mostly that burst. A pip-installed Airflow has its ``.pyc`` files; this
project's CI sets ``PYTHONDONTWRITEBYTECODE`` and installs with uv, so each of its task processes
compiles every module it imports. By default the deployment gets a throwaway bytecode cache
(``PYTHONPYCACHEPREFIX``); ``--no-bytecode-cache`` measures the CI's condition. ``--preload``
gives it an ``airflow_local_settings.py`` that calls ``airflow_provider_alta.preload()``: the
scheduler runs it before forking the LocalExecutor's workers, so task processes inherit
``requests``, ``phonenumbers`` and the provider's call path. ``--shared-limiter`` starts a real
Redis and sets it as the connection's ``rate_limiter_url`` (every process of the account shares one
limit); ``--cpu-hogs N`` runs N busy processes for the whole run (CPU contention). Everything
started is stopped, also on SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import psutil
from _common import environment_line, fictional_numbers, prepare_airflow_home, quiet

from airflow_provider_alta.sandbox import AltaSandbox
from alta_testing.servers.deployment import AirflowStack
from alta_testing.servers.redis_server import RedisServer

HERE = Path(__file__).parent
DAGS = {
    "noop": "bench_mapped_noop",
    "alta": "bench_mapped_alta",
    "http": "bench_mapped_http",
    "batch": "bench_batch",
}
TASK = "call"
ZONES = (
    "America/New_York", "Europe/London", "Asia/Tokyo", "America/Los_Angeles", "Australia/Sydney",
    "Asia/Kolkata", "America/Sao_Paulo", "Pacific/Honolulu", "Asia/Dubai",
)  # fmt: skip
GOAL = 0.9
WARM_UP = 3
NAN = float("nan")
STEPS = ("start", "parse", "render", "execute", "post")
PRELOAD = '''"""Written by bench_mapped_deployment.py --preload: every Airflow process imports this file,
the scheduler before it forks the LocalExecutor's workers, whose task processes then inherit it."""

import airflow_provider_alta

airflow_provider_alta.preload(regions=["US"])

__all__: list[str] = []  # nothing here is a setting or a policy
'''


@dataclass
class Phase:
    """What one phase measured."""

    name: str
    n: int
    rate: float  # calls per minute, journal first to last arrival (no-op: tasks finished per minute)
    task: float  # median seconds, start to end, of the tasks that succeeded (the batch: its one task)
    slot: float  # median seconds those tasks held a pool slot: queued to end
    cpu_ms: float  # the deployment's CPU milliseconds per record, beyond what it uses idle
    failed: int
    too_many: int  # the sandbox's 429s
    once: bool | None  # every number journaled exactly once (call phases)
    span: float  # seconds from the first task's start to the last one's end
    others: float  # CPU other programs used meanwhile, % of the machine
    steps: dict[str, float] = field(default_factory=dict)  # median ms of each step of a task


def median_of(runs: Sequence[Phase]) -> Phase:
    """One phase's rounds combined: medians, and the sums of failures and 429s."""

    def median(name: str) -> float:
        return _median([getattr(r, name) for r in runs])

    return Phase(
        name=runs[0].name,
        n=runs[0].n,
        rate=median("rate"),
        task=median("task"),
        slot=median("slot"),
        cpu_ms=median("cpu_ms"),
        failed=sum(r.failed for r in runs),
        too_many=sum(r.too_many for r in runs),
        once=None if runs[0].once is None else all(r.once for r in runs),
        span=median("span"),
        others=median("others"),
        steps={s: _median([r.steps.get(s, NAN) for r in runs]) for s in STEPS},
    )


def _time(value: str) -> float:
    return dt.datetime.fromisoformat(value).timestamp()


def _rate(times: Sequence[float]) -> float:
    """Events per minute from the first to the last of ``times``."""
    ordered = sorted(times)
    if len(ordered) < 2 or ordered[-1] <= ordered[0]:
        return NAN
    return 60.0 * (len(ordered) - 1) / (ordered[-1] - ordered[0])


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else NAN


def calling_window(now: dt.datetime | None = None) -> tuple[str, str]:
    """A zone and an ``HH:MM-HH:MM`` window there that opened an hour ago and stays open for 3 hours."""
    now = now or dt.datetime.now(dt.timezone.utc)
    for zone in ZONES:
        local = now.astimezone(ZoneInfo(zone))
        start, end = local - dt.timedelta(hours=1), local + dt.timedelta(hours=3)
        if start.date() == end.date():
            return zone, f"{start:%H:%M}-{end:%H:%M}"
    raise AssertionError("no zone between 01:00 and 20:00 (cannot happen)")


def make_records(numbers: Sequence[str], zone: str) -> list[dict[str, str]]:
    return [{"full_name": f"Bench {i}", "phone": n, "tz": zone, "plan": "pro"} for i, n in enumerate(numbers)]


def cpu_seconds() -> tuple[float, float]:
    """Busy CPU seconds of the whole machine, and of this process and everything it started."""
    t = psutil.cpu_times()
    busy = t.user + t.nice + t.system + t.irq + t.softirq
    me = psutil.Process()
    ours = 0.0
    for process in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            c = process.cpu_times()
            ours += c.user + c.system + c.children_user + c.children_system
    return busy, ours


def task_steps(log: Path, start: float, end: float) -> dict[str, float] | None:
    """Milliseconds of each step of one task, from its log lines and the instance's start and end."""
    marks: dict[str, float] = {}
    parse_ms = None
    for text in log.read_text().splitlines():
        line = json.loads(text) if text.startswith("{") else {}
        event, at = line.get("event"), str(line.get("timestamp"))
        if event == "::group::Pre Execute":
            marks.setdefault("first", _time(at))
        elif event == "Worker startup parse complete":
            parse_ms = float(line.get("dag_file_parse_ms", 0))
        elif event == "::endgroup::" and "first" in marks and "post" not in marks:
            marks.setdefault("rendered", _time(at))
        elif event == "::group::Post Execute":
            marks["post"] = _time(at)
    if not {"first", "rendered", "post"} <= marks.keys() or parse_ms is None:
        return None
    return {
        "start": 1000 * (marks["first"] - start),
        "parse": parse_ms,
        "render": 1000 * (marks["rendered"] - marks["first"]) - parse_ms,
        "execute": 1000 * (marks["post"] - marks["rendered"]),
        "post": 1000 * (end - marks["post"]),  # Airflow records the end during post-execute
    }


def idle_cpu(seconds: float = 20.0) -> float:
    """CPU seconds per second that the idle deployment (and this script's polling) uses."""
    _, ours0 = cpu_seconds()
    time.sleep(seconds)
    return (cpu_seconds()[1] - ours0) / seconds


@contextlib.contextmanager
def limiter(on: bool) -> Iterator[dict[str, str]]:
    """The connection's extras: a real Redis as ``rate_limiter_url`` when ``on``."""
    if not on:
        yield {}
        return
    with RedisServer() as redis:
        yield {"rate_limiter_url": redis.url}


@contextlib.contextmanager
def cpu_hogs(count: int) -> Iterator[None]:
    """``count`` processes spinning on the CPUs for the whole run (contention), stopped after."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def run_phase(
    stack: AirflowStack,
    sandbox: AltaSandbox,
    name: str,
    records: list[dict[str, str]],
    window: str,
    idle: float = 0.0,
) -> Phase:
    dag_id = DAGS[name]
    sandbox.reset()
    busy0, ours0, wall0 = *cpu_seconds(), time.monotonic()
    run_id = stack.trigger(dag_id, {"records": records, "calling_hours": window})
    stack.wait_for_run(dag_id, run_id, timeout=600 + 10 * len(records))
    busy1, ours1, wall1 = *cpu_seconds(), time.monotonic()
    calls = [t for t in stack.task_instances(dag_id, run_id) if t["task_id"] == TASK]
    done = [t for t in calls if t["state"] == "success" and t["start_date"] and t["end_date"]]
    journal, stats = sandbox.calls(), sandbox.stats()
    times = [
        (_time(t["queued_when"] or t["start_date"]), _time(t["start_date"]), _time(t["end_date"]))
        for t in done
    ]
    arrivals = [_time(r["received_at"]) for r in journal]
    folder = stack.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={TASK}"
    steps: dict[str, list[float]] = {step: [] for step in STEPS}
    for t, (_, start, end) in zip(done, times, strict=True):
        where = folder if t["map_index"] < 0 else folder / f"map_index={t['map_index']}"
        log = where / f"attempt={t['try_number']}.log"
        for step, ms in ((task_steps(log, start, end) if log.exists() else None) or {}).items():
            steps[step].append(ms)
    once = None
    if name != "noop":
        once = Counter(r["body"]["phoneNumber"] for r in journal) == Counter(r["phone"] for r in records)
    return Phase(
        name=name,
        n=len(records),
        rate=_rate([end for *_, end in times] if name == "noop" else arrivals),
        task=_median([end - start for _, start, end in times]),
        slot=_median([end - queued for queued, _, end in times]),
        cpu_ms=1000 * (ours1 - ours0 - idle * (wall1 - wall0)) / len(records),
        failed=len(calls) - len(done),
        too_many=int(stats["responses"].get("429", 0)),
        once=once,
        span=max(end for *_, end in times) - min(start for _, start, _ in times) if times else NAN,
        others=100 * ((busy1 - busy0) - (ours1 - ours0)) / ((wall1 - wall0) * (os.cpu_count() or 1)),
        steps={step: _median(values) for step, values in steps.items()},
    )


def report(title: str, phases: dict[str, Phase], limit: float) -> None:
    noop = phases.get("noop")
    ceiling = noop.rate if noop else NAN
    limit_text = "off" if limit == float("inf") else f"{limit:g}/min"
    print(f"\n{title}, N={next(iter(phases.values())).n}, limit {limit_text}")
    print(
        f"  {'phase':6} {'per min':>8} {'/limit':>7} {'/no-op':>7} {'task s':>7} {'slot s':>7} "
        f"{'CPU ms':>7} {'failed':>6} {'429s':>5} {'once':>5} {'span s':>6} {'others':>6}"
    )
    for p in phases.values():
        once = "-" if p.once is None else ("yes" if p.once else "NO")
        print(
            f"  {p.name:6} {p.rate:8.1f} {p.rate / limit:7.3f} {p.rate / ceiling:7.3f} {p.task:7.2f} "
            f"{p.slot:7.2f} {p.cpu_ms:7.0f} {p.failed:6d} {p.too_many:5d} {once:>5} {p.span:6.0f} "
            f"{p.others:5.0f}%"
        )
    print(f"  a task's time, median ms: {' '.join(f'{s:>7}' for s in STEPS)}")
    for p in phases.values():
        print(f"  {p.name:26} {' '.join(f'{p.steps.get(s, NAN):7.0f}' for s in STEPS)}")
    alta, http = phases.get("alta"), phases.get("http")
    if alta and noop:
        print(verdict(alta, http, ceiling, limit))


def verdict(alta: Phase, http: Phase | None, ceiling: float, limit: float) -> str:
    """The goal: alta >= GOAL x min(limit, no-op), no failed task, and not slower than ``http``."""
    target = GOAL * min(limit, ceiling)
    text = f"  alta/no-op {alta.rate / ceiling:.3f}"
    if http:
        text += f", http/no-op {http.rate / ceiling:.3f}, alta/http {alta.rate / http.rate:.3f}"
        text += f", CPU per call alta/http {alta.cpu_ms / http.cpu_ms:.2f}"
    met = alta.rate >= target and alta.failed == 0 and (http is None or alta.rate >= http.rate)
    return (
        f"{text}\n  goal: alta >= {GOAL} x min(limit, no-op) = {target:.1f}/min, 0 failed, "
        f"not slower than http: {'met' if met else 'MISSED'}"
    )


@contextlib.contextmanager
def deployment_env(*, bytecode: bool, preload: bool) -> Iterator[dict[str, str]]:
    """The deployment's environment: a throwaway bytecode cache (or none), and ``airflow_local_settings``."""
    folder = Path(tempfile.mkdtemp(prefix="alta-bench-env-"))
    try:
        env = {"PYTHONDONTWRITEBYTECODE": "1"}
        if bytecode:
            env = {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(folder / "pycache")}
        if preload:
            (folder / "airflow_local_settings.py").write_text(PRELOAD)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
        yield env
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--n", type=int, default=300, help="records per phase (default 300)")
    parser.add_argument("--pool", type=int, action="append", help="pool slots, repeatable (default 3)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the phases, interleaved")
    parser.add_argument("--rate-limit", default="100/60", help="the sandbox's limit, LIMIT/SECONDS or off")
    parser.add_argument("--phases", default=",".join(DAGS), help="comma-separated, of " + ",".join(DAGS))
    parser.add_argument("--no-bytecode-cache", action="store_true", help="no .pyc anywhere (as this CI)")
    parser.add_argument("--preload", action="store_true", help="the scheduler preloads the task's modules")
    parser.add_argument("--keep-logs", type=Path, help="copy the deployment's logs here at the end")
    parser.add_argument(
        "--shared-limiter", action="store_true", help="a real Redis as the connection's rate_limiter_url"
    )
    parser.add_argument("--cpu-hogs", type=int, default=0, help="busy processes competing for the CPUs")
    args = parser.parse_args()
    pools: list[int] = args.pool or [3]
    names = [p.strip() for p in args.phases.split(",") if p.strip()]
    if unknown := set(names) - set(DAGS):
        parser.error(f"unknown phases: {sorted(unknown)}")
    limit = float("inf")
    if args.rate_limit != "off":
        calls, seconds = args.rate_limit.split("/")
        limit = float(calls) * 60.0 / float(seconds)

    prepare_airflow_home()
    quiet("airflow_provider_alta.sandbox")
    print(environment_line())
    zone, window = calling_window()
    numbers = fictional_numbers(args.n * len(pools) * len(names) * args.rounds + WARM_UP * len(names))
    print(
        f"N={args.n}, pools {pools}, rounds {args.rounds}, phases {names}, limit {args.rate_limit}, "
        f"bytecode cache {'off' if args.no_bytecode_cache else 'on'}, "
        f"preload {'on' if args.preload else 'off'}, "
        f"calling hours {window} {zone}, shared limiter {'on' if args.shared_limiter else 'off'}, "
        f"CPU hogs {args.cpu_hogs}"
    )
    env = {
        "AIRFLOW__CORE__DEFAULT_TASK_RETRIES": "0",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(max(16, *pools)),
    }
    started = time.monotonic()
    with (
        deployment_env(bytecode=not args.no_bytecode_cache, preload=args.preload) as extra,
        AltaSandbox(rate_limit=args.rate_limit) as sandbox,
        limiter(args.shared_limiter) as conn_extra,
        cpu_hogs(args.cpu_hogs),
    ):
        stack = AirflowStack(
            dags=[HERE / "dags" / f"{DAGS[n]}.py" for n in names],
            executor="LocalExecutor",
            pool_slots=pools[0],
            parallelism=max(8, max(pools) + 2),  # above the pool: the pool, not the executor, caps tasks
            env={**env, **extra},
            keep_logs=args.keep_logs,
        )
        with stack.serving(sandbox.url, sandbox.token, [DAGS[n] for n in names], **conn_extra):
            headers = {"Authorization": f"Bearer {sandbox.token}", "Content-Type": "application/json"}
            stack.airflow(
                "connections", "add", "alta_http", "--conn-type", "http", "--conn-host", sandbox.url,
                "--conn-extra", json.dumps(headers),
            )  # fmt: skip
            print(f"deployment up in {time.monotonic() - started:.0f} s; warming up")
            for name in names:
                batch, numbers = numbers[:WARM_UP], numbers[WARM_UP:]
                run_phase(stack, sandbox, name, make_records(batch, zone), window)
            idle = idle_cpu()
            print(f"idle deployment: {1000 * idle:.0f} ms of CPU a second (left out of CPU ms)")
            for pool in pools:
                stack.airflow("pools", "set", "alta_api", str(pool), "Alta API calls")
                rounds: dict[str, list[Phase]] = {name: [] for name in names}
                for r in range(1, args.rounds + 1):
                    for name in names:
                        batch, numbers = numbers[: args.n], numbers[args.n :]
                        records = make_records(batch, zone)
                        rounds[name].append(run_phase(stack, sandbox, name, records, window, idle))
                        print(f"  {name}, {pool} slots, round {r}: {rounds[name][-1].span:.0f} s", flush=True)
                    report(f"pool {pool} slots, round {r}", {n: p[-1] for n, p in rounds.items()}, limit)
                if args.rounds > 1:
                    medians = {n: median_of(p) for n, p in rounds.items()}
                    report(f"pool {pool} slots, median of {args.rounds} rounds", medians, limit)
    print(f"\nwhole benchmark {time.monotonic() - started:.0f} s; everything it started is stopped")


def _stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so everything started is stopped."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


if __name__ == "__main__":
    _stop_on_sigterm()
    main()
