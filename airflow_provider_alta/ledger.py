"""The contact ledger: who an account called and when, and who opted out, in a database outliving Airflow.

Every Alta task on an account consults it before a call and updates it after::

    ledger = ContactLedger("postgresql+psycopg2://...", account="acme")
    outcome = ledger.reserve("+12025550143", "1/7d", by="dag/run/task")
    if isinstance(outcome, Blocked):
        ...  # outcome.reason: "opted_out" or "skipped_recently_called"; outcome.next_allowed
    else:
        ...  # place the call, then ledger.confirm(outcome, CALLED or AMBIGUOUS), or ledger.release(outcome)

A person is ``person_key(e164)``: HMAC-SHA256 of the E.164 number keyed by the account (and an
optional secret); the number itself is never stored. ``reserve`` is atomic across processes: on
PostgreSQL it locks the person's row in ``alta_contact_locks`` (``SELECT ... FOR UPDATE``), on
SQLite the whole database (``BEGIN IMMEDIATE``), then checks opt-outs and the policy window and
inserts the reservation. Reserved, called and ambiguous attempts count; released ones do not.
``check`` is the same decision, read-only (dry runs).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_alta.contact_policy import ContactPolicy
from airflow_provider_alta.masking import mask_phone

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

RESERVED, CALLED, AMBIGUOUS, RELEASED = "reserved", "called", "ambiguous", "released"
COUNTED = (RESERVED, CALLED, AMBIGUOUS)  # a reservation never confirmed may have been placed
OPTED_OUT, SKIPPED_RECENTLY_CALLED = "opted_out", "skipped_recently_called"
HISTORY_LIMIT = 1000  # the most attempts ``history`` returns
_CHUNK = 500  # numbers per statement in opt_out / remove_opt_out
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class LedgerStateError(RuntimeError):
    """A reservation cannot move to the asked state (e.g. releasing one already confirmed)."""


@dataclass(frozen=True)
class Reservation:
    """A call to one person the ledger allowed and recorded; confirm or release it."""

    id: int
    account: str
    person_hash: str
    reserved_at: datetime
    by: str


@dataclass(frozen=True)
class Blocked:
    """A call the ledger refused: ``reason`` is the record's end state."""

    reason: str  # OPTED_OUT or SKIPPED_RECENTLY_CALLED
    person_hash: str
    next_allowed: datetime | None  # None when opted out


