"""Bulk calling: every record of a campaign ends in exactly one state. Pure Python: no Airflow.

:func:`run_pass` walks the records once. A record is validated with the same model as a single
call, deduplicated, checked against the suppression list, against earlier tries' progress and its
calling window, then checked against the contact ledger (``contact_gate``: opt-outs and the
contact policy), paced and sent. Progress is written before and after each send
(:mod:`~airflow_provider_alta.send_record`), so a record whose send was interrupted is reported as
ambiguous and never resent. Records outside their
window are left pending with the time it opens; the caller decides to wait, defer or skip.

No record can crash a pass: whatever cannot be checked is reported as invalid with the path it
failed at. A record source that raises ends the pass (:attr:`PassResult.source_error`), with every
record read so far accounted for. A :class:`Stopper` ends a pass between records: the send in
flight finishes and is recorded, no new one starts, and the rest are ``not_reached``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Sized
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_provider_alta import contact_gate, exceptions, send_record
from airflow_provider_alta.contact_gate import Blocked, ContactGate
from airflow_provider_alta.exceptions import AltaAPIError, AltaRateLimitError, AltaValidationError
from airflow_provider_alta.pacing import Gate, GateError
from airflow_provider_alta.payload import AssistantCall
from airflow_provider_alta.send_record import (
    SEND,
    Earlier,
    RecordWriteError,
    after_failure,
    read_record,
    send_once,
)

# The progress records are send_record's (shared with the single-call operator), named here too.
ProgressStore = send_record.ProgressStore
MemoryProgress = send_record.MemoryProgress
progress_key = send_record.progress_key
describe_error = send_record.describe_error
SENDING = send_record.SENDING
UNSENT = send_record.UNSENT

CALLED = send_record.CALLED
INVALID = "invalid"
REJECTED = exceptions.REJECTED
AMBIGUOUS = exceptions.AMBIGUOUS
SUPPRESSED = "skipped_suppressed"
DUPLICATE = "skipped_duplicate"
OUTSIDE_HOURS = "skipped_outside_hours"
NOT_REACHED = exceptions.NOT_REACHED
DRY_RUN = "dry_run"
SKIPPED_RECENTLY_CALLED = "skipped_recently_called"  # the contact policy's window is full
OPTED_OUT = "opted_out"  # the person opted out (the contact ledger)
STATES = (
    CALLED,
    INVALID,
    REJECTED,
    AMBIGUOUS,
    SUPPRESSED,
    DUPLICATE,
    OUTSIDE_HOURS,
    SKIPPED_RECENTLY_CALLED,
    OPTED_OUT,
    NOT_REACHED,
    DRY_RUN,
)
FAILURES = (INVALID, REJECTED, AMBIGUOUS, NOT_REACHED)


class StopRequested(Exception):
    """A wait was cut short because the pass was asked to stop. Nothing was in flight."""


class Stopper:
    """A request to stop a running pass; safe to make from a signal handler or another thread.

    :meth:`sleep` is how a pass waits (pacing, 429s, connect retries, windows); a request wakes it.
    The wake-up is a lock held until the request releases it: releasing never blocks, so a signal
    handler may do it, and a sleep that the signal interrupted retries and finds the lock free.
    """

    def __init__(self) -> None:
        self.reason: str | None = None
        self._wake = threading.Lock()
        self._wake.acquire()

    @property
    def requested(self) -> bool:
        return self.reason is not None

    def request(self, reason: str) -> None:
        """Ask the pass to stop; the first reason given is kept."""
        if self.reason is not None:
            return
        self.reason = reason
        with contextlib.suppress(RuntimeError):  # a concurrent request released it first
            self._wake.release()

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or raise :class:`StopRequested` as soon as a stop is requested."""
        if self.reason is None and seconds > 0 and self._wake.acquire(timeout=seconds):
            self._wake.release()  # stay released: every later wait ends at once too
        if self.reason is not None:
            raise StopRequested(self.reason)


class WindowVerdict(Protocol):
    """A calling-window verdict for one call, e.g. ``calling_hours.WindowDecision``: open, or pending
    until ``opens_at`` (``None``: never, so skip)."""

    @property
    def open(self) -> bool: ...

    @property
    def reason(self) -> str: ...

    @property
    def opens_at(self) -> Any: ...


