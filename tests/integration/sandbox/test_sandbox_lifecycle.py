"""Start, stop, the CLI in a subprocess, and the pytest fixture."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

import airflow_provider_alta
from airflow_provider_alta.sandbox import AltaSandbox

pytestmark = pytest.mark.integration

REPO_ROOT = Path(airflow_provider_alta.__file__).resolve().parent.parent


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _sandbox_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("alta-sandbox")]


def _port_is_closed(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def test_stop_frees_the_port_and_leaves_no_thread(client, headers, body) -> None:
    before = _sandbox_threads()
    sandbox = AltaSandbox(token="integration-token").start()
    port, calls_url = sandbox.port, sandbox.calls_url
    idle = requests.Session()  # keeps a keep-alive connection open across stop()
    assert idle.post(sandbox.calls_url, json=body, headers=headers).status_code == 200
    assert sandbox.open_connections >= 1
    sandbox.stop()
    assert not sandbox.running
    assert _sandbox_threads() == before
    assert _port_is_closed(port)
    with socket.socket() as probe:  # and the port can be bound again at once
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
    with pytest.raises(requests.exceptions.ConnectionError):
        idle.post(calls_url, json=body, headers=headers, timeout=5)
    idle.close()
    sandbox.stop()  # a second stop is harmless


def test_stop_interrupts_a_latency_fault(headers, body) -> None:
    sandbox = AltaSandbox(token="integration-token", faults={"script": ["latency:600"]}).start()
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(
                requests.post(sandbox.calls_url, json=body, headers=headers, timeout=60).status_code
            )
        except requests.exceptions.RequestException as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    while sandbox.stats()["in_flight"] == 0 and caller.is_alive():
        threading.Event().wait(0.01)
    sandbox.stop(timeout=10)
    caller.join(30)
    assert not caller.is_alive()
    assert _sandbox_threads() == []
    assert len(outcome) == 1  # either the delayed answer or a closed connection, but never a hang


def test_journal_is_closed_on_stop(tmp_path, headers, body) -> None:
    path = tmp_path / "journal.jsonl"
    with AltaSandbox(token="integration-token", journal_path=path) as sandbox:
        requests.post(sandbox.calls_url, json=body, headers=headers, timeout=10)
    assert len(path.read_text("utf-8").splitlines()) == 1
    assert sandbox.calls()[0]["body"] == body  # still readable in memory after stop


def test_properties_and_errors_before_start() -> None:
    sandbox = AltaSandbox(token=["first", "second"])
    assert not sandbox.running
    assert sandbox.token == "first"
    with pytest.raises(RuntimeError, match="not running"):
        _ = sandbox.url
    with pytest.raises(RuntimeError, match="not been started"):
        sandbox.calls()
    with sandbox:
        assert sandbox.url == f"http://127.0.0.1:{sandbox.port}/v1"
        assert sandbox.calls_url == sandbox.url + "/assistant/calls"
        with pytest.raises(RuntimeError, match="already running"):
            sandbox.start()
        with pytest.raises(TypeError):
            sandbox.set_faults({"script": ["ok"]}, seed=1)


def test_ipv6_loopback(headers, body) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        sandbox = AltaSandbox(token="integration-token", host="::1").start()
    except OSError:
        pytest.skip("::1 not available here")
    try:
        assert sandbox.url.startswith("http://[::1]:")
        assert requests.post(sandbox.calls_url, json=body, headers=headers, timeout=10).status_code == 200
    finally:
        sandbox.stop()


def test_port_in_use_is_an_error() -> None:
    with AltaSandbox() as first, pytest.raises(OSError, match="in use"):
        AltaSandbox(port=first.port).start()


# --- the command line ------------------------------------------------------------------------------


def _start_cli(*args: str) -> tuple[subprocess.Popen[str], int, list[str]]:
    """Start the CLI on a free port; return the process, its port and what it printed so far."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_alta.sandbox", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    printed: list[str] = []

    def read_first_lines() -> None:
        assert process.stdout is not None
        for line in iter(process.stdout.readline, ""):
            lines.put(line)
            if line.startswith("PORT="):
                return  # the rest is read by communicate()
        lines.put("")

    threading.Thread(target=read_first_lines, daemon=True).start()
    try:
        while True:
            line = lines.get(timeout=60)
            if not line:
                raise AssertionError(f"the sandbox exited early: {printed}")
            printed.append(line)
            if line.startswith("PORT="):
                return process, int(line.strip().split("=", 1)[1]), printed
    except BaseException:
        process.kill()
        process.communicate(timeout=10)
        raise


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_journals_and_stops_cleanly(tmp_path, body, stop_signal) -> None:
    journal = tmp_path / "cli.jsonl"
    process, port, printed = _start_cli(
        "--token", "cli-token", "--journal", str(journal), "--rate-limit", "1/60"
    )
    try:
        url = f"http://127.0.0.1:{port}/v1"
        assert url in printed[0]
        auth = {"Authorization": "Bearer cli-token"}
        response = requests.post(url + "/assistant/calls", json=body, headers=auth, timeout=10)
        assert response.status_code == 200
        assert requests.post(url + "/assistant/calls", json=body, headers=auth, timeout=10).status_code == 429
        assert requests.post(url + "/assistant/calls", json=body, timeout=10).status_code == 401
        records = [json.loads(line) for line in journal.read_text("utf-8").splitlines()]
        assert [record["id"] for record in records] == [response.json()["id"]]
        process.send_signal(stop_signal)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 0, stderr
    assert "stopping" in stdout
    assert "POST /v1/assistant/calls -> 200" in stderr  # one log line per request ...
    assert "+1202***0143" in stderr  # ... with the number masked
    assert body["phoneNumber"] not in stderr
    assert "cli-token" not in stderr + stdout
    assert _port_is_closed(port)


