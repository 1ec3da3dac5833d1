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
    ``429:0`` says "retry after 0 seconds" (and ``Retry-After: 0``): a client must still wait.
``drop_before_body``
    The connection is closed without reading the body and without answering; nothing is placed.
``reset_after_accept``
    Handled normally; if the call is accepted it is journaled, then the connection is reset
    (TCP RST) without any answer: the call was placed but the client cannot know it.
``interim[:STATUS]``
    Handled normally, but an interim answer (``102 Processing`` by default; any 1xx but 101) is
    sent before the final one, as a slow real server may. An accepted call is journaled: a client
    that takes the interim answer as final reports a placed call as something else.
``trickle[:SECONDS]``
    Handled normally (an accepted call is journaled first), but the whole answer, status line
    included, is sent one byte every SECONDS (default 1): a per-read timeout never fires, only an
    overall deadline does, and the client cannot know the call was placed.
``trickle_body[:SECONDS]``
    As ``trickle``, but the status line and headers are sent at once and only the body trickles:
    the client knows the status (``200``: placed) and never gets the whole body.
``huge_body[:MIB]``
    Handled normally (an accepted call is journaled), but the answer's JSON body is padded to MIB
    mebibytes (default 50), sent as fast as the client reads it. The status keeps its meaning.
"""

from __future__ import annotations

import math
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
INTERIM = "interim"
TRICKLE = "trickle"
TRICKLE_BODY = "trickle_body"
HUGE_BODY = "huge_body"

#: Fault kinds in the order their rates are drawn (new kinds go last, so seeded draws stay the same).
FAULT_KINDS: tuple[str, ...] = (
    LATENCY,
    ERROR_5XX,
    STORM_429,
    DROP_BEFORE_BODY,
    RESET_AFTER_ACCEPT,
    INTERIM,
    TRICKLE,
    TRICKLE_BODY,
    HUGE_BODY,
)
ERROR_STATUSES: tuple[int, ...] = (500, 502, 503)
INTERIM_STATUS = 102
TRICKLE_SECONDS = 1.0
HUGE_BODY_MIB = 50.0
MIB = 1024 * 1024
MAX_HUGE_BODY_MIB = 4096.0
MAX_SECONDS = 86400.0  # a day: longer waits are surely typos (and would overflow a thread wait)
_ALIASES = {
    "error_5xx": ERROR_5XX,
    "storm_429": STORM_429,
    "too_many_requests": STORM_429,
    "102": INTERIM,
    "processing": INTERIM,
}
_KIND_LIST = (
    "ok, latency[:SECONDS], 5xx[:STATUS], 429[:SECONDS], drop_before_body, reset_after_accept, "
    "interim[:STATUS], trickle[:SECONDS], trickle_body[:SECONDS], huge_body[:MIB]"
)


def seconds_value(name: str, value: Any) -> float:
    """``value`` as a finite, non-negative number of seconds; ``ValueError`` naming ``name`` if not."""
    if isinstance(value, bool):
        raise ValueError(f"{name}: must be a number of seconds, got {value!r}")
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: must be a number of seconds, got {value!r}") from None
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_SECONDS:
        raise ValueError(
            f"{name}: must be a finite number of seconds from 0 to {MAX_SECONDS:g}, got {value!r}"
        )
    return seconds


@dataclass(frozen=True)
class Fault:
    """One fault decision: ``kind`` plus its argument.

    ``seconds`` for latency, 429 and the trickles; ``status`` for 5xx and interim; ``mib`` (the body's
    size in mebibytes) for huge_body.
    """

    kind: str = OK
    seconds: float = 0.0
    status: int = 0
    mib: float = 0.0

    @classmethod
    def parse(cls, text: str, *, latency: float = 1.0, retry_after: float = 1.0) -> Fault:
        """Parse ``"ok"``, ``"latency:2.5"``, ``"5xx:502"``, ``"429:30"``, ``"interim:103"``, ..."""
        name, _, arg = str(text).strip().partition(":")
        kind = _ALIASES.get(name.strip().lower(), name.strip().lower())
        arg = arg.strip()
        try:
            if kind in (OK, DROP_BEFORE_BODY, RESET_AFTER_ACCEPT):
                if arg:
                    raise ValueError
                return cls(kind)
            if kind in _SECONDS_KINDS:
                default = {LATENCY: latency, STORM_429: retry_after}.get(kind, TRICKLE_SECONDS)
                return cls(kind, seconds=seconds_value(kind, arg or default))
            if kind == ERROR_5XX:
                status = int(arg) if arg else ERROR_STATUSES[0]
                if not 500 <= status <= 599:
                    raise ValueError
                return cls(kind, status=status)
            if kind == INTERIM:
                status = int(arg) if arg else INTERIM_STATUS
                if not 100 <= status <= 199 or status == 101:
                    raise ValueError
                return cls(kind, status=status)
            if kind == HUGE_BODY:
                mib = float(arg) if arg else HUGE_BODY_MIB
                if not 0 < mib <= MAX_HUGE_BODY_MIB:  # False for nan
                    raise ValueError
                return cls(kind, mib=mib)
        except ValueError as exc:
            detail = f": {exc}" if str(exc) and kind in _SECONDS_KINDS else ""
            raise ValueError(f"invalid argument in fault {text!r}{detail}") from None
        raise ValueError(f"unknown fault {text!r}: expected one of {_KIND_LIST}")

    def __str__(self) -> str:
        if self.kind in _SECONDS_KINDS:
            return f"{self.kind}:{self.seconds:g}"
        if self.kind in (ERROR_5XX, INTERIM):
            return f"{self.kind}:{self.status}"
        if self.kind == HUGE_BODY:
            return f"{self.kind}:{self.mib:g}"
        return self.kind

    @property
    def size(self) -> int:
        """The huge body's size in bytes."""
        return int(self.mib * MIB)


#: Kinds whose argument is seconds (latency and 429 default to the plan's, the trickles to 1 s).
_SECONDS_KINDS = frozenset({LATENCY, STORM_429, TRICKLE, TRICKLE_BODY})


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
        self.latency = seconds_value("latency", latency)
        self.retry_after = seconds_value("retry_after", retry_after)
        self.seed = seed
        self.rates = _check_rates(rates or {})
        self._script: deque[Fault] = deque(
            item
            if isinstance(item, Fault)
            else Fault.parse(item, latency=self.latency, retry_after=self.retry_after)
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
        latency = seconds_value("latency", data.get("latency", 1.0))
        retry_after = seconds_value("retry_after", data.get("retry_after", 1.0))
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
        if kind in (INTERIM, TRICKLE, TRICKLE_BODY, HUGE_BODY):
            return Fault.parse(kind)
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
            raise ValueError(f"rates.{name}: must be a probability between 0 and 1, got {value!r}")
        if value:
            checked[kind] = float(value)
    if sum(checked.values()) > 1.0 + 1e-9:
        raise ValueError("rates: probabilities must add up to at most 1")
    return checked
