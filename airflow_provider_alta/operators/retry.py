"""``AltaRetryPolicy``: Alta's resend rule as an Airflow 3.3+ ``retry_policy``."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS

from airflow_provider_alta.exceptions import NEVER_RESENT, AltaAPIError

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import RetryDecision

NEVER_RETRIED = NEVER_RESENT


def decide_retry(exception: BaseException) -> tuple[str, float | None, str] | None:
    """The Alta part of the retry decision: ``(action, delay_seconds, reason)``, or None for default.

    Read from the error's class (:attr:`AltaAPIError.task_retry`, ``retry_after`` and its reason).
    Pure, so it can be shared and tested without Airflow 3.3.
    """
    if not isinstance(exception, AltaAPIError):
        return None
    if exception.task_retry:
        return "retry", getattr(exception, "retry_after", None), exception.retry_reason
    return "fail", None, exception.retry_reason


if AIRFLOW_V_3_3_PLUS:
    from airflow.providers.common.compat.sdk import RetryDecision, RetryPolicy

    class AltaRetryPolicy(RetryPolicy):
        """Fail at once on rejected or possibly-placed calls; retry rate limits after Alta's wait."""

        def evaluate(
            self, exception: BaseException, try_number: int, max_tries: int, context: Any = None
        ) -> RetryDecision:
            decision = decide_retry(exception)
            if decision is None:
                return RetryDecision.default()
            action, delay, reason = decision
            if action == "fail":
                return RetryDecision.fail(reason)
            return RetryDecision.retry(None if delay is None else timedelta(seconds=delay), reason)

        def serialize(self) -> dict[str, Any]:
            return {"__type": "AltaRetryPolicy"}

        @classmethod
        def deserialize(cls, data: dict[str, Any]) -> AltaRetryPolicy:
            return cls()
