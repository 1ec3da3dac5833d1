"""BatchTriggerAssistantCallsOperator: a whole campaign in one task, paced at Alta's rate limit."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Collection, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    BaseOperator,
    XComArg,
    literal,
)

from airflow_provider_alta.bulk import (
    FAILURES,
    NOT_REACHED,
    OUTSIDE_HOURS,
    Decision,
    MemoryProgress,
    PassResult,
    Plan,
    ProgressStore,
    Stopper,
    StopRequested,
    run_pass,
)
from airflow_provider_alta.masking import mask_phone, mask_value
from airflow_provider_alta.operators import _common
from airflow_provider_alta.operators._common import (
    KeepsPersonalDataOut,
    calling_hours,
    describe_records,
    keep_mapped_values_literal,
    masked_transfer,
    unwrap_literal,
)
from airflow_provider_alta.payload import AssistantCall, build_call, merge_record

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_alta.calling_hours import CallingHours
    from airflow_provider_alta.hooks.alta import AltaHook
    from airflow_provider_alta.pacing import Gate

Records = (
    Sequence[Mapping[str, Any]] | Callable[[], Iterable[Mapping[str, Any]]] | Iterable[Mapping[str, Any]]
)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _TaskStateProgress:
    """Progress in Airflow 3.3+'s task state store, which survives retries, restarts and clears."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def get(self, key: str) -> Any:
        return self.store.get(key)

    def set(self, key: str, value: Any) -> None:
        self.store.set(key, value)