def test_cli_faults_and_no_retry_after(body) -> None:
    process, port, _ = _start_cli(
        "--fault-script", "5xx:503,429", "--no-retry-after", "--quiet", "--token", "t"
    )
    try:
        url = f"http://127.0.0.1:{port}/v1/assistant/calls"
        auth = {"Authorization": "Bearer t"}
        assert requests.post(url, json=body, headers=auth, timeout=10).status_code == 503
        storm = requests.post(url, json=body, headers=auth, timeout=10)
        assert storm.status_code == 429
        assert "Retry-After" not in storm.headers
        assert requests.post(url, json=body, headers=auth, timeout=10).status_code == 200
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 0
    assert "POST" not in stderr  # --quiet


def test_cli_accounts_and_call_options(body) -> None:
    process, port, printed = _start_cli(
        *("--account", "acme=tok-a,tok-b", "--rate-limit", "2/60", "--no-ratelimit-headers"),
        *("--call-id-field", "callId", "--call-start-delay", "0", "--call-duration", "0"),
    )
    try:
        base = f"http://127.0.0.1:{port}"
        placed = requests.post(base + "/v1/assistant/calls", json=body, headers=auth("tok-a"), timeout=10)
        assert set(placed.json()) == {"callId", "status"}
        assert "RateLimit-Limit" not in placed.headers
        got = requests.get(base + "/v1/calls/" + placed.json()["callId"], headers=auth("tok-b"), timeout=10)
        assert "endedAt" in got.json()
        limited = requests.get(
            base + "/v1/calls/" + placed.json()["callId"], headers=auth("tok-a"), timeout=10
        )
        assert limited.status_code == 429  # the account's two tokens: one window of 2
        assert (
            requests.post(
                base + "/v1/assistant/calls", json=body, headers=auth("sandbox-token"), timeout=10
            ).status_code
            == 401
        )
        process.terminate()
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 0
    assert "GET /v1/calls/" in stderr
    assert body["phoneNumber"] not in stderr
    assert "tok-a" not in stderr + stdout
    assert "Accounts, one rate window each: acme\n" in printed


def test_cli_reports_a_busy_port() -> None:
    with AltaSandbox() as busy:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        result = subprocess.run(
            [sys.executable, "-m", "airflow_provider_alta.sandbox", "--port", str(busy.port)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    assert result.returncode == 1
    assert "cannot listen" in result.stderr


# --- the pytest fixture ----------------------------------------------------------------------------


def test_fixture_defaults(alta_sandbox, body) -> None:
    assert alta_sandbox.running
    assert alta_sandbox.token == "sandbox-token"
    response = requests.post(
        alta_sandbox.calls_url, json=body, headers={"Authorization": "Bearer sandbox-token"}, timeout=10
    )
    assert response.status_code == 200
    assert Path(str(alta_sandbox.journal_path)).read_text("utf-8").count("\n") == 1
    assert alta_sandbox.stats()["rate_limit"] == {"limit": 100, "window_seconds": 60.0}


@pytest.mark.alta_sandbox(token="marked", rate_limit="1/60", retry_after_header=False)
def test_fixture_takes_options_from_the_marker(alta_sandbox, body) -> None:
    headers = {"Authorization": "Bearer marked"}
    assert requests.post(alta_sandbox.calls_url, json=body, headers=headers, timeout=10).status_code == 200
    limited = requests.post(alta_sandbox.calls_url, json=body, headers=headers, timeout=10)
    assert limited.status_code == 429
    assert "Retry-After" not in limited.headers


def test_factory_starts_several(alta_sandbox_factory) -> None:
    first = alta_sandbox_factory(token="a")
    second = alta_sandbox_factory(token="b", rate_limit=None)
    assert first.port != second.port
    assert first.journal_path != second.journal_path
    assert second.stats()["rate_limit"] is None


def test_console_script_when_installed() -> None:
    script = Path(sys.executable).with_name("alta-sandbox")
    if not script.exists():
        pytest.skip("the package is not installed in this environment (no alta-sandbox script)")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "--rate-limit" in result.stdout
    assert "--no-retry-after" in result.stdout
    assert "--account" in result.stdout
