"""The send records shared by the batch and the single-call operator: what is written, and what it means."""

from __future__ import annotations

import pytest

from airflow_provider_alta.exceptions import (
    AltaAmbiguousOutcomeError,
    AltaAPIError,
    AltaAuthenticationError,
    AltaConnectionError,
    AltaRateLimitError,
    AltaValidationError,
)
from airflow_provider_alta.send_record import (
    AMBIGUOUS,
    CALLED,
    FINAL,
    MAYBE_PLACED,
    PLACED,
    REJECTED,
    SEND,
    SENDING,
    UNSENT,
    MemoryProgress,
    RecordWriteError,
    after_failure,
    progress_key,
    read_record,
    record,
    send_once,
)


@pytest.mark.parametrize(
    ("value", "decision", "state"),
    [
        (None, SEND, None),
        ({"state": UNSENT, "by": "try 1"}, SEND, UNSENT),
        ({"state": SENDING, "by": "try 1"}, MAYBE_PLACED, SENDING),
        ({"state": CALLED, "by": "try 1", "result": {"call_id": "c1"}}, PLACED, CALLED),
        ({"state": AMBIGUOUS, "reason": "read timeout"}, MAYBE_PLACED, AMBIGUOUS),
        ({"state": REJECTED, "reason": "400"}, FINAL, REJECTED),
    ],
)
def test_an_earlier_record_decides_what_a_later_try_does(value, decision, state):
    earlier = read_record(value, "try 2")
    assert (earlier.decision, earlier.state) == (decision, state)


@pytest.mark.parametrize("value", ["sending", 42, [], {}, {"state": None}, {"state": "who knows"}])
def test_a_record_this_module_did_not_write_may_hide_a_placed_call(value):
    earlier = read_record(value, "try 2")
    assert earlier.decision == MAYBE_PLACED
    assert earlier.state is None
    assert "unreadable" in earlier.reason


def test_a_record_knows_whether_this_try_wrote_it():
    assert read_record({"state": CALLED, "by": "try 2"}, "try 2").when == "an earlier pass of this try"
    assert read_record({"state": CALLED, "by": "try 1"}, "try 2").when == "an earlier try"
    assert read_record({"state": AMBIGUOUS, "reason": "timeout"}, "try 2").reason == "timeout"


def test_record_shape():
    assert record(SENDING, "try 1") == {"state": SENDING, "by": "try 1"}
    assert record(REJECTED, "try 1", "400 bad") == {"state": REJECTED, "by": "try 1", "reason": "400 bad"}
    assert record(CALLED, "try 1", result={"a": 1}) == {"state": CALLED, "by": "try 1", "result": {"a": 1}}


@pytest.mark.parametrize(
    ("error", "state"),
    [
        (AltaRateLimitError("429", retry_after=60), UNSENT),
        (AltaConnectionError("refused"), UNSENT),
        (AltaAuthenticationError("Invalid API token", status=401), UNSENT),
        (AltaValidationError("invalid", status=400), REJECTED),
        (AltaAPIError("teapot", status=418), REJECTED),
        (AltaAmbiguousOutcomeError("read timed out"), AMBIGUOUS),
        (RuntimeError("boom"), AMBIGUOUS),
    ],
)
def test_a_failed_send_leaves_the_state_its_error_class_says(error, state):
    assert after_failure(error)[0] == state


def test_an_unexpected_failure_is_ambiguous_with_a_masked_reason():
    state, reason = after_failure(RuntimeError("socket died calling +12025550143"))
    assert state == AMBIGUOUS
    assert "may have been placed" in reason
    assert "2025550143" not in reason


class Sender:
    """Records the writes seen at the moment of sending."""

    def __init__(self, progress: MemoryProgress, outcome: object = None) -> None:
        self.progress = progress
        self.outcome = outcome
        self.seen: list[object] = []

    def __call__(self) -> dict:
        self.seen.append(self.progress.get("k"))
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return {"id": "c1"}


def test_send_once_records_sending_before_and_called_after_with_what_it_keeps():
    progress = MemoryProgress()
    send = Sender(progress)
    answer = send_once(progress, "k", "try 1", send, keep=lambda a: {"result": {"call_id": a["id"]}})
    assert answer == {"id": "c1"}
    assert send.seen == [{"state": SENDING, "by": "try 1"}]
    assert progress.get("k") == {"state": CALLED, "by": "try 1", "result": {"call_id": "c1"}}


@pytest.mark.parametrize(
    ("error", "state"),
    [
        (AltaRateLimitError("429", retry_after=60), UNSENT),
        (AltaAmbiguousOutcomeError("reset"), AMBIGUOUS),
        (KeyError("odd"), AMBIGUOUS),
    ],
)
def test_send_once_records_a_failure_and_reraises_it(error, state):
    progress = MemoryProgress()
    with pytest.raises(type(error)):
        send_once(progress, "k", "try 1", Sender(progress, error))
    assert progress.get("k")["state"] == state


def test_errors_named_unsent_were_raised_before_anything_left():
    class Stopped(Exception):
        pass

    progress = MemoryProgress()
    with pytest.raises(Stopped):
        send_once(progress, "k", "try 1", Sender(progress, Stopped()), unsent=(Stopped,))
    assert progress.get("k") == {"state": UNSENT, "by": "try 1"}


class FailingStore:
    def __init__(self, fail_on: str) -> None:
        self.fail_on = fail_on
        self.data: dict[str, object] = {}

    def get(self, key: str) -> object:
        return self.data.get(key)

    def set(self, key: str, value: dict) -> None:
        if value["state"] == self.fail_on:
            raise OSError("database is locked")
        self.data[key] = value


def test_a_store_that_cannot_record_sending_stops_the_send():
    store = FailingStore(fail_on=SENDING)
    sent: list[int] = []
    with pytest.raises(RecordWriteError, match="nothing was sent") as info:
        send_once(store, "k", "try 1", lambda: sent.append(1))
    assert info.value.sent is False
    assert sent == []


def test_a_store_that_cannot_record_the_outcome_leaves_sending():
    store = FailingStore(fail_on=CALLED)
    with pytest.raises(RecordWriteError, match="after the call was sent") as info:
        send_once(store, "k", "try 1", lambda: {"id": "c1"})
    assert info.value.sent is True
    assert store.data["k"]["state"] == SENDING  # a later try reads: may have been placed


def test_progress_keys_are_hashes():
    key = progress_key(("call", "asst_1", "+12025550143"))
    assert key.startswith("alta:")
    assert "2025550143" not in key
    assert key == progress_key(("call", "asst_1", "+12025550143"))
    assert key != progress_key(("call", "asst_2", "+12025550143"))
