"""The test harness of the repository: what tests, scripts and benchmarks share. Not shipped in the wheel.

- :mod:`alta_testing.servers`: loopback ports, one process base class, and the real servers the
  suites start (Redis, PostgreSQL, Airflow's api-server, a whole Airflow deployment, an Airflow
  CLI home, raw loopback TCP servers);
- :mod:`alta_testing.data`: fictional phone numbers, lead files, and checks on the sandbox's journal;
- :mod:`alta_testing.state_store`: the durable task state store (SQLite) and a fake task instance;
- :mod:`alta_testing.environment`: a throwaway ``AIRFLOW_HOME``, the ``alta_default`` variable,
  child-process environments;
- :mod:`alta_testing.fault_suite`: the fault suite (``scripts/fault_suite.py`` runs it).

Importable from the repository root (pytest's ``pythonpath``; the editable install puts the checkout
on ``sys.path``). It imports the provider, never ``tests/``, ``scripts/`` or ``benchmarks/``.
"""
