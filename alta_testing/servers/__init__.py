"""Real servers on loopback for the suites, each a :class:`~alta_testing.servers.process.ServerProcess`.

``ports`` (free and closed ports), ``process`` (the base class), ``redis_server``,
``postgres_server``, ``api_server`` (Airflow's api-server), ``deployment`` (a whole Airflow 3
deployment), ``airflow_env`` (an Airflow home driven through the CLI) and ``loopback`` (raw TCP
servers for failures an HTTP framework cannot produce).
"""
