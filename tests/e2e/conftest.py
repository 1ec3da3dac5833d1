"""The deployment suites: each module starts a whole Airflow 3 deployment, so they share marks,
fictional numbers and the sandbox here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_0_PLUS

from airflow_provider_alta.sandbox import AltaSandbox
from alta_testing.data.numbers import NumberPool

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test here ``e2e`` with a long timeout; skip them before Airflow 3 (no api-server)."""
    skip = pytest.mark.skip(reason="the deployment suites run Airflow 3's components (api-server, ...)")
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.timeout(1800))
            if not AIRFLOW_V_3_0_PLUS:
                item.add_marker(skip)


@pytest.fixture(scope="module")
def sandbox(request: pytest.FixtureRequest) -> Iterator[AltaSandbox]:
    """The module's sandbox, limiting the token to the module's ``LIMIT`` calls per ``WINDOW`` seconds."""
    limit, window = request.module.LIMIT, request.module.WINDOW
    with AltaSandbox(rate_limit=f"{limit}/{window:g}") as server:
        yield server


@pytest.fixture(scope="module")
def numbers() -> NumberPool:
    """Fictional numbers no other lead of the module got."""
    return NumberPool()
