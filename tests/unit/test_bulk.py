from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from functools import partial

import pendulum
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_alta.bulk import (
    AMBIGUOUS,
    CALLED,
    DRY_RUN,
    DUPLICATE,
    INVALID,
    NOT_REACHED,
    OUTSIDE_HOURS,
    REJECTED,
    SENDING,
    STATES,
    SUPPRESSED,
    UNSENT,
    Decision,
    MemoryProgress,
    Plan,
    Stopper,
    StopRequested,
    progress_key,
    run_pass,
)
from airflow_provider_alta.exceptions import (
    AltaAmbiguousOutcomeError,
    AltaAuthenticationError,
    AltaConnectionError,
    AltaRateLimitError,
    AltaValidationError,
)
from airflow_provider_alta.payload import build_call, merge_record
from airflow_provider_alta.send_record import RecordWriteError
from alta_testing.data.odd_records import Unprintable, deep
from alta_testing.data.odd_records import looped as self_referencing


def prepare(record):
    return build_call(merge_record({"assistant_id": "asst_1"}, record))


def lead(n: int, **extra) -> dict:
    return {"name": f"Lead {n}", "phone_number": f"+1202555{n:04d}", **extra}


class Alta:
    """Records what would be sent, and fails the numbers it is told to."""

    def __init__(self, failures: dict[str, Exception] | None = None) -> None:
        self.sent: list[str] = []
        self.failures = failures or {}

    def __call__(self, call):
        self.sent.append(call.phone_number)
        if call.phone_number in self.failures:
            raise self.failures[call.phone_number]
        return {"id": f"call_{len(self.sent)}"}


def plan(alta: Alta, progress=None, **kw) -> Plan:
    options = {"send": alta, "dedupe_key": lambda _r, call: call.phone_number, **kw}
    return Plan(prepare=prepare, progress=progress if progress is not None else MemoryProgress(), **options)


def test_every_record_ends_in_exactly_one_state():
    alta = Alta(
        {
            "+12025550105": AltaValidationError("Invalid request body", status=400),
            "+12025550106": AltaAmbiguousOutcomeError("reset after sending"),
        }
    )
    records = [
        lead(101),
        lead(102, phone_number="12"),  # invalid
        lead(101),  # duplicate of record 0
        lead(104),  # suppressed
        lead(105),  # rejected by Alta
        lead(106),  # ambiguous
        lead(107, timezone="Asia/Tokyo"),  # outside hours, no window: skipped
        "not a record",
    ]
    result = run_pass(
        records,
        plan(
            alta,
            suppressed=lambda _r, call: call.phone_number == "+12025550104",
            window=lambda call: Decision(call.timezone != "Asia/Tokyo", "outside calling hours"),
        ),
    )
    states = {k: v["state"] for k, v in result.outcomes.items()}
    assert states == {
        "0": CALLED,
        "1": INVALID,
        "2": DUPLICATE,
        "3": SUPPRESSED,
        "4": REJECTED,
        "5": AMBIGUOUS,
        "6": OUTSIDE_HOURS,
        "7": INVALID,
    }
    assert result.total == len(records) == result.done
    assert "phone_number" in result.outcomes["1"]["reason"]
    assert "prospect" in result.outcomes["7"]["reason"]
    assert result.outcomes["2"]["reason"] == "same dedupe key as record 0"
    assert alta.sent == ["+12025550101", "+12025550105", "+12025550106"]
    assert result.sent == 1


def test_progress_is_written_before_and_after_each_send():
    progress = MemoryProgress()
    writes: list[tuple[str, str]] = []
    original = progress.set
    progress.set = lambda key, value: (writes.append((key, value["state"])), original(key, value))  # type: ignore[method-assign]
    run_pass([lead(1), lead(2)], plan(Alta(), progress))
    k1, k2 = progress_key("+12025550001"), progress_key("+12025550002")
    assert writes == [(k1, SENDING), (k1, CALLED), (k2, SENDING), (k2, CALLED)]
    assert "2025550001" not in k1


