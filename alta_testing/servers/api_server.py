"""A real Airflow 3 ``api-server`` (UI and REST API) in a throwaway home.

    with AirflowApiServer(env={"AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}) as server:
        server.api("GET", "/api/v2/connections")

``start()`` runs ``airflow db migrate`` on a fresh SQLite home, starts ``airflow api-server`` on a
free loopback port in its own process group, and waits for ``/api/v2/monitor/health``. Everyone is
admin (SimpleAuthManager with ``simple_auth_manager_all_admins``), so no login is needed.
``stop()`` ends the whole process group, waits for it, and checks that no process of the group is
left and that the port no longer answers.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alta_testing.servers.ports import free_port, port_closed
from alta_testing.servers.process import ServerProcess

HEALTH_PATH = "/api/v2/monitor/health"


class AirflowApiServerError(RuntimeError):
    """The api-server is missing, did not come up, or did not go away."""


def group_alive(pgid: int) -> bool:
    """True while any process of process group ``pgid`` exists (zombies included)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def airflow_executable() -> str:
    """The ``airflow`` script next to the running Python (the venv under test)."""
    path = Path(sys.executable).with_name("airflow")
    if not path.exists():
        raise AirflowApiServerError(f"no airflow executable next to {sys.executable}")
    return str(path)


def airflow_secrets() -> dict[str, str]:
    """Fresh keys every process of one Airflow must share (Fernet, JWT, the API's session key)."""
    return {
        "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
        "AIRFLOW__API_AUTH__JWT_SECRET": os.urandom(16).hex(),
        "AIRFLOW__API__SECRET_KEY": os.urandom(16).hex(),
    }


def call_api(base_url: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """Call an Airflow REST API; returns ``(status, decoded JSON or None)``."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    return status, (json.loads(raw) if raw else None)


def end_process_group(process: subprocess.Popen[bytes], sig: int, timeout: float) -> bool:
    """Send ``sig`` to the group ``process`` leads (``start_new_session``), SIGKILL what outlives
    ``timeout``, and wait; returns whether every process of the group is gone.
    """
    pgid = process.pid  # start_new_session: the leader's pid is the group id
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        process.wait(timeout)
    deadline = time.monotonic() + timeout
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        time.sleep(0.5)
    return not group_alive(pgid)


class AirflowApiServer(ServerProcess):
    """One ``airflow api-server`` on 127.0.0.1, started by ``start()`` or ``with``.

    ``env`` adds or overrides environment variables (Airflow options); ``log_path`` is where the
    server's output goes (default: inside the throwaway home, deleted by ``stop()``).
    """

    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        startup_timeout: float = 240.0,
        stop_timeout: float = 30.0,
    ) -> None:
        self.extra_env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.port = 0
        self.home: Path | None = None
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._secrets = airflow_secrets()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The environment of every ``airflow`` command run for this server."""
        if self.home is None:
            raise AirflowApiServerError("the api-server has no home yet: call start()")
        base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
        return {
            **base,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__WORKERS": "1",
            **self._secrets,
            **self.extra_env,
        }

    def start(self) -> AirflowApiServer:
        """Migrate a fresh home, start the server and wait until its health endpoint answers."""
        if self.process is not None:
            raise AirflowApiServerError("the api-server is already running")
        airflow = airflow_executable()
        self.home = Path(tempfile.mkdtemp(prefix="alta-api-server-"))
        (self.home / "dags").mkdir()
        env = self.env()
        migrate = subprocess.run(
            [airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=600, check=False
        )
        if migrate.returncode != 0:
            self._cleanup_home()
            raise AirflowApiServerError(f"airflow db migrate failed:\n{migrate.stderr[-4000:]}")
        if self.log_path is None:
            self.log_path = self.home / "api-server.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [airflow, "api-server", "--host", "127.0.0.1", "--port", str(self.port)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stop() reaches every child
            )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self._healthy():
                return self
            time.sleep(0.5)
        log_tail = self.log_tail()
        self.stop()
        raise AirflowApiServerError(
            f"airflow api-server did not answer {HEALTH_PATH} on port {self.port} within "
            f"{self.startup_timeout:.0f} s; its log ends:\n{log_tail}"
        )

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + HEALTH_PATH, timeout=5) as response:
                body = json.load(response)
        except (OSError, ValueError):
            return False
        return bool(body.get("metadatabase", {}).get("status") == "healthy")

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's output."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Call the REST API; returns ``(status, decoded JSON or None)``."""
        return call_api(self.url, method, path, body)

    def stop(self) -> None:
        """End the process group (SIGTERM, then SIGKILL), wait, and check nothing is left."""
        process, self.process = self.process, None
        if process is not None:
            if not end_process_group(process, signal.SIGTERM, self.stop_timeout):
                raise AirflowApiServerError(
                    f"processes of the api-server group {process.pid} are still alive"
                )
            if self.port and not port_closed(self.port):
                raise AirflowApiServerError(f"port {self.port} still answers after the api-server stopped")
        self._cleanup_home()

    def _cleanup_home(self) -> None:
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)
            self.home = None


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()
