"""A campaign's per-record outcomes as JSON lines, for campaigns too large for XCom. Pure Python.

One line per record: ``{"key": <record key>, "state": ..., "reason": ..., ...}`` (the same masked
outcome the XCom summary would carry). The batch operator writes it to an ``ObjectStoragePath``;
this module only turns outcomes into lines on any binary file object, and reads them back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

#: Where a batch writes its outcomes when there are too many for XCom (an ObjectStoragePath URL).
DEFAULT_OUTCOMES_PATH = "file:///tmp/alta/{dag_id}/{run_id}/{task_id}.jsonl"
#: More outcomes than this leave XCom for the file.
DEFAULT_OUTCOMES_XCOM_LIMIT = 1000
PLACEHOLDERS = ("dag_id", "run_id", "task_id", "map_index", "try_number")


def write_jsonl(outcomes: Mapping[str, Mapping[str, Any]], out: IO[bytes]) -> int:
    """Write one JSON line per outcome (``key`` first) to ``out``; return how many were written."""
    count = 0
    for key, outcome in outcomes.items():
        line = json.dumps({"key": key, **outcome}, ensure_ascii=False, default=str)
        out.write(line.encode("utf-8") + b"\n")
        count += 1
    return count


def read_jsonl(lines: Iterable[bytes | str]) -> Iterator[dict[str, Any]]:
    """The outcomes written by :func:`write_jsonl`, one dict per non-empty line."""
    for line in lines:
        text = line.decode("utf-8") if isinstance(line, bytes) else line
        if text.strip():
            yield json.loads(text)


def render_path(template: str, values: Mapping[str, Any]) -> str:
    """``template`` with ``{dag_id}``, ``{run_id}``, ``{task_id}``, ``{map_index}``, ``{try_number}``.

    A mapped task instance (``map_index`` >= 0) whose template does not use ``{map_index}`` gets
    ``.<map_index>`` before the extension, so mapped instances never share a file.
    """
    unknown = _fields(template) - set(PLACEHOLDERS)
    if unknown:
        raise ValueError(
            f"outcomes_path: unknown placeholder(s) {sorted(unknown)}; use {', '.join(PLACEHOLDERS)}"
        )
    text = {k: str(values.get(k, "")).replace("/", "_") for k in PLACEHOLDERS}
    path = template.format_map(text)
    map_index = values.get("map_index")
    if isinstance(map_index, int) and map_index >= 0 and "map_index" not in _fields(template):
        head, dot, ext = path.rpartition(".")
        path = f"{head}.{map_index}.{ext}" if dot and "/" not in ext else f"{path}.{map_index}"
    return path


def _fields(template: str) -> set[str]:
    from string import Formatter

    return {name for _, name, _, _ in Formatter().parse(template) if name is not None}
