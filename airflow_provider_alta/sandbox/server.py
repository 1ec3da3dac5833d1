"""The HTTP side of the sandbox: a threading HTTP/1.1 server with keep-alive and fault injection.

Routes: ``POST /v1/assistant/calls`` (faults apply here only), ``GET /v1/calls/{callId}``, any other
``/v1/`` path (404, counted for an accepted token), the ``/_sandbox/`` controls, and 404 elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import struct
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_alta.sandbox.controls import CONTROL_PREFIX, answer_control
from airflow_provider_alta.sandbox.core import Reply, SandboxState, error_reply, storm_reply
from airflow_provider_alta.sandbox.faults import (
    DROP_BEFORE_BODY,
    ERROR_5XX,
    HUGE_BODY,
    INTERIM,
    LATENCY,
    OK,
    RESET_AFTER_ACCEPT,
    STORM_429,
    TRICKLE,
    TRICKLE_BODY,
    Fault,
)
from airflow_provider_alta.sandbox.masking import describe_call, mask_log_text

logger = logging.getLogger("airflow_provider_alta.sandbox")

API_PATH = "/v1/assistant/calls"
CALL_PATH_PREFIX = "/v1/calls/"
_DRAIN_LIMIT = 16 * 1024 * 1024
_HUGE_CHUNK = 64 * 1024
_5XX_ERRORS = {
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


class SandboxHTTPServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` that tracks its connections so that ``close()`` can end them all."""

    daemon_threads = True
    request_queue_size = 256
    block_on_close = False

    def __init__(self, address: tuple[str, int], state: SandboxState, *, idle_timeout: float = 120.0) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.state = state
        self.idle_timeout = idle_timeout
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._counter = 0
        super().__init__(address, SandboxRequestHandler)

    def server_bind(self) -> None:
        """Bind without ``HTTPServer``'s reverse DNS lookup (it can take seconds)."""
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve each connection in its own daemon thread, remembered until it ends."""
        with self._lock:
            self._counter += 1
            thread = threading.Thread(
                target=self._serve_connection,
                args=(request, client_address),
                name=f"alta-sandbox-conn-{self._counter}",
                daemon=True,
            )
            self._connections[request] = thread
        thread.start()

    def _serve_connection(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._lock:
                self._connections.pop(request, None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log instead of printing to stderr; a peer going away is not an error."""
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)

    def close(self, timeout: float = 5.0) -> None:
        """Close the listening socket, end every open connection, and join their threads."""
        self.stopping.set()
        self.server_close()
        with self._lock:
            connections = list(self._connections.items())
        for sock, _ in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for _, thread in connections:
            thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def open_connections(self) -> int:
        """How many client connections are open now."""
        with self._lock:
            return len(self._connections)


