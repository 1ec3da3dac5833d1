"""Approving a campaign in the real Airflow 3 UI: the Required Action page of example_alta_campaign_approval.

``airflow dags test`` runs the DAG in the api-server's home; its approval task waits in the UI.
Checks what the reviewer sees (the count, the outcomes, the timezones, a masked sample, and no full
number anywhere in the page's text or HTML), then approves in one test and rejects in the other,
and checks the outcome on the sandbox's journal.
"""

from __future__ import annotations

import csv
import json
import shutil
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_alta.sandbox import AltaSandbox
from alta_testing.data.campaign_checks import calls_where
from alta_testing.servers.api_server import AirflowApiServer

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "example_alta_campaign_approval"
COLUMNS = ("lead_id", "full_name", "phone", "email", "timezone", "plan", "consent")
# Fictional numbers only: 202-555-01xx and 020 7946 0xxx.
LEADS = [
    ("A1", "Ann Example", "+1 202-555-0111", "ann@example.com", "America/New_York", "pro", "yes"),
    ("A2", "Bob Example", "(202) 555-0112", "", "", "team", "yes"),
    ("A3", "Cy Example", "+44 20 7946 0111", "cy@example.co.uk", "Europe/London", "pro", "yes"),
    ("A4", "Di Example", "+1 202 555 0113", "", "America/New_York", "pro", "yes"),
    ("A5", "Ann again", "+12025550111", "", "America/New_York", "pro", "yes"),  # duplicate of A1
    ("A6", "Bad Number", "555-01", "", "America/New_York", "pro", "yes"),  # invalid
]
CALLED = ["A1", "A2", "A3", "A4"]
NUMBERS = ["+12025550111", "+12025550112", "+12025550113", "+442079460111"]


def full_forms(e164: str) -> list[str]:
    """The ways a page could show a whole number: E.164, its digits, the national number, spaced."""
    national = e164[2:] if e164.startswith("+1") else e164[3:]
    spaced = f"{national[:3]} {national[3:6]} {national[6:]}" if e164.startswith("+1") else national
    return [e164, e164[1:], national, spaced, f"{national[3:6]}-{national[6:]}"]


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


@pytest.fixture(scope="module")
def approval_ui(airflow_ui: AirflowApiServer) -> AirflowApiServer:
    """The api-server with the example DAG in its DAGs folder."""
    assert airflow_ui.home is not None
    shutil.copy(REPO / "example_dags" / f"{DAG_ID}.py", airflow_ui.home / "dags")
    return airflow_ui


@pytest.fixture(scope="module")
def sandbox() -> Iterator[AltaSandbox]:
    with AltaSandbox(rate_limit=None) as server:
        yield server


@pytest.fixture
def waiting_run(approval_ui: AirflowApiServer, sandbox: AltaSandbox, tmp_path: Path) -> Iterator[Any]:
    """A run of the DAG whose approval task waits for a human."""
    from alta_testing.servers.dags_test import DagsTestRun

    leads = tmp_path / "leads.csv"
    with leads.open("w", newline="") as f:
        csv.writer(f).writerows([COLUMNS, *LEADS])
    conn = {"conn_type": "alta", "password": sandbox.token, "host": sandbox.base_url}
    run = DagsTestRun(
        approval_ui,
        DAG_ID,
        conf={"leads_csv": str(leads), "calling_hours": "off"},
        env={"AIRFLOW_CONN_ALTA_DEFAULT": json.dumps(conn)},
    )
    with run:
        run.wait_for_input("approve")
        yield run


def open_required_action(page: Page, run: Any) -> None:
    """The approval task's Required Action page, as the link in Airflow's notifications opens it."""
    quoted = urllib.parse.quote(run.run_id, safe="")
    page.goto(f"/dags/{DAG_ID}/runs/{quoted}/tasks/approve/required_actions")
    expect(page.get_by_text("Call 4 of 6 leads?")).to_be_visible()


def table_with(page: Page, *headers: str) -> Locator:
    """The one table of the page with these column headers."""
    table = page.get_by_role("table")
    for header in headers:
        table = table.filter(has=page.get_by_role("columnheader", name=header, exact=True))
    expect(table).to_have_count(1)
    return table


def check_what_the_reviewer_sees(page: Page) -> None:
    """The count, the outcomes, the timezones and the masked sample; no whole number anywhere."""
    expect(page.get_by_text("4 of 6 records would be called.")).to_be_visible()
    outcomes = table_with(page, "Outcome", "Records")
    expect(outcomes.get_by_role("row").filter(has_text="would be called now")).to_contain_text("4")
    expect(outcomes.get_by_role("row").filter(has_text="duplicates")).to_contain_text("1")
    expect(outcomes.get_by_role("row").filter(has_text="invalid")).to_contain_text("1")
    zones = table_with(page, "Timezone", "Records")
    expect(zones.get_by_role("row").filter(has_text="America/New_York")).to_contain_text("3")
    expect(zones.get_by_role("row").filter(has_text="Europe/London")).to_contain_text("1")
    sample = table_with(page, "Record", "Number", "Timezone", "Outcome")
    expect(sample.get_by_role("row").filter(has_text="A1")).to_contain_text("+1202***0111")
    expect(sample.get_by_role("row").filter(has_text="A3")).to_contain_text("+4420***0111")
    expect(page.get_by_role("button", name="Approve")).to_be_visible()
    expect(page.get_by_role("button", name="Reject")).to_be_visible()
    shown = page.inner_text("body") + page.content()
    leaked = [form for number in NUMBERS for form in full_forms(number) if form in shown]
    assert leaked == []
    for personal in ("ann@example.com", "Ann Example", "Cy Example"):
        assert personal not in shown


def test_approve_in_the_ui_calls_the_previewed_leads(
    page: Page, screenshot: Callable[[str], Path], waiting_run: Any, sandbox: AltaSandbox
) -> None:
    open_required_action(page, waiting_run)
    check_what_the_reviewer_sees(page)
    screenshot("campaign-approval-required-action")
    assert calls_where(sandbox.calls(), run_id=waiting_run.run_id) == []  # nobody before the answer
    page.get_by_role("button", name="Approve").click()
    assert waiting_run.wait() == 0, waiting_run.output()
    assert waiting_run.states() == {"preview": "success", "approve": "success", "call_campaign": "success"}
    calls = calls_where(sandbox.calls(), run_id=waiting_run.run_id)
    assert sorted(c["body"]["data"]["lead_id"] for c in calls) == CALLED
    page.reload()
    expect(page.get_by_text("Response received")).to_be_visible()
    screenshot("campaign-approval-approved")


def test_reject_in_the_ui_calls_nobody(
    page: Page, screenshot: Callable[[str], Path], waiting_run: Any, sandbox: AltaSandbox
) -> None:
    open_required_action(page, waiting_run)
    check_what_the_reviewer_sees(page)
    page.get_by_role("button", name="Reject").click()
    assert waiting_run.wait() == 0, waiting_run.output()
    assert waiting_run.states() == {"preview": "success", "approve": "success", "call_campaign": "skipped"}
    assert calls_where(sandbox.calls(), run_id=waiting_run.run_id) == []
    page.reload()
    expect(page.get_by_text("Response received")).to_be_visible()
    screenshot("campaign-approval-rejected")
