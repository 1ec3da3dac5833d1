"""``airflow dags test`` in the background, in a real api-server's home (``alta_testing.servers.dags_test``).

    with AirflowApiServer() as server, DagsTestRun(server, "my_dag", conf={...}) as run:
        run.wait_for_input("approve")
        run.respond("approve", "Approve")
        assert run.wait() == 0

``dags test`` runs the tasks itself; a human-in-the-loop task stays parked (``awaiting_input``) until
a response arrives from outside, here through the api-server's REST API (or its UI) on the same
metadata database. ``stop()`` ends the whole process group of the ``dags test`` process.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alta_testing.servers.api_server import AirflowApiServer, airflow_executable, end_process_group
from alta_testing.servers.process import ServerProcess

WAITING = ("awaiting_input", "deferred")  # parked for a response: 3.3+, and 3.1/3.2 (trigger)


class DagsTestError(RuntimeError):
    """The run did not start, did not reach its human-in-the-loop task, or did not finish."""


class DagsTestRun(ServerProcess):
    """One ``airflow dags test DAG_ID`` against ``server``'s home; ``env`` adds variables (connections)."""

    def __init__(
        self,
        server: AirflowApiServer,
        dag_id: str,
        *,
        conf: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.server = server
        self.dag_id = dag_id
        self.conf = dict(conf or {})
        self.extra_env = dict(env or {})
        self.log_path = log_path
        self.run_id: str | None = None

    def start(self) -> DagsTestRun:
        """Start ``dags test`` and wait until its run exists."""
        if self.server.home is None:
            raise DagsTestError("the api-server is not running")
        if self.log_path is None:
            self.log_path = self.server.home / f"dags-test-{self.dag_id}-{time.time_ns()}.log"
        before = set(self._run_ids())
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [airflow_executable(), "dags", "test", self.dag_id, "-c", json.dumps(self.conf)],
                env={**self.server.env(), **self.extra_env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.run_id = str(self._poll(lambda: next(iter(set(self._run_ids()) - before), None), "its run", 300))
        return self

    def _run_ids(self) -> list[str]:
        status, body = self.server.api("GET", f"/api/v2/dags/{self.dag_id}/dagRuns")
        return [r["dag_run_id"] for r in body["dag_runs"]] if status == 200 else []

    def _ti_path(self, task_id: str) -> str:
        run = urllib.parse.quote(self.run_id or "", safe="")
        return f"/api/v2/dags/{self.dag_id}/dagRuns/{run}/taskInstances/{task_id}"

    def task_state(self, task_id: str) -> str | None:
        status, body = self.server.api("GET", self._ti_path(task_id))
        return body.get("state") if status == 200 else None

    def wait_for_input(self, task_id: str, timeout: float = 300) -> dict[str, Any]:
        """Wait until ``task_id`` is parked for a response; returns its human-in-the-loop detail."""

        def parked() -> dict[str, Any] | None:
            if self.task_state(task_id) not in WAITING:
                return None
            status, body = self.server.api("GET", f"{self._ti_path(task_id)}/-1/hitlDetails")
            return dict(body) if status == 200 else None

        detail: dict[str, Any] = self._poll(parked, f"{task_id} awaiting input", timeout)
        return detail

    def respond(self, task_id: str, option: str) -> dict[str, Any]:
        """Answer the task's request through the REST API, as the UI does."""
        status, body = self.server.api(
            "PATCH", f"{self._ti_path(task_id)}/-1/hitlDetails", {"chosen_options": [option]}
        )
        if status != 200:
            raise DagsTestError(f"responding {option!r} to {task_id} answered {status}: {body}")
        return dict(body)

    def wait(self, timeout: float = 600) -> int:
        """Wait for ``dags test`` to exit; returns its exit code."""
        if self.process is None:
            raise DagsTestError("dags test was not started")
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise DagsTestError(f"dags test did not finish in {timeout:.0f} s:\n{self.output()}") from None

    def output(self, chars: int = 6000) -> str:
        """The end of the ``dags test`` output."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]

    def states(self) -> dict[str, str | None]:
        """``task_id -> state`` of the run's task instances."""
        run = urllib.parse.quote(self.run_id or "", safe="")
        status, body = self.server.api("GET", f"/api/v2/dags/{self.dag_id}/dagRuns/{run}/taskInstances")
        if status != 200:
            raise DagsTestError(f"listing task instances answered {status}: {body}")
        return {t["task_id"]: t["state"] for t in body["task_instances"]}

    def _poll(self, probe: Any, what: str, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = probe()
            if found is not None:
                return found
            if self.process is not None and self.process.poll() is not None:
                raise DagsTestError(f"dags test exited before {what}:\n{self.output()}")
            time.sleep(0.5)
        raise DagsTestError(f"no {what} within {timeout:.0f} s:\n{self.output()}")

    def stop(self) -> None:
        """End the ``dags test`` process group (SIGTERM, then SIGKILL) if it still runs."""
        process, self.process = self.process, None
        if process is not None and not end_process_group(process, signal.SIGTERM, 30):
            raise DagsTestError(f"processes of the dags test group {process.pid} are still alive")
