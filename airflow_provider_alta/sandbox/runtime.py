"""``AltaSandbox``: the sandbox server started in a background thread, as a context manager."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from airflow_provider_alta.sandbox.accounts import AccountsArg
from airflow_provider_alta.sandbox.core import (
    DEFAULT_CALL_DURATION,
    DEFAULT_CALL_START_DELAY,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_TOKEN,
    SandboxState,
)
from airflow_provider_alta.sandbox.faults import FaultPlan
from airflow_provider_alta.sandbox.journal import Journal, token_fingerprint
from airflow_provider_alta.sandbox.ratelimit import Clock, RateLimit
from airflow_provider_alta.sandbox.server import API_PATH, CALL_PATH_PREFIX, SandboxHTTPServer

FaultsArg = FaultPlan | Mapping[str, Any] | None


def spec_path() -> str:
    """Path of the bundled copy of Alta's ``openapi.yaml``."""
    return os.path.join(os.path.dirname(__file__), "openapi.yaml")


def get_call_spec_path() -> str:
    """Path of the bundled copy of ``get-call.yaml`` (Alta's ``GET /calls/{callId}``)."""
    return os.path.join(os.path.dirname(__file__), "get-call.yaml")


def _as_plan(faults: FaultsArg) -> FaultPlan | None:
    if faults is None or isinstance(faults, FaultPlan):
        return faults
    return FaultPlan.from_dict(faults)


class AltaSandbox:
    """The Alta sandbox server, started on ``start()`` or ``with``, stopped on ``stop()``.

    ``token`` is one token or several, each an account of its own (default ``DEFAULT_TOKEN``
    unless ``accounts`` is given); ``accounts`` maps account names to their tokens, which share one
    rate window. ``rate_limit`` is ``"REQUESTS/SECONDS"`` per account (``None`` or ``"off"``
    disables it); ``retry_after_header`` and ``ratelimit_headers`` turn the 429 ``Retry-After``
    and the ``RateLimit-*`` headers on or off; ``call_id_field`` names the id in the 200 answer
    (``"id"``, ``"callId"`` or ``"none"``); a call starts ``call_start_delay`` seconds after it
    was placed and lasts ``call_duration`` seconds; ``faults`` is a ``FaultPlan`` or its dict form;
    ``journal_path`` adds a JSONL copy of the journal; ``clock`` replaces ``time.monotonic`` for
    the rate windows, the calls' lifecycle and the outside clients.
    """

    def __init__(
        self,
        *,
        token: str | Sequence[str] | None = None,
        accounts: AccountsArg | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limit: str | RateLimit | None = "100/60",
        retry_after_header: bool = True,
        ratelimit_headers: bool = True,
        call_id_field: str = "id",
        call_start_delay: float = DEFAULT_CALL_START_DELAY,
        call_duration: float = DEFAULT_CALL_DURATION,
        faults: FaultsArg = None,
        journal_path: str | os.PathLike[str] | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        clock: Clock | None = None,
        idle_timeout: float = 120.0,
    ) -> None:
        if token is None:
            token = () if accounts else DEFAULT_TOKEN
        self.host = host
        self._requested_port = port
        self._settings: dict[str, Any] = {
            "tokens": [token] if isinstance(token, str) else list(token),
            "accounts": {
                name: [t] if isinstance(t, str) else list(t) for name, t in (accounts or {}).items()
            },
            "rate_limit": RateLimit.parse(rate_limit),
            "retry_after_header": retry_after_header,
            "ratelimit_headers": ratelimit_headers,
            "call_id_field": call_id_field,
            "call_start_delay": call_start_delay,
            "call_duration": call_duration,
            "faults": _as_plan(faults),
            "max_body_bytes": max_body_bytes,
        }
        if clock is not None:
            self._settings["clock"] = clock
        self._accounts = SandboxState(**self._settings).accounts  # checks every setting now
        #: Every accepted token (named accounts' first, then those given as ``token``).
        self.tokens = self._accounts.tokens
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
            state = SandboxState(journal=journal, **self._settings)
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
        state.close()
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

    def call_url(self, call_id: str) -> str:
        """The full URL of ``GET /v1/calls/{call_id}``."""
        return self.base_url + CALL_PATH_PREFIX + call_id

    @property
    def token(self) -> str:
        """The first accepted bearer token (of the first account)."""
        return self._accounts.first_token(self._accounts.primary)

    @property
    def token_fingerprint(self) -> str:
        """The fingerprint of ``token`` as the journal and stats show it."""
        return token_fingerprint(self.token)

    @property
    def accounts(self) -> list[str]:
        """The account names, the first account first (a token given alone: its fingerprint)."""
        return self._accounts.names

    def token_for(self, account: str) -> str:
        """The first token of ``account``."""
        return self._accounts.first_token(self._accounts.resolve(account))

    # --- what happened -------------------------------------------------------------------------

    def calls(self) -> list[dict[str, Any]]:
        """The journal: every accepted call, oldest first, with its ``state`` now (``queued``,
        ``in_progress`` or ``ended``): the records ``GET /_sandbox/calls`` lists."""
        return self._require_state().calls()

    def stats(self) -> dict[str, Any]:
        """The counters ``GET /_sandbox/stats`` returns."""
        return self._require_state().stats()

    def reset(self) -> None:
        """Empty the journal and counters, clear the rate windows, stop the outside clients and
        restore the initial faults."""
        self._require_state().reset()

    def spend(self, requests: int, account: str | None = None) -> dict[str, Any]:
        """An outside client of ``account`` (default: the first) sends ``requests`` requests now;
        returns how many the window ``counted`` and ``refused``."""
        return self._require_state().spend(requests, account)

    def set_outside_rate(self, per_minute: float, account: str | None = None) -> dict[str, Any]:
        """An outside client of ``account`` sends ``per_minute`` requests per rate window, evenly
        spread, until 0 stops it (or the sandbox stops or resets); returns its totals so far."""
        return self._require_state().set_outside_rate(per_minute, account)

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
        """Change settings while running: ``rate_limit``, ``retry_after_header``,
        ``ratelimit_headers``, ``call_id_field``, ``call_start_delay``, ``call_duration``."""
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