def test_a_resumed_pass_never_resends():
    progress = MemoryProgress(
        {
            progress_key("+12025550001"): {"state": CALLED},
            progress_key("+12025550002"): {"state": SENDING},  # the earlier try died mid-send
            progress_key("+12025550003"): {"state": AMBIGUOUS, "reason": "read timeout"},
            progress_key("+12025550004"): {"state": UNSENT},
        }
    )
    alta = Alta()
    result = run_pass([lead(n) for n in range(1, 6)], plan(alta, progress))
    assert alta.sent == ["+12025550004", "+12025550005"]
    states = [result.outcomes[str(i)]["state"] for i in range(5)]
    assert states == [CALLED, AMBIGUOUS, AMBIGUOUS, CALLED, CALLED]
    assert "may have been placed" in result.outcomes["1"]["reason"]
    assert result.outcomes["2"]["reason"] == "read timeout (an earlier try)"


def test_a_record_it_cannot_read_is_reported_ambiguous_and_never_sent():
    """A progress record the store garbled may hide a placed call (send_record.read_record)."""
    progress = MemoryProgress(
        {progress_key("+12025550001"): "garbled", progress_key("+12025550002"): {"state": "who knows"}}
    )
    alta = Alta()
    result = run_pass([lead(1), lead(2), lead(3)], plan(alta, progress))
    assert alta.sent == ["+12025550003"]
    assert [result.outcomes[str(i)]["state"] for i in range(3)] == [AMBIGUOUS, AMBIGUOUS, CALLED]
    assert "may have been placed" in result.outcomes["0"]["reason"]
    assert result.total == result.done == 3


def test_a_store_that_cannot_record_sending_ends_the_pass_before_the_send():
    class Locked(MemoryProgress):
        def set(self, key, value):
            raise OSError("database is locked")

    alta = Alta()
    with pytest.raises(RecordWriteError, match="nothing was sent"):
        run_pass([lead(1)], plan(alta, Locked()))
    assert alta.sent == []


def test_connection_failure_stops_the_pass_and_the_rest_is_not_reached():
    alta = Alta({"+12025550002": AltaConnectionError("could not connect")})
    progress = MemoryProgress()
    result = run_pass([lead(1), lead(2), lead(3)], plan(alta, progress))
    assert [result.outcomes[str(i)]["state"] for i in range(3)] == [CALLED, NOT_REACHED, NOT_REACHED]
    assert alta.sent == ["+12025550001", "+12025550002"]
    assert progress.get(progress_key("+12025550002"))["state"] == UNSENT


def test_a_rejected_token_stops_the_pass():
    alta = Alta({"+12025550001": AltaAuthenticationError("Invalid API token", status=401)})
    result = run_pass([lead(1), lead(2)], plan(alta))
    assert result.counts[NOT_REACHED] == 2
    assert "401" in result.stopped


def test_a_long_rate_limit_ends_the_pass_and_the_next_pass_sends():
    alta = Alta({"+12025550002": AltaRateLimitError("429", retry_after=42)})
    progress = MemoryProgress()
    first = run_pass([lead(1), lead(2), lead(3)], plan(alta, progress))
    assert first.retry_after == 42
    assert first.counts[NOT_REACHED] == 2
    alta.failures = {}
    second = run_pass([lead(1), lead(2), lead(3)], plan(alta, progress))
    assert [second.outcomes[str(i)]["state"] for i in range(3)] == [CALLED, CALLED, CALLED]
    assert alta.sent == ["+12025550001", "+12025550002", "+12025550002", "+12025550003"]
    assert second.sent == 3  # placed by this try, over both passes


def test_records_outside_their_window_are_pending_until_it_opens():
    opens = pendulum.datetime(2026, 11, 24, 13, tz="UTC")
    result = run_pass(
        [lead(1), lead(2)],
        plan(Alta(), window=lambda call: Decision(call.phone_number.endswith("1"), "closed", opens)),
    )
    assert result.pending == {"1": opens}
    assert set(result.outcomes) == {"0"}


def test_dry_run_sends_nothing_and_writes_no_progress():
    alta, progress = Alta(), MemoryProgress()
    result = run_pass([lead(1), lead(2, phone_number="x")], plan(alta, progress, dry_run=True))
    assert [result.outcomes[k]["state"] for k in ("0", "1")] == [DRY_RUN, INVALID]
    assert alta.sent == []
    assert progress.data == {}


def test_user_keys_and_collisions():
    result = run_pass(
        [lead(1, data={"id": "A"}), lead(2, data={"id": "A"})],
        plan(Alta(), record_key=lambda _i, r: r["data"]["id"], show_phone=lambda n: n[:5] + "***"),
    )
    assert set(result.outcomes) == {"A", "A (record 1)"}
    assert result.outcomes["A"]["phone_number"] == "+1202***"


