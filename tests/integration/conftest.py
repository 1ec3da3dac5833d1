from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from alta_testing.servers.airflow_env import AirflowEnv
from alta_testing.servers.loopback import Behaviour, RawServer

REPO = Path(__file__).resolve().parents[2]


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


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> AirflowEnv:
    home = tmp_path_factory.mktemp("airflow-home")
    dags = home / "dags"
    shutil.copytree(REPO / "example_dags", dags)
    for dag_file in (Path(__file__).parent / "dags").glob("*.py"):
        shutil.copy(dag_file, dags)
    env = AirflowEnv(home, dags)
    env.airflow("db", "migrate")
    env.airflow("pools", "set", "alta_api", "4", "Alta API: 100 calls/min per token")
    return env
