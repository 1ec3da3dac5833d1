from __future__ import annotations

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
    return Plan(
        prepare=prepare,
        send=alta,
        progress=progress if progress is not None else MemoryProgress(),
        dedupe_key=lambda _r, call: call.phone_number,
        **kw,
    )


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
