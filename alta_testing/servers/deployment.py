"""A real Airflow 3 deployment on loopback, as users run it (``alta_testing.servers.deployment``).

    with AirflowStack(dags=[...], executor="LocalExecutor", pool_slots=3) as stack:
        run_id = stack.trigger("example_alta_leads_pipeline", conf={...})
        stack.wait_for_run("example_alta_leads_pipeline", run_id)

``start()`` starts a throwaway PostgreSQL (the metadata database), migrates it, creates the
``alta_api`` pool, then starts ``api-server``, ``scheduler``, ``dag-processor`` and ``triggerer``,
each in its own process group with its log under the home. With ``executor="CeleryExecutor"`` it
also needs ``redis_url`` (the broker) and starts ``celery_workers`` workers with distinct
hostnames; ``component_env`` adds variables to one component's environment. ``stop()`` ends
every component, checks that no process of theirs is left, and removes
the database and the home. Tests read the run through the REST API (everyone is admin).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil

from alta_testing.environment import ROOT
from alta_testing.servers.api_server import airflow_executable, airflow_secrets, call_api, end_process_group
from alta_testing.servers.ports import free_port, port_closed
from alta_testing.servers.postgres_server import PostgresServer
from alta_testing.servers.process import ServerProcess

CORE_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
FINISHED = {"success", "failed"}


class AirflowStackError(RuntimeError):
    """A component did not come up, a run did not finish, or a process was left behind."""


class AirflowStack(ServerProcess):
    """PostgreSQL plus Airflow's components; see the module docstring."""

    def __init__(
        self,
        *,
        dags: Sequence[Path],
        executor: str = "LocalExecutor",
        pool_slots: int = 3,
        parallelism: int = 8,
        redis_url: str | None = None,
        celery_workers: int = 0,
        worker_concurrency: int = 4,
        env: Mapping[str, str] | None = None,
        component_env: Mapping[str, Mapping[str, str]] | None = None,
        keep_logs: Path | None = None,
    ) -> None:
        if executor == "CeleryExecutor" and (redis_url is None or celery_workers < 1):
            raise AirflowStackError("CeleryExecutor needs redis_url and at least one Celery worker")
        self.dag_sources = list(dags)
        self.executor = executor
        self.pool_slots = pool_slots
        self.parallelism = parallelism
        self.redis_url = redis_url
        self.celery_workers = celery_workers
        self.worker_concurrency = worker_concurrency
        self.extra_env = dict(env or {})
        self.component_env = {k: dict(v) for k, v in (component_env or {}).items()}
        self.keep_logs = keep_logs
        self.postgres = PostgresServer(("airflow",))
        self.home = Path()
        self.dags = Path()
        self.port = 0
        self._log_ports = (0, 0)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._secrets = airflow_secrets()

    @classmethod
    def of_examples(cls, name: str, *extra_dags: Path, **options: Any) -> AirflowStack:
        """A deployment of the example DAGs and ``extra_dags``, its logs kept in ``artifacts/e2e/NAME``."""
        logs = ROOT / "artifacts" / "e2e" / name
        return cls(dags=[ROOT / "example_dags", *extra_dags], keep_logs=logs, **options)

    @contextlib.contextmanager
    def serving(self, url: str, token: str, dag_ids: Sequence[str], **extra: Any) -> Iterator[AirflowStack]:
        """Start, add ``alta_default`` for the sandbox at ``url``, wait for ``dag_ids``; stop on exit."""
        with self:
            self.add_alta_connection(url, token, **extra)
            self.wait_for_dags(dag_ids)
            yield self

    # --- set-up --------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The environment of every Airflow process of this deployment."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
        env = {
            **base,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": self.executor,
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.url("airflow"),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self._log_ports[0]),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self._log_ports[1]),
            **self._secrets,
        }
        if self.executor == "CeleryExecutor" and self.redis_url:
            env["AIRFLOW__CELERY__BROKER_URL"] = self.redis_url
            env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + self.postgres.url("airflow", "postgresql")
            env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = str(self.worker_concurrency)
        return {**env, **self.extra_env}

    def start(self) -> AirflowStack:
        """Database, migration, pool, then every component; waits until the API is healthy."""
        self.home = Path(tempfile.mkdtemp(prefix="alta-stack-"))
        self.dags = self.home / "dags"
        try:
            self.postgres.start()
            self.dags.mkdir()
            for source in self.dag_sources:
                if source.is_dir():
                    shutil.copytree(source, self.dags, dirs_exist_ok=True)
                else:
                    shutil.copy(source, self.dags)
            (self.home / "logs").mkdir()
            self.airflow("db", "migrate", timeout=900)
            self.airflow("pools", "set", "alta_api", str(self.pool_slots), "Alta API calls")
            self.port = free_port()  # chosen after the migration, whose connections could take one
            self._log_ports = (free_port(), free_port())
            for component in CORE_COMPONENTS:
                self.start_component(component)
            self._wait_healthy()
            for n in range(1, self.celery_workers + 1):
                self.start_component(f"worker{n}")
        except BaseException:
            self.stop()
            raise
        return self

    def airflow(self, *args: str, timeout: float = 300) -> str:
        """Run an ``airflow`` CLI command in this deployment; returns stdout, raises on failure."""
        result = subprocess.run(
            [airflow_executable(), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise AirflowStackError(f"airflow {' '.join(args[:3])} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def add_alta_connection(self, host: str, token: str, **extra: Any) -> None:
        """Create ``alta_default`` (pointing at the sandbox) as a user would, with the CLI."""
        self.airflow(
            "connections", "add", "alta_default", "--conn-type", "alta", "--conn-host", host,
            "--conn-password", token, "--conn-extra", json.dumps(extra),
        )  # fmt: skip

    def _command(self, component: str) -> list[str]:
        airflow = airflow_executable()
        if component == "api-server":
            return [airflow, "api-server", "--host", "127.0.0.1", "--port", str(self.port)]
        if component.startswith("worker"):
            return [airflow, "celery", "worker", "--celery-hostname", f"{component}@%h",
                    "--concurrency", str(self.worker_concurrency), "--skip-serve-logs"]  # fmt: skip
        return [airflow, component]

    def start_component(self, component: str) -> None:
        """Start one component (``scheduler``, ``triggerer``, ``worker1``, ...) in its own group."""
        if component in self.processes and self.processes[component].poll() is None:
            raise AirflowStackError(f"{component} is already running")
        log = self.home / "logs" / f"{component}.log"
        with log.open("ab") as out:
            self.processes[component] = subprocess.Popen(
                self._command(component),
                env={**self.env(), **self.component_env.get(component, {})},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill_component(self, component: str, sig: int = signal.SIGKILL, timeout: float = 60) -> None:
        """Send ``sig`` to the component's process group and to every descendant, and wait for all.

        Airflow 3 runs each task in a process group of its own, so the descendants are collected
        first; whatever outlives the signal (and SIGTERM's grace time) is SIGKILLed.
        """
        process = self.processes[component]
        try:
            descendants = psutil.Process(process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            descendants = []
        for child in descendants:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.send_signal(sig)
        if not end_process_group(process, sig, timeout):
            raise AirflowStackError(f"processes of {component} (group {process.pid}) are still alive")
        _, alive = psutil.wait_procs(descendants, timeout=timeout)
        for child in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        _, alive = psutil.wait_procs(alive, timeout=10)
        if alive:
            raise AirflowStackError(f"processes {[p.pid for p in alive]} of {component} are still alive")
        del self.processes[component]

    def _wait_healthy(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [c for c, p in self.processes.items() if p.poll() is not None]
            if dead:
                raise AirflowStackError(f"{dead[0]} exited at start; its log ends:\n{self.log_tail(dead[0])}")
            with contextlib.suppress(OSError, ValueError):
                status, body = self.api("GET", "/api/v2/monitor/health")
                if status == 200 and body["metadatabase"]["status"] == "healthy":
                    return
            time.sleep(0.5)
        raise AirflowStackError(f"the api-server did not become healthy:\n{self.log_tail('api-server')}")

    def logs_containing(self, needles: Sequence[str]) -> dict[str, list[str]]:
        """Which of ``needles`` appear in which log file (components' and tasks') under the home."""
        found: dict[str, list[str]] = {}
        for path in (self.home / "logs").rglob("*"):
            if path.is_file():
                text = path.read_text(errors="replace")
                hits = [needle for needle in needles if needle in text]
                if hits:
                    found[str(path.relative_to(self.home))] = hits
        return found

    def log_tail(self, component: str, chars: int = 3000) -> str:
        """The end of a component's log."""
        log = self.home / "logs" / f"{component}.log"
        return log.read_text(errors="replace")[-chars:] if log.exists() else ""

    # --- the REST API --------------------------------------------------------------------------

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Call the REST API; returns ``(status, decoded JSON or None)``."""
        return call_api(self.url, method, path, body)

    def _ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.api(method, path, body)
        if status >= 300:
            raise AirflowStackError(f"{method} {path} answered {status}: {answer}")
        return answer

    def wait_for_dags(self, dag_ids: Sequence[str], timeout: float = 240) -> None:
        """Wait until the dag-processor has parsed every DAG in ``dag_ids``."""
        deadline = time.monotonic() + timeout
        missing = set(dag_ids)
        while missing and time.monotonic() < deadline:
            missing = {d for d in missing if self.api("GET", f"/api/v2/dags/{d}")[0] != 200}
            if missing:
                time.sleep(1)
        if missing:
            _, errors = self.api("GET", "/api/v2/importErrors")
            raise AirflowStackError(f"DAGs not parsed: {sorted(missing)}; import errors: {errors}")

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None, run_id: str | None = None) -> str:
        """Trigger a run now; returns its run id."""
        body: dict[str, Any] = {"logical_date": None, "conf": dict(conf or {})}
        if run_id:
            body["dag_run_id"] = run_id
        return str(self._ok("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        quoted = urllib.parse.quote(run_id, safe="")
        return str(self._ok("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}")["state"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 900) -> str:
        """Wait until the run has finished; returns ``success`` or ``failed``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.run_state(dag_id, run_id)
            if state in FINISHED:
                return state
            self._check_alive()
            time.sleep(1)
        raise AirflowStackError(f"{dag_id} {run_id} did not finish in {timeout:.0f} s")

    def _check_alive(self) -> None:
        for component, process in self.processes.items():
            if process.poll() is not None:
                raise AirflowStackError(f"{component} died; its log ends:\n{self.log_tail(component)}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run (mapped ones included)."""
        quoted = urllib.parse.quote(run_id, safe="")
        out: list[dict[str, Any]] = []
        while True:
            page = self._ok(
                "GET",
                f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances?limit=100&offset={len(out)}",
            )
            out.extend(page["task_instances"])
            if len(out) >= page["total_entries"] or not page["task_instances"]:
                return out

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        quoted = urllib.parse.quote(run_id, safe="")
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances/{task_id}/xcomEntries/{key}"
        value = self._ok("GET", path + "?deserialize=true")["value"]
        return json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value

    def clear(self, dag_id: str, run_id: str, task_ids: Sequence[str], *, downstream: bool = False) -> None:
        """Clear tasks of a finished run (as the UI's Clear does, optionally with their downstream)."""
        self._ok(
            "POST",
            f"/api/v2/dags/{dag_id}/clearTaskInstances",
            {"dry_run": False, "dag_run_id": run_id, "task_ids": list(task_ids), "only_failed": False,
             "reset_dag_runs": True, "include_downstream": downstream},
        )  # fmt: skip

    def rerun_task(self, dag_id: str, run_id: str, task_id: str) -> tuple[str, dict[str, Any]]:
        """Clear one finished task (as the UI's Clear does) and wait for the scheduler to run it again.

        Returns the run's final state and the task's instance.
        """
        self._ok(
            "POST",
            f"/api/v2/dags/{dag_id}/clearTaskInstances",
            {"dry_run": False, "dag_run_id": run_id, "task_ids": [task_id], "only_failed": False,
             "reset_dag_runs": True},
        )  # fmt: skip
        state = self.wait_for_run(dag_id, run_id)
        [ti] = [t for t in self.task_instances(dag_id, run_id) if t["task_id"] == task_id]
        return state, ti

    # --- tear-down -----------------------------------------------------------------------------

    def stop(self) -> None:
        """End every component (TERM, then KILL), then PostgreSQL; check nothing is left."""
        problems: list[str] = []
        try:
            for component in reversed(list(self.processes)):
                try:
                    self.kill_component(component, signal.SIGTERM, timeout=30)
                except (AirflowStackError, subprocess.TimeoutExpired) as exc:
                    problems.append(str(exc))
            if self.port and not port_closed(self.port):
                problems.append(f"port {self.port} still answers after the api-server stopped")
        finally:
            try:
                self.postgres.stop()
            finally:
                if self.home != Path():
                    if self.keep_logs is not None and (self.home / "logs").exists():
                        shutil.rmtree(self.keep_logs, ignore_errors=True)  # this run's logs only
                        shutil.copytree(self.home / "logs", self.keep_logs)
                    shutil.rmtree(self.home, ignore_errors=True)
        if problems:
            raise AirflowStackError("; ".join(problems))

    @property
    def running(self) -> bool:
        """Whether every component started is alive."""
        return bool(self.processes) and all(p.poll() is None for p in self.processes.values())
