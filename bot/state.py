"""The bot's run-time state: pastes seen, feedback, check history, processed events, pending work.

Two back ends behind one interface (bot/state_base.py): this module's `StateDB`, a SQLite file of its
own (the embedded default: nothing to set up), and `PostgresState` (bot/state_postgres.py), chosen by
`GEMINI_KB_STATE_URL`, which lets any number of replicas share one state. Pastes are stored only when
nothing matched, and only redacted; checks are stored with the masked target, never a key.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from bot.state_base import EVENT_TTL_S, STORED_PASTE_CHARS, StateBase, StateError, StateSummary, T, log
from bot.state_migrations import MigrationReport, Tx, migrate
from kb.settings import Settings

__all__ = ["EVENT_TTL_S", "STORED_PASTE_CHARS", "StateBase", "StateDB", "StateError", "StateSummary", "open_state"]

BUSY_TIMEOUT_S = 1.0


class StateDB(StateBase):
    """The SQLite back end: one connection guarded by a lock, WAL journal; several processes may share the file."""

    backend = "sqlite"
    errors = (sqlite3.Error,)

    def __init__(self, path: Path | str, *, clock=time.time, busy_timeout: float = BUSY_TIMEOUT_S, owner: str = ""):
        super().__init__(clock=clock, owner=owner)
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._persistent = True
        self.migration: MigrationReport | None = None
        try:
            self.db = self._open(str(self.path))
        except (sqlite3.Error, OSError) as exc:
            # The bot must keep answering: run with an in-memory state and say so loudly.
            log.error("state database %s unusable (%s); using an in-memory state", self.path, exc)
            self._persistent = False
            self.db = self._open(":memory:")

    @property
    def persistent(self) -> bool:
        return self._persistent

    def describe(self) -> str:
        return str(self.path)

    def _open(self, path: str) -> sqlite_utils.Database:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=self._busy_timeout, check_same_thread=False, isolation_level=None)
        db = sqlite_utils.Database(conn)
        try:
            if path != ":memory:":
                db.enable_wal()
                # WAL + NORMAL: a commit is not fsynced, a crash loses at most the last records, never the file.
                conn.execute("PRAGMA synchronous = NORMAL")
            self.migration = self._transaction(conn, lambda c: migrate(c, "sqlite", where=path, clock=self._clock))
        except BaseException:
            conn.close()
            raise
        return db

    @staticmethod
    def _transaction(conn: sqlite3.Connection, fn: Callable[[Tx], T]) -> T:
        # IMMEDIATE takes the write lock at once: a transaction that reads then writes cannot be overtaken.
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            if conn.in_transaction:  # SQLite has already rolled back after some errors (a full disk)
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    def _run(self, fn: Callable[[Tx], T], *, tx: bool = False) -> T:
        with self._lock:
            conn = self.db.conn
            return self._transaction(conn, fn) if tx else fn(conn)

    def close(self) -> None:
        with self._lock:
            self.db.conn.close()


def open_state(settings: Settings, *, create: bool = True, strict: bool = False) -> StateBase:
    """The state store the settings name, chosen once at start-up: PostgreSQL at `settings.state_url`
    (GEMINI_KB_STATE_URL) when set, else the SQLite file `settings.state_path` (created when `create`).

    Old processed events are pruned. Raises StateError when PostgreSQL is unreachable or either database's
    schema is newer than this code; with `strict` (operator commands) also when the SQLite file is missing
    and not to be created, or unusable (the bot itself would fall back to memory)."""
    if settings.state_url:
        from bot.state_postgres import PostgresState

        state: StateBase = PostgresState(settings.state_url)
    else:
        path = settings.state_path
        if not create and not path.exists():
            raise StateError(f"no state database at {path} (GEMINI_KB_STATE_DB)")
        state = StateDB(path)
        if strict and not state.persistent:
            state.close()
            raise StateError(f"the state database {path} cannot be opened (see the line above)")
    state.prune()
    return state
