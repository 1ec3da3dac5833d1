"""The contact ledger's tables and engine (SQLAlchemy Core, 1.4 and 2.x), imported lazily by ``ledger``.

Tables, all prefixed ``alta_``, created if missing:

- ``alta_contact_attempts``: one row per reservation (account, person_hash, reserved_at, state, by).
- ``alta_opt_outs``: one row per opted-out person (account, person_hash, added_at, source).
- ``alta_contact_locks``: one row per person ever reserved; ``reserve`` locks it (PostgreSQL).

Times are whole microseconds since the Unix epoch (UTC) in BIGINT columns: the same on every dialect.
SQLite: each transaction starts with ``BEGIN IMMEDIATE`` (one writer at a time, across processes).
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from sqlalchemy import MetaData, Table
    from sqlalchemy.engine import Connection, Engine

ATTEMPTS, OPT_OUTS, LOCKS = "alta_contact_attempts", "alta_opt_outs", "alta_contact_locks"
SUPPORTED_DIALECTS = ("postgresql", "sqlite")
# PostgreSQL advisory lock key that serialises CREATE TABLE between processes ("alta" in ASCII).
_CREATE_LOCK_KEY = 0x616C7461
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_tables_lock = threading.Lock()
_tables: Tables | None = None


class Tables(NamedTuple):
    metadata: MetaData
    attempts: Table
    opt_outs: Table
    locks: Table


def to_micros(moment: datetime) -> int:
    """A timezone-aware datetime as whole microseconds since the epoch."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got naive {moment.isoformat()}")
    delta = moment - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    """Microseconds since the epoch as a UTC datetime."""
    from datetime import timedelta

    return _EPOCH + timedelta(microseconds=int(micros))


def tables() -> Tables:
    """The ledger's tables, built once per process."""
    global _tables
    with _tables_lock:
        if _tables is None:
            _tables = _build_tables()
        return _tables


def _build_tables() -> Tables:
    from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table

    metadata = MetaData()
    attempts = Table(
        ATTEMPTS,
        metadata,
        Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
        Column("account", String(200), nullable=False),
        Column("person_hash", String(64), nullable=False),
        Column("reserved_at", BigInteger, nullable=False),
        Column("updated_at", BigInteger, nullable=False),
        Column("state", String(16), nullable=False),
        Column("by", String(250), nullable=False),
        Index("ix_alta_contact_attempts_person", "account", "person_hash", "reserved_at"),
    )
    opt_outs = Table(
        OPT_OUTS,
        metadata,
        Column("account", String(200), primary_key=True),
        Column("person_hash", String(64), primary_key=True),
        Column("added_at", BigInteger, nullable=False),
        Column("source", String(250), nullable=False),
    )
    locks = Table(
        LOCKS,
        metadata,
        Column("account", String(200), primary_key=True),
        Column("person_hash", String(64), primary_key=True),
    )
    return Tables(metadata, attempts, opt_outs, locks)


def make_engine(url: str, *, connect_timeout: float = 30.0, **engine_options: Any) -> Engine:
    """An engine for ``url`` (PostgreSQL or SQLite); SQLite transactions begin IMMEDIATE."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    dialect = parsed.get_backend_name()
    if dialect not in SUPPORTED_DIALECTS:
        raise ValueError(f"contact ledger: unsupported database {dialect!r}; use one of {SUPPORTED_DIALECTS}")
    if dialect == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ValueError("contact ledger: SQLite needs a file path (in-memory is per process)")
        engine = create_engine(url, connect_args={"timeout": connect_timeout}, **engine_options)

        def _no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # let SQLAlchemy's "begin" event emit BEGIN

        def _begin_immediate(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        event.listen(engine, "connect", _no_implicit_begin)
        event.listen(engine, "begin", _begin_immediate)
        return engine
    options = {"pool_pre_ping": True, **engine_options}
    return create_engine(url, connect_args={"connect_timeout": int(connect_timeout)}, **options)


def create_tables(engine: Engine) -> None:
    """Create the tables if missing; safe when several processes do it at once."""
    metadata = tables().metadata
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            from sqlalchemy import text

            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CREATE_LOCK_KEY})
        metadata.create_all(conn, checkfirst=True)


def insert_ignoring_duplicates(engine: Engine, table: Table) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the engine's dialect."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing()
