"""Bulk calling: every record of a campaign ends in exactly one state. Pure Python: no Airflow.

:func:`run_pass` walks the records once. A record is validated with the same model as a single
call, deduplicated, checked against the suppression list, against earlier tries' progress and its
calling window, then paced and sent. Progress is written before and after each send, so a record
whose send was interrupted is reported as ambiguous and never resent. Records outside their
window are left pending with the time it opens; the caller decides to wait, defer or skip.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sized
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_provider_alta.exceptions import (
    AltaAmbiguousOutcomeError,
    AltaAPIError,
    AltaAuthenticationError,
    AltaConnectionError,
    AltaRateLimitError,
    AltaValidationError,
)
from airflow_provider_alta.masking import mask_text
from airflow_provider_alta.pacing import Gate, GateError
from airflow_provider_alta.payload import AssistantCall

CALLED = "called"
INVALID = "invalid"
REJECTED = "rejected"
AMBIGUOUS = "ambiguous"
SUPPRESSED = "skipped_suppressed"
DUPLICATE = "skipped_duplicate"
OUTSIDE_HOURS = "skipped_outside_hours"
NOT_REACHED = "not_reached"
DRY_RUN = "dry_run"
STATES = (CALLED, INVALID, REJECTED, AMBIGUOUS, SUPPRESSED, DUPLICATE, OUTSIDE_HOURS, NOT_REACHED, DRY_RUN)
FAILURES = (INVALID, REJECTED, AMBIGUOUS, NOT_REACHED)

#: What the progress store holds for a record: the send is under way, or how it ended.
SENDING = "sending"
UNSENT = "unsent"


class ProgressStore(Protocol):
    """Durable per-record progress that outlives a try (Airflow 3.3+: the task state store)."""

    def get(self, key: str) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...


class MemoryProgress:
    """Progress kept in a dict, e.g. carried through a deferral on Airflow versions without a store."""

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self.data: dict[str, Any] = dict(data or {})

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value


@dataclass(frozen=True)
class Decision:
    """A calling-window verdict for one call: open, or pending until ``opens_at``, or ``skip``."""

    open: bool
    reason: str = ""
    opens_at: Any = None


@dataclass
class Plan:
    """What a pass needs: how to turn a record into a call, and how to gate and send it."""

    prepare: Callable[[Any], AssistantCall]
    send: Callable[[AssistantCall], dict[str, Any]]
    progress: ProgressStore
    gates: tuple[Gate, ...] = ()
    window: Callable[[AssistantCall], Decision] | None = None
    dedupe_key: Callable[[Any, AssistantCall], Hashable] | None = None
    suppressed: Callable[[Any, AssistantCall], bool] | None = None
    record_key: Callable[[int, Any], str] = lambda index, _record: str(index)
    dry_run: bool = False
    attempt: str = "this try"  # labels progress entries, so a replay can say whether it was this try
    show_phone: Callable[[str], str] | None = None  # adds each record's number (masked or raw) to its outcome
    on_progress: Callable[[PassResult], None] | None = None
    progress_every: float = 10.0
    clock: Callable[[], float] = time.monotonic


@dataclass
class PassResult:
    """Outcomes of one pass over the records: final states, and records still waiting for a window."""

    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending: dict[str, Any] = field(default_factory=dict)  # record key -> when its window opens (UTC)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATES, 0))
    sent: int = 0
    retry_after: float | None = None  # set when a long 429 stopped the pass: run another after it
    stopped: str | None = None  # why the pass stopped early (everything after is not reached)
    started: float = 0.0
    total: int | None = None

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def record(self, key: str, state: str, reason: str = "", **extra: Any) -> None:
        self.outcomes[key] = {"state": state, **({"reason": reason} if reason else {}), **extra}
        self.counts[state] += 1


def progress_key(value: Hashable) -> str:
    """The progress store key of a record: a hash, so no phone number is stored in Airflow's DB."""
    return "alta:" + hashlib.sha256(repr(value).encode()).hexdigest()[:24]


def run_pass(records: Iterable[Any], plan: Plan) -> PassResult:
    """Process every record once; see the module docstring."""
    result = PassResult(started=plan.clock())
    if isinstance(records, Sized):
        result.total = len(records)
    seen: dict[Hashable, str] = {}
    last_report = result.started
    iterator: Iterator[Any] = iter(records)
    for index, record in enumerate(iterator):
        key = plan.record_key(index, record)
        if key in result.outcomes or key in result.pending:
            key = f"{key} (record {index})"
        if result.stopped:
            result.record(key, NOT_REACHED, result.stopped)
            continue
        call = _process(key, record, plan, result, seen)
        if call is not None and plan.show_phone and key in result.outcomes:
            result.outcomes[key]["phone_number"] = plan.show_phone(call.phone_number)
        now = plan.clock()
        if plan.on_progress and now - last_report >= plan.progress_every:
            last_report = now
            plan.on_progress(result)
    return result


