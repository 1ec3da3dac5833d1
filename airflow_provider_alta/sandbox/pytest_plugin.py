"""pytest plugin (entry point ``pytest11``): the ``alta_sandbox`` fixture.

Kept import-light: it loads in every pytest session of every project that installs the package,
so the sandbox itself is imported only when a test asks for the fixture.

Options come from the ``alta_sandbox`` marker, whose keywords are ``AltaSandbox``'s::

    @pytest.mark.alta_sandbox(rate_limit="5/1", retry_after_header=False)
    def test_my_dag(alta_sandbox):
        ...  # point the connection at alta_sandbox.url, then look at alta_sandbox.calls()
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow_provider_alta.sandbox import AltaSandbox


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``alta_sandbox`` marker."""
    config.addinivalue_line(
        "markers", "alta_sandbox(**options): options for the alta_sandbox fixture (AltaSandbox keywords)"
    )


@pytest.fixture
def alta_sandbox_factory(tmp_path: Any) -> Iterator[Callable[..., AltaSandbox]]:
    """A factory that starts sandboxes (``AltaSandbox`` keywords) and stops them after the test."""
    from airflow_provider_alta.sandbox import AltaSandbox

    started: list[AltaSandbox] = []

    def factory(**options: Any) -> AltaSandbox:
        options.setdefault("journal_path", tmp_path / f"alta-sandbox-journal-{len(started)}.jsonl")
        sandbox = AltaSandbox(**options).start()
        started.append(sandbox)
        return sandbox

    try:
        yield factory
    finally:
        for sandbox in reversed(started):
            sandbox.stop()


@pytest.fixture
def alta_sandbox(
    request: pytest.FixtureRequest, alta_sandbox_factory: Callable[..., AltaSandbox]
) -> AltaSandbox:
    """A running sandbox on a free loopback port with a journal file in ``tmp_path``.

    Use ``alta_sandbox.url`` as the connection host, ``alta_sandbox.token`` as its password,
    and ``alta_sandbox.calls()`` / ``alta_sandbox.stats()`` to see what the DAG did.
    """
    marker = request.node.get_closest_marker("alta_sandbox")
    options = dict(marker.kwargs) if marker is not None else {}
    return alta_sandbox_factory(**options)