@dataclass(frozen=True)
class Attempt:
    """One row of a person's history."""

    id: int
    reserved_at: datetime
    updated_at: datetime
    state: str
    by: str


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _chunks(items: list[str], size: int = _CHUNK) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class ContactLedger:
    """One account's view of the ledger at ``url`` (a SQLAlchemy URL: PostgreSQL or a SQLite file)."""

    def __init__(
        self,
        url: str,
        account: str,
        *,
        secret: str | bytes | None = None,
        engine: Engine | None = None,
        create: bool = True,
    ) -> None:
        from airflow_provider_alta import ledger_schema

        if not account or len(account) > 200:
            raise ValueError("contact ledger: account must be 1..200 characters")
        self.account = account
        key = account.encode()
        if secret is not None:
            secret_bytes = secret.encode() if isinstance(secret, str) else secret
            key = hmac.new(secret_bytes, key, hashlib.sha256).digest()
        self._key = key
        self._schema = ledger_schema
        self.engine: Engine = engine if engine is not None else ledger_schema.make_engine(url)
        self._tables = ledger_schema.tables()
        if create:
            ledger_schema.create_tables(self.engine)

    def close(self) -> None:
        """Close the engine's pooled connections."""
        self.engine.dispose()

    def __enter__(self) -> ContactLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def person_key(self, e164: str) -> str:
        """The hex HMAC-SHA256 of ``e164`` keyed by the account: what the ledger stores for a person."""
        if not isinstance(e164, str) or not _E164.match(e164):
            raise ValueError(f"contact ledger: not an E.164 number: {mask_phone(e164)}")
        return hmac.new(self._key, e164.encode(), hashlib.sha256).hexdigest()

    def reserve(
        self,
        e164: str,
        policy: str | ContactPolicy | None,
        *,
        by: str,
        now: datetime | None = None,
        resume: bool = False,
    ) -> Reservation | Blocked:
        """Atomically: ``Blocked`` if opted out or the policy's window is full, else a reservation.

        ``policy`` ``None``: only opt-outs block; the call is still recorded. ``resume``: the
        caller knows nothing was sent under its label ``by``, so a ``RESERVED`` row of this person
        with the same label is returned (and not counted) instead of a new one.
        """
        rule = None if policy is None else ContactPolicy.parse(policy)
        person = self.person_key(e164)
        moment = now if now is not None else _utcnow()
        at = self._schema.to_micros(moment)
        label = by[:250]
        with self.engine.begin() as conn:
            self._lock_person(conn, person)
            if self._opted_out(conn, person):
                return Blocked(OPTED_OUT, person, None)
            if resume:
                earlier = self._reserved_rows(conn, person, label)
                if earlier:
                    row_id, reserved_at = earlier[0]
                    return Reservation(
                        row_id, self.account, person, self._schema.from_micros(reserved_at), label
                    )
            if rule is not None:
                after = rule.next_allowed(self._counted_times(conn, person, rule, moment), moment)
                if after is not None:
                    return Blocked(SKIPPED_RECENTLY_CALLED, person, after)
            attempts = self._tables.attempts
            result = conn.execute(
                attempts.insert().values(
                    account=self.account,
                    person_hash=person,
                    reserved_at=at,
                    updated_at=at,
                    state=RESERVED,
                    by=label,
                )
            )
            row_id = result.inserted_primary_key[0]  # type: ignore[index]
        return Reservation(int(row_id), self.account, person, self._schema.from_micros(at), label)

    def check(
        self, e164: str, policy: str | ContactPolicy | None, *, now: datetime | None = None
    ) -> Blocked | None:
        """Read-only: what :meth:`reserve` would refuse now (``None``: it would reserve). For dry runs."""
        rule = None if policy is None else ContactPolicy.parse(policy)
        person = self.person_key(e164)
        moment = now if now is not None else _utcnow()
        with self.engine.connect() as conn:
            if self._opted_out(conn, person):
                return Blocked(OPTED_OUT, person, None)
            if rule is None:
                return None
            after = rule.next_allowed(self._counted_times(conn, person, rule, moment), moment)
        return None if after is None else Blocked(SKIPPED_RECENTLY_CALLED, person, after)

    def confirm_reserved(
        self, e164: str, by: str, state: str = AMBIGUOUS, *, now: datetime | None = None
    ) -> int:
        """Confirm every still ``RESERVED`` row of this person labelled ``by``; returns how many."""
        if state not in (CALLED, AMBIGUOUS):
            raise ValueError(f"contact ledger: confirm takes {CALLED!r} or {AMBIGUOUS!r}, got {state!r}")
        person = self.person_key(e164)
        attempts = self._tables.attempts
        at = self._schema.to_micros(now if now is not None else _utcnow())
        with self.engine.begin() as conn:
            result = conn.execute(
                attempts.update()
                .where(
                    attempts.c.account == self.account,
                    attempts.c.person_hash == person,
                    attempts.c.by == by[:250],
                    attempts.c.state == RESERVED,
                )
                .values(state=state, updated_at=at)
            )
            return int(result.rowcount or 0)

    def confirm(self, reservation: Reservation, state: str = CALLED, *, now: datetime | None = None) -> None:
        """Record what became of a reservation: ``CALLED`` or ``AMBIGUOUS`` (both count as calls)."""
        if state not in (CALLED, AMBIGUOUS):
            raise ValueError(f"contact ledger: confirm takes {CALLED!r} or {AMBIGUOUS!r}, got {state!r}")
        self._move(reservation, state, (RESERVED, CALLED, AMBIGUOUS), now)

    def release(self, reservation: Reservation, *, now: datetime | None = None) -> None:
        """Nothing was placed: the reservation stops counting. Refused once it was confirmed."""
        self._move(reservation, RELEASED, (RESERVED, RELEASED), now)

    def opt_out(self, e164s: Iterable[str], source: str, *, now: datetime | None = None) -> int:
        """Record opt-outs (they win over every policy); returns how many were new."""
        persons = sorted({self.person_key(number) for number in e164s})
        at = self._schema.to_micros(now if now is not None else _utcnow())
        opt_outs = self._tables.opt_outs
        added = 0
        with self.engine.begin() as conn:
            for chunk in _chunks(persons):
                statement = self._schema.insert_ignoring_duplicates(self.engine, opt_outs)
                rows = [
                    {"account": self.account, "person_hash": p, "added_at": at, "source": source[:250]}
                    for p in chunk
                ]
                before = self._count_opted_out(conn, chunk)
                conn.execute(statement, rows)
                added += self._count_opted_out(conn, chunk) - before
        return added

    def remove_opt_out(self, e164s: Iterable[str]) -> int:
        """Forget opt-outs (e.g. the person opted back in); returns how many were removed."""
        persons = sorted({self.person_key(number) for number in e164s})
        opt_outs = self._tables.opt_outs
        removed = 0
        with self.engine.begin() as conn:
            for chunk in _chunks(persons):
                result = conn.execute(
                    opt_outs.delete().where(
                        opt_outs.c.account == self.account, opt_outs.c.person_hash.in_(chunk)
                    )
                )
                removed += int(result.rowcount or 0)
        return removed

    def is_opted_out(self, e164: str) -> bool:
        """Whether the person opted out."""
        person = self.person_key(e164)
        with self.engine.connect() as conn:
            return self._opted_out(conn, person)

    def history(self, e164: str, limit: int = 100) -> list[Attempt]:
        """The person's attempts, newest first, at most ``limit`` (capped at ``HISTORY_LIMIT``)."""
        from sqlalchemy import select

        person = self.person_key(e164)
        attempts = self._tables.attempts
        query = (
            select(
                attempts.c.id, attempts.c.reserved_at, attempts.c.updated_at, attempts.c.state, attempts.c.by
            )
            .where(attempts.c.account == self.account, attempts.c.person_hash == person)
            .order_by(attempts.c.reserved_at.desc(), attempts.c.id.desc())
            .limit(max(1, min(limit, HISTORY_LIMIT)))
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        to_dt = self._schema.from_micros
        return [Attempt(int(r[0]), to_dt(r[1]), to_dt(r[2]), str(r[3]), str(r[4])) for r in rows]

    # -- inside a transaction --------------------------------------------------------------------

    def _lock_person(self, conn: Connection, person: str) -> None:
        """PostgreSQL: make sure the person's lock row exists, then lock it until commit."""
        if self.engine.dialect.name != "postgresql":
            return  # SQLite: BEGIN IMMEDIATE already holds the database's write lock
        from sqlalchemy import select

        locks = self._tables.locks
        conn.execute(
            self._schema.insert_ignoring_duplicates(self.engine, locks),
            {"account": self.account, "person_hash": person},
        )
        conn.execute(
            select(locks.c.person_hash)
            .where(locks.c.account == self.account, locks.c.person_hash == person)
            .with_for_update()
        ).all()

    def _opted_out(self, conn: Connection, person: str) -> bool:
        from sqlalchemy import select

        opt_outs = self._tables.opt_outs
        query = select(opt_outs.c.person_hash).where(
            opt_outs.c.account == self.account, opt_outs.c.person_hash == person
        )
        return conn.execute(query.limit(1)).first() is not None

    def _reserved_rows(self, conn: Connection, person: str, label: str) -> list[tuple[int, int]]:
        """``(id, reserved_at)`` of the person's ``RESERVED`` rows labelled ``label``, oldest first."""
        from sqlalchemy import select

        attempts = self._tables.attempts
        query = (
            select(attempts.c.id, attempts.c.reserved_at)
            .where(
                attempts.c.account == self.account,
                attempts.c.person_hash == person,
                attempts.c.by == label,
                attempts.c.state == RESERVED,
            )
            .order_by(attempts.c.id)
        )
        return [(int(r[0]), int(r[1])) for r in conn.execute(query).all()]

    def _count_opted_out(self, conn: Connection, persons: list[str]) -> int:
        from sqlalchemy import func, select

        opt_outs = self._tables.opt_outs
        query = select(func.count()).where(
            opt_outs.c.account == self.account, opt_outs.c.person_hash.in_(persons)
        )
        return int(conn.execute(query).scalar_one())

    def _counted_times(
        self, conn: Connection, person: str, rule: ContactPolicy, moment: datetime
    ) -> list[datetime]:
        """The newest ``rule.max_calls`` counted attempts inside the policy's window."""
        from sqlalchemy import select

        attempts = self._tables.attempts
        start = self._schema.to_micros(rule.window_start(moment))
        query = (
            select(attempts.c.reserved_at)
            .where(
                attempts.c.account == self.account,
                attempts.c.person_hash == person,
                attempts.c.reserved_at > start,
                attempts.c.state.in_(COUNTED),
            )
            .order_by(attempts.c.reserved_at.desc())
            .limit(rule.max_calls)
        )
        return [self._schema.from_micros(value) for (value,) in conn.execute(query).all()]

    def _move(self, reservation: Reservation, state: str, allowed_from: tuple[str, ...], now: Any) -> None:
        from sqlalchemy import select

        if reservation.account != self.account:
            raise LedgerStateError("contact ledger: the reservation belongs to another account")
        attempts = self._tables.attempts
        at = self._schema.to_micros(now if now is not None else _utcnow())
        where = (attempts.c.id == reservation.id, attempts.c.account == self.account)
        with self.engine.begin() as conn:
            current = conn.execute(
                select(attempts.c.state).where(*where).with_for_update()
            ).scalar_one_or_none()
            if current is None:
                raise LedgerStateError(f"contact ledger: no reservation {reservation.id}")
            if current not in allowed_from:
                raise LedgerStateError(
                    f"contact ledger: reservation {reservation.id} is {current!r}, cannot become {state!r}"
                )
            conn.execute(attempts.update().where(*where).values(state=state, updated_at=at))