def _process(
    key: str, record: Any, plan: Plan, result: PassResult, seen: dict[Hashable, str]
) -> AssistantCall | None:
    try:
        call = plan.prepare(record)
    except AltaValidationError as exc:
        reason = "; ".join(str(e) for e in exc.errors) or exc.message
        result.record(key, INVALID, reason)
        return None
    identity: Hashable = plan.dedupe_key(record, call) if plan.dedupe_key else ("record", key)
    if plan.dedupe_key:
        if identity in seen:
            result.record(key, DUPLICATE, f"same dedupe key as record {seen[identity]}")
            return call
        seen[identity] = key
    if plan.suppressed and plan.suppressed(record, call):
        result.record(key, SUPPRESSED, "on the suppression list")
        return call
    pkey = progress_key(identity)
    earlier = plan.progress.get(pkey)
    if isinstance(earlier, Mapping) and earlier.get("state") not in (None, UNSENT):
        _replay(key, earlier, plan, result)
        return call
    if plan.window is not None:
        decision = plan.window(call)
        if not decision.open:
            if decision.opens_at is None:
                result.record(key, OUTSIDE_HOURS, decision.reason)
            elif plan.dry_run:
                result.record(key, DRY_RUN, f"valid; dry run, would wait for its window ({decision.reason})")
            else:
                result.pending[key] = decision.opens_at
            return call
    if plan.dry_run:
        result.record(key, DRY_RUN, "valid; dry run, not sent")
        return call
    _send(key, pkey, call, plan, result)
    return call


def _replay(key: str, earlier: Mapping[str, Any], plan: Plan, result: PassResult) -> None:
    """A record an earlier try (or pass) already dealt with: report it, never send it again."""
    state = earlier["state"]
    this_try = earlier.get("by") == plan.attempt
    when = "an earlier pass of this try" if this_try else "an earlier try"
    if state == SENDING:
        result.record(key, AMBIGUOUS, f"{when} stopped while sending it: it may have been placed; not resent")
    elif state in STATES:
        reason = earlier.get("reason", "")
        result.record(key, state, f"{reason} ({when})" if reason else when)
        if state == CALLED and this_try:
            result.sent += 1


def _send(key: str, pkey: str, call: AssistantCall, plan: Plan, result: PassResult) -> None:
    passed: list[Gate] = []
    try:
        for gate in plan.gates:
            gate.acquire()
            passed.append(gate)
    except GateError as exc:
        _release(passed)
        result.record(key, NOT_REACHED, str(exc))
        _stop(result, f"the rate limiter failed ({exc})")
        return
    try:
        _send_through(key, pkey, call, plan, result)
    finally:
        _release(passed)


def _release(gates: list[Gate]) -> None:
    for gate in reversed(gates):
        gate.release()


def _send_through(key: str, pkey: str, call: AssistantCall, plan: Plan, result: PassResult) -> None:
    plan.progress.set(pkey, {"state": SENDING, "by": plan.attempt})
    try:
        plan.send(call)
    except AltaRateLimitError as exc:
        # Nothing was placed. This record and every later one wait for the next pass.
        plan.progress.set(pkey, {"state": UNSENT, "by": plan.attempt})
        result.retry_after = exc.retry_after
        result.record(key, NOT_REACHED, f"rate limited: resume after {exc.retry_after:g} s")
        _stop(result, "waiting out Alta's rate limit")
        return
    except AltaConnectionError as exc:
        plan.progress.set(pkey, {"state": UNSENT, "by": plan.attempt})
        result.record(key, NOT_REACHED, exc.message)
        _stop(result, f"Alta could not be reached ({exc.message})")
        return
    except AltaAmbiguousOutcomeError as exc:
        _final(plan, pkey, result, key, AMBIGUOUS, exc.message)
        return
    except AltaAuthenticationError as exc:
        plan.progress.set(pkey, {"state": UNSENT, "by": plan.attempt})
        result.record(key, NOT_REACHED, f"token rejected: {exc.message}")
        _stop(result, "the API token was rejected (401)")
        return
    except AltaAPIError as exc:
        _final(plan, pkey, result, key, REJECTED, mask_text(str(exc)))
        return
    result.sent += 1
    _final(plan, pkey, result, key, CALLED, "")


def _final(plan: Plan, pkey: str, result: PassResult, key: str, state: str, reason: str) -> None:
    plan.progress.set(pkey, {"state": state, "by": plan.attempt, **({"reason": reason} if reason else {})})
    result.record(key, state, reason)


def _stop(result: PassResult, why: str) -> None:
    result.stopped = why
