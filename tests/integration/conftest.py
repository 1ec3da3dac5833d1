from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from loopback import Behaviour, RawServer


@pytest.fixture
def raw_server() -> Iterator[Callable[..., RawServer]]:
    """Start RawServers for the test; all are closed afterwards."""
    servers: list[RawServer] = []

    def start(behaviour: Behaviour, port: int = 0) -> RawServer:
        server = RawServer(behaviour, port)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()
