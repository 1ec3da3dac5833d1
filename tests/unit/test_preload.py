"""``airflow_provider_alta.preload``: a call task's first-use imports loaded ahead, without Airflow."""

from __future__ import annotations

import json
import subprocess
import sys

# A fresh interpreter: pendulum first (every Airflow process has it), then preload, then a call
# task's first use of the pure call path, listing what that use still had to import.
PROBE = """
import json, sys
import pendulum
import airflow_provider_alta
airflow_provider_alta.preload(regions=["US"])
before = set(sys.modules)
from airflow_provider_alta.calling_hours import CallingHours, decide
from airflow_provider_alta.masking import scrub_answer
from airflow_provider_alta.payload import build_call
call = build_call({"assistant_id": "asst_1", "name": "Ada", "phone_number": "+12025550143",
                   "data": {"plan": "pro"}, "call_transfer": {"phone_number": "+12025550199"}})
decide(CallingHours(), now=pendulum.now("UTC"), timezone=None, phone_e164=call.phone_number)
scrub_answer({"id": "call_1", "to": call.phone_number}, call.phone_number, None)
print(json.dumps({"new": sorted(set(sys.modules) - before), "loaded": sorted(before)}))
"""


def _probe() -> dict[str, list[str]]:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    result: dict[str, list[str]] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_after_preload_a_call_task_imports_nothing_more_and_airflow_was_not_loaded():
    result = _probe()
    assert result["new"] == []
    loaded = set(result["loaded"])
    assert {
        "requests",
        "phonenumbers",
        "phonenumbers.timezone",
        "phonenumbers.data.region_US",
        "airflow_provider_alta.client",
        "airflow_provider_alta.payload",
        "airflow_provider_alta.calling_hours",
    } <= loaded
    assert not {name for name in loaded if name == "airflow" or name.startswith("airflow.")}