@dataclass(frozen=True)
class Decision:
    """A plain :class:`WindowVerdict`: open, or pending until ``opens_at``, or ``skip``."""

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
    window: Callable[[AssistantCall], WindowVerdict] | None = None
    wait_for_window: bool = True  # False: a record outside its window is skipped, never waited for
    dedupe_key: Callable[[Any, AssistantCall], Hashable] | None = None
    suppressed: Callable[[Any, AssistantCall], bool] | None = None
    record_key: Callable[[int, Any], str] = lambda index, _record: str(index)
    dry_run: bool = False
    attempt: str = "this try"  # labels progress entries, so a replay can say whether it was this try
    show_phone: Callable[[str], str] | None = None  # adds each record's number (masked or raw) to its outcome
    contact: ContactGate | None = None  # the contact ledger and policy; None: no ledger
    contact_by: str = ""  # the ledger's label of this task instance (stable across its tries)
    contact_resume: bool = False  # progress is durable: "no record" proves nothing was sent
    on_progress: Callable[[PassResult], None] | None = None
    progress_every: float = 10.0
    total: int | None = None  # how many records, for the ETA when the source has no len()
    clock: Callable[[], float] = time.monotonic
    stop: Stopper = field(default_factory=Stopper)


@dataclass
class PassResult:
    """Outcomes of one pass over the records: final states, and records still waiting for a window."""

    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending: dict[str, Any] = field(default_factory=dict)  # record key -> when its window opens (UTC)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATES, 0))
    sent: int = 0
    retry_after: float | None = None  # set when a long 429 stopped the pass: run another after it
    stopped: str | None = None  # why the pass stopped early (everything after is not reached)
    source_error: str | None = None  # the record source raised this (masked): records after it unread
    started: float = 0.0
    total: int | None = None

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def record(self, key: str, state: str, reason: str = "", **extra: Any) -> None:
        self.outcomes[key] = {"state": state, **({"reason": reason} if reason else {}), **extra}
        self.counts[state] += 1


def run_pass(records: Iterable[Any], plan: Plan) -> PassResult:
    """Process every record once; see the module docstring."""
    result = PassResult(started=plan.clock(), total=plan.total)
    seen: dict[Hashable, str] = {}
    last_report = result.started
    for index, record in _read(records, result):
        key = _unique_key(_key(plan, index, record), index, result)
        if not result.stopped and plan.stop.requested:
            _stop(result, f"asked to stop ({plan.stop.reason})")
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


