"""Apache Airflow provider for the Alta API."""

from __future__ import annotations

from collections.abc import Iterable

__version__ = "0.1.0"

__all__ = ["__version__", "preload"]


def preload(regions: Iterable[str] = ()) -> None:
    """Import now what a call task imports when it first runs, in a process whose forks run tasks.

    LocalExecutor forks every task process from the scheduler, which imports Airflow's
    ``airflow_local_settings.py`` at start; calling this there lets each task inherit ``requests``,
    ``phonenumbers`` (with its timezone data) and the provider's call path instead of importing
    them again. ``regions`` (e.g. ``["US"]``) also loads those countries' number metadata.
    Imports no Airflow module. Example ``airflow_local_settings.py``::

        import airflow_provider_alta

        airflow_provider_alta.preload(regions=["US"])
    """
    from airflow_provider_alta import calling_hours, client, payload  # noqa: F401
    from airflow_provider_alta.phone import load_metadata

    load_metadata(regions)
