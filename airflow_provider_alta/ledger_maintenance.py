"""Keeping the contact ledger small: delete attempts older than any policy window; never opt-outs.

    prune(ledger, timedelta(days=90))                      # this ledger's account
    prune(ledger, timedelta(days=90), all_accounts=True)   # every account in the database

or from a shell (the URL may also come from ``ALTA_CONTACT_LEDGER_URL``, kept out of ``ps``)::

    python -m airflow_provider_alta.ledger_maintenance prune --url postgresql+psycopg2://... \\
        --older-than 90d --policy 1/7d --policy 3/24h

An attempt older than the longest window of every policy in use no longer counts for any of them,
so deleting it changes no decision. ``older_than`` is the caller's: ``policies`` (optional) makes
``prune`` refuse one shorter than their longest window, and it is never under ``MIN_AGE`` (a
reservation still waiting for its call's outcome keeps its row). Opt-outs and the per-person lock
rows are kept: deleting a lock row while a ``reserve`` holds its key would let a second one through.
Rows go in batches, one transaction each, so reservations are never held up for long.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from airflow_provider_alta.contact_policy import ContactPolicy

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from airflow_provider_alta.ledger import ContactLedger

MIN_AGE = timedelta(days=1)  # the least ``older_than``: outcome waits and retries keep their rows
BATCH_SIZE = 5000
URL_ENV = "ALTA_CONTACT_LEDGER_URL"


def longest_window(policies: Iterable[str | ContactPolicy]) -> timedelta | None:
    """The longest window among ``policies`` (``"1/7d"``...); ``None`` when there are none."""
    windows = [ContactPolicy.parse(policy).window for policy in policies]
    return max(windows) if windows else None


def parse_age(text: str) -> timedelta:
    """A duration such as ``90d``, ``36h`` or ``45m`` (the units of a contact policy)."""
    try:
        return ContactPolicy.parse(f"1/{text.strip()}").window
    except ValueError:
        raise ValueError(
            f"age {text!r}: expected a whole number and a unit s, m, h or d (e.g. 90d)"
        ) from None


def prune(
    ledger: ContactLedger,
    older_than: timedelta,
    *,
    policies: Iterable[str | ContactPolicy] = (),
    all_accounts: bool = False,
    now: datetime | None = None,
    batch_size: int = BATCH_SIZE,
) -> int:
    """Delete the attempts reserved before ``now - older_than``; returns how many were deleted.

    Only ``ledger``'s account unless ``all_accounts``. Opt-outs are never deleted. ``ValueError``
    when ``older_than`` is under ``MIN_AGE`` or under the longest window of ``policies``.
    """
    if older_than < MIN_AGE:
        raise ValueError(f"prune: older_than must be at least {MIN_AGE}, got {older_than}")
    longest = longest_window(policies)
    if longest is not None and older_than < longest:
        raise ValueError(
            f"prune: older_than {older_than} is shorter than the longest policy window {longest}: "
            "attempts that still count would be deleted"
        )
    if batch_size < 1:
        raise ValueError("prune: batch_size must be at least 1")
    moment = now if now is not None else datetime.now(timezone.utc)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("prune: now must be timezone-aware")
    account = None if all_accounts else ledger.account
    return _delete_before(ledger.engine, moment - older_than, account, batch_size)


def _delete_before(engine: Engine, cutoff: datetime, account: str | None, batch_size: int) -> int:
    """Delete attempts with ``reserved_at < cutoff`` in batches of ``batch_size`` (oldest ids first)."""
    from sqlalchemy import delete, select

    from airflow_provider_alta import ledger_schema

    attempts = ledger_schema.tables().attempts
    conditions = [attempts.c.reserved_at < ledger_schema.to_micros(cutoff)]
    if account is not None:
        conditions.append(attempts.c.account == account)
    # Ids in primary-key order: old rows have the lowest ids, so each batch finds them at once.
    batch = select(attempts.c.id).where(*conditions).order_by(attempts.c.id).limit(batch_size)
    deleted = 0
    while True:
        with engine.begin() as conn:
            ids = [row[0] for row in conn.execute(batch).all()]
            if ids:
                conn.execute(delete(attempts).where(attempts.c.id.in_(ids)))
        deleted += len(ids)
        if len(ids) < batch_size:
            return deleted


def main(argv: Sequence[str] | None = None) -> int:
    """``prune``: the command line (see the module docstring). Exit 2 on a usage or database error."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_alta.ledger_maintenance",
        description="Maintenance of the Alta contact ledger.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser("prune", help="delete attempts older than --older-than; opt-outs are kept")
    cmd.add_argument("--url", default=os.environ.get(URL_ENV), help=f"SQLAlchemy URL (default: ${URL_ENV})")
    cmd.add_argument("--older-than", required=True, type=_age_arg, help="e.g. 90d (at least 1d)")
    cmd.add_argument("--account", help="only this account (default: every account)")
    cmd.add_argument(
        "--policy",
        action="append",
        default=[],
        help="a contact policy in use (repeatable): refuse an --older-than shorter than its window",
    )
    cmd.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    args = parser.parse_args(argv)
    if not args.url:
        parser.error(f"--url or ${URL_ENV} is required")
    return _prune_command(args)


def _age_arg(text: str) -> timedelta:
    try:
        return parse_age(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _prune_command(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from airflow_provider_alta.ledger import ContactLedger

    where = _shown_url(args.url)
    try:
        with ContactLedger(args.url, args.account or "all-accounts", create=False) as ledger:
            deleted = prune(
                ledger,
                args.older_than,
                policies=args.policy,
                all_accounts=args.account is None,
                batch_size=args.batch_size,
            )
    except (ValueError, SQLAlchemyError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"prune failed on {where}: {detail}", file=sys.stderr)
        return 2
    scope = f"account {args.account!r}" if args.account else "every account"
    age = str(ContactPolicy(1, args.older_than)).partition("/")[2]  # 90d, 36h...
    print(f"pruned {deleted} attempts older than {age} ({scope}) on {where}; opt-outs kept")
    return 0


def _shown_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        from sqlalchemy.engine import make_url

        return str(make_url(url).render_as_string(hide_password=True))
    except Exception:
        return "<the contact ledger>"


if __name__ == "__main__":
    sys.exit(main())
