"""Fault suite: run the batch operator against the loopback sandbox under injected faults.

The suite lives in the test harness (``alta_testing/fault_suite.py``, which documents the rows);
this is its command. Exits 1 if any row fails, 0 otherwise.
Usage: python scripts/fault_suite.py [--records N] [--seed N] [--only TEXT]
"""

from __future__ import annotations

import sys

from alta_testing.fault_suite import main

if __name__ == "__main__":
    sys.exit(main())
