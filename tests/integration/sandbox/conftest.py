"""Fixtures for the sandbox's integration tests: real loopback HTTP, every answer checked against the spec.

``conformance`` validates each response of ``POST /v1/assistant/calls`` with openapi-core against
the bundled ``openapi.yaml``, and each of ``GET /v1/calls/{callId}`` against ``get-call.yaml``. An
autouse fixture runs it on every response ``requests`` receives in
these tests, so every test proves conformance as a side effect. Statuses the spec does not
declare are allowed only when they are deliberate (see ``OUT_OF_SPEC``) and must still have
Alta's error shape.
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

from airflow_provider_alta.sandbox import AltaSandbox, get_call_spec_path, spec_path

# The plugin's fixtures and marker, also when the package is not installed (no pytest11 entry point).
from airflow_provider_alta.sandbox.pytest_plugin import (  # noqa: F401
    alta_sandbox,
    alta_sandbox_factory,
    pytest_configure,
)
from airflow_provider_alta.sandbox.server import API_PATH, CALL_PATH_PREFIX

TOKEN = "integration-token"
#: Statuses the sandbox may give although the spec does not declare them, and why.
OUT_OF_SPEC = {
    405: "method other than the endpoint's",
    429: "a request with another method, counted against a full window",
    411: "chunked body without Content-Length",
    413: "body larger than the limit",
    500: "injected 5xx fault",
    502: "injected 5xx fault",
    503: "injected 5xx fault",
}

VALID_BODY: dict[str, Any] = {
    "assistantId": "asst_integration",
    "name": "Ada Example",
    "phoneNumber": "+12025550143",
}


class Conformance:
    """Validates API responses against the spec and counts what it checked."""

    def __init__(self) -> None:
        self._specs: dict[str, dict[str, Any]] = {}
        for name, path in (("post", spec_path()), ("get", get_call_spec_path())):
            with open(path, encoding="utf-8") as handle:
                self._specs[name] = yaml.safe_load(handle)
        self._declared = {
            "post": {
                int(code) for code in self._specs["post"]["paths"]["/assistant/calls"]["post"]["responses"]
            },
            "get": {int(code) for code in self._specs["get"]["paths"]["/calls/{callId}"]["get"]["responses"]},
        }
        self._apis: dict[tuple[str, str], OpenAPI] = {}
        self._lock = threading.Lock()
        self.validated: Counter[int] = Counter()
        self.validated_gets: Counter[int] = Counter()
        self.out_of_spec: Counter[int] = Counter()

    def _api(self, name: str, base_url: str) -> OpenAPI:
        with self._lock:
            if (name, base_url) not in self._apis:
                spec = copy.deepcopy(self._specs[name])
                spec["servers"] = [{"url": base_url + "/v1"}]  # never the production host
                self._apis[name, base_url] = OpenAPI.from_dict(spec)
            return self._apis[name, base_url]

    def check(self, response: requests.Response) -> None:
        """Validate one response if it answers an API endpoint; raise if it breaks the spec."""
        request = response.request
        url = urlsplit(str(request.url))
        call_id = url.path[len(CALL_PATH_PREFIX) :] if url.path.startswith(CALL_PATH_PREFIX) else ""
        if url.path != API_PATH and not (call_id and "/" not in call_id):
            return
        name, method = ("post", "POST") if url.path == API_PATH else ("get", "GET")
        status = response.status_code
        if request.method == method and status in self._declared[name]:
            base_url = f"{url.scheme}://{url.netloc}"
            self._api(name, base_url).validate_response(
                RequestsOpenAPIRequest(request), RequestsOpenAPIResponse(response)
            )
            with self._lock:
                (self.validated if name == "post" else self.validated_gets)[status] += 1
            return
        assert status in OUT_OF_SPEC, f"status {status} is neither in the spec nor a deliberate extension"
        if request.method == "HEAD":
            return
        body = response.json()
        assert isinstance(body.get("error"), str), body
        assert isinstance(body.get("message"), str), body
        with self._lock:
            self.out_of_spec[status] += 1


_CONFORMANCE = Conformance()


@pytest.fixture(scope="session")
def conformance() -> Conformance:
    """The session's spec validator."""
    return _CONFORMANCE


@pytest.fixture(autouse=True)
def _validate_every_answer(monkeypatch: pytest.MonkeyPatch, conformance: Conformance) -> None:
    """Check every answer any ``requests`` call in these tests receives (sessions, ``requests.post``,
    schemathesis' calls, answers of the CLI's server process) against the spec."""
    send = requests.Session.send

    def checked_send(self: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> Any:
        response = send(self, request, **kwargs)
        conformance.check(response)
        return response

    monkeypatch.setattr(requests.Session, "send", checked_send)


@pytest.fixture
def client() -> Iterator[requests.Session]:
    """A keep-alive session (its answers are validated like all others)."""
    session = requests.Session()
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def sandbox(tmp_path: Any) -> Iterator[AltaSandbox]:
    """A sandbox with the integration token, the default 100/60 limit and a journal file."""
    with AltaSandbox(token=TOKEN, journal_path=tmp_path / "journal.jsonl") as running:
        yield running


@pytest.fixture
def token() -> str:
    """The token ``sandbox`` accepts."""
    return TOKEN


@pytest.fixture
def headers() -> dict[str, str]:
    """The Authorization header ``sandbox`` accepts."""
    return {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def body() -> dict[str, Any]:
    """A fresh valid call body (fictional number)."""
    return copy.deepcopy(VALID_BODY)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say how many answers were checked against the spec."""
    if _CONFORMANCE.validated or _CONFORMANCE.validated_gets or _CONFORMANCE.out_of_spec:
        validated = ", ".join(f"{code}: {n}" for code, n in sorted(_CONFORMANCE.validated.items()))
        gets = ", ".join(f"{code}: {n}" for code, n in sorted(_CONFORMANCE.validated_gets.items()))
        others = ", ".join(f"{code}: {n}" for code, n in sorted(_CONFORMANCE.out_of_spec.items()))
        terminalreporter.write_line(
            f"alta sandbox: {sum(_CONFORMANCE.validated.values())} answers validated against openapi.yaml "
            f"({validated}), {sum(_CONFORMANCE.validated_gets.values())} against get-call.yaml ({gets}); "
            f"deliberate out-of-spec answers: {others or 'none'}"
        )
