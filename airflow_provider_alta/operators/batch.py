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
    DEFAULT_FAILURE_RATIO_MIN_RECORDS,
    DEFAULT_MAX_FAILURE_RATIO,
    FAILED,
    RESUMABLE,
    WAIT_LOG_EVERY,
    CampaignOptions,
    describe_counts,
    describe_moment,
    describe_wait,
    first_problems,
    in_local_time,
    next_pass,
    progress_line,
    summarize,
)
from airflow_provider_alta.masking import mask_value
from airflow_provider_alta.operators import _batch_outcomes, _batch_tries, _common, _ledger
from airflow_provider_alta.operators._common import (
    KeepsPersonalDataOut,
    describe_records,
    keep_mapped_values_literal,
    masked_transfer,
    unwrap_literal,
)
from airflow_provider_alta.operators._state_store import TaskStateProgress
from airflow_provider_alta.outcome_sink import DEFAULT_OUTCOMES_PATH, DEFAULT_OUTCOMES_XCOM_LIMIT
from airflow_provider_alta.payload import AssistantCall, build_call, merge_record

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_alta.hooks.alta import AltaHook
    from airflow_provider_alta.pacing import Gate

Records = (
    Sequence[Mapping[str, Any]] | Callable[[], Iterable[Mapping[str, Any]]] | Iterable[Mapping[str, Any]]
)


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
        A column that ``field_map`` does not map and that is no call field only keys the outcomes.
    :param calling_hours: as for ``TriggerAssistantCallOperator``.
    :param outside_calling_hours: ``"defer"`` (wait for the window, deferring when long) or ``"skip"``.
    :param max_failures: fail the task when more records than this are invalid, rejected or ambiguous.
    :param max_failure_ratio: fail when more than this share of the records tried (called or failed;
        skipped ones count for neither) failed: judged from ``failure_ratio_min_records`` records
        tried, or when every one failed. Default 0.5; ``None`` disables.
    :param failure_ratio_min_records: see ``max_failure_ratio`` (default 10).
    :param defer_threshold: waits longer than this many seconds (windows, long 429s) defer.
    :param xcom_outcomes: per-record outcomes in the XCom summary: ``"all"`` (default),
        ``"problems"`` (all but called and dry-run records) or ``"none"`` (counts only).
    :param outcomes_xcom_limit: with more outcomes than this (default 1000; ``None``: no limit), they
        go to ``outcomes_path`` as JSON lines and XCom keeps the counts and ``outcomes_path``.
    :param outcomes_path: an ObjectStoragePath URL (templated; placeholders ``{dag_id}``, ``{run_id}``,
        ``{task_id}``, ``{map_index}``, ``{try_number}``); a local file by default, or e.g. ``s3://``.
    :param outcomes_conn_id: the Airflow connection for ``outcomes_path`` (e.g. ``aws_default``).
    :param total: how many records a source without ``len()`` holds, for the progress line's ETA.
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
        "outcomes_path",
    )
    template_fields_renderers = {"data": "json", "call_transfer": "json", "calling_hours": "json"}
    # Rendered, these show masked (the records as a count) in Airflow; the batch uses the real values.
    personal_fields = {"prospects": describe_records, "data": mask_value, "call_transfer": masked_transfer}
    ui_color = "#d6cdf9"
    _stopper: Stopper | None = None  # set while a batch runs, so on_kill and signals can stop it
    _deferred_here = False  # this instance deferred: an in-process runner may wait in this process

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
        max_failure_ratio: float | None = DEFAULT_MAX_FAILURE_RATIO,
        failure_ratio_min_records: int = DEFAULT_FAILURE_RATIO_MIN_RECORDS,
        defer_threshold: float = 60.0,
        progress_interval: float = 5.0,
        dry_run: bool = False,
        include_phone_in_xcom: bool = False,
        xcom_outcomes: str = "all",
        outcomes_xcom_limit: int | None = DEFAULT_OUTCOMES_XCOM_LIMIT,
        outcomes_path: str = DEFAULT_OUTCOMES_PATH,
        outcomes_conn_id: str | None = None,
        total: int | None = None,
        allow_rerun_without_progress: bool = False,
        contact_policy: str | None = None,
        **kwargs: Any,
    ) -> None:
        raw_task_id = kwargs.get("task_id")
        super().__init__(**kwargs)
        # Checks the campaign options (outside_calling_hours, xcom_outcomes, thresholds) as the DAG is parsed.
        CampaignOptions(
            outside_calling_hours=outside_calling_hours,
            xcom_outcomes=xcom_outcomes,
            max_failures=max_failures,
            max_failure_ratio=max_failure_ratio,
            failure_ratio_min_records=failure_ratio_min_records,
        )
        _batch_outcomes.check_options(outcomes_xcom_limit, outcomes_path, total)
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
        self.failure_ratio_min_records = failure_ratio_min_records
        self.outcomes_xcom_limit = outcomes_xcom_limit
        self.outcomes_path = outcomes_path
        self.outcomes_conn_id = outcomes_conn_id
        self.total = total
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
            _batch_tries.check_rerun(self.log, context, store, self.allow_rerun_without_progress)
        return self._run(context, carried=None)

    def execute_complete(
        self, context: Context, event: Any = None, progress: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Resume after waiting for calling windows or Alta's rate limit."""
        if progress is None and isinstance(event, Mapping):
            progress = event.get("progress")
        _batch_tries.check_resume(context, progress, self.allow_rerun_without_progress)
        waiting = event.get("waiting") if isinstance(event, Mapping) else None
        self.log.info(
            "Alta batch: resuming after its wait%s", f" ({waiting} record(s) waited)" if waiting else ""
        )
        return self._run(context, carried=progress or {})

    def on_kill(self) -> None:
        """Stop the running batch: the send in flight finishes, the rest are reported not reached."""
        if self._stopper is not None:
            self._stopper.request("on_kill")
        elif self._deferred_here:
            # `airflow dags test` runs the trigger in this process, and Airflow 3's SIGTERM handler
            # only calls on_kill: end the wait as Airflow 2's handler does (nothing is in flight).
            self._deferred_here = False
            self.log.info("Alta batch: stopped while deferred; a retry resumes it, calling nobody twice")
            raise _batch_tries.task_terminated()

    # --- orchestration -----------------------------------------------------------------------

    def _run(self, context: Context, carried: Mapping[str, Any] | None) -> dict[str, Any]:
        self._deferred_here = False
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
            now = _common.now_utc()
            wait, moment = next_pass(result, now)
            if moment is None or result.source_error or plan.stop.requested:
                break
            why = describe_wait(result, moment, now)
            if wait > self.defer_threshold:
                when = describe_moment(moment)
                self.log.info("Alta batch: %s; deferring until %s. %s", describe_counts(result), when, why)
                from airflow_provider_alta.triggers.batch import BatchWaitTrigger

                carried = progress.data if isinstance(progress, MemoryProgress) else None
                trigger = BatchWaitTrigger(moment, carried, len(result.pending), when)
                self._deferred_here = True
                self.defer(trigger=trigger, method_name="execute_complete", kwargs={"progress": carried})
            self.log.info(
                "Alta batch: %s; waiting %.1f s in this process. %s", describe_counts(result), wait, why
            )
            try:
                self._wait(plan.stop, wait, result, moment)
            except StopRequested:
                break
        return self._finish(context, result, plan)

    def _wait(self, stop: Stopper, seconds: float, result: PassResult, moment: Any) -> None:
        """Sleep ``seconds`` (a stop ends it), logging at least every ``WAIT_LOG_EVERY`` seconds."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            stop.sleep(min(left, WAIT_LOG_EVERY))
            if end - time.monotonic() > 0:
                why = describe_wait(result, moment, _common.now_utc())
                self.log.info("Alta batch: still waiting in this process: %s", why)

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
            failure_ratio_min_records=self.failure_ratio_min_records,
            xcom_outcomes=self.xcom_outcomes,
            include_phone=self.include_phone_in_xcom,
            dry_run=self.is_dry_run,
        )

    def _plan(self, progress: ProgressStore, stopper: Stopper, hook: AltaHook) -> Plan:
        settings = None if self.is_dry_run else hook.settings
        region = _common.default_region(self, None if settings is None else lambda: settings)
        in_zone = _common.call_window(self.calling_hours)
        window = None if in_zone is None else lambda call: in_local_time(in_zone(call))
        options = self._options()
        shared = {
            "assistant_id": self.assistant_id,
            "data": self.personal("data"),
            "call_transfer": self.personal("call_transfer"),
        }

        def prepare(record: Any) -> AssistantCall:
            record = options.payload_record(record, self.field_map)  # the key column keys outcomes only
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
            total=self.total,
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
        return _batch_tries.read_source(unwrap_literal(self.personal("prospects")))

    # --- reporting -----------------------------------------------------------------------------

    def _log_progress(self, result: PassResult) -> None:
        self.log.info("Alta batch: %s", progress_line(result, time.monotonic()))

    def _finish(self, context: Context, result: PassResult, plan: Plan) -> dict[str, Any]:
        stop = plan.stop.reason if plan.stop.requested else None
        summary, verdict = summarize(result, self._options(), stop)
        self.log.info("Alta batch finished: %s", summary["counts"])
        problems = first_problems(result)
        if problems:
            log = self.log.error if verdict.kind == FAILED else self.log.warning
            log("Alta batch: first problems (record key: state (reason)):\n  %s", "\n  ".join(problems))
        _batch_outcomes.keep_out_of_xcom(self, context, summary)
        if not verdict.succeeded:
            _batch_outcomes.push_summary(context, summary)
        if verdict.kind == RESUMABLE:
            raise AirflowException(verdict.message)
        if verdict.kind == FAILED:
            raise AirflowFailException(verdict.message)
        return summary
