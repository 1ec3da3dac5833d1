"""BatchTriggerAssistantCallsOperator: a whole campaign in one task, paced at Alta's rate limit."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Hashable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    BaseOperator,
    XComArg,
    literal,
)

from airflow_provider_alta.bulk import (
    MemoryProgress,
    PassResult,
    Plan,
    ProgressStore,
    Stopper,
    StopRequested,
    run_pass,
)
from airflow_provider_alta.campaign import (
    FAILED,
    RESUMABLE,
    CampaignOptions,
    describe_counts,
    next_pass,
    progress_line,
    summarize,
)
from airflow_provider_alta.masking import mask_value
from airflow_provider_alta.operators import _common, _ledger
from airflow_provider_alta.operators._common import (
    KeepsPersonalDataOut,
    describe_records,
    keep_mapped_values_literal,
    masked_transfer,
    unwrap_literal,
)
from airflow_provider_alta.operators._state_store import TaskStateProgress
from airflow_provider_alta.payload import AssistantCall, build_call, merge_record

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_alta.hooks.alta import AltaHook
    from airflow_provider_alta.pacing import Gate

Records = (
    Sequence[Mapping[str, Any]] | Callable[[], Iterable[Mapping[str, Any]]] | Iterable[Mapping[str, Any]]
)
_STARTED = "alta:batch-started"  # with clear_on_success: this task's records exist (not erased)


class _TaskStateProgress(TaskStateProgress):
    """Progress in Airflow 3.3+'s task state store, which survives retries, restarts and clears.

    Written with ``retention=NEVER_EXPIRE`` (see ``operators/_state_store.py``).
    """


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
    :param contact_policy: how often one person may be called, e.g. ``"1/7d"`` (templated; default:
        the connection's ``contact_policy`` extra, else opt-outs only); needs the connection's
        ``contact_ledger``. Blocked records end ``skipped_recently_called`` (with ``next_allowed``)
        or ``opted_out``; neither counts as a failure. A dry run only reads the ledger.
    """

    template_fields: Sequence[str] = (
        "prospects",
        "assistant_id",
        "data",
        "call_transfer",
        "alta_conn_id",
        "default_region",
        "calling_hours",
        "contact_policy",
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
        contact_policy: str | None = None,
        **kwargs: Any,
    ) -> None:
        raw_task_id = kwargs.get("task_id")
        super().__init__(**kwargs)
        # Checks the campaign options (outside_calling_hours, xcom_outcomes) as the DAG is parsed.
        CampaignOptions(outside_calling_hours=outside_calling_hours, xcom_outcomes=xcom_outcomes)
        if isinstance(prospects, Iterator):
            raise TypeError(
                "prospects is a one-shot iterator: pass a callable that returns it, so it can resume"
            )
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
        _ledger.check_policy(contact_policy)
        self.contact_policy = contact_policy
        keep_mapped_values_literal(self, raw_task_id)

    def execute(self, context: Context) -> dict[str, Any]:
        store = context.get("task_state_store")
        if not self.is_dry_run:
            self._check_rerun(context, store)
        return self._run(context, carried=None)

    def _check_rerun(self, context: Context, store: Any) -> None:
        """Refuse a later try that cannot know whom earlier tries called (unless allowed).

        Without a task state store it cannot know. With ``[state_store] clear_on_success``, Airflow
        erases the records when the task succeeds: a marker written at the start tells a retry after
        a failure (records kept) from a re-run after a success (records erased).
        """
        from airflow_provider_alta.operators import _state_store

        erasable = store is not None and _state_store.clear_on_success()
        if erasable:
            _state_store.warn_clear_on_success(self.log)
        try_number = _state_store.try_number(context)
        unknown = store is None or (erasable and store.get(_STARTED) is None)
        if try_number > 1 and unknown and not self.allow_rerun_without_progress:
            why = (
                "[state_store] clear_on_success erased the records of earlier tries"
                if store is not None
                else "without Airflow 3.3's task state store"
            )
            raise AirflowFailException(
                f"Refusing to re-run this batch: {why}, so this try cannot know whom an earlier try "
                "already called. Check the earlier try's summary, or set "
                "allow_rerun_without_progress=True to send again (may call people twice)."
            )
        if erasable:
            _state_store.TaskStateProgress(store).set(_STARTED, {"by": f"try {try_number}"})

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
        hook = self._hook(stopper)
        plan = self._plan(progress, stopper, hook)
        plan.attempt = f"try {getattr(context.get('ti'), 'try_number', None) or 1}"
        try:
            _ledger.apply_to_plan(plan, hook, self, context)
            with _common.stop_on_signals(stopper):
                return self._passes(context, plan, progress)
        finally:
            self._stopper = None
            hook.close()  # its client's session and shared limiter
            for gate in plan.gates:
                close = getattr(gate, "close", None)
                if close is not None:
                    close()

    def _passes(self, context: Context, plan: Plan, progress: ProgressStore) -> dict[str, Any]:
        while True:
            result = run_pass(self._records(), plan)
            wait, moment = next_pass(result, _common.now_utc())
            if moment is None or result.source_error or plan.stop.requested:
                break
            if wait > self.defer_threshold:
                self.log.info("Alta batch: %s; deferring until %s", describe_counts(result), moment)
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
        return self._finish(context, result, plan)

    def _progress(self, context: Context, carried: Mapping[str, Any] | None) -> ProgressStore:
        store = context.get("task_state_store")
        if store is not None and not self.is_dry_run:
            return _TaskStateProgress(store)
        return MemoryProgress(carried)

    def _options(self) -> CampaignOptions:
        return CampaignOptions(
            dedupe_key=self.dedupe_key,
            suppression=self.suppression,
            record_key=self.record_key,
            outside_calling_hours=self.outside_calling_hours,
            max_failures=self.max_failures,
            max_failure_ratio=self.max_failure_ratio,
            xcom_outcomes=self.xcom_outcomes,
            include_phone=self.include_phone_in_xcom,
            dry_run=self.is_dry_run,
        )

    def _plan(self, progress: ProgressStore, stopper: Stopper, hook: AltaHook) -> Plan:
        settings = None if self.is_dry_run else hook.settings
        region = _common.default_region(self, None if settings is None else lambda: settings)
        window = _common.call_window(self.calling_hours)
        options = self._options()
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
            window=window,
            wait_for_window=options.wait_for_window,
            dedupe_key=options.dedupe(),
            suppressed=options.suppressed(region),
            record_key=options.key_of,
            dry_run=self.is_dry_run,
            show_phone=options.show_phone,
            on_progress=self._log_progress,
            progress_every=self.progress_interval,
            stop=stopper,
        )

    def _hook(self, stopper: Stopper) -> AltaHook:
        from airflow_provider_alta.client import ResendPolicy
        from airflow_provider_alta.hooks.alta import AltaHook

        # Short 429 and full-window waits happen inside the hook; longer ones end the pass, so the
        # batch can defer. One INFO line per call would drown the progress lines: calls log at DEBUG.
        # A stop also ends the hook's waits (429s, windows, the shared limiter, connect retries).
        # The hook's client applies the account's rate budget (and shared limiter) to every request.
        return AltaHook(
            alta_conn_id=self.alta_conn_id,
            retry=ResendPolicy(rate_limit_budget=self.defer_threshold),
            success_log_level=logging.DEBUG,
            sleep=stopper.sleep,
            rate_limiter_url=self.rate_limiter_url,
        )

    def _gates(self, settings: Any, stopper: Stopper) -> tuple[Gate, ...]:
        from airflow_provider_alta.pacing import Pacer
        from airflow_provider_alta.rate_budget import budget_for

        # Only this task's even spacing; the account's shared limiter sits in the hook's client.
        # A lower rate stated by Alta's RateLimit headers lowers this task's share of it too.
        share = self.concurrent_tasks
        rate = self.calls_per_minute or settings.calls_per_minute
        budget = budget_for(settings.budget_key)

        def ceiling() -> float | None:
            stated = budget.stated_calls_per_minute
            return None if stated is None else stated / share

        url = self.rate_limiter_url or settings.rate_limiter_url
        self.log.info(
            "Alta batch: pacing at %.1f calls/min%s",
            budget.effective_calls_per_minute(rate) / share,
            " + shared limiter" if url else "",
        )
        return (Pacer(rate / share, sleep=stopper.sleep, ceiling=ceiling),)

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
        self.log.info("Alta batch: %s", progress_line(result, time.monotonic()))

    def _finish(self, context: Context, result: PassResult, plan: Plan) -> dict[str, Any]:
        stop = plan.stop.reason if plan.stop.requested else None
        summary, verdict = summarize(result, self._options(), stop)
        self.log.info("Alta batch finished: %s", summary["counts"])
        if not verdict.succeeded:
            ti = context.get("ti")
            if ti is not None:
                ti.xcom_push(key="summary", value=summary)
        if verdict.kind == RESUMABLE:
            raise AirflowException(verdict.message)
        if verdict.kind == FAILED:
            raise AirflowFailException(verdict.message)
        return summary


def _raising(exc: Exception) -> Iterator[Any]:
    """A record source whose first read raises ``exc``."""
    raise exc
    yield  # a generator
