"""Fault injection plan: an exact script for the next requests, then seeded random rates.

Fault kinds (their names are used in scripts, rates, the CLI and ``/_sandbox/faults``):

``ok``
    No fault: the request is handled normally.
``latency[:SECONDS]``
    Handled normally, but the answer is delayed. An accepted call is journaled *before* the delay,
    so a client read timeout leaves a placed call behind (an ambiguous outcome, like the real one).
``5xx[:STATUS]``
    Answered with a 5xx error (500, 502 or 503) and **not** journaled. A real 5xx is ambiguous;
    the sandbox's is a clean "nothing placed" so that tests can tell the two apart.
``429[:SECONDS]``
    A 429 storm: answered with 429 (``Retry-After`` per the server's switch), not journaled.
``drop_before_body``
    The connection is closed without reading the body and without answering; nothing is placed.
``reset_after_accept``
    Handled normally; if the call is accepted it is journaled, then the connection is reset
    (TCP RST) without any answer: the call was placed but the client cannot know it.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

OK = "ok"
LATENCY = "latency"
ERROR_5XX = "5xx"
STORM_429 = "429"
DROP_BEFORE_BODY = "drop_before_body"
RESET_AFTER_ACCEPT = "reset_after_accept"

#: Fault kinds in the order their rates are drawn.
FAULT_KINDS: tuple[str, ...] = (LATENCY, ERROR_5XX, STORM_429, DROP_BEFORE_BODY, RESET_AFTER_ACCEPT)
ERROR_STATUSES: tuple[int, ...] = (500, 502, 503)
_ALIASES = {"error_5xx": ERROR_5XX, "storm_429": STORM_429, "too_many_requests": STORM_429}


@dataclass(frozen=True)
class Fault:
    """One fault decision: ``kind`` plus its argument (seconds for latency/429, status for 5xx)."""

    kind: str = OK
    seconds: float = 0.0
    status: int = 0

    @classmethod
    def parse(cls, text: str, *, latency: float = 1.0, retry_after: float = 1.0) -> Fault:
        """Parse ``"ok"``, ``"latency:2.5"``, ``"5xx"``, ``"5xx:502"``, ``"429"``, ``"429:30"``, ..."""
        name, _, arg = str(text).strip().partition(":")
        kind = _ALIASES.get(name.strip().lower(), name.strip().lower())
        arg = arg.strip()
        try:
            if kind in (OK, DROP_BEFORE_BODY, RESET_AFTER_ACCEPT):
                if arg:
                    raise ValueError
                return cls(kind)
            if kind == LATENCY:
                seconds = float(arg) if arg else latency
                if seconds < 0:
                    raise ValueError
                return cls(kind, seconds=seconds)
            if kind == STORM_429:
                seconds = float(arg) if arg else retry_after
                if seconds < 0:
                    raise ValueError
                return cls(kind, seconds=seconds)
            if kind == ERROR_5XX:
                status = int(arg) if arg else ERROR_STATUSES[0]
                if not 500 <= status <= 599:
                    raise ValueError
                return cls(kind, status=status)
        except ValueError:
            raise ValueError(f"invalid argument in fault {text!r}") from None
        raise ValueError(
            f"unknown fault {text!r}: expected one of ok, latency[:SECONDS], 5xx[:STATUS], 429[:SECONDS], "
            "drop_before_body, reset_after_accept"
        )

    def __str__(self) -> str:
        if self.kind in (LATENCY, STORM_429):
            return f"{self.kind}:{self.seconds:g}"
        if self.kind == ERROR_5XX:
            return f"{self.kind}:{self.status}"
        return self.kind


class FaultPlan:
    """Decides the fault for each ``POST /assistant/calls`` request. Thread-safe.

    The ``script`` entries are used first, one per request, in order; after that each fault kind
    is drawn with its probability in ``rates`` from a RNG seeded with ``seed``.
    """

    def __init__(
        self,
        rates: Mapping[str, float] | None = None,
        *,
        script: Iterable[str | Fault] = (),
        latency: float = 1.0,
        retry_after: float = 1.0,
        seed: int | None = 0,
    ) -> None:
        if latency < 0 or retry_after < 0:
            raise ValueError("latency and retry_after must not be negative")
        self.latency = float(latency)
        self.retry_after = float(retry_after)
        self.seed = seed
        self.rates = _check_rates(rates or {})
        self._script: deque[Fault] = deque(
            item if isinstance(item, Fault) else Fault.parse(item, latency=latency, retry_after=retry_after)
            for item in script
        )
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultPlan:
        """Build a plan from its dict form (what ``to_dict`` returns; every key optional)."""
        unknown = set(data) - {"rates", "script", "latency", "retry_after", "seed"}
        if unknown:
            raise ValueError(f"unknown fault plan keys: {', '.join(sorted(unknown))}")
        rates = data.get("rates") or {}
        script = data.get("script") or []
        if not isinstance(rates, Mapping):
            raise ValueError("rates: must be an object of fault kind to probability")
        if isinstance(script, (str, bytes)) or not isinstance(script, Iterable):
            raise ValueError("script: must be a list of fault names")
        seed = data.get("seed", 0)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("seed: must be an integer or null")
        try:
            latency = float(data.get("latency", 1.0))
            retry_after = float(data.get("retry_after", 1.0))
        except (TypeError, ValueError):
            raise ValueError("latency and retry_after must be numbers") from None
        return cls(rates, script=script, latency=latency, retry_after=retry_after, seed=seed)

    def next(self) -> Fault:
        """Return the fault for the next request."""
        with self._lock:
            if self._script:
                return self._script.popleft()
            if not self.rates:
                return Fault(OK)
            draw = self._rng.random()
        cumulative = 0.0
        for kind in FAULT_KINDS:
            cumulative += self.rates.get(kind, 0.0)
            if draw < cumulative:
                return self._random_fault(kind)
        return Fault(OK)

    def _random_fault(self, kind: str) -> Fault:
        if kind == LATENCY:
            return Fault(kind, seconds=self.latency)
        if kind == STORM_429:
            return Fault(kind, seconds=self.retry_after)
        if kind == ERROR_5XX:
            with self._lock:
                status = self._rng.choice(ERROR_STATUSES)
            return Fault(kind, status=status)
        return Fault(kind)

    @property
    def remaining_script(self) -> list[str]:
        """The script entries not used yet."""
        with self._lock:
            return [str(fault) for fault in self._script]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view of the plan (what ``GET /_sandbox/faults`` returns)."""
        return {
            "rates": dict(self.rates),
            "script": self.remaining_script,
            "latency": self.latency,
            "retry_after": self.retry_after,
            "seed": self.seed,
        }


def _check_rates(rates: Mapping[str, float]) -> dict[str, float]:
    checked: dict[str, float] = {}
    for name, value in rates.items():
        kind = _ALIASES.get(str(name).lower(), str(name).lower())
        if kind not in FAULT_KINDS:
            raise ValueError(f"rates: unknown fault kind {name!r}: expected one of {', '.join(FAULT_KINDS)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ValueError(f"rates.{name}: must be a probability between 0 and 1")
        if value:
            checked[kind] = float(value)
    if sum(checked.values()) > 1.0 + 1e-9:
        raise ValueError("rates: probabilities must add up to at most 1")
    return checked