class BatchTriggerAssistantCallsOperator(KeepsPersonalDataOut, BaseOperator):
    """Call every prospect of a campaign in one task, at the rate limit, each exactly once.

    Every record ends in one state: called, invalid, rejected, ambiguous, skipped (suppressed,
    duplicate, outside calling hours), or not reached; see the README. Record values are data and
    are never rendered as Jinja.

    :param prospects: records (dicts): a list, an XComArg, or a callable returning an iterable
        (streamed, for large sources).
    :param field_map: record key -> payload field, or ``"data.<name>"``.
    :param assistant_id: the assistant for every call (or a record field).
    :param data: JSON object shared by every call; a record's ``data`` keys win.
    :param call_transfer: transfer settings shared by every call.
    :param alta_conn_id: the Alta connection.
    :param default_region: country for numbers without ``+country`` (default: the connection's).
    :param calls_per_minute: pace (default: the connection's ``calls_per_minute``, else 100).
    :param concurrent_tasks: how many batch tasks may run at once on this token (e.g. the pool's
        slots); each then paces at ``calls_per_minute / concurrent_tasks``.
    :param rate_limiter_url: Redis URL of a limiter shared by every process on the token
        (default: the connection's ``rate_limiter_url`` extra). Needs ``airflow-provider-alta[redis]``.
    :param dedupe_key: ``"phone_number"`` (default, normalised E.164), another payload field, a
        record key, a callable ``(record) -> key``, or ``None`` to keep duplicates.
    :param suppression: numbers never to call (normalised before comparing), or ``(record) -> bool``.
    :param record_key: record field whose value keys the per-record outcomes (default: the index).
    :param calling_hours: as for ``TriggerAssistantCallOperator``.
    :param outside_calling_hours: ``"defer"`` (wait for the window, deferring when long) or ``"skip"``.
    :param max_failures: fail the task when more records than this are invalid, rejected or ambiguous.
    :param max_failure_ratio: the same, as a share of all records.
    :param defer_threshold: waits longer than this many seconds (windows, long 429s) defer.
    :param xcom_outcomes: per-record outcomes in the XCom summary: ``"all"`` (default),
        ``"problems"`` (all but called and dry-run records) or ``"none"`` (counts only).
    :param allow_rerun_without_progress: on Airflow < 3.3 (no task state store), allow a retry or a
        re-run to send again; it may call people the earlier try already called.
    """

    template_fields: Sequence[str] = (
        "prospects",
        "assistant_id",
        "data",
        "call_transfer",
        "alta_conn_id",
        "default_region",
        "calling_hours",
    )
    template_fields_renderers = {"data": "json", "call_transfer": "json", "calling_hours": "json"}
    # Rendered, these show masked (the records as a count) in Airflow; the batch uses the real values.
    personal_fields = {"prospects": describe_records, "data": mask_value, "call_transfer": masked_transfer}
    ui_color = "#d6cdf9"
    _stopper: Stopper | None = None  # set while a batch runs, so on_kill and signals can stop it

    def __init__(
        self,
        *,
        prospects: Records,
        field_map: Mapping[str, str] | None = None,
        assistant_id: str | None = None,
        data: Mapping[str, Any] | None = None,
        call_transfer: Any = None,
        alta_conn_id: str = "alta_default",
        default_region: str | None = None,
        calls_per_minute: float | None = None,
        concurrent_tasks: int = 1,
        rate_limiter_url: str | None = None,
        dedupe_key: str | Callable[[Mapping[str, Any]], Hashable] | None = "phone_number",
        suppression: Collection[str] | Callable[[Mapping[str, Any]], bool] | None = None,
        record_key: str | None = None,
        calling_hours: Any = None,
        outside_calling_hours: str = "defer",
        max_failures: int | None = None,
        max_failure_ratio: float | None = None,
        defer_threshold: float = 60.0,
        progress_interval: float = 5.0,
        dry_run: bool = False,
        include_phone_in_xcom: bool = False,
        xcom_outcomes: str = "all",
        allow_rerun_without_progress: bool = False,
        **kwargs: Any,
    ) -> None:
        raw_task_id = kwargs.get("task_id")
        super().__init__(**kwargs)
        if outside_calling_hours not in ("defer", "skip"):
            raise ValueError(
                f"outside_calling_hours must be 'defer' or 'skip', not {outside_calling_hours!r}"
            )
        if isinstance(prospects, Iterator):
            raise TypeError(
                "prospects is a one-shot iterator: pass a callable that returns it, so it can resume"
            )
        if xcom_outcomes not in ("all", "problems", "none"):
            raise ValueError(f"xcom_outcomes must be 'all', 'problems' or 'none', not {xcom_outcomes!r}")
        if concurrent_tasks < 1:
            raise ValueError("concurrent_tasks must be at least 1")
        # Resolved if it is an XComArg; otherwise kept as it is: never rendered, never called as a template.
        self.prospects = prospects if isinstance(prospects, XComArg) else literal(prospects)
        self.field_map = field_map
        self.assistant_id = assistant_id
        self.data = data
        self.call_transfer = call_transfer
        self.alta_conn_id = alta_conn_id
        self.default_region = default_region
        self.calls_per_minute = calls_per_minute
        self.concurrent_tasks = concurrent_tasks
        self.rate_limiter_url = rate_limiter_url
        self.dedupe_key = dedupe_key
        self.suppression = suppression
        self.record_key = record_key
        self.calling_hours = calling_hours
        self.outside_calling_hours = outside_calling_hours
        self.max_failures = max_failures
        self.max_failure_ratio = max_failure_ratio
        self.defer_threshold = defer_threshold
        self.progress_interval = progress_interval
        self.is_dry_run = dry_run  # ``dry_run`` would shadow BaseOperator.dry_run()
        self.include_phone_in_xcom = include_phone_in_xcom
        self.xcom_outcomes = xcom_outcomes
        self.allow_rerun_without_progress = allow_rerun_without_progress
        keep_mapped_values_literal(self, raw_task_id)

    def execute(self, context: Context) -> dict[str, Any]:
        store = context.get("task_state_store")
        if store is None and not self.is_dry_run:
            try_number = getattr(context.get("ti"), "try_number", 1) or 1
            if try_number > 1 and not self.allow_rerun_without_progress:
                raise AirflowFailException(
                    "Refusing to re-run this batch: without Airflow 3.3's task state store this try "
                    "cannot know whom an earlier try already called. Check the earlier try's summary, "
                    "or set allow_rerun_without_progress=True to send again (may call people twice)."
                )
        return self._run(context, carried=None)

    def execute_complete(
        self, context: Context, event: Any = None, progress: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Resume after waiting for calling windows or Alta's rate limit."""
        if progress is None and isinstance(event, Mapping):
            progress = event.get("progress")
        if (
            progress is None
            and context.get("task_state_store") is None
            and not self.allow_rerun_without_progress
        ):
            raise AirflowFailException(
                "Refusing to resume this batch: its progress was lost on the way back from the "
                "triggerer, so it cannot know whom it already called. Set allow_rerun_without_progress=True "
                "to send again (may call people twice)."
            )
        return self._run(context, carried=progress or {})

    def on_kill(self) -> None:
        """Stop the running batch: the send in flight finishes, the rest are reported not reached."""
        if self._stopper is not None:
            self._stopper.request("on_kill")

    # --- orchestration -----------------------------------------------------------------------

    def _run(self, context: Context, carried: Mapping[str, Any] | None) -> dict[str, Any]:
        progress = self._progress(context, carried)
        stopper = self._stopper = Stopper()
        plan = self._plan(progress, stopper)
        plan.attempt = f"try {getattr(context.get('ti'), 'try_number', None) or 1}"
        try:
            with self._stop_on_signals(stopper):
                return self._passes(context, plan, progress)
        finally:
            self._stopper = None
            for gate in plan.gates:
                close = getattr(gate, "close", None)
                if close is not None:
                    close()

    @contextmanager
    def _stop_on_signals(self, stopper: Stopper) -> Iterator[None]:
        """While the batch runs, SIGTERM and SIGINT ask it to stop; a second one acts as before.

        Airflow's own SIGTERM handler only calls ``on_kill`` (3.x) or raises at once, even mid-send
        (2.x); this one lets the send in flight finish. The previous handlers are restored after.
        """
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be set from the main thread; on_kill still works
            return
        previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

        def handler(signum: int, frame: Any) -> None:
            if stopper.requested:  # asked twice: do what would have happened without us
                _delegate(previous[signal.Signals(signum)], signum, frame)
                return
            stopper.request(f"the task received {signal.Signals(signum).name}")

        for sig in STOP_SIGNALS:
            signal.signal(sig, handler)
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old if old is not None else signal.SIG_DFL)

    def _passes(self, context: Context, plan: Plan, progress: ProgressStore) -> dict[str, Any]:
        while True:
            result = run_pass(self._records(), plan)
            wait, moment = self._wait(result)
            if moment is None or result.source_error or plan.stop.requested:
                break
            if wait > self.defer_threshold:
                self.log.info("Alta batch: %s; deferring until %s", self._counts(result), moment)
                from airflow_provider_alta.triggers.alta import ResumeAtTrigger

                carried = progress.data if isinstance(progress, MemoryProgress) else None
                self.defer(
                    trigger=ResumeAtTrigger(moment, carried),
                    method_name="execute_complete",
                    kwargs={"progress": carried},
                )
            self.log.info("Alta batch: waiting %.1f s (calling windows or rate limit)", wait)
            try:
                plan.stop.sleep(wait)
            except StopRequested:
                break
        return self._finish(context, result, plan.stop)

    def _wait(self, result: PassResult) -> tuple[float, Any]:
        """How long until the next pass can make progress, and when (``None``: done)."""
        now = _common.now_utc()
        moments = [m for m in result.pending.values() if m is not None]
        if result.retry_after is not None:
            moments.append(now.add(seconds=result.retry_after))
        if not moments:
            return 0.0, None
        moment = min(moments)
        return max(0.0, (moment - now).total_seconds()), moment

    def _progress(self, context: Context, carried: Mapping[str, Any] | None) -> ProgressStore:
        store = context.get("task_state_store")
        if store is not None and not self.is_dry_run:
            return _TaskStateProgress(store)
        return MemoryProgress(carried)

    def _plan(self, progress: ProgressStore, stopper: Stopper) -> Plan:
        hook = self._hook(stopper)
        settings = None if self.is_dry_run else hook.settings
        region = self.default_region or (settings.default_region if settings else None)
        hours = calling_hours(self.calling_hours)
        shared = {
            "assistant_id": self.assistant_id,
            "data": self.personal("data"),
            "call_transfer": self.personal("call_transfer"),
        }

        def prepare(record: Any) -> AssistantCall:
            fields = merge_record(shared, record, self.field_map, required=True)
            return build_call(fields, default_region=region)

        return Plan(
            prepare=prepare,
            send=hook.send_call,
            progress=progress,
            gates=() if settings is None else self._gates(settings, stopper),
            window=None if hours is None else self._window(hours),
            dedupe_key=self._dedupe(),
            suppressed=self._suppressed(region),
            record_key=self._record_key,
            dry_run=self.is_dry_run,
            show_phone=self._show_phone,
            on_progress=self._log_progress,
            progress_every=self.progress_interval,
            stop=stopper,
        )

    def _hook(self, stopper: Stopper) -> AltaHook:
        from airflow_provider_alta.client import RetryPolicy
        from airflow_provider_alta.hooks.alta import AltaHook

        # Short 429 waits happen inside the hook; longer ones end the pass, so the batch can defer.
        # One INFO line per call would drown the progress lines: calls log at DEBUG here.
        # A stop also ends the hook's 429 and connect-retry waits.
        return AltaHook(
            alta_conn_id=self.alta_conn_id,
            retry=RetryPolicy(rate_limit_budget=self.defer_threshold),
            success_log_level=logging.DEBUG,
            sleep=stopper.sleep,
        )

    def _gates(self, settings: Any, stopper: Stopper) -> tuple[Gate, ...]:
        from airflow_provider_alta.pacing import Pacer

        rate = self.calls_per_minute or settings.calls_per_minute
        gates: list[Gate] = [Pacer(rate / self.concurrent_tasks, sleep=stopper.sleep)]
        url = self.rate_limiter_url or settings.rate_limiter_url
        if url:
            from airflow_provider_alta.shared_limiter import SharedLimiter

            gates.append(SharedLimiter(url, token=settings.token, calls_per_minute=settings.calls_per_minute))
        self.log.info(
            "Alta batch: pacing at %.1f calls/min%s",
            rate / self.concurrent_tasks,
            " + shared limiter" if url else "",
        )
        return tuple(gates)

    def _window(self, hours: CallingHours) -> Callable[[AssistantCall], Decision]:
        from airflow_provider_alta.calling_hours import decide

        skip = self.outside_calling_hours == "skip"

        def window(call: AssistantCall) -> Decision:
            d = decide(hours, now=_common.now_utc(), timezone=call.timezone, phone_e164=call.phone_number)
            return Decision(d.open, d.reason, None if skip else d.opens_at)

        return window

    def _dedupe(self) -> Callable[[Any, AssistantCall], Hashable] | None:
        key = self.dedupe_key
        if key is None:
            return None
        if callable(key):
            return lambda record, _call: key(record)
        if key in ("phone_number", "phoneNumber"):
            return lambda _record, call: call.phone_number
        return lambda record, call: record.get(key, getattr(call, key, None))

    def _suppressed(self, region: str | None) -> Callable[[Any, AssistantCall], bool] | None:
        suppression = self.suppression
        if suppression is None:
            return None
        if callable(suppression):
            return lambda record, _call: bool(suppression(record))
        from airflow_provider_alta.phone import PhoneNumberError, normalize_phone

        numbers = set()
        for number in suppression:
            try:
                numbers.add(normalize_phone(str(number), region, allow_extension=True))
            except PhoneNumberError:
                numbers.add(str(number))
        return lambda _record, call: call.phone_number in numbers

    def _record_key(self, index: int, record: Any) -> str:
        if self.record_key and isinstance(record, Mapping) and record.get(self.record_key) is not None:
            return str(record[self.record_key])
        return str(index)

    def _show_phone(self, number: str) -> str:
        return number if self.include_phone_in_xcom else mask_phone(number)

    def _records(self) -> Iterable[Any]:
        """The records; a callable that raises becomes a source that raises (reported, not a crash)."""
        source = unwrap_literal(self.personal("prospects"))
        records: Iterable[Any] = source
        if not callable(source):
            return records
        try:
            records = source()
        except Exception as exc:
            return _raising(exc)
        return records

    # --- reporting -----------------------------------------------------------------------------

    def _log_progress(self, result: PassResult) -> None:
        elapsed = max(time.monotonic() - result.started, 1e-9)
        rate = result.sent / elapsed * 60
        total = f"/{result.total}" if result.total is not None else ""
        eta = ""
        if result.total is not None and result.sent:
            eta = f", ETA {max(0, result.total - result.done) / (result.sent / elapsed):.0f} s"
        self.log.info("Alta batch: %d%s done, %.1f calls/min%s", result.done, total, rate, eta)

    @staticmethod
    def _counts(result: PassResult) -> str:
        counts = {k: v for k, v in result.counts.items() if v}
        return f"{result.done} done {counts}, {len(result.pending)} waiting"

    def _finish(self, context: Context, result: PassResult, stopper: Stopper) -> dict[str, Any]:
        ended = result.source_error or stopper.requested
        for key in list(result.pending):  # only left when the batch ended early: never drop a record
            if ended:
                result.record(
                    key, NOT_REACHED, f"{self._ended_why(result, stopper)}, before its window opened"
                )
            else:
                result.record(key, OUTSIDE_HOURS, "still outside calling hours")
        if stopper.requested and result.counts[NOT_REACHED]:
            result.stopped = f"asked to stop ({stopper.reason})"
        summary = {
            "total": result.done,
            "counts": {k: v for k, v in result.counts.items() if v},
            "sent": result.sent,
            "dry_run": self.is_dry_run,
            "outcomes": self._outcomes_for_xcom(result),
        }
        if result.stopped:
            summary["stopped"] = result.stopped
        if result.source_error:
            summary["source_error"] = result.source_error
        self.log.info("Alta batch finished: %s", summary["counts"])
        failures = sum(result.counts[s] for s in FAILURES if s != NOT_REACHED)
        problem = self._too_many(failures, result.done)
        if result.counts[NOT_REACHED] or problem or result.source_error:
            ti = context.get("ti")
            if ti is not None:
                ti.xcom_push(key="summary", value=summary)
        if result.source_error:
            raise AirflowException(
                f"The record source failed after {result.done} record(s) ({result.source_error}); the "
                "records read were processed and a retry reads the source again, never calling anyone "
                "already called. Summary in XCom 'summary'."
            )
        if result.counts[NOT_REACHED]:
            raise AirflowException(
                f"{result.counts[NOT_REACHED]} record(s) not reached ({result.stopped}); a retry resumes "
                "with them and never calls anyone already called. Summary in XCom 'summary'."
            )
        if problem:
            raise AirflowFailException(f"{problem}. Summary in XCom 'summary'.")
        return summary

    @staticmethod
    def _ended_why(result: PassResult, stopper: Stopper) -> str:
        if result.source_error:
            return f"the record source failed ({result.source_error})"
        return f"asked to stop ({stopper.reason})"

    def _outcomes_for_xcom(self, result: PassResult) -> dict[str, dict[str, Any]]:
        if self.xcom_outcomes == "none":
            return {}
        if self.xcom_outcomes == "problems":
            return {k: v for k, v in result.outcomes.items() if v["state"] not in ("called", "dry_run")}
        return result.outcomes

    def _too_many(self, failures: int, total: int) -> str | None:
        if self.max_failures is not None and failures > self.max_failures:
            return (
                f"{failures} records failed (invalid, rejected or ambiguous), "
                f"more than max_failures={self.max_failures}"
            )
        if self.max_failure_ratio is not None and total and failures / total > self.max_failure_ratio:
            return f"{failures}/{total} records failed, more than max_failure_ratio={self.max_failure_ratio}"
        return None


def _delegate(handler: Any, signum: int, frame: Any) -> None:
    """Run a signal's earlier disposition: its Python handler, or the default action."""
    if callable(handler):
        handler(signum, frame)
    elif handler != signal.SIG_IGN:
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)


def _raising(exc: Exception) -> Iterator[Any]:
    """A record source whose first read raises ``exc``."""
    raise exc
    yield  # a generator
