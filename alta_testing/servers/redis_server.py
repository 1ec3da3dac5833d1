"""A real, throwaway ``redis-server`` on a free loopback port (``alta_testing.servers.redis_server``).

    with RedisServer() as server:
        client = redis.Redis.from_url(server.url)

Nothing is persisted (``--save "" --appendonly no``, a temporary ``--dir``); ``stop()`` ends the
process, waits for it and checks that the port no longer answers.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from alta_testing.servers.ports import free_port, port_closed
from alta_testing.servers.process import ServerProcess

INSTALL_HINT = "apt-get install -y redis-server"


class RedisServerError(RuntimeError):
    """redis-server is missing or did not come up."""


def find_redis_server() -> str:
    """The path of ``redis-server``, or a clear error naming the fix."""
    path = shutil.which("redis-server")
    if path is None:
        raise RedisServerError(
            f"redis-server is not on PATH; the shared-limiter tests need a real one: {INSTALL_HINT}"
        )
    return path


def ping(port: int, timeout: float = 0.5) -> bool:
    """True when a Redis on 127.0.0.1:``port`` answers PING with PONG."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer(ServerProcess):
    """One ``redis-server`` process on 127.0.0.1, started by ``start()`` or ``with``."""

    def __init__(self, *, startup_timeout: float = 10.0) -> None:
        self.startup_timeout = startup_timeout
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RedisServerError("redis-server is not running")
        return self.process.pid

    def start(self) -> RedisServer:
        """Start on a free port and wait until it answers PING (retried if the port was taken)."""
        if self.process is not None:
            raise RedisServerError("redis-server is already running")
        executable = find_redis_server()
        self._dir = tempfile.TemporaryDirectory(prefix="alta-redis-")
        last = ""
        for _ in range(3):
            self.port = free_port()
            log = Path(self._dir.name) / "redis.log"
            self.process = subprocess.Popen(
                [
                    executable,
                    "--port", str(self.port),
                    "--bind", "127.0.0.1",
                    "--save", "",
                    "--appendonly", "no",
                    "--daemonize", "no",
                    "--dir", self._dir.name,
                    "--logfile", str(log),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            deadline = time.monotonic() + self.startup_timeout
            while time.monotonic() < deadline and self.process.poll() is None:
                if ping(self.port):
                    return self
                time.sleep(0.02)
            last = log.read_text(errors="replace")[-500:] if log.exists() else ""
            self._end_process()
        self._cleanup_dir()
        raise RedisServerError(f"redis-server did not answer PING on loopback; its log ends: {last!r}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL), wait for it, and check that the port is closed."""
        if self.process is None:
            return
        self._end_process(timeout)
        self._cleanup_dir()
        if not port_closed(self.port):
            raise RedisServerError(f"port {self.port} still answers after redis-server stopped")

    def kill(self) -> None:
        """End the server abruptly (SIGKILL), as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)

    def _end_process(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if process.returncode is None:
            raise RedisServerError(f"redis-server (pid {process.pid}) did not exit")

    def _cleanup_dir(self) -> None:
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
