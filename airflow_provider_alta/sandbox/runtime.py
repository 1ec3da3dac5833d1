"""``AltaSandbox``: the sandbox server started in a background thread, as a context manager."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from airflow_provider_alta.sandbox.core import DEFAULT_MAX_BODY_BYTES, DEFAULT_TOKEN, SandboxState
from airflow_provider_alta.sandbox.faults import FaultPlan
from airflow_provider_alta.sandbox.journal import Journal, token_fingerprint
from airflow_provider_alta.sandbox.ratelimit import Clock, RateLimit
from airflow_provider_alta.sandbox.server import API_PATH, SandboxHTTPServer

FaultsArg = FaultPlan | Mapping[str, Any] | None


def spec_path() -> str:
    """Path of the bundled copy of Alta's ``openapi.yaml``."""
    return os.path.join(os.path.dirname(__file__), "openapi.yaml")


def _as_plan(faults: FaultsArg) -> FaultPlan | None:
    if faults is None or isinstance(faults, FaultPlan):
        return faults
    return FaultPlan.from_dict(faults)


class AltaSandbox:
    """The Alta sandbox server, started on ``start()`` or ``with``, stopped on ``stop()``.

    ``rate_limit`` is ``"REQUESTS/SECONDS"`` (``None`` or ``"off"`` disables it);
    ``retry_after_header`` turns the 429 ``Retry-After`` header on or off; ``faults`` is a
    ``FaultPlan`` or its dict form; ``journal_path`` adds a JSONL copy of the journal;
    ``clock`` replaces ``time.monotonic`` for the rate limiter.
    """

    def __init__(
        self,
        *,
        token: str | Sequence[str] = DEFAULT_TOKEN,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limit: str | RateLimit | None = "100/60",
        retry_after_header: bool = True,
        faults: FaultsArg = None,
        journal_path: str | os.PathLike[str] | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        clock: Clock | None = None,
        idle_timeout: float = 120.0,
    ) -> None:
        self.tokens = [token] if isinstance(token, str) else list(token)
        self.host = host
        self._requested_port = port
        self._settings: dict[str, Any] = {
            "rate_limit": RateLimit.parse(rate_limit),
            "retry_after_header": retry_after_header,
            "faults": _as_plan(faults),
            "max_body_bytes": max_body_bytes,
        }
        if clock is not None:
            self._settings["clock"] = clock
        self.journal_path = journal_path
        self.idle_timeout = idle_timeout
        self._server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._state: SandboxState | None = None

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> AltaSandbox:
        """Bind the port and serve in a background thread. Returns ``self``."""
        if self._server is not None:
            raise RuntimeError("the sandbox is already running")
        journal = Journal(self.journal_path)
        try:
            state = SandboxState(tokens=self.tokens, journal=journal, **self._settings)
            server = SandboxHTTPServer(
                (self.host, self._requested_port), state, idle_timeout=self.idle_timeout
            )
        except BaseException:
            journal.close()
            raise
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="alta-sandbox", daemon=True
        )
        thread.start()
        self._state, self._server, self._thread = state, server, thread
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close the socket, every connection and the journal, and join the threads."""
        server, thread, state = self._server, self._thread, self._state
        if server is None or thread is None or state is None:
            return
        server.shutdown()
        server.close(timeout)
        thread.join(timeout)
        state.journal.close()
        self._server = self._thread = None

    def __enter__(self) -> AltaSandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._server is not None

    # --- addresses -----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port."""
        return self._require_server().server_port

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` (no path)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The API base URL to put in a connection: ``http://HOST:PORT/v1``."""
        return self.base_url + "/v1"

    @property
    def calls_url(self) -> str:
        """The full URL of ``POST /v1/assistant/calls``."""
        return self.base_url + API_PATH

    @property
    def token(self) -> str:
        """The (first) accepted bearer token."""
        return self.tokens[0]

    @property
    def token_fingerprint(self) -> str:
        """The fingerprint of ``token`` as the journal and stats show it."""
        return token_fingerprint(self.token)

    # --- what happened -------------------------------------------------------------------------

    def calls(self) -> list[dict[str, Any]]:
        """The journal: every accepted call, oldest first (the records ``GET /_sandbox/calls`` lists)."""
        return self._require_state().journal.records()

    def stats(self) -> dict[str, Any]:
        """The counters ``GET /_sandbox/stats`` returns."""
        return self._require_state().stats()

    def reset(self) -> None:
        """Empty the journal and counters, clear the rate windows and restore the initial faults."""
        self._require_state().reset()

    def set_faults(self, faults: FaultsArg = None, /, **plan: Any) -> FaultPlan:
        """Replace the fault plan (a ``FaultPlan``, its dict form, or its keywords); ``None`` clears it."""
        if plan:
            if faults is not None:
                raise TypeError("pass a plan or keywords, not both")
            faults = plan
        new = _as_plan(faults) or FaultPlan()
        self._require_state().faults = new
        return new

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change ``rate_limit`` and/or ``retry_after_header`` while running."""
        return self._require_state().configure(**changes)

    @property
    def open_connections(self) -> int:
        """How many client connections are open now."""
        return self._require_server().open_connections

    def _require_server(self) -> SandboxHTTPServer:
        if self._server is None:
            raise RuntimeError("the sandbox is not running")
        return self._server

    def _require_state(self) -> SandboxState:
        if self._state is None:
            raise RuntimeError("the sandbox has not been started")
        return self._state
