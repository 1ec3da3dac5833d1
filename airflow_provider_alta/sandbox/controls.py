"""The ``/_sandbox/`` control endpoints (no token; keep the sandbox on loopback).

``GET calls`` (the journal, with each call's state), ``GET stats``, ``GET health``, ``POST reset``,
``GET|POST faults``, ``GET|POST config``, ``POST spend`` (``{"account", "requests"}``: an outside
client of the account sends that many requests now) and ``GET|POST outside``
(``{"account", "per_minute"}``: a background outside client; 0 stops it). ``account`` defaults to
the first account.
"""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_alta.sandbox.core import Reply, SandboxState, error_reply
from airflow_provider_alta.sandbox.faults import FaultPlan

CONTROL_PREFIX = "/_sandbox/"
#: Each control endpoint and the methods it answers (any other method gets 405 with ``Allow``).
CONTROLS: dict[str, tuple[str, ...]] = {
    "calls": ("GET",),
    "stats": ("GET",),
    "health": ("GET",),
    "reset": ("POST",),
    "faults": ("GET", "POST"),
    "config": ("GET", "POST"),
    "spend": ("POST",),
    "outside": ("GET", "POST"),
}


def answer_control(state: SandboxState, method: str, name: str, raw: bytes) -> Reply:
    """The answer of control ``name`` to ``method`` with body ``raw``; 400 for a bad request."""
    allowed = CONTROLS.get(name)
    if allowed is None:
        return error_reply(404, "NotFound", f"No sandbox control {method} {CONTROL_PREFIX}{name}")
    if method not in allowed:
        return error_reply(
            405, "MethodNotAllowed", f"{method} is not allowed here", {"Allow": ", ".join(allowed)}
        )
    try:
        return Reply(200, _answer(state, method, name, raw))
    except ValueError as exc:
        return error_reply(400, "ValidationError", str(exc))


def _answer(state: SandboxState, method: str, name: str, raw: bytes) -> dict[str, Any]:
    if method == "GET":
        if name == "calls":
            calls = state.calls()
            return {"count": len(calls), "calls": calls}
        if name == "stats":
            return state.stats()
        if name == "health":
            return {"status": "ok"}
        if name == "faults":
            return state.faults.to_dict()
        if name == "outside":
            state.outside.tick()
            return state.outside.stats()
        return state.config()
    body = _json_object(raw)
    if name == "reset":
        state.reset()
        return {"reset": True}
    if name == "faults":
        state.faults = FaultPlan.from_dict(body)
        return state.faults.to_dict()
    if name == "config":
        return state.configure(**body)
    if name == "spend":
        return state.spend(_required(body, "requests"), body.get("account"))
    return state.set_outside_rate(_required(body, "per_minute"), body.get("account"))


def _required(body: dict[str, Any], key: str) -> Any:
    """``body[key]``, where ``body`` may have only ``key`` and ``account``."""
    unknown = set(body) - {key, "account"}
    if unknown:
        raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
    if key not in body:
        raise ValueError(f"{key}: is required")
    return body[key]


def _json_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError("malformed JSON") from None
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value
