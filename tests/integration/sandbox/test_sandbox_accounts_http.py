"""Accounts, RateLimit headers and outside clients over real loopback HTTP."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import requests

from airflow_provider_alta.sandbox import AltaSandbox

pytestmark = pytest.mark.integration

ACME = {"acme": ["tok-a", "tok-b"], "globex": ["tok-g"]}
RATELIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def remaining(response: requests.Response) -> int:
    return int(response.headers["RateLimit-Remaining"])


def test_two_tokens_of_one_account_share_one_window(client, body) -> None:
    with AltaSandbox(accounts=ACME, rate_limit="4/60", clock=FakeClock()) as sandbox:
        assert sandbox.accounts == ["acme", "globex"]
        assert sandbox.token == "tok-a"
        assert sandbox.token_for("globex") == "tok-g"
        statuses = [
            client.post(sandbox.calls_url, json=body, headers=auth(token)).status_code
            for token in ("tok-a", "tok-b", "tok-a", "tok-b", "tok-a", "tok-b")
        ]
        assert statuses == [200, 200, 200, 200, 429, 429]
        assert client.post(sandbox.calls_url, json=body, headers=auth("tok-g")).status_code == 200
        stats = client.get(sandbox.base_url + "/_sandbox/stats").json()
        assert stats["windows"] == {"acme": 4, "globex": 1}
        assert stats["window_used"] == 4
        assert stats["account"] == "acme"
        calls = client.get(sandbox.base_url + "/_sandbox/calls").json()["calls"]
        assert [call["account"] for call in calls] == ["acme"] * 4 + ["globex"]


def test_gets_and_unknown_routes_count_and_unauthenticated_requests_do_not(client, body) -> None:
    with AltaSandbox(accounts=ACME, rate_limit="5/60", clock=FakeClock()) as sandbox:
        placed = client.post(sandbox.calls_url, json=body, headers=auth("tok-a"))
        assert remaining(placed) == 4
        got = client.get(sandbox.call_url(placed.json()["id"]), headers=auth("tok-b"))
        assert (got.status_code, remaining(got)) == (200, 3)
        missing = client.get(sandbox.call_url(str(uuid.uuid4())), headers=auth("tok-a"))
        assert (missing.status_code, remaining(missing)) == (404, 2)
        unknown = client.get(sandbox.base_url + "/v1/campaigns", headers=auth("tok-a"))
        assert (unknown.status_code, remaining(unknown)) == (404, 1)
        for _ in range(5):  # no token, a wrong one, or not under /v1: no slot used, no headers
            for response in (
                client.get(sandbox.call_url(placed.json()["id"])),
                client.post(sandbox.calls_url, json=body, headers=auth("wrong")),
                client.get(sandbox.base_url + "/v1/campaigns"),
                client.get(sandbox.base_url + "/v2/campaigns", headers=auth("tok-a")),
            ):
                assert response.status_code in (401, 404)
                assert not set(RATELIMIT_HEADERS) & set(response.headers)
        invalid = client.post(sandbox.calls_url, json={}, headers=auth("tok-b"))
        assert (invalid.status_code, remaining(invalid)) == (400, 0)
        limited = client.get(sandbox.call_url(placed.json()["id"]), headers=auth("tok-a"))
        assert limited.status_code == 429
        assert limited.json()["error"] == "TooManyRequests"
        assert client.post(sandbox.calls_url, json=body, headers=auth("tok-g")).status_code == 200
        stats = sandbox.stats()
        assert stats["gets"] == 2 + 1 + 5
        assert stats["windows"] == {"acme": 5, "globex": 1}


def test_headers_count_down_and_match_the_429_decision(client, body) -> None:
    clock = FakeClock()
    with AltaSandbox(accounts=ACME, rate_limit="3/60", clock=clock) as sandbox:
        answers = []
        for now, token in [(0.0, "tok-a"), (20.0, "tok-b"), (30.5, "tok-a")]:
            clock.now = now
            response = client.post(sandbox.calls_url, json=body, headers=auth(token))
            answers.append([response.status_code, *(response.headers[name] for name in RATELIMIT_HEADERS)])
        assert answers == [
            [200, "3", "2", "60", "3;w=60"],
            [200, "3", "1", "40", "3;w=60"],
            [200, "3", "0", "30", "3;w=60"],  # Remaining 0: refused until Reset (the t=0 entry leaves)
        ]
        clock.now = 59.0
        refused = client.post(sandbox.calls_url, json=body, headers=auth("tok-b"))
        assert refused.status_code == 429
        assert refused.headers["RateLimit-Remaining"] == "0"
        assert refused.headers["RateLimit-Reset"] == refused.headers["Retry-After"] == "1"
        clock.now = 30.5 + 30  # the Reset promised by the last 200
        assert client.post(sandbox.calls_url, json=body, headers=auth("tok-a")).status_code == 200


def test_headers_can_be_turned_off(client, body) -> None:
    with AltaSandbox(token="integration-token", rate_limit="1/60", ratelimit_headers=False) as sandbox:
        headers = auth("integration-token")
        assert not set(RATELIMIT_HEADERS) & set(
            client.post(sandbox.calls_url, json=body, headers=headers).headers
        )
        limited = client.post(sandbox.calls_url, json=body, headers=headers)
        assert limited.status_code == 429
        assert "Retry-After" in limited.headers
        assert not set(RATELIMIT_HEADERS) & set(limited.headers)
        config = client.post(sandbox.base_url + "/_sandbox/config", json={"ratelimit_headers": True}).json()
        assert config["ratelimit_headers"] is True
        assert client.get(sandbox.base_url + "/_sandbox/config").json() == config
        again = client.post(sandbox.calls_url, json=body, headers=headers)
        assert again.headers["RateLimit-Remaining"] == "0"
        bad = client.post(sandbox.base_url + "/_sandbox/config", json={"ratelimit_headers": "off"})
        assert bad.status_code == 400


def test_outside_spend_reduces_remaining(client, body) -> None:
    with AltaSandbox(accounts=ACME, rate_limit="10/60", clock=FakeClock()) as sandbox:
        first = client.post(sandbox.calls_url, json=body, headers=auth("tok-a"))
        assert remaining(first) == 9
        spent = client.post(sandbox.base_url + "/_sandbox/spend", json={"account": "acme", "requests": 6})
        assert spent.json() == {"account": "acme", "requests": 6, "counted": 6, "refused": 0}
        after = client.post(sandbox.calls_url, json=body, headers=auth("tok-b"))
        assert remaining(after) == 2
        assert sandbox.spend(5) == {"account": "acme", "requests": 5, "counted": 2, "refused": 3}
        assert client.post(sandbox.calls_url, json=body, headers=auth("tok-a")).status_code == 429
        assert remaining(client.post(sandbox.calls_url, json=body, headers=auth("tok-g"))) == 9
        stats = sandbox.stats()
        assert stats["outside"] == {"acme": {"per_minute": 0.0, "sent": 11, "counted": 8, "refused": 3}}
        assert stats["accepted"] == 3


@pytest.mark.parametrize(
    ("control", "payload", "fragment"),
    [
        ("spend", {"account": "nobody", "requests": 1}, "unknown account"),
        ("spend", {"requests": -1}, "requests"),
        ("spend", {"requests": "5"}, "requests"),
        ("spend", {}, "requests: is required"),
        ("spend", {"requests": 1, "colour": "red"}, "unknown keys: colour"),
        ("outside", {"per_minute": -2}, "per_minute"),
        ("outside", {"account": 5, "per_minute": 2}, "unknown account"),
    ],
)
def test_bad_outside_requests_are_400(sandbox, client, control, payload, fragment) -> None:
    response = client.post(sandbox.base_url + f"/_sandbox/{control}", json=payload)
    assert response.status_code == 400
    assert response.json()["error"] == "ValidationError"
    assert fragment in response.json()["message"]
    assert sandbox.stats()["outside"] == {}


def test_a_background_spender_with_an_injected_clock(client, body) -> None:
    clock = FakeClock()
    with AltaSandbox(accounts=ACME, rate_limit="100/60", clock=clock) as sandbox:
        answer = client.post(
            sandbox.base_url + "/_sandbox/outside", json={"account": "globex", "per_minute": 30}
        )
        assert answer.json() == {
            "account": "globex",
            "per_minute": 30.0,
            "sent": 1,
            "counted": 1,
            "refused": 0,
        }
        clock.now = 10.0  # one request every 2 s of the clock
        outside = client.get(sandbox.base_url + "/_sandbox/outside").json()
        assert outside["globex"]["sent"] == 6
        response = client.post(sandbox.calls_url, json=body, headers=auth("tok-g"))
        assert remaining(response) == 100 - 6 - 1
        assert sandbox.set_outside_rate(0, "globex")["sent"] == 6
        clock.now = 50.0
        assert sandbox.stats()["outside"]["globex"]["sent"] == 6


def test_a_background_spender_spends_in_real_time_and_stops_with_the_server(client, body) -> None:
    sandbox = AltaSandbox(accounts=ACME, rate_limit="20/1").start()  # a compressed minute: 1 s
    try:
        sandbox.set_outside_rate(20)  # the whole window, spread over each second
        deadline = time.monotonic() + 30
        while sandbox.stats()["outside"]["acme"]["counted"] < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sandbox.stats()["outside"]["acme"]["counted"] >= 40  # it went on over more than a window
        assert any(thread.name == "alta-sandbox-outside" for thread in threading.enumerate())
        stopped = client.post(sandbox.base_url + "/_sandbox/outside", json={"per_minute": 0}).json()
        time.sleep(0.2)  # several of its former intervals
        assert sandbox.stats()["outside"]["acme"] == {k: v for k, v in stopped.items() if k != "account"}
        sandbox.set_outside_rate(20)
        assert client.post(sandbox.base_url + "/_sandbox/reset").json() == {"reset": True}
        assert sandbox.stats()["outside"] == {}
    finally:
        sandbox.stop()
    assert not any(thread.name.startswith("alta-sandbox") for thread in threading.enumerate())
