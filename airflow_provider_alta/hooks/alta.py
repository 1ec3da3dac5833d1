"""AltaHook: the Airflow connection adapter over :class:`~airflow_provider_alta.client.AltaClient`."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseHook, mask_secret, redact

from airflow_provider_alta.client import AltaClient, ResendPolicy
from airflow_provider_alta.config import (
    EXTRA_FIELDS,
    HIDDEN_FIELDS,
    PLACEHOLDERS,
    RELABELING,
    SENSITIVE_EXTRAS,
    settings_from_fields,
)
from airflow_provider_alta.exceptions import (
    AltaConfigurationError,
    AltaRateBudgetError,
    AltaValidationError,
    FieldError,
)
from airflow_provider_alta.payload import AssistantCall, CallTransfer, build_call
from airflow_provider_alta.rate_budget import HeaderBudget, budget_for

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    import requests

    from airflow_provider_alta.config import AltaSettings
    from airflow_provider_alta.ledger import ContactLedger
    from airflow_provider_alta.pacing import Gate


class AltaHook(BaseHook):
    """Talk to the Alta API with the token and settings of an ``alta`` connection.

    Every request of the hook's client (calls, reads, the connection test) passes the account's
    one rate budget: this process's :class:`~airflow_provider_alta.rate_budget.HeaderBudget` for
    the connection's ``budget_key`` and, when a ``rate_limiter_url`` is set, the account's shared
    limiter in Redis (lowered to any lower rate Alta states).

    :param alta_conn_id: the Airflow connection id (type ``alta``).
    :param retry: how long to wait out 429s and how often to retry connects that never left.
    :param sleep: every wait of the client (429s, full windows, the shared limiter, retries).
    :param rate_limiter_url: a Redis URL that replaces the connection's ``rate_limiter_url``.
    """

    conn_name_attr = "alta_conn_id"
    default_conn_name = "alta_default"
    conn_type = "alta"
    hook_name = "Alta"

    def __init__(
        self,
        alta_conn_id: str = default_conn_name,
        *,
        retry: ResendPolicy | None = None,
        success_log_level: int = logging.INFO,
        sleep: Callable[[float], None] = time.sleep,
        rate_limiter_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.alta_conn_id = alta_conn_id
        self.retry = retry
        self.success_log_level = success_log_level
        self.sleep = sleep  # every wait of the client (429s, windows, limiter): a stop can cut it short
        self.rate_limiter_url = rate_limiter_url

    @cached_property
    def settings(self) -> AltaSettings:
        """The connection's settings; the token is registered with Airflow's secrets masker."""
        conn = self.get_connection(self.alta_conn_id)
        if conn.password:
            mask_secret(conn.password)
        settings = settings_from_fields(
            host=conn.host,
            password=conn.password,
            port=conn.port,
            schema=conn.schema,
            extra=conn.extra_dejson,
        )
        _mask_ledger_secrets(settings)
        return settings

    def contact_ledger(self) -> ContactLedger | None:
        """The connection's contact ledger (``contact_ledger`` extra), or ``None`` when not set.

        Opened once per hook (a small pool: tasks are short-lived), closed by :meth:`close`. People
        are keyed by :attr:`AltaSettings.ledger_account`. A bad URL is an
        :class:`AltaConfigurationError`, an unreachable database a retryable
        :class:`~airflow_provider_alta.exceptions.ContactLedgerUnavailable`; both name
        ``contact_ledger`` with the password masked.
        """
        if "_contact_ledger" in self.__dict__:
            return self.__dict__["_contact_ledger"]  # type: ignore[no-any-return]
        settings = self.settings
        if settings.contact_ledger is None:
            return None
        ledger = _open_ledger(settings)
        self.__dict__["_contact_ledger"] = ledger
        return ledger

    @property
    def rate_budget(self) -> HeaderBudget:
        """This process's header budget for the connection's account (shared with every hook on it)."""
        return budget_for(self.settings.budget_key)

    @cached_property
    def client(self) -> AltaClient:
        """The client, gated by the account's rate budget (see the class docstring)."""
        settings = self.settings
        return AltaClient(
            settings,
            retry=self.retry,
            body_guard=_refuse_secrets,
            success_log_level=self.success_log_level,
            sleep=self.sleep,
            gates=self._shared_limiter(settings),
            budget=self.rate_budget,
        )

    def _shared_limiter(self, settings: AltaSettings) -> tuple[Gate, ...]:
        """The account's shared limiter when a Redis URL is set (here or on the connection), else none."""
        url = self.rate_limiter_url or settings.rate_limiter_url
        if not url:
            return ()
        from airflow_provider_alta.shared_limiter import SharedLimiter, SharedLimiterError

        budget = self.rate_budget
        try:
            return (
                SharedLimiter(
                    url,
                    budget_key=settings.budget_key,
                    calls_per_minute=settings.calls_per_minute,
                    ceiling=lambda: budget.stated_calls_per_minute,
                    sleep=self.sleep,
                ),
            )
        except SharedLimiterError as exc:
            raise AltaRateBudgetError(str(exc)) from None
        except (ValueError, ImportError) as exc:
            raise AltaConfigurationError(f"rate_limiter_url: {exc}") from None

    def get_conn(self) -> requests.Session:
        """The one reused ``requests.Session``, with the bearer header set."""
        return self.client.session

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()
            del self.__dict__["client"]
        ledger = self.__dict__.pop("_contact_ledger", None)
        if ledger is not None:
            ledger.close()

    def build_call(self, fields: Mapping[str, Any], default_region: str | None = None) -> AssistantCall:
        """Validate ``fields`` into a call; numbers without a country code use the connection's region."""
        return build_call(fields, default_region=default_region or self.settings.default_region)

    def send_call(self, call: AssistantCall) -> dict[str, Any]:
        """Send one validated call. Every path (single and bulk) goes through here.

        A payload that contains a secret known to Airflow's secrets masker (such as the API token,
        pulled in by a template or by upstream data) is refused before anything is sent.
        """
        return self.client.trigger(call)

    def get_call(self, call_id: str) -> dict[str, Any]:
        """Alta's JSON of one call (``GET /calls/{call_id}``), unmasked: the caller masks what it keeps.

        Reads are retried (they change nothing); see :meth:`AltaClient.get_call` for the errors.
        """
        return self.client.get_call(call_id)

    async def aget_call(self, call_id: str) -> dict[str, Any]:
        """:meth:`get_call` in a worker thread, for triggers (the event loop is never blocked)."""
        return await asyncio.to_thread(self.get_call, call_id)

    def trigger_assistant_call(
        self,
        assistant_id: str,
        name: str,
        phone_number: str,
        email: str | None = None,
        timezone: str | None = None,
        data: Mapping[str, Any] | None = None,
        call_transfer: CallTransfer | Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Validate, then place one call. Returns Alta's JSON answer, or ``{}`` if it had none."""
        call = self.build_call(
            {
                "assistant_id": assistant_id,
                "name": name,
                "phone_number": phone_number,
                "email": email,
                "timezone": timezone,
                "data": data,
                "call_transfer": call_transfer,
            }
        )
        return self.send_call(call)

    def test_connection(self) -> tuple[bool, str]:
        """Check the token without placing a call (Alta must answer 400 to an empty body).

        The check is a request like any other: it passes the account's rate budget.
        """
        try:
            return self.client.check_token()
        except Exception as exc:
            return False, str(exc)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form for Airflow < 3.2 (3.2+ reads ``get_provider_info``), from ``config``."""
        return {
            "hidden_fields": list(HIDDEN_FIELDS),
            "relabeling": dict(RELABELING),
            "placeholders": dict(PLACEHOLDERS),
        }

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields for the Airflow 2 connection form, one per entry of ``config.EXTRA_FIELDS``."""
        from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import IntegerField, PasswordField, StringField

        kinds = {"string": StringField, "integer": IntegerField}
        return {
            f.name: (PasswordField if f.name in SENSITIVE_EXTRAS else kinds[f.type])(
                lazy_gettext(f.label),
                widget=BS3PasswordFieldWidget() if f.name in SENSITIVE_EXTRAS else BS3TextFieldWidget(),
                description=f.description,
                default=f.default,
            )
            for f in EXTRA_FIELDS
        }


def _mask_ledger_secrets(settings: AltaSettings) -> None:
    """Register the ledger's secrets (its URL's password, the HMAC secret) with the secrets masker."""
    if settings.contact_ledger_secret:
        mask_secret(settings.contact_ledger_secret)
    if settings.contact_ledger:
        from airflow_provider_alta.config import mask_url_password

        if mask_url_password(settings.contact_ledger) != settings.contact_ledger:
            mask_secret(settings.contact_ledger)
        try:
            from sqlalchemy.engine import make_url

            password = make_url(settings.contact_ledger).password
        except Exception:  # an unparsable URL is reported (masked) when the ledger is opened
            password = None
        if password:
            mask_secret(str(password))


def _open_ledger(settings: AltaSettings) -> ContactLedger:
    """Open the ledger at ``settings.contact_ledger`` (creating its tables if missing)."""
    from airflow_provider_alta.config import mask_url_password
    from airflow_provider_alta.contact_gate import ContactLedgerUnavailable, ledger_problem
    from airflow_provider_alta.ledger import ContactLedger
    from airflow_provider_alta.ledger_schema import make_engine

    url = settings.contact_ledger or ""
    shown = f"contact_ledger ({mask_url_password(url)})"
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        password = None if parsed.password is None else str(parsed.password)
        pool: dict[str, Any] = {}
        if parsed.get_backend_name() == "postgresql":
            pool = {"pool_size": 1, "max_overflow": 1}
        engine = make_engine(url, connect_timeout=10.0, **pool)
    except Exception as exc:  # unparsable, unsupported database, missing driver
        raise AltaConfigurationError(f"{shown}: {ledger_problem(exc)}") from None
    try:
        return ContactLedger(
            url, settings.ledger_account, secret=settings.contact_ledger_secret, engine=engine
        )
    except Exception as exc:
        engine.dispose()
        raise ContactLedgerUnavailable(
            f"{shown}: could not open the contact ledger ({ledger_problem(exc, password)}); nothing was sent"
        ) from None


def _refuse_secrets(body: str) -> None:
    """Refuse a payload in which Airflow's secrets masker finds a registered secret.

    The JSON text is decoded and every value is checked as the receiver will read it (strings and
    keys unescaped, numbers and literals as sent), so a secret that JSON escapes (a quote, a
    backslash, a tab, non-ASCII) is still found; the text as sent is checked too.
    """
    where = _field_holding_a_secret(json.loads(body))
    if where is None and _holds_secret(body):
        where = "payload"
    if where is not None:
        raise AltaValidationError(
            "refusing to send: the payload contains a value registered with Airflow's secrets "
            "masker (a connection password, token or sensitive Variable)",
            errors=[FieldError(where, "must not contain secrets")],
        )


def _holds_secret(text: str) -> bool:
    return bool(redact(text) != text)


def _field_holding_a_secret(decoded: Any) -> str | None:
    """The top-level field whose decoded keys or values hold a registered secret, if any."""
    fields = decoded.items() if isinstance(decoded, dict) else [("payload", decoded)]
    for name, value in fields:
        if any(_holds_secret(text) for text in _decoded_texts(name, value)):
            return "payload" if _holds_secret(name) else name
    return None


def _decoded_texts(key: str, value: Any) -> Iterator[str]:
    """``key`` and every string, key, number and literal inside ``value`` (iterative: any depth)."""
    yield key
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            yield from item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        else:
            yield json.dumps(item)
