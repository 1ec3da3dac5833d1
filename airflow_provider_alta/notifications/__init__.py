"""Airflow notifiers: an Alta assistant calls someone from a DAG or task callback."""
