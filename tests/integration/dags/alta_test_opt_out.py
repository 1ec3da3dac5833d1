"""Test DAG: a CRM's CSV export (an upstream task's XCom) becomes opt-outs in the contact ledger.

The export arrives as run configuration (``dag_run.conf["csv"]``), as a CRM task's output would;
``remove`` (optional) are numbers that opted back in.
"""

from __future__ import annotations

import datetime

from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_alta.operators.opt_out import AltaOptOutOperator


@dag(schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False)
def alta_test_opt_out() -> None:
    @task(show_return_value_in_logs=False)
    def crm_export(**context: object) -> str:
        return str(context["dag_run"].conf["csv"])  # type: ignore[attr-defined]

    added = AltaOptOutOperator(
        task_id="opt_out",
        numbers=crm_export(),
        phone_column="Mobile",
        source="{{ dag_run.conf.get('source', 'crm-export') }}",
        default_region="US",
    )
    removed = AltaOptOutOperator(
        task_id="opt_back_in",
        numbers="phone\n{{ dag_run.conf.get('remove', []) | join('\\n') }}",  # CSV text, rendered
        action="remove",
        phone_column="phone",
        trigger_rule="all_done",
    )
    added >> removed


alta_test_opt_out()