def test_progress_callback_runs_periodically():
    ticks = iter(range(100))
    seen: list[int] = []
    run_pass(
        (lead(n) for n in range(1, 6)),
        plan(Alta(), clock=lambda: next(ticks), progress_every=2, on_progress=lambda r: seen.append(r.done)),
    )
    assert seen == [2, 4]


records = st.one_of(
    st.dictionaries(
        st.sampled_from(
            ["name", "phone_number", "email", "timezone", "data", "call_transfer", "colour", "assistantId"]
        ),
        st.one_of(
            st.none(),
            st.text(max_size=12),
            st.integers(),
            st.booleans(),
            st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        ),
        max_size=6,
    ),
    st.builds(
        lambda n, tz: lead(n, timezone=tz),
        st.integers(100, 199),
        st.sampled_from(["Europe/London", "Nowhere/City", ""]),
    ),
    st.text(max_size=5),
    st.none(),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records, max_size=25))
def test_fuzzed_records_never_crash_the_batch_and_each_is_accounted_for(batch):
    result = run_pass(batch, plan(Alta()))
    assert len(result.outcomes) == len(batch)
    assert set(result.counts) == set(STATES)
    for outcome in result.outcomes.values():
        assert outcome["state"] in STATES
        if outcome["state"] == INVALID:
            assert ":" in outcome["reason"]  # "field.path: rule"


def test_invalid_records_name_the_field_path():
    result = run_pass(
        [lead(1, call_transfer={"phoneNumber": "+12025550199", "receiverMessageMode": "loud"})], plan(Alta())
    )
    assert result.outcomes["0"] == {
        "state": INVALID,
        "reason": "call_transfer.receiverMessageMode: must be one of static, summary",
    }


@pytest.mark.parametrize("bad", [None, 5, "text", ["list"]])
def test_non_dict_records_are_invalid(bad):
    result = run_pass([bad], plan(Alta()))
    assert result.outcomes["0"]["state"] == INVALID


# --- records that used to crash the pass ----------------------------------------------------


looped = partial(self_referencing, ok=1)


class BrokenMapping(Mapping):
    """A record whose reading raises."""

    def __getitem__(self, key):
        raise KeyError(key)

    def __iter__(self):
        raise OSError("disk gone while reading +12025550143")

    def __len__(self):
        return 1


@pytest.mark.parametrize(
    ("record", "path"),
    [
        ({**lead(1), 3: "x"}, "prospect[3]"),
        ({**lead(1), (1, 2): "x"}, "prospect[(1, 2)]"),
        ({**lead(1), None: "x"}, "prospect[None]"),
        ({**lead(1), Unprintable(): "x"}, "prospect[<Unprintable>]"),
        (lead(1, data=deep(5000)), "data.x.x"),
        (lead(1, data=looped()), "data.me"),
        (lead(1, data={"when": datetime(2026, 1, 1)}), "data.when"),
        (lead(1, data={"odd": Unprintable()}), "data.odd"),
        (lead(1, data={7: "seven"}), "data[7]"),
        (lead(1, name=b"Ada"), "name"),
        (lead(1, phoneNumber="+12025550002"), "prospect.phoneNumber"),
        (BrokenMapping(), "prospect"),
        (b"bytes", "prospect"),
        (3.5, "prospect"),
    ],
    ids=lambda value: type(value).__name__ if not isinstance(value, str) else value,
)
def test_odd_records_are_invalid_with_a_field_path_and_the_rest_go_on(record, path):
    alta = Alta()
    result = run_pass([lead(10), record, lead(12)], plan(alta))
    assert [result.outcomes[str(i)]["state"] for i in range(3)] == [CALLED, INVALID, CALLED]
    assert result.outcomes["1"]["reason"].startswith(path)
    assert "2025550143" not in result.outcomes["1"]["reason"]
    assert alta.sent == ["+12025550010", "+12025550012"]


def test_a_source_that_raises_partway_is_reported_and_everything_read_is_accounted_for():
    def source():
        yield lead(1)
        yield lead(2, name="")
        raise ConnectionError("cursor lost while reading +12025550143")

    alta = Alta()
    result = run_pass(source(), plan(alta))
    assert [result.outcomes[k]["state"] for k in ("0", "1")] == [CALLED, INVALID]
    assert result.source_error == "ConnectionError: cursor lost while reading +1202***0143"
    assert result.stopped == f"the record source failed after 2 record(s) ({result.source_error})"
    assert alta.sent == ["+12025550001"]


