"""The base class of the test servers: ``start()`` and ``stop()``, ``with`` for both, ``running``."""

from __future__ import annotations

import subprocess
from types import TracebackType
from typing import TypeVar

Self = TypeVar("Self", bound="ServerProcess")


class ServerProcess:
    """A server in a child process: ``with server:`` starts it and always stops it.

    Subclasses implement :meth:`start` (returning ``self``) and :meth:`stop`, and keep their
    ``subprocess.Popen`` in ``process`` while it runs.
    """

    process: subprocess.Popen[bytes] | None = None

    def start(self: Self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self.process is not None and self.process.poll() is None

    def __enter__(self: Self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
