"""Lead files and checks on the sandbox's journal, for the end-to-end suites (import as ``campaign_checks``).

The journal is the ground truth: what Alta would have received. The checks read it, never Airflow.
"""

from __future__ import annotations

import csv
import datetime as dt
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _common import fictional_numbers  # (distinct valid +1 AREA 555-01xx numbers)

COLUMNS = ("lead_id", "full_name", "phone", "email", "timezone", "plan", "consent")
ZONES = ("America/New_York", "Europe/London", "Asia/Tokyo", "America/Los_Angeles", "Australia/Sydney")


class NumberPool:
    """Hands out fictional numbers that no other lead of the session got."""

    def __init__(self, size: int = 3000) -> None:
        self._numbers = fictional_numbers(size)
        self._next = 0

    def handed_out(self) -> list[str]:
        """Every number given to a lead so far."""
        return self._numbers[: self._next]

    def take(self, count: int) -> list[str]:
        if self._next + count > len(self._numbers):
            raise ValueError("out of fictional numbers")
        out = self._numbers[self._next : self._next + count]
        self._next += count
        return out


def leads(prefix: str, numbers: Sequence[str], timezone: str) -> list[dict[str, str]]:
    """One consented lead per number, as the example DAGs' CSV has them."""
    return [
        {"lead_id": f"{prefix}{i:04d}", "full_name": f"Lead {prefix}{i}", "phone": number,
         "email": f"{prefix.lower()}{i}@example.com", "timezone": timezone, "plan": "pro", "consent": "yes"}
        for i, number in enumerate(numbers)
    ]  # fmt: skip


def write_leads(path: Path, rows: Iterable[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def window_opening_in(seconds: float, now: dt.datetime | None = None) -> tuple[str, str, dt.datetime]:
    """A zone and an ``HH:MM-HH:MM`` window there that opens ``seconds`` to ``seconds + 60`` from now.

    Returns ``(timezone, window, opens_at_utc)``; picks a zone where the window does not cross midnight.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    for zone in ZONES:
        local = (now + dt.timedelta(seconds=seconds)).astimezone(ZoneInfo(zone))
        start = (local + dt.timedelta(minutes=1)).replace(second=0, microsecond=0)
        if 1 <= start.hour <= 20:
            end = start + dt.timedelta(hours=2)
            return zone, f"{start:%H:%M}-{end:%H:%M}", start.astimezone(dt.timezone.utc)
    raise AssertionError("no zone without midnight in the next two hours (cannot happen)")


def received_at(record: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(record["received_at"])


def calls_where(journal: Iterable[dict[str, Any]], **data: str) -> list[dict[str, Any]]:
    """Journal records whose body ``data`` has every given key and value."""
    return [r for r in journal if all((r["body"].get("data") or {}).get(k) == v for k, v in data.items())]


def overlap_seconds(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]]) -> float:
    """How long two sets of calls were being placed at the same time."""
    start = max(min(received_at(r) for r in a), min(received_at(r) for r in b))
    end = min(max(received_at(r) for r in a), max(received_at(r) for r in b))
    return (end - start).total_seconds()


def called_numbers(records: Iterable[dict[str, Any]]) -> Counter[str]:
    return Counter(r["body"]["phoneNumber"] for r in records)


def twice(records: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Numbers journaled more than once (should always be empty)."""
    return {number: n for number, n in called_numbers(records).items() if n > 1}


def max_in_window(records: Iterable[dict[str, Any]], window: float) -> int:
    """The most calls the journal holds in any rolling window of ``window`` seconds.

    With the sandbox's limit on, this can never exceed it (the excess gets 429 and is not
    journaled): pair it with "no 429s" to show the client itself kept under the limit.
    """
    times = sorted(received_at(r).timestamp() for r in records)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best