@pytest.mark.parametrize("source", [None, 42])
def test_a_source_that_is_not_iterable_is_reported(source):
    result = run_pass(source, plan(Alta()))
    assert result.outcomes == {}
    assert result.source_error.startswith("TypeError:")


def test_a_failing_dedupe_key_or_suppression_check_makes_the_record_invalid():
    alta = Alta()
    result = run_pass(
        [lead(1), lead(2), lead(3)],
        plan(
            alta,
            dedupe_key=lambda record, call: (
                [call.phone_number] if record["name"] == "Lead 1" else call.phone_number
            ),
            suppressed=lambda record, _call: record["missing"] if record["name"] == "Lead 2" else False,
        ),
    )
    assert result.outcomes["0"] == {
        "state": INVALID,
        "reason": "dedupe_key: could not be computed (TypeError: unhashable type: 'list')",
    }
    assert result.outcomes["1"] == {
        "state": INVALID,
        "reason": "suppression: could not be checked (KeyError: 'missing')",
    }
    assert alta.sent == ["+12025550003"]


def test_record_keys_never_collide_and_a_failing_record_key_falls_back_to_the_index():
    def record_key(index, record):
        if index == 3:
            raise ValueError("boom")
        return record["data"]["id"]

    records = [
        lead(1, data={"id": "A"}),
        lead(2, data={"id": "A (record 2)"}),
        lead(3, data={"id": "A"}),
        lead(4),
    ]
    result = run_pass(records, plan(Alta(), record_key=record_key))
    assert set(result.outcomes) == {"A", "A (record 2)", "A (record 2, 2)", "3"}
    assert result.done == 4


def test_an_unexpected_error_while_sending_is_ambiguous_and_stops_the_pass():
    alta = Alta({"+12025550002": RuntimeError("socket library bug")})
    progress = MemoryProgress()
    result = run_pass([lead(1), lead(2), lead(3)], plan(alta, progress))
    assert [result.outcomes[str(i)]["state"] for i in range(3)] == [CALLED, AMBIGUOUS, NOT_REACHED]
    assert "may have been placed" in result.outcomes["1"]["reason"]
    assert progress.get(progress_key("+12025550002"))["state"] == AMBIGUOUS  # never resent


# --- stopping --------------------------------------------------------------------------------


def test_a_stop_during_a_send_lets_it_finish_and_reaches_nobody_after():
    progress = MemoryProgress()
    stop = Stopper()
    alta = Alta()

    def send(call):
        if call.phone_number == "+12025550002":
            stop.request("SIGTERM")  # arrives while this send is in flight
        return alta(call)

    result = run_pass([lead(n) for n in range(1, 6)], plan(alta, progress, stop=stop, send=send))
    assert alta.sent == ["+12025550001", "+12025550002"]
    assert [result.outcomes[str(i)]["state"] for i in range(5)] == [CALLED, CALLED] + [NOT_REACHED] * 3
    assert result.outcomes["2"]["reason"] == "asked to stop (SIGTERM)"
    assert progress.get(progress_key("+12025550002"))["state"] == CALLED
    assert progress.get(progress_key("+12025550003")) is None
    assert result.done == 5


class WaitingGate:
    """A gate that waits through the stopper (as the Pacer does), reporting when it starts to."""

    def __init__(self, stop: Stopper, seconds: float) -> None:
        self.stop, self.seconds = stop, seconds
        self.waiting = threading.Event()
        self.released = 0

    def acquire(self) -> float:
        self.waiting.set()
        self.stop.sleep(self.seconds)
        return self.seconds

    def release(self) -> None:
        self.released += 1


def test_a_stop_from_another_thread_wakes_a_pacing_wait():
    stop = Stopper()
    gate = WaitingGate(stop, 3600)  # would hold the pass for an hour
    alta = Alta()
    progress = MemoryProgress()
    threading.Thread(target=lambda: (gate.waiting.wait(), stop.request("on_kill")), daemon=True).start()
    result = run_pass([lead(1), lead(2)], plan(alta, progress, stop=stop, gates=(gate,)))
    assert alta.sent == []
    assert result.outcomes["0"] == {
        "state": NOT_REACHED,
        "reason": "asked to stop (on_kill) before it was sent",
    }
    assert result.outcomes["1"] == {"state": NOT_REACHED, "reason": "asked to stop (on_kill)"}
    assert progress.data == {}


