"""Reading opt-outs from a list of numbers, rows (dicts) or a CRM's CSV export, normalised to E.164.

    numbers = read_numbers(rows, phone_column="mobile", default_region="US")
    ledger.opt_out(numbers.e164, source="crm-export")
    numbers.invalid   # [InvalidEntry(index=3, rule="is not a phone number"), ...]: no number inside

An entry is a string (the number), or a mapping whose ``phone_column`` holds it. CSV text (a
string or bytes, e.g. an upstream task's XCom) is read as rows, with a header row naming the
columns; its entries are indexed from 0 at the first row after the header. Numbers are normalised
as a call's are (:func:`~airflow_provider_alta.phone.normalize_phone`), except that an extension is
dropped rather than refused: an opt-out matches the number, it is never dialled.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_alta.masking import mask_text

DEFAULT_PHONE_COLUMN = "phone_number"


@dataclass(frozen=True)
class InvalidEntry:
    """An entry that gave no number: its index and the rule it broke (never the number)."""

    index: int
    rule: str

    def __str__(self) -> str:
        return f"entry {self.index}: {self.rule}"


@dataclass
class OptOutNumbers:
    """What a list of entries held: the numbers in E.164 (in order, repeats kept) and the invalid ones."""

    e164: list[str] = field(default_factory=list)
    invalid: list[InvalidEntry] = field(default_factory=list)

    @property
    def entries(self) -> int:
        return len(self.e164) + len(self.invalid)


def read_numbers(
    entries: Any, *, phone_column: str = DEFAULT_PHONE_COLUMN, default_region: str | None = None
) -> OptOutNumbers:
    """Normalise every entry of ``entries`` (a list, rows, or CSV text); see the module docstring.

    ``ValueError`` (masked) for an unknown ``default_region``, for CSV text whose header has no
    ``phone_column``, or for a value that is none of these.
    """
    from airflow_provider_alta.phone import PhoneNumberError, validate_region

    try:
        region = validate_region(default_region)
    except PhoneNumberError as exc:
        raise ValueError(f"default_region: {exc}") from None
    found = OptOutNumbers()
    for index, entry in enumerate(iter_entries(entries, phone_column)):
        number = _number(entry, phone_column, region)
        if isinstance(number, InvalidEntry):
            found.invalid.append(InvalidEntry(index, number.rule))
        else:
            found.e164.append(number)
    return found


def iter_entries(entries: Any, phone_column: str = DEFAULT_PHONE_COLUMN) -> Iterator[Any]:
    """The entries of a list or iterable of strings and rows, or the rows of CSV text (str or bytes)."""
    if isinstance(entries, bytes | bytearray):
        entries = bytes(entries).decode("utf-8-sig", errors="replace")
    if isinstance(entries, str):
        return csv_rows(entries, phone_column)
    if isinstance(entries, Mapping) or not isinstance(entries, Iterable):
        raise ValueError(
            "numbers must be a list of numbers, a list of rows (dicts) or CSV text, "
            f"not {type(entries).__name__}"
        )
    return iter(entries)


def csv_rows(text: str, phone_column: str = DEFAULT_PHONE_COLUMN) -> Iterator[dict[str, Any]]:
    """The rows of CSV text with a header row (a leading BOM and blank lines ignored)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [name.strip() for name in reader.fieldnames or []]
    if not header:
        return iter(())
    if phone_column not in header:
        shown = mask_text(", ".join(header))[:300]
        raise ValueError(f"the CSV has no {phone_column!r} column (its header: {shown})")
    reader.fieldnames = header
    return iter(reader)


def _number(entry: Any, phone_column: str, region: str | None) -> str | InvalidEntry:
    """The entry's number in E.164, or why it has none (index filled in by the caller)."""
    from airflow_provider_alta.phone import PhoneNumberError, normalize_phone

    value = entry
    if isinstance(entry, Mapping):
        if phone_column not in entry:
            return InvalidEntry(-1, f"has no {phone_column!r} field")
        value = entry[phone_column]
    if value is None or (isinstance(value, str) and not value.strip()):
        return InvalidEntry(-1, "is empty")
    if not isinstance(value, str):
        kind = type(value).__name__
        rule = f"must be a string, not {kind}"
        if isinstance(value, int | float) and not isinstance(value, bool):
            rule += " (a number loses its + and leading 0s: quote it)"
        return InvalidEntry(-1, rule)
    try:
        return normalize_phone(value, region, allow_extension=True)
    except PhoneNumberError as exc:
        return InvalidEntry(-1, mask_text(str(exc)))
