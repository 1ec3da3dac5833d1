"""A real, throwaway PostgreSQL server on a free loopback port (``alta_testing.servers.postgres_server``).

    with PostgresServer() as server:
        engine_url = server.url("airflow")   # postgresql+psycopg2://postgres@127.0.0.1:PORT/airflow

``start()`` runs Debian's ``initdb`` into a temporary directory (trust auth, loopback only, fsync
off: it is a test database), starts ``postgres`` in the foreground and creates ``databases``.
As root the server runs as the ``postgres`` user, because PostgreSQL refuses to run as root.
``stop()`` ends it (SIGINT, PostgreSQL's fast shutdown), waits, and checks the port is closed.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from alta_testing.servers.ports import free_port, port_closed
from alta_testing.servers.process import ServerProcess

INSTALL_HINT = "apt-get install -y postgresql"
SUPERUSER = "postgres"


class PostgresServerError(RuntimeError):
    """PostgreSQL is missing or did not come up."""


def find_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/N/bin`` with ``initdb``, or a clear error naming the fix."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
    )
    if not candidates:
        raise PostgresServerError(f"no PostgreSQL server binaries under /usr/lib/postgresql: {INSTALL_HINT}")
    return candidates[-1].parent


class PostgresServer(ServerProcess):
    """One ``postgres`` process on 127.0.0.1, started by ``start()`` or ``with``."""

    def __init__(self, databases: tuple[str, ...] = ("airflow",), *, startup_timeout: float = 60.0) -> None:
        self.databases = databases
        self.startup_timeout = startup_timeout
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None
        self._user: str | None = SUPERUSER if os.geteuid() == 0 else None

    def url(self, database: str = "airflow", driver: str = "postgresql+psycopg2") -> str:
        """A SQLAlchemy URL for ``database``."""
        return f"{driver}://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> PostgresServer:
        """initdb, start the server, wait for it and create the databases."""
        if self.process is not None:
            raise PostgresServerError("PostgreSQL is already running")
        bindir = find_bindir()
        self._dir = Path(tempfile.mkdtemp(prefix="alta-postgres-"))
        data, sockets = self._dir / "data", self._dir / "sockets"
        data.mkdir()
        sockets.mkdir()
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            for path in (self._dir, data, sockets):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run_or_clean_up(
            [str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
             "--no-sync", "--locale", "C"]
        )  # fmt: skip
        self.port = free_port()
        log = self._dir / "postgres.log"
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(bindir / "postgres"), "-D", str(data), "-p", str(self.port), "-h", "127.0.0.1",
                 "-k", str(sockets), "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=300"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, user=self._user,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            if self._ready(bindir):
                try:
                    for database in self.databases:
                        self.psql(f'CREATE DATABASE "{database}"')
                except BaseException:
                    self.stop()
                    raise
                return self
            time.sleep(0.2)
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        self.stop()
        raise PostgresServerError(f"PostgreSQL did not come up on port {self.port}; its log ends:\n{tail}")

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run one SQL statement with ``psql`` and return its unaligned output."""
        bindir = find_bindir()
        return self._run(
            [str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER,
             "-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql]
        )  # fmt: skip

    def _ready(self, bindir: Path) -> bool:
        result = subprocess.run(
            [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER],
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    def _run_or_clean_up(self, cmd: list[str]) -> str:
        try:
            return self._run(cmd)
        except BaseException:
            self.stop()
            raise

    def _run(self, cmd: list[str]) -> str:
        result = subprocess.run(
            cmd, capture_output=True, text=True, user=self._user, check=False, timeout=120
        )
        if result.returncode != 0:
            raise PostgresServerError(f"{Path(cmd[0]).name} failed: {result.stderr[-2000:]}")
        return result.stdout

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT), then SIGKILL if needed; remove the data; check the port is closed."""
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(2)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, 9)
                    process.wait(timeout)
            if self.port and not port_closed(self.port):
                raise PostgresServerError(f"port {self.port} still answers after PostgreSQL stopped")
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