def test_a_stop_during_a_wait_inside_the_send_is_not_reached_not_ambiguous():
    stop = Stopper()
    progress = MemoryProgress()

    def send(call):  # the hook waiting out a 429 through the stopper, when the stop comes
        stop.request("SIGTERM")
        stop.sleep(30)
        raise AssertionError("unreachable")

    result = run_pass([lead(1), lead(2)], plan(Alta(), progress, stop=stop, send=send))
    assert [o["state"] for o in result.outcomes.values()] == [NOT_REACHED, NOT_REACHED]
    assert progress.get(progress_key("+12025550001"))["state"] == UNSENT  # a later try sends it


def test_a_signal_wakes_a_sleep_in_the_main_thread():
    stop = Stopper()
    previous = signal.signal(signal.SIGUSR1, lambda *_: stop.request("SIGUSR1"))
    try:
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        started = time.monotonic()
        with pytest.raises(StopRequested, match="SIGUSR1"):
            stop.sleep(120)
        assert time.monotonic() - started < 60  # woken, not timed out
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_a_stopper_once_requested_keeps_every_later_wait_short():
    stop = Stopper()
    stop.request("first")
    stop.request("second")
    for _ in range(2):
        with pytest.raises(StopRequested, match="first"):
            stop.sleep(3600)


# --- fuzz: no record shape and no source failure escapes the pass ----------------------------

FIELD_NAMES = [
    "name",
    "phone_number",
    "phoneNumber",
    "email",
    "timezone",
    "data",
    "call_transfer",
    "assistantId",
]

json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**64, max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.binary(max_size=4),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.datetimes(),
    st.frozensets(st.integers(), max_size=2),
    st.builds(Unprintable),
)
odd_keys = st.one_of(
    st.text(max_size=6),
    st.integers(),
    st.none(),
    st.tuples(st.integers()),
    st.booleans(),
    st.builds(Unprintable),
)
data_values = st.one_of(
    st.recursive(
        json_leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(odd_keys, inner, max_size=3), st.tuples(inner)
        ),
        max_leaves=12,
    ),
    st.integers(30, 3000).map(deep),
    st.builds(looped),
)
field_values = st.one_of(data_values, st.sampled_from(["+12025550143", "Ada", "Europe/London", "a@b.co", ""]))
record_shapes = st.one_of(
    st.dictionaries(st.one_of(st.sampled_from(FIELD_NAMES), odd_keys), field_values, max_size=6),
    st.builds(
        lambda n, extra: {**lead(n), **extra},
        st.integers(100, 130),
        st.dictionaries(st.one_of(st.sampled_from(FIELD_NAMES), odd_keys), field_values, max_size=2),
    ),
    st.builds(lambda n, data: lead(n, data=data), st.integers(100, 130), data_values),
    st.one_of(st.none(), st.integers(), st.text(max_size=4), st.binary(max_size=4), st.lists(st.integers())),
    st.builds(BrokenMapping),
)


def partly(records: list, fail_after: int | None):
    """The records as a generator that raises after ``fail_after`` of them (``None``: never)."""
    for index, record in enumerate(records):
        if index == fail_after:
            raise OSError("source failed near +12025550143")
        yield record


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(record_shapes, max_size=12), st.one_of(st.none(), st.integers(0, 12)))
def test_fuzzed_record_shapes_and_sources_never_escape_the_pass(batch, fail_after):
    alta = Alta()
    result = run_pass(partly(batch, fail_after), plan(alta, show_phone=lambda n: n[:5] + "***"))
    read = len(batch) if fail_after is None or fail_after >= len(batch) else fail_after
    assert len(result.outcomes) == result.done == read  # each record read ends in exactly one state
    assert sum(result.counts.values()) == read
    assert (result.source_error is not None) == (read < len(batch))
    for outcome in result.outcomes.values():
        assert outcome["state"] in STATES
        if outcome["state"] == INVALID:
            for problem in outcome["reason"].split("; "):
                assert re.match(r"(?:'[^']*'|\S[^:]*): \S", problem), outcome["reason"]  # "field.path: rule"
    assert len(alta.sent) == len(set(alta.sent))  # deduped: nobody twice
    assert not re.search(r"\d{10}", json.dumps(result.outcomes) + (result.source_error or ""))
