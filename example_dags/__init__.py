"""Example DAGs for the Alta provider; installed as ``airflow_provider_alta.example_dags``."""
