"""Accounts and their bearer tokens: every token of an account shares the account's rate window.

Tokens given without an account (``--token``, ``tokens=``) each form an account of their own,
named after the token's fingerprint, so that they keep a window each as before accounts existed.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from airflow_provider_alta.sandbox.journal import token_fingerprint

AccountsArg = Mapping[str, str | Iterable[str]]


@dataclass(frozen=True)
class Caller:
    """Who sent an authenticated request: the account and the fingerprint of the token used."""

    account: str
    fingerprint: str


def parse_account(text: str) -> tuple[str, list[str]]:
    """Parse the CLI form ``NAME=TOKEN[,TOKEN...]``."""
    name, sep, tokens = text.partition("=")
    listed = [token.strip() for token in tokens.split(",")]
    if not sep or not name.strip() or not all(listed):
        raise ValueError(f"invalid account {text!r}: expected NAME=TOKEN[,TOKEN...]")
    return name.strip(), listed


class Accounts:
    """The accepted tokens, grouped by account, in the order given (named accounts first)."""

    def __init__(self, accounts: AccountsArg | None = None, tokens: Iterable[str] = ()) -> None:
        self._tokens: list[tuple[bytes, Caller]] = []
        self._names: list[str] = []
        self._first_token: dict[str, str] = {}
        self._given: list[str] = []
        for name, given in (accounts or {}).items():
            listed = [given] if isinstance(given, str) else list(given)
            if not isinstance(name, str) or not name.strip():
                raise ValueError("every account needs a non-empty name")
            if not listed:
                raise ValueError(f"account {name!r} needs at least one token")
            for token in listed:
                self._add(name, token)
        for token in tokens:
            self._add(token_fingerprint(token) if token else "", token)
        if not self._tokens:
            raise ValueError("the sandbox needs at least one non-empty token")

    def _add(self, name: str, token: str) -> None:
        if not isinstance(token, str) or not token:
            raise ValueError("the sandbox needs non-empty tokens")
        raw = token.encode("utf-8")
        if any(hmac.compare_digest(raw, known) for known, _ in self._tokens):
            raise ValueError(f"a token is given twice (account {name!r})")
        if name not in self._first_token:
            self._names.append(name)
            self._first_token[name] = token
        self._tokens.append((raw, Caller(name, token_fingerprint(token))))
        self._given.append(token)

    @property
    def names(self) -> list[str]:
        """The account names, the primary account first."""
        return list(self._names)

    @property
    def tokens(self) -> list[str]:
        """Every accepted token, in the order given."""
        return list(self._given)

    @property
    def primary(self) -> str:
        """The first account (``window_used`` in the stats is its usage)."""
        return self._names[0]

    def first_token(self, account: str) -> str:
        """The first token of ``account``."""
        return self._first_token[account]

    def fingerprint(self, account: str) -> str:
        """The fingerprint of the first token of ``account``."""
        return token_fingerprint(self._first_token[account])

    def resolve(self, account: str | None) -> str:
        """``account``, or the primary one for ``None``; ``ValueError`` for an unknown name."""
        if account is None:
            return self.primary
        if not isinstance(account, str) or account not in self._first_token:
            raise ValueError(f"unknown account {account!r}: expected one of {', '.join(self._names)}")
        return account

    def authenticate(self, authorization: str | None) -> Caller | None:
        """Who sent ``Authorization: Bearer <token>``, or ``None`` when the token is not accepted."""
        if not authorization:
            return None
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
        given = credentials.strip().encode("utf-8", "surrogateescape")
        found: Caller | None = None
        for token, caller in self._tokens:
            if hmac.compare_digest(given, token) and found is None:
                found = caller
        return found
