"""SharedLimiter against a real redis-server (started here) and, end to end, the Alta sandbox.

Windows are time-compressed (20 calls per 2 s) so each test takes seconds. Worker processes are
real OS processes (``fork``), each with its own limiter, Redis connections and clock reads.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import redis

from airflow_provider_alta.client import AltaClient, ResendPolicy
from airflow_provider_alta.config import AltaSettings
from airflow_provider_alta.payload import build_call
from airflow_provider_alta.sandbox import AltaSandbox
from airflow_provider_alta.shared_limiter import (
    SharedLimiter,
    SharedLimiterTimeout,
    SharedLimiterUnavailable,
    bucket_key,
    budget_bucket_key,
    token_fingerprint,
)
from alta_testing.data.campaign_checks import max_in_window
from alta_testing.servers import redis_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

LIMIT, WINDOW = 20, 2.0  # the compressed window every test uses: 20 calls per 2 s
PER_MINUTE = LIMIT * 60 / WINDOW  # 600 per minute, over a 2 s window
# The margin is a fraction of the window, so compressing the window compresses the slack it leaves
# for a call to reach the server after its permit: 1 % of 60 s is 600 ms, but 1 % of 2 s only 20 ms,
# less than a busy 2-CPU test machine can promise. 5 % of 2 s leaves 100 ms.
MARGIN = 0.05
FORK = multiprocessing.get_context("fork")


def steady_ratio(times: list[float], limit: int, window: float) -> float:
    """Sustained rate as a fraction of ``limit / window``: how soon each slot is used again.

    Entry ``i + limit`` reuses the slot entry ``i`` held; at exactly the limit that takes
    ``window`` seconds. Independent of bursts, so it holds for any number of entries.
    """
    ordered = sorted(times)
    gaps = [ordered[i + limit] - ordered[i] for i in range(len(ordered) - limit)]
    return window / (sum(gaps) / len(gaps))


def take(gate: SharedLimiter) -> float:
    """A permit for a call that ends at once: acquire, then release; the seconds waited."""
    waited = gate.acquire()
    gate.release()
    return waited


def new_token() -> str:
    return f"test-token-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """One real redis-server for the module; afterwards the process and its port must be gone."""
    server = redis_server.RedisServer().start()
    pid, port = server.pid, server.port
    try:
        yield server.url
    finally:
        server.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert redis_server.port_closed(port)


def limiter(url: str, token: str, **options: Any) -> SharedLimiter:
    options.setdefault("margin", MARGIN)
    return SharedLimiter(url, token=token, calls_per_minute=PER_MINUTE, window_seconds=WINDOW, **options)


# --- one process ---------------------------------------------------------------------------------


def test_one_process_never_exceeds_the_limit_in_any_window(redis_url):
    times = []
    with limiter(redis_url, new_token()) as gate:
        for _ in range(3 * LIMIT):
            take(gate)
            times.append(time.time())
    assert max_in_window(times, WINDOW) == LIMIT
    assert steady_ratio(times, LIMIT, WINDOW) >= 0.9


def test_acquire_reports_the_seconds_it_waited(redis_url):
    with SharedLimiter(redis_url, token=new_token(), calls_per_minute=120, window_seconds=1) as gate:
        assert gate.limit == 2
        assert take(gate) < 0.1
        assert take(gate) < 0.1
        started = time.monotonic()
        waited = take(gate)
        elapsed = time.monotonic() - started
    assert 1.0 <= waited <= elapsed


def test_threads_sharing_one_limiter_stay_within_the_limit(redis_url):
    times: list[float] = []
    lock = threading.Lock()
    with limiter(redis_url, new_token()) as gate:

        def work() -> None:
            for _ in range(LIMIT // 2):
                take(gate)
                with lock:
                    times.append(time.time())

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert len(times) == 2 * LIMIT
    assert max_in_window(times, WINDOW) == LIMIT


# --- several processes ---------------------------------------------------------------------------


def _acquire_in_process(url: str, token: str, count: int, barrier: Any, out: Any) -> None:
    try:
        with limiter(url, token) as gate:
            barrier.wait(10)
            times = []
            for _ in range(count):
                take(gate)
                times.append(time.time())
        out.put((os.getpid(), times))
    except BaseException as exc:
        out.put((os.getpid(), repr(exc)))
        raise


def run_processes(target: Any, args: list[tuple[Any, ...]]) -> list[tuple[int, Any]]:
    """Run ``target(*args[i], barrier, queue)`` in one OS process per ``args[i]``; collect their results."""
    processes = len(args)
    barrier, out = FORK.Barrier(processes), FORK.Queue()
    workers = [FORK.Process(target=target, args=(*mine, barrier, out)) for mine in args]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=45) for _ in workers]
    for worker in workers:
        worker.join(10)
    assert all(isinstance(result, list) for _, result in results), results  # else: the error's repr
    assert [worker.exitcode for worker in workers] == [0] * processes
    assert len({pid for pid, _ in results}) == processes
    return results


def test_three_processes_on_one_token_share_one_budget(redis_url):
    per_process = 30
    token = new_token()
    results = run_processes(_acquire_in_process, [(redis_url, token, per_process)] * 3)
    times = [t for _, mine in results for t in mine]
    assert len(times) == 3 * per_process
    assert max_in_window(times, WINDOW) == LIMIT
    ratio = steady_ratio(times, LIMIT, WINDOW)
    assert 0.9 <= ratio <= 1.0, ratio
    assert all(len(mine) == per_process for _, mine in results)


def test_two_tokens_do_not_share_a_budget(redis_url):
    first, second = new_token(), new_token()
    with (
        SharedLimiter(redis_url, token=first, calls_per_minute=30, window_seconds=10, timeout=0.5) as a,
        SharedLimiter(redis_url, token=second, calls_per_minute=30, window_seconds=10, timeout=0.5) as b,
    ):
        assert a.limit == b.limit == 5
        for _ in range(5):
            assert take(a) < 0.1
        for _ in range(5):  # the first token's full window takes nothing from the second's
            assert take(b) < 0.1
        for gate in (a, b):
            started = time.monotonic()
            with pytest.raises(SharedLimiterTimeout, match=r"no permit within 0.5 s"):
                gate.acquire()
            # The next slot is ~10 s away: known to be past the deadline, so no waiting at all.
            assert time.monotonic() - started < 0.3


def test_a_timeout_longer_than_the_wait_lets_the_call_through(redis_url):
    with SharedLimiter(
        redis_url, token=new_token(), calls_per_minute=60, window_seconds=1, timeout=3
    ) as gate:
        take(gate)
        assert take(gate) > 0.9


def test_a_full_window_frees_when_its_oldest_call_leaves_it_not_a_window_after_asking(redis_url):
    """The wait is until the oldest ended call is a window old: asked 1.2 s into a 2 s window that
    ended calls filled, a permit comes within a 1.5 s timeout (it used to wait a whole window)."""
    with SharedLimiter(
        redis_url, token=new_token(), calls_per_minute=60, window_seconds=2, timeout=1.5
    ) as gate:
        take(gate)
        take(gate)
        time.sleep(1.2)  # at least 1.2 s: the slots free at most 0.8 s (+ clock slack) from now
        assert gate.acquire() < 1.5
        gate.release()


def test_redis_holds_the_fingerprint_never_the_token(redis_url):
    token = new_token()
    with limiter(redis_url, token) as gate:
        take(gate)
        assert token not in repr(gate)
    client = redis.Redis.from_url(redis_url)
    try:
        keys = [key.decode() for key in client.keys("*")]
        assert bucket_key(token) in keys
        assert f"alta:ratelimit:{token_fingerprint(token)}" in keys
        assert not any(token in key for key in keys)
        # an idle window expires
        assert 0 < client.pttl(bucket_key(token)) <= gate.hold_ms + 2 * gate.interval_ms
        members = client.zrange(bucket_key(token), 0, -1)
        assert members
        assert not any(token.encode() in member for member in members)
    finally:
        client.close()


# --- Redis down ----------------------------------------------------------------------------------


def test_no_redis_at_the_url_is_a_clear_error_not_a_hang():
    port = redis_server.free_port()
    token = new_token()
    started = time.monotonic()
    with pytest.raises(
        SharedLimiterUnavailable, match=rf"Redis at redis://127.0.0.1:{port}/0 failed"
    ) as caught:
        limiter(f"redis://:pa55word@127.0.0.1:{port}/0", token)
    assert time.monotonic() - started < 5
    assert "pa55word" not in str(caught.value)
    assert token not in str(caught.value)


def test_redis_going_down_fails_acquire_fast():
    server = redis_server.RedisServer().start()
    try:
        gate = limiter(server.url, new_token(), timeout=None)
        gate.acquire()
        server.kill()
        started = time.monotonic()
        with pytest.raises(SharedLimiterUnavailable, match="no call was sent"):
            gate.acquire()
        assert time.monotonic() - started < 5
        gate.close()
    finally:
        server.stop()
    assert not server.running


# --- end to end: real calls through the sandbox --------------------------------------------------


def _call_in_process(
    url: str, api_url: str, token: str, index: int, count: int, barrier: Any, out: Any
) -> None:
    try:
        settings = AltaSettings(base_url=api_url, token=token)
        # A 429 would be raised at once (no wait budget), so the test would see it.
        with (
            limiter(url, token) as gate,
            AltaClient(settings, retry=ResendPolicy(rate_limit_budget=0)) as client,
        ):
            barrier.wait(10)
            placed = []
            for number in range(count):
                call = build_call(
                    {
                        "assistant_id": "asst_shared_limiter_test",
                        "name": f"Test Person {index}-{number}",
                        "phone_number": f"+1 202 555 01{index * count + number:02d}",
                    }
                )
                gate.acquire()
                try:
                    placed.append(client.trigger(call).get("id", ""))
                finally:
                    gate.release()
        out.put((os.getpid(), placed))
    except BaseException as exc:
        out.put((os.getpid(), repr(exc)))
        raise


def test_three_processes_placing_calls_never_draw_a_429(redis_url):
    token, per_process = new_token(), 20
    # No RateLimit-* headers: the limiter alone must keep the three processes under the limit.
    with AltaSandbox(token=token, rate_limit=f"{LIMIT}/{WINDOW:g}", ratelimit_headers=False) as sandbox:
        args = [(redis_url, sandbox.url, token, index, per_process) for index in range(3)]
        results = run_processes(_call_in_process, args)
        stats = sandbox.stats()
        journal = sandbox.calls()
    assert stats["responses"] == {"200": 3 * per_process}, stats["responses"]  # not one 429
    assert stats["accepted"] == 3 * per_process
    arrivals = [datetime.fromisoformat(record["received_at"]).timestamp() for record in journal]
    assert max_in_window(arrivals, WINDOW) == LIMIT
    numbers = [record["body"]["phoneNumber"] for record in journal]
    assert len(set(numbers)) == len(numbers) == 3 * per_process
    assert all(number.startswith("+120255501") for number in numbers)
    assert sum(len(ids) for _, ids in results) == 3 * per_process


def test_a_call_that_reaches_alta_late_cannot_tip_the_window_over(redis_url):
    """A permit counts from when its call ended, so a stall between permit and send is harmless.

    One worker takes a permit and stalls for half a window before its call leaves (a starved CPU,
    a paused process); another spends the rest of the window at once and keeps going. A limiter
    that counted from the permit would free the stalled slot a window after the permit and let a
    sixth call in within a window of the stalled call's arrival: a 429.
    """
    limit, window = 5, 2.0
    token = new_token()

    def gate() -> SharedLimiter:
        return SharedLimiter(
            redis_url, token=token, calls_per_minute=limit * 60 / window, window_seconds=window, margin=0
        )

    def person(number: int) -> Any:
        return build_call(
            {"assistant_id": "asst_late", "name": "Test Person", "phone_number": f"+1 202 555 01{number:02d}"}
        )

    with AltaSandbox(token=token, rate_limit=f"{limit}/{window:g}", ratelimit_headers=False) as sandbox:
        settings = AltaSettings(base_url=sandbox.url, token=token)
        permit_taken = threading.Event()
        errors: list[BaseException] = []

        def stalled() -> None:
            with gate() as mine, AltaClient(settings, retry=ResendPolicy(rate_limit_budget=0)) as client:
                mine.acquire()
                permit_taken.set()
                time.sleep(window / 2)  # the stall: the permit is old before the call leaves
                try:
                    client.trigger(person(99))
                except BaseException as exc:
                    errors.append(exc)
                finally:
                    mine.release()

        worker = threading.Thread(target=stalled)
        worker.start()
        assert permit_taken.wait(10)
        with gate() as mine, AltaClient(settings, retry=ResendPolicy(rate_limit_budget=0)) as client:
            for number in range(2 * limit):
                take_and_call = mine.acquire()
                try:
                    client.trigger(person(number))
                finally:
                    mine.release()
                assert take_and_call >= 0
        worker.join(30)
        stats = sandbox.stats()
    assert not errors, errors
    assert stats["responses"] == {"200": 2 * limit + 1}, stats["responses"]


# --- one budget per account, applied by the client to every request ----------------------------


def account_settings(url: str, token: str, account: str) -> AltaSettings:
    return AltaSettings(base_url=url, token=token, account=account)


def test_two_tokens_of_one_account_share_one_window(redis_url):
    account = f"acme-{uuid.uuid4().hex[:8]}"
    first = account_settings("https://api.altahq.com/v1", new_token(), account)
    second = account_settings("https://api.altahq.com/v1", new_token(), account.upper())
    assert first.budget_key == second.budget_key

    def gate(settings: AltaSettings) -> SharedLimiter:
        return SharedLimiter(
            redis_url, budget_key=settings.budget_key, calls_per_minute=30, window_seconds=10, timeout=0.5
        )

    with gate(first) as a, gate(second) as b:
        assert a.key == b.key == budget_bucket_key(first.budget_key)
        for _ in range(3):
            take(a)
        for _ in range(2):
            take(b)
        for full in (a, b):  # 5 per 10 s for the account, whichever token asks
            with pytest.raises(SharedLimiterTimeout, match=r"no permit within 0\.5 s"):
                full.acquire()
    client = redis.Redis.from_url(redis_url)
    try:
        keys = [key.decode() for key in client.keys("*")]
    finally:
        client.close()
    assert budget_bucket_key(first.budget_key) in keys
    assert not any(first.token in key or second.token in key or account in key for key in keys)


def test_a_ceiling_lowers_the_limit_while_it_is_lower(redis_url):
    ceiling: list[float | None] = [None]
    with limiter(redis_url, new_token(), timeout=0.3, ceiling=lambda: ceiling[0]) as gate:
        assert gate.limit == LIMIT
        ceiling[0] = PER_MINUTE / 2  # Alta stated half the configured rate
        assert gate.limit == LIMIT // 2
        for _ in range(LIMIT // 2):
            take(gate)
        with pytest.raises(SharedLimiterTimeout):
            gate.acquire()
        ceiling[0] = PER_MINUTE * 10  # a higher stated rate never raises it
        assert gate.limit == LIMIT
        ceiling[0] = 0.001  # never below one call per window
        assert gate.limit == 1


def test_calls_reads_and_the_token_check_each_take_a_permit(redis_url):
    token = new_token()
    with AltaSandbox(token=token, rate_limit=None) as sandbox:
        settings = AltaSettings(base_url=sandbox.url, token=token, account=f"acme-{uuid.uuid4().hex[:8]}")
        gate = SharedLimiter(redis_url, budget_key=settings.budget_key, calls_per_minute=PER_MINUTE)
        with AltaClient(settings, gates=[gate]) as client:
            placed = client.trigger(
                build_call({"assistant_id": "a", "name": "N", "phone_number": "+12025550143"})
            )
            assert client.get_call(placed["id"])["id"] == placed["id"]
            assert client.check_token()[0] is True
        store = redis.Redis.from_url(redis_url)
        try:
            assert store.zcard(budget_bucket_key(settings.budget_key)) == 3
        finally:
            store.close()
        assert sandbox.stats()["requests"] == 3


def test_redis_going_down_inside_the_client_sends_nothing(redis_url):
    from airflow_provider_alta.exceptions import NOT_REACHED, AltaRateBudgetError

    token = new_token()
    server = redis_server.RedisServer().start()
    try:
        with AltaSandbox(token=token, rate_limit=None) as sandbox:
            settings = AltaSettings(base_url=sandbox.url, token=token)
            gate = SharedLimiter(server.url, budget_key=settings.budget_key, calls_per_minute=100)
            client = AltaClient(settings, gates=[gate])
            server.kill()
            call = build_call({"assistant_id": "a", "name": "N", "phone_number": "+12025550143"})
            with pytest.raises(AltaRateBudgetError, match="no call was sent") as info:
                client.trigger(call)
            assert (info.value.task_retry, info.value.batch_state, info.value.stops_batch) == (
                True,
                NOT_REACHED,
                True,
            )
            with pytest.raises(AltaRateBudgetError):
                client.get_call("any-id")
            ok, message = client.check_token()
            assert not ok
            assert "shared rate limiter failed" in message
            client.close()
            assert sandbox.stats()["requests"] == 0
    finally:
        server.stop()


def _call_through_client_in_process(
    url: str, api_url: str, token: str, index: int, count: int, barrier: Any, out: Any
) -> None:
    try:
        settings = AltaSettings(base_url=api_url, token=token, account="shared")
        gate = SharedLimiter(
            url,
            budget_key=settings.budget_key,
            calls_per_minute=PER_MINUTE,
            window_seconds=WINDOW,
            margin=MARGIN,
        )
        # The client applies the limiter to every request and reads the sandbox's RateLimit headers;
        # a 429 would be waited out, so the sandbox's count of 429s is what the test checks.
        with AltaClient(settings, gates=[gate], retry=ResendPolicy(rate_limit_budget=30)) as client:
            barrier.wait(10)
            for number in range(count):
                call = build_call(
                    {
                        "assistant_id": "asst_shared_limiter_test",
                        "name": f"Test Person {index}-{number}",
                        "phone_number": f"+1 202 555 01{index * count + number:02d}",
                    }
                )
                client.trigger(call)
        out.put((os.getpid(), [number for number in range(count)]))
    except BaseException as exc:
        out.put((os.getpid(), repr(exc)))
        raise


def test_three_processes_with_rate_headers_on_draw_no_429(redis_url):
    """The limiter in the client, with the headers read too: the two never fight into a 429."""
    tokens = [new_token() for _ in range(3)]
    per_process = 15
    with AltaSandbox(accounts={"shared": tokens}, rate_limit=f"{LIMIT}/{WINDOW:g}") as sandbox:
        args = [(redis_url, sandbox.url, tokens[index], index, per_process) for index in range(3)]
        run_processes(_call_through_client_in_process, args)
        stats = sandbox.stats()
        journal = sandbox.calls()
    assert stats["responses"] == {"200": 3 * per_process}, stats["responses"]
    arrivals = [datetime.fromisoformat(record["received_at"]).timestamp() for record in journal]
    assert max_in_window(arrivals, WINDOW) <= LIMIT