def _read(records: Iterable[Any], result: PassResult) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, record)``; a source that raises ends the pass with its error recorded."""
    index = 0
    try:
        if isinstance(records, Sized):
            result.total = len(records)
        for record in records:
            yield index, record
            index += 1
    except Exception as exc:
        result.total = None
        result.source_error = describe_error(exc)
        _stop(result, f"the record source failed after {index} record(s) ({result.source_error})")


def _key(plan: Plan, index: int, record: Any) -> str:
    try:
        key = plan.record_key(index, record)
        return key if isinstance(key, str) else str(key)
    except Exception:
        return str(index)


def _unique_key(key: str, index: int, result: PassResult) -> str:
    """``key``, or a variant no earlier record has, so that no outcome is overwritten."""
    candidate, n = key, 0
    while candidate in result.outcomes or candidate in result.pending:
        n += 1
        candidate = f"{key} (record {index})" if n == 1 else f"{key} (record {index}, {n})"
    return candidate


def _process(
    key: str, record: Any, plan: Plan, result: PassResult, seen: dict[Hashable, str]
) -> AssistantCall | None:
    try:
        call = plan.prepare(record)
    except AltaValidationError as exc:
        reason = "; ".join(str(e) for e in exc.errors) or exc.message
        result.record(key, INVALID, reason)
        return None
    except Exception as exc:  # a record so odd that reading it raised: report it, never crash the pass
        result.record(key, INVALID, f"prospect: could not be read ({describe_error(exc)})")
        return None
    try:
        identity: Hashable = plan.dedupe_key(record, call) if plan.dedupe_key else ("record", key)
        pkey = progress_key(identity)
        duplicate_of = seen.get(identity) if plan.dedupe_key else None
    except Exception as exc:
        result.record(key, INVALID, f"dedupe_key: could not be computed ({describe_error(exc)})")
        return call
    if duplicate_of is not None:
        result.record(key, DUPLICATE, f"same dedupe key as record {duplicate_of}")
        return call
    if plan.dedupe_key:
        seen[identity] = key
    try:
        suppressed = bool(plan.suppressed(record, call)) if plan.suppressed else False
    except Exception as exc:
        result.record(key, INVALID, f"suppression: could not be checked ({describe_error(exc)})")
        return call
    if suppressed:
        result.record(key, SUPPRESSED, "on the suppression list")
        return call
    earlier = read_record(plan.progress.get(pkey), plan.attempt)
    if earlier.decision != SEND:
        if earlier.decision == send_record.MAYBE_PLACED and plan.contact is not None:
            plan.contact.settle_maybe_placed(call.phone_number, plan.contact_by)
        _replay(key, earlier, plan, result)
        return call
    if plan.window is not None:
        decision = plan.window(call)
        if not decision.open:
            opens_at = decision.opens_at if plan.wait_for_window else None
            if opens_at is None:
                result.record(key, OUTSIDE_HOURS, decision.reason)
            elif plan.dry_run:
                result.record(key, DRY_RUN, f"valid; dry run, would wait for its window ({decision.reason})")
            else:
                result.pending[key] = opens_at
            return call
    if plan.dry_run:
        _dry_run(key, call, plan, result)
        return call
    _send(key, pkey, call, plan, result)
    return call


def _dry_run(key: str, call: AssistantCall, plan: Plan, result: PassResult) -> None:
    """A dry run reports what the contact ledger would do (read-only), else ``dry_run``."""
    if plan.contact is not None:
        try:
            blocked = plan.contact.check(call.phone_number)
        except AltaAPIError as exc:
            _failed(key, exc, result)
            return
        if blocked is not None:
            _blocked(key, blocked, call, plan, result)
            return
    result.record(key, DRY_RUN, "valid; dry run, not sent")


def _blocked(key: str, blocked: Blocked, call: AssistantCall, plan: Plan, result: PassResult) -> None:
    policy = plan.contact.policy if plan.contact is not None else None
    reason = contact_gate.blocked_reason(blocked, call.phone_number, policy)
    if blocked.reason == OPTED_OUT:
        result.record(key, OPTED_OUT, reason)
    else:
        next_allowed = contact_gate.next_allowed_iso(blocked)
        result.record(key, SKIPPED_RECENTLY_CALLED, reason, next_allowed=next_allowed)


def _replay(key: str, earlier: Earlier, plan: Plan, result: PassResult) -> None:
    """A record an earlier try (or pass) already dealt with: report it, never send it again."""
    when = earlier.when
    if earlier.state == SENDING:
        result.record(key, AMBIGUOUS, f"{when} stopped while sending it: it may have been placed; not resent")
    elif earlier.state is None:  # unreadable
        result.record(key, AMBIGUOUS, f"{earlier.reason} ({when}): it may have been placed; not resent")
    else:
        reason = earlier.reason
        result.record(key, earlier.state, f"{reason} ({when})" if reason else when)
        if earlier.state == CALLED and earlier.this_try:
            result.sent += 1


def _send(key: str, pkey: str, call: AssistantCall, plan: Plan, result: PassResult) -> None:
    """Reserve the person in the contact ledger, pass the gates, send with the progress record
    written before and after (``send_record.send_once``); every outcome ends the record."""
    passed: list[Gate] = []

    def attempt() -> dict[str, Any]:
        for gate in plan.gates:
            gate.acquire()
            passed.append(gate)
        if plan.stop.requested:
            raise StopRequested(plan.stop.reason)
        # A StopRequested raised by a wait inside the send (a 429, a connect retry) left nothing
        # in flight, so the record is left unsent.
        return send_once(plan.progress, pkey, plan.attempt, lambda: plan.send(call), unsent=(StopRequested,))

    try:
        outcome = contact_gate.guarded_send(
            plan.contact,
            call.phone_number,
            by=plan.contact_by,
            resume=plan.contact_resume,
            send=attempt,
            unsent=(StopRequested, GateError),
        )
    except RecordWriteError:
        raise  # the store failed: the task fails, with the record as it stands
    except GateError as exc:
        result.record(key, NOT_REACHED, str(exc))
        _stop(result, f"the rate limiter failed ({exc})")
    except StopRequested:
        _stopped_before_sending(key, plan, result)
    except AltaAPIError as exc:  # from Alta, the client, or the contact ledger before sending
        _failed(key, exc, result)
    except Exception as exc:
        # Not an answer from Alta but a failure here, perhaps after the request left: it may have
        # been placed. Never resent; and the pass stops, since the next send would likely fail too.
        result.record(key, AMBIGUOUS, after_failure(exc)[1])
        _stop(result, f"an unexpected error while sending ({type(exc).__name__})")
    else:
        if isinstance(outcome, Blocked):
            _blocked(key, outcome, call, plan, result)
        else:
            result.sent += 1
            result.record(key, CALLED)
    finally:
        _release(passed)


def _stopped_before_sending(key: str, plan: Plan, result: PassResult) -> None:
    why = f"asked to stop ({plan.stop.reason})"
    result.record(key, NOT_REACHED, f"{why} before it was sent")
    _stop(result, why)


def _release(gates: list[Gate]) -> None:
    for gate in reversed(gates):
        gate.release()


def _failed(key: str, exc: AltaAPIError, result: PassResult) -> None:
    """A send that Alta (or the client) answered with an error: the error's class says what it means.

    A ``not_reached`` record (nothing placed) is left unsent: a later pass or try sends it.
    """
    if isinstance(exc, AltaRateLimitError):
        result.retry_after = exc.retry_after
    result.record(key, exc.batch_state, exc.record_reason)
    if exc.stops_batch:
        _stop(result, exc.stop_reason)


def _stop(result: PassResult, why: str) -> None:
    if result.stopped is None:  # the first reason is the one that matters
        result.stopped = why