class SandboxRequestHandler(BaseHTTPRequestHandler):
    """Routes ``/v1/...`` to the sandbox and ``/_sandbox/...`` to its controls."""

    protocol_version = "HTTP/1.1"
    server_version = "AltaSandbox/1"
    sys_version = ""
    server: SandboxHTTPServer
    _counting: tuple[bool, str] | None = None
    _arrived: datetime | None = None

    def setup(self) -> None:
        """Apply the idle timeout and disable Nagle (answers are small)."""
        super().setup()
        self.connection.settimeout(self.server.idle_timeout)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # --- routing -------------------------------------------------------------------------------

    def parse_request(self) -> bool:
        """Parse as usual; answer a method without a ``do_`` handler (TRACE, CONNECT, any token) here.

        ``http.server`` would answer 501; the sandbox answers like for any other method: 405 with
        ``Allow`` on a known path, 404 elsewhere. Returning False tells it the answer was sent.
        """
        if not super().parse_request():
            return False
        if hasattr(self, "do_" + self.command):
            return True
        self._route(self.command)
        return False

    def do_POST(self) -> None:
        """Handle POST."""
        self._route("POST")

    def do_GET(self) -> None:
        """Handle GET."""
        self._route("GET")

    def do_PUT(self) -> None:
        """Handle PUT."""
        self._route("PUT")

    def do_PATCH(self) -> None:
        """Handle PATCH."""
        self._route("PATCH")

    def do_DELETE(self) -> None:
        """Handle DELETE."""
        self._route("DELETE")

    def do_OPTIONS(self) -> None:
        """Handle OPTIONS."""
        self._route("OPTIONS")

    def do_HEAD(self) -> None:
        """Handle HEAD."""
        self._route("HEAD")

    def _route(self, method: str) -> None:
        path = urlsplit(self.path).path
        self._counting = None
        if path.startswith(CONTROL_PREFIX):
            self._control(method, path[len(CONTROL_PREFIX) :].rstrip("/"))
            return
        started = time.perf_counter()
        self._arrived = datetime.now(timezone.utc)
        state = self.server.state
        api_call = path == API_PATH and method == "POST"
        state.request_started(api_call)
        self._counting = (api_call, OK)
        try:
            if api_call:
                fault = state.faults.next()
                self._counting = (True, fault.kind)
                self._call(fault, started)
            else:
                self._read_body()  # keeps the connection usable; a bad length closes it after answering
                reply = self._other(method, path)
                self._log(method, self.path, reply.status, started)
                self._reply(reply)
        finally:
            self._count(None)

    def _other(self, method: str, path: str) -> Reply:
        """Answer any request but ``POST /v1/assistant/calls``; ``/v1/`` ones count for a known token."""
        state = self.server.state
        authorization = self.headers.get("Authorization")
        call_id = path[len(CALL_PATH_PREFIX) :] if path.startswith(CALL_PATH_PREFIX) else ""
        if call_id and "/" not in call_id:
            if method == "GET":
                return state.handle_get_call(authorization, call_id)
            return state.handle_other(authorization, _not_allowed(method, "GET"))
        if path == API_PATH:
            return state.handle_other(authorization, _not_allowed(method, "POST"))
        not_found = error_reply(
            404, "NotFound", f"No route for {mask_log_text(method)} {mask_log_text(path)}"
        )
        if path == "/v1" or path.startswith("/v1/"):
            return state.handle_other(authorization, not_found)
        return not_found

    def _count(self, status: int | None) -> None:
        """Count the request's outcome once, before the client can see it (so stats never lag)."""
        if self._counting is not None:
            api_call, fault = self._counting
            self._counting = None
            self.server.state.request_finished(api_call, status, fault)

    # --- the endpoint --------------------------------------------------------------------------

    def _call(self, fault: Fault, started: float) -> None:
        """Answer ``POST /v1/assistant/calls`` under ``fault``. Logs before answering, so logs never lag."""
        state = self.server.state
        if fault.kind == DROP_BEFORE_BODY:
            self._log("POST", API_PATH, None, started, fault, note="closed before reading the body")
            self._abort(reset=False)
            return
        raw = self._read_body()
        if isinstance(raw, Reply):
            self._log("POST", API_PATH, raw.status, started, fault)
            self._reply(raw)
            return
        if fault.kind == ERROR_5XX:
            reply = error_reply(
                fault.status,
                _5XX_ERRORS.get(fault.status, "ServerError"),
                f"Injected fault: the sandbox answered {fault.status}; nothing was placed.",
            )
        elif fault.kind == STORM_429:
            reply = storm_reply(fault.seconds, state.retry_after_header)
        else:
            authorization, content_type = self.headers.get("Authorization"), self.headers.get("Content-Type")
            reply = state.handle_call(authorization, content_type, raw, self._arrived)
        summary = describe_call(reply.record["body"]) if reply.record is not None else ""
        if fault.kind == RESET_AFTER_ACCEPT:
            note = f"would answer {reply.status}, reset instead {summary}".rstrip()
            self._log("POST", API_PATH, None, started, fault, note=note)
            self._abort(reset=True)
            return
        if fault.kind == LATENCY and fault.seconds > 0:
            self.server.stopping.wait(fault.seconds)  # a stopping server does not keep clients waiting
        self._log("POST", API_PATH, reply.status, started, fault, note=summary)
        if fault.kind == INTERIM:
            self._interim(fault.status)
        self._reply(reply, fault)

    def _read_body(self) -> bytes | Reply:
        """The whole body, or an error reply (the connection is then closed after answering)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            return error_reply(411, "LengthRequired", "Send the body with a Content-Length header")
        text = self.headers.get("Content-Length", "0").strip() or "0"
        if not text.isdigit():
            self.close_connection = True
            return error_reply(400, "ValidationError", "Invalid request body: invalid Content-Length header")
        length = int(text)
        limit = self.server.state.max_body_bytes
        if length > limit:
            if length <= _DRAIN_LIMIT:
                self._drain(length)  # so that the client reads the 413 instead of a reset
            else:
                self.close_connection = True
            return error_reply(413, "PayloadTooLarge", f"Request body is larger than {limit} bytes")
        return self.rfile.read(length) if length else b""

    def _drain(self, length: int) -> None:
        while length > 0:
            chunk = self.rfile.read(min(length, 65536))
            if not chunk:
                self.close_connection = True
                return
            length -= len(chunk)

    # --- controls ------------------------------------------------------------------------------

    def _control(self, method: str, name: str) -> None:
        raw = self._read_body()
        reply = raw if isinstance(raw, Reply) else answer_control(self.server.state, method, name, raw)
        self._reply(reply)
        logger.debug("%s %s -> %s", method, mask_log_text(self.path), reply.status)

    # --- low level -----------------------------------------------------------------------------

    def _reply(self, reply: Reply, fault: Fault | None = None) -> None:
        """Send ``reply``: at once, or as ``fault`` says (trickled, or with a huge body)."""
        self._count(reply.status)
        payload = json.dumps(reply.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        kind = fault.kind if fault is not None else OK
        if kind == HUGE_BODY and fault is not None and self.command != "HEAD":
            self._send_huge(reply, payload, fault.size)
            return
        head = self._head(reply, len(payload))
        body = b"" if self.command == "HEAD" else payload
        if kind == TRICKLE and fault is not None:
            self._trickle(head + body, fault.seconds)
        elif kind == TRICKLE_BODY and fault is not None:
            self.wfile.write(head)
            self._trickle(body, fault.seconds)
        else:
            self.wfile.write(head + body)

    def _head(self, reply: Reply, length: int) -> bytes:
        """Status line and headers of ``reply`` for a body of ``length`` bytes."""
        lines = [
            f"{self.protocol_version} {reply.status} {self.responses.get(reply.status, ('',))[0]}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
            "Content-Type: application/json",
            f"Content-Length: {length}",
            *(f"{name}: {value}" for name, value in reply.headers.items()),
        ]
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "strict")

    def _interim(self, status: int) -> None:
        """Send an interim (1xx) answer: a status line and no headers, then the final answer follows."""
        reason = self.responses.get(status, ("Processing" if status == 102 else "Interim",))[0]
        self.wfile.write(f"{self.protocol_version} {status} {reason}\r\n\r\n".encode("latin-1"))

    def _trickle(self, data: bytes, seconds: float) -> None:
        """Send ``data`` one byte every ``seconds``; stop when the client leaves or the server stops."""
        for index in range(len(data)):
            if index and self.server.stopping.wait(seconds):
                break
            try:
                self.wfile.write(data[index : index + 1])
            except OSError:
                break
        self.close_connection = True  # the client may have given up half way: never reuse this one

    def _send_huge(self, reply: Reply, payload: bytes, size: int) -> None:
        """Send ``reply`` as a JSON body padded to ``size`` bytes, as fast as the client reads it."""
        prefix = payload[:-1] + (b',"padding":"' if reply.body else b'"padding":"')
        suffix = b'"}'
        size = max(size, len(prefix) + len(suffix))
        self.close_connection = True
        fill = size - len(prefix) - len(suffix)
        chunk = b"x" * _HUGE_CHUNK
        try:
            self.wfile.write(self._head(reply, size) + prefix)
            while fill > 0 and not self.server.stopping.is_set():
                self.wfile.write(chunk[: min(fill, _HUGE_CHUNK)])
                fill -= _HUGE_CHUNK
            self.wfile.write(suffix)
        except OSError:
            pass  # the client stopped reading: as it should

    def _abort(self, *, reset: bool) -> None:
        """Close the connection without answering; with ``reset`` the peer gets a TCP RST."""
        self._count(None)
        self.close_connection = True
        try:
            if reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()
        except OSError:
            pass

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer protocol errors (bad request line, unknown method, ...) with Alta's JSON shape."""
        self.close_connection = True
        reply = error_reply(
            code, "BadRequest" if code == 400 else "HTTPError", message or self.responses.get(code, ("",))[0]
        )
        with contextlib.suppress(OSError):
            self._reply(reply)

    def _log(
        self,
        method: str,
        path: str,
        status: int | None,
        started: float,
        fault: Fault | None = None,
        note: str = "",
    ) -> None:
        if not logger.isEnabledFor(logging.INFO):
            return
        elapsed = (time.perf_counter() - started) * 1000
        outcome = "no answer" if status is None else str(status)
        extra = "" if fault is None or fault.kind == OK else f" fault={fault}"
        target = mask_log_text(path)  # a path or query string may hold a phone number or an email
        logger.info(
            "%s %s -> %s in %.1f ms%s%s",
            mask_log_text(method),
            target,
            outcome,
            elapsed,
            extra,
            f" {note}" if note else "",
        )

    def log_message(self, format: str, *args: Any) -> None:
        """Silence ``BaseHTTPRequestHandler``'s stderr log: the sandbox logs through ``logging``, masked."""
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s", self.address_string(), mask_log_text(format % args))


def _not_allowed(method: str, allow: str) -> Reply:
    return error_reply(
        405, "MethodNotAllowed", f"{mask_log_text(method)} is not allowed here", {"Allow": allow}
    )
