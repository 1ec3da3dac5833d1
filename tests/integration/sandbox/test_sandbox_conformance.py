"""Conformance to ``openapi.yaml`` itself: schemathesis fuzzing and openapi-core validation."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest
import requests
import yaml
from hypothesis import HealthCheck, given, settings
from openapi_core.validation.response.exceptions import InvalidData

from airflow_provider_alta.sandbox import AltaSandbox, get_call_spec_path, spec_path

pytestmark = pytest.mark.integration

schemathesis = pytest.importorskip("schemathesis", minversion="4.0")
FUZZ_EXAMPLES = 100


@pytest.fixture
def fuzz_target(client) -> Any:
    """A sandbox without rate limit, and the spec pointed at it (never at the production host)."""
    with open(spec_path(), encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    with AltaSandbox(token="fuzz-token", rate_limit=None) as sandbox:
        spec = copy.deepcopy(spec)
        spec["servers"] = [{"url": sandbox.url}]
        schema = schemathesis.openapi.from_dict(spec)
        yield sandbox, schema["/assistant/calls"]["POST"]


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_schemathesis_fuzz(fuzz_target, client, mode) -> None:
    sandbox, operation = fuzz_target
    auth = {"Authorization": "Bearer fuzz-token"}
    seen: Counter[int] = Counter()

    @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode)))
    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Any) -> None:
        # ``client`` validates each answer with openapi-core; schemathesis runs its own checks too
        # (status codes, content types, response schemas, data acceptance/rejection, ignored auth).
        response = case.call(base_url=sandbox.url, session=client, headers=auth, timeout=10)
        case.validate_response(response, headers=auth, transport_kwargs={"session": client})
        seen[response.status_code] += 1
        if mode == "positive":
            assert response.status_code == 200, response.text
        else:
            assert response.status_code in (200, 400, 401), response.text

    fuzz()
    assert sum(seen.values()) >= 10
    stats = sandbox.stats()
    assert stats["accepted"] == len(sandbox.calls())
    assert set(stats["responses"]) <= {"200", "400", "401"}
    if mode == "negative":
        assert seen[400] > 0


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_schemathesis_fuzz_get_call(client, body, mode) -> None:
    """``GET /v1/calls/{callId}`` with generated ids: 404 in Alta's shape (never 500), validated."""
    with open(get_call_spec_path(), encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    auth = {"Authorization": "Bearer fuzz-token"}
    seen: Counter[int] = Counter()
    with AltaSandbox(token="fuzz-token", rate_limit=None) as sandbox:
        placed = client.post(sandbox.calls_url, json=body, headers=auth).json()["id"]
        spec["servers"] = [{"url": sandbox.url}]
        operation = schemathesis.openapi.from_dict(spec)["/calls/{callId}"]["GET"]

        @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode)))
        @settings(
            max_examples=FUZZ_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            response = case.call(base_url=sandbox.url, session=client, headers=auth, timeout=10)
            case.validate_response(response, headers=auth, transport_kwargs={"session": client})
            seen[response.status_code] += 1
            assert response.status_code in ((200, 404) if mode == "positive" else (200, 401, 404)), (
                response.text
            )
            if response.status_code == 404:
                assert response.json() == {"error": "NotFound", "message": "Call not found"}

        fuzz()
        assert client.get(sandbox.call_url(placed), headers=auth).status_code == 200
    assert seen[404] >= 10


def test_every_declared_status_is_validated(client, conformance, headers, body) -> None:
    before = Counter(conformance.validated)
    with AltaSandbox(token="integration-token", rate_limit="1/60") as sandbox:
        client.post(sandbox.calls_url, json=body, headers=headers)  # 200
        client.post(sandbox.calls_url, json=body, headers=headers)  # 429 with Retry-After
        sandbox.configure(retry_after_header=False)
        client.post(sandbox.calls_url, json=body, headers=headers)  # 429 without
        client.post(sandbox.calls_url, json=body)  # 401
        sandbox.configure(rate_limit=None)
        client.post(sandbox.calls_url, json={}, headers=headers)  # 400
    gained = Counter(conformance.validated)
    gained.subtract(before)
    assert gained == Counter({200: 1, 429: 2, 401: 1, 400: 1})


def test_the_validator_is_not_vacuous(sandbox, conformance, headers, body) -> None:
    response = requests.post(sandbox.calls_url, json=body, timeout=10)
    assert response.status_code == 401
    response._content = b'{"error": "Unauthorized"}'  # no "message": breaks the spec's Error schema
    with pytest.raises(InvalidData):
        conformance.check(response)
    response.status_code = 418
    with pytest.raises(AssertionError, match="neither in the spec"):
        conformance.check(response)


def test_schemathesis_cli_with_every_check_passes(tmp_path) -> None:
    """``schemathesis run --checks all`` (its coverage phase sends undeclared methods such as TRACE)."""
    import subprocess
    import sys

    command = "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())"
    with AltaSandbox(token="fuzz-token", rate_limit=None) as sandbox:
        result = subprocess.run(
            [
                *(sys.executable, "-c", command, "run", spec_path(), "--url", sandbox.url),
                *("--checks", "all", "--phases", "coverage", "--max-examples", "5", "--no-color"),
                *("-H", "Authorization: Bearer fuzz-token"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
            check=False,
        )
        methods = set(sandbox.stats()["responses"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "405" in methods  # the undeclared methods were sent, and answered 405
