"""``[core] hostname_callable`` for the Celery suite: two workers on one machine, told apart by name."""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    """``ALTA_E2E_HOSTNAME`` if set (each worker gets its own), else the machine's name."""
    return os.environ.get("ALTA_E2E_HOSTNAME") or socket.getfqdn()
