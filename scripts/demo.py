"""Run the example leads pipeline end to end against the Alta sandbox and report what happened."""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from airflow_provider_alta.masking import mask_phone
from airflow_provider_alta.sandbox import AltaSandbox

REPO = Path(__file__).resolve().parents[1]
DAG_ID = "example_alta_leads_pipeline"


def airflow(env: dict[str, str], *args: str) -> str:
    cmd = [str(Path(sys.executable).with_name("airflow")), *args]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-3000:] + result.stderr[-3000:])
        raise SystemExit(f"airflow {' '.join(args)} failed ({result.returncode})")
    return result.stdout + result.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--calling-hours", default="08:00-21:00", help="local window, or 'off' (default %(default)s)"
    )
    parser.add_argument("--pool-slots", type=int, default=4, help="size of the alta_api pool")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="alta-demo-airflow-"))
    token = "sandbox-" + secrets.token_hex(8)
    with AltaSandbox(token=token, rate_limit="100/60", journal_path=home / "sandbox-calls.jsonl") as sandbox:
        print(f"Alta sandbox on {sandbox.url}; throwaway Airflow home {home}")
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_ALTA_DEFAULT": json.dumps(
                {"conn_type": "alta", "password": token, "host": sandbox.url}
            ),
        }
        print("Setting up Airflow (SQLite metadata DB, alta_api pool)...")
        airflow(env, "db", "migrate")
        airflow(env, "pools", "set", "alta_api", str(args.pool_slots), "Alta API calls")
        print(f"Running {DAG_ID} with calling hours {args.calling_hours} in each lead's timezone...")
        output = airflow(env, "dags", "test", DAG_ID, "-c", json.dumps({"calling_hours": args.calling_hours}))
        (home / "dags-test.log").write_text(output)
        report(sandbox, output, call_states(env, output))
        print(f"Full Airflow output: {home / 'dags-test.log'}")


def report(sandbox: AltaSandbox, output: str, states: Counter[str]) -> None:
    calls = sandbox.calls()
    print(f"\nThe sandbox received {len(calls)} call(s):")
    for call in calls:
        body = call["body"]
        zone = body.get("timezone", "(zone from number)")
        lead = body.get("data", {}).get("lead_id", "?")
        print(f"  {lead:5} {mask_phone(body['phoneNumber']):14} {body['name']:22} {zone}")
    rejected = dict(re.findall(r"Not calling lead (\w+): (.+?)(?:\s+\[|$)", output, re.MULTILINE))
    print("\nOutcomes by lead:")
    print(f"  placed                           {states['success']}")
    print(f"  skipped (outside calling hours)  {states['skipped']}")
    print(f"  failed                           {states['failed'] + states['upstream_failed']}")
    print(f"  rejected before calling          {len(rejected)}")
    for lead, reason in rejected.items():
        print(f"      {lead}: {reason}")
    stats = sandbox.stats()
    print(f"\nSandbox answers by status: {stats['responses']}; most in flight: {stats['max_in_flight']}")


def call_states(env: dict[str, str], output: str) -> Counter[str]:
    """States of the mapped call tasks of the run that ``airflow dags test`` just made."""
    run_id = re.search(r"run_id=(manual__[^,\s]+)", output)
    if not run_id:
        return Counter()
    listing = airflow(env, "tasks", "states-for-dag-run", DAG_ID, run_id.group(1), "--output", "json")
    rows = json.loads(listing[listing.index("[") : listing.rindex("]") + 1])
    return Counter(str(r["state"]) for r in rows if r["task_id"] == "call_lead")


if __name__ == "__main__":
    main()
