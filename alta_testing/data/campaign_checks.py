"""Checks on the sandbox's journal (what Alta would have received), for the suites and benchmarks.

The journal is the ground truth: the checks read it, never Airflow.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any


def received_at(record: dict[str, Any]) -> dt.datetime:
    """When the sandbox received the journaled call."""
    return dt.datetime.fromisoformat(record["received_at"])


def arrival_times(records: Iterable[dict[str, Any]]) -> list[float]:
    """Arrival times (POSIX seconds) of the journaled calls, sorted."""
    return sorted(received_at(r).timestamp() for r in records)


def max_in_window(times: Iterable[float], window: float) -> int:
    """The most entries in any rolling window ``[t, t + window)``, as the sandbox counts them.

    With the sandbox's limit on, the journal can never exceed it (the excess gets 429 and is not
    journaled): pair it with "no 429s" to show the client itself kept under the limit.
    """
    ordered = sorted(times)
    return max((bisect.bisect_left(ordered, t + window) - i for i, t in enumerate(ordered)), default=0)


def calls_where(journal: Iterable[dict[str, Any]], **data: str) -> list[dict[str, Any]]:
    """Journal records whose body ``data`` has every given key and value."""
    return [r for r in journal if all((r["body"].get("data") or {}).get(k) == v for k, v in data.items())]


def overlap_seconds(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]]) -> float:
    """How long two sets of calls were being placed at the same time."""
    start = max(min(received_at(r) for r in a), min(received_at(r) for r in b))
    end = min(max(received_at(r) for r in a), max(received_at(r) for r in b))
    return (end - start).total_seconds()


def called_numbers(records: Iterable[dict[str, Any]]) -> Counter[str]:
    """How often each number was journaled."""
    return Counter(r["body"]["phoneNumber"] for r in records)


def twice(records: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Numbers journaled more than once (should always be empty)."""
    return {number: n for number, n in called_numbers(records).items() if n > 1}
