"""AltaOptOutOperator: add people to, or remove them from, the contact ledger's opt-outs."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    BaseOperator,
    XComArg,
    literal,
)

from airflow_provider_alta.exceptions import AltaAPIError
from airflow_provider_alta.masking import mask_text
from airflow_provider_alta.operators._common import (
    KeepsPersonalDataOut,
    keep_mapped_values_literal,
    unwrap_literal,
)
from airflow_provider_alta.opt_outs import DEFAULT_PHONE_COLUMN, OptOutNumbers, read_numbers

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_alta.hooks.alta import AltaHook
    from airflow_provider_alta.ledger import ContactLedger

ACTIONS = ("add", "remove")
LOGGED_INVALID = 20  # invalid entries logged one by one; the rest as a count


def describe_numbers(value: Any) -> str:
    """What ``numbers`` shows in Airflow (database, UI) instead of the numbers themselves."""
    value = unwrap_literal(value)
    if isinstance(value, str | bytes):
        return f"<CSV text, {len(value.splitlines())} lines>"
    try:
        return f"<{len(value)} entries>"
    except TypeError:
        return f"<entries from a {type(value).__name__}>"


class AltaOptOutOperator(KeepsPersonalDataOut, BaseOperator):
    """Record opt-outs in the connection's contact ledger (``action="add"``), or forget them (``"remove"``).

    An opt-out wins over every contact policy: no Alta task on the account calls that person again.
    Entries that hold no usable number are logged by index with the rule they broke (never the
    number) and the rest are recorded; the task fails only when the connection has no
    ``contact_ledger`` extra, or when every entry is invalid.

    :param numbers: a list of numbers, a list of rows (dicts) whose ``phone_column`` holds the
        number, or CSV text with a header row (e.g. a CRM export pulled from XCom); an XComArg is
        resolved. A string is a template; a list is data and is never rendered as Jinja.
    :param action: ``"add"`` (opt out) or ``"remove"`` (the person opted back in).
    :param source: where the opt-outs come from, kept with each one (default ``airflow:<dag>.<task>``).
    :param phone_column: the field of a row, or the CSV column, that holds the number.
    :param default_region: country for numbers without ``+country`` (default: the connection's).
    :param alta_conn_id: the Alta connection; its ``contact_ledger`` extra names the ledger.

    Returns counts only: ``{"added"|"removed": n, "already": n, "invalid": n}``, adding up to the
    entries; ``already`` counts the valid entries that changed nothing (already opted out, or, for
    ``remove``, not opted out) and repeats within the input.
    """

    template_fields: Sequence[str] = ("numbers", "source", "default_region", "alta_conn_id")
    # Rendered, ``numbers`` shows as a count in Airflow; the task uses the real values.
    personal_fields = {"numbers": describe_numbers}
    ui_color = "#f3d9dc"

    def __init__(
        self,
        *,
        numbers: Any,
        action: str = "add",
        source: str | None = None,
        phone_column: str = DEFAULT_PHONE_COLUMN,
        default_region: str | None = None,
        alta_conn_id: str = "alta_default",
        **kwargs: Any,
    ) -> None:
        raw_task_id = kwargs.get("task_id")
        super().__init__(**kwargs)
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
        # An XComArg is resolved and a string rendered; a list is data, kept as it is.
        self.numbers = numbers if isinstance(numbers, XComArg | str) else literal(numbers)
        self.action = action
        self.source = source
        self.phone_column = phone_column
        self.default_region = default_region
        self.alta_conn_id = alta_conn_id
        keep_mapped_values_literal(self, raw_task_id)

    @cached_property
    def hook(self) -> AltaHook:
        from airflow_provider_alta.hooks.alta import AltaHook

        return AltaHook(alta_conn_id=self.alta_conn_id)

    def execute(self, context: Context) -> dict[str, int]:
        try:
            ledger = self._ledger()
            found = self._read()
            return self._apply(ledger, found)
        finally:
            self.hook.close()

    def _ledger(self) -> ContactLedger:
        try:
            ledger = self.hook.contact_ledger()
        except AltaAPIError as exc:
            if exc.task_retry:
                raise AirflowException(str(exc)) from None
            raise AirflowFailException(str(exc)) from None
        if ledger is None:
            raise AirflowFailException(
                f"AltaOptOutOperator needs a contact ledger: the connection {self.alta_conn_id!r} has no "
                "'contact_ledger' extra. Set it to a SQLAlchemy URL, e.g. "
                "postgresql+psycopg2://user:***@host/db or sqlite:////path/ledger.db"
            )
        return ledger

    def _read(self) -> OptOutNumbers:
        region = self.default_region or self.hook.settings.default_region
        try:
            found = read_numbers(
                unwrap_literal(self.personal("numbers")),
                phone_column=self.phone_column,
                default_region=region,
            )
        except ValueError as exc:
            raise AirflowFailException(f"numbers: {mask_text(str(exc))}") from None
        for entry in found.invalid[:LOGGED_INVALID]:
            self.log.warning("Skipping invalid %s", entry)
        if len(found.invalid) > LOGGED_INVALID:
            self.log.warning("... and %d more invalid entries", len(found.invalid) - LOGGED_INVALID)
        if found.invalid and not found.e164:
            raise AirflowFailException(
                f"None of the {len(found.invalid)} entries holds a usable phone number "
                f"(first: {found.invalid[0]}); nothing was recorded"
            )
        if not found.entries:
            self.log.warning("No entries: nothing to %s", self.action)
        return found

    def _apply(self, ledger: ContactLedger, found: OptOutNumbers) -> dict[str, int]:
        from sqlalchemy.exc import SQLAlchemyError

        from airflow_provider_alta.contact_gate import ledger_problem

        valid = len(found.e164)
        source = mask_text(self.source or f"airflow:{self.dag_id}.{self.task_id}")
        try:
            if self.action == "add":
                changed = ledger.opt_out(found.e164, source) if valid else 0
            else:
                changed = ledger.remove_opt_out(found.e164) if valid else 0
        except SQLAlchemyError as exc:
            url = ledger.engine.url
            raise AirflowException(
                f"contact_ledger ({url.render_as_string(hide_password=True)}): could not "
                f"{self.action} opt-outs ({ledger_problem(exc, url.password)}); nothing was recorded"
            ) from None
        key = "added" if self.action == "add" else "removed"
        counts = {key: changed, "already": valid - changed, "invalid": len(found.invalid)}
        self.log.info(
            "Opt-outs %s: %d, already so or repeated: %d, invalid entries: %d (source %r)",
            key,
            changed,
            counts["already"],
            counts["invalid"],
            source,
        )
        return counts
