"""Deep or self-referencing ``data`` through the hook: a field error with its path, nothing sent.

(A DAG that passes such ``data`` to an operator fails earlier, in Airflow's own scan of template
fields for XComArgs at construction.)
"""

from __future__ import annotations

from functools import partial

import pytest

from airflow_provider_alta.exceptions import AltaValidationError
from airflow_provider_alta.hooks.alta import AltaHook
from alta_testing.data.odd_records import deep as nested
from alta_testing.data.odd_records import looped as self_referencing

pytestmark = pytest.mark.integration

TOKEN = "sandbox-odd-data-token"
FIELDS = {"assistant_id": "asst_1", "name": "Ada", "phone_number": "+12025550143"}


deep = partial(nested, leaf={"leaf": 1})
looped = partial(self_referencing, ok=1)


@pytest.mark.parametrize(
    ("data", "path", "rule"),
    [
        (deep(5000), "data.x.x", "nested deeper than 32 levels"),
        (looped(), "data.me", "refers to itself (a cycle): JSON cannot hold it"),
    ],
    ids=["deep", "cycle"],
)
def test_the_hook_reports_the_field_path_and_sends_nothing(sandbox, data, path, rule):
    with pytest.raises(AltaValidationError) as info:
        AltaHook().trigger_assistant_call(**FIELDS, data=data)
    ((error),) = info.value.errors
    assert error.field.startswith(path)
    assert error.rule == rule
    assert sandbox.calls() == []
    assert AltaHook().trigger_assistant_call(**FIELDS, data=deep(30))["status"] == "queued"
