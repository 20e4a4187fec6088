"""The PostgreSQL state back end: one state for every replica of the bot (GEMINI_KB_STATE_URL).

psycopg 3 with a connection pool (psycopg_pool), no ORM; the queries are bot/state_base.py's, with
`?` turned into psycopg's `%s`. Failure behaviour:

- unreachable at start-up: StateError with one line saying where and why (the process exits 1);
- lost while running: the first failure is logged once, every operation then falls back to this
  replica's memory at once (no waiting on a dead server), `health()` says degraded, and a background
  thread reconnects by itself; when it does, the claims made meanwhile are written back (so a Slack
  retry landing on another replica is still caught) and the recovery is logged.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from bot.state_base import StateBase, StateError, T, log
from bot.state_migrations import MigrationReport, Tx, migrate
from kb.redact import redact

CONNECT_TIMEOUT_S = 5  # libpq's connect_timeout (whole seconds)
OPERATION_TIMEOUT_S = 2.0  # the longest an operation waits for a pooled connection
PROBE_EVERY_S = 1.0  # how often a lost server is tried again
HEALTH_PROBE_EVERY_S = 2.0  # /healthz asks the server at most this often
POOL_MIN, POOL_MAX = 1, 10
DEFERRED_WRITES = 50_000  # writes kept in memory while the server is lost (claims, pastes, feedback, checks)
# Connection problems degrade the replica; anything else (a constraint, a bug) is one failed write.
CONNECTION_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError)


class StoreDown(psycopg.OperationalError):
    """Raised instead of touching the pool while the server is known to be unreachable."""


def safe_url(url: str) -> str:
    """`postgresql://user@host:port/db` without password or options (for logs, stats and health)."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.Error:
        return "postgresql://(unparsable URL)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host') or 'localhost'}{port}/{parts.get('dbname') or ''}"


def _reason(exc: BaseException) -> str:
    """The first line of a psycopg error, redacted (libpq never echoes a password, but be sure)."""
    text = " ".join(str(exc).split("\n")[:1]).strip() or type(exc).__name__
    return redact(text)[0]


class _PgTx:
    """A psycopg connection speaking the `?` placeholders the shared queries use."""

    def __init__(self, conn: psycopg.Connection):
        self._conn = conn

    def execute(self, sql: str, params: tuple | list = ()) -> Any:
        return self._conn.execute(sql.replace("?", "%s"), tuple(params))


class PostgresState(StateBase):
    """State shared by every replica through one PostgreSQL database."""

    backend = "postgresql"
    shared = True
    errors = (psycopg.Error,)

    def __init__(
        self,
        url: str,
        *,
        clock=time.time,
        owner: str = "",
        connect_timeout: int = CONNECT_TIMEOUT_S,
        operation_timeout: float = OPERATION_TIMEOUT_S,
        probe_every: float = PROBE_EVERY_S,
        pool_max: int = POOL_MAX,
        migrate_on_open: bool = True,
    ):
        super().__init__(clock=clock, owner=owner)
        if not url.startswith(("postgresql://", "postgres://")):
            raise StateError("GEMINI_KB_STATE_URL must be a postgresql:// URL (unset it to use the SQLite file)")
        self.url, self.where = url, safe_url(url)
        self._connect_timeout = connect_timeout
        self._operation_timeout = operation_timeout
        self._probe_every = probe_every
        self._pool_max = pool_max
        self._state_lock = threading.Lock()
        self._down_since: float | None = None
        self._closed = threading.Event()
        self._prober: threading.Thread | None = None
        self._last_health = 0.0
        self.outages = 0  # times the server was lost (tests and benchmarks read it)
        self._deferred: deque[tuple[str, tuple]] = deque(maxlen=DEFERRED_WRITES)
        self.dropped = 0  # deferred writes pushed out by newer ones during a long outage
        # The pool retries by itself and warns at each attempt; this module logs an outage once instead.
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
        self.migration: MigrationReport | None = None
        try:
            with self._connect() as conn:
                if migrate_on_open:
                    with conn.transaction():
                        self.migration = migrate(_PgTx(conn), "postgresql", where=self.where, clock=self._clock)
        except psycopg.Error as exc:
            raise StateError(f"PostgreSQL state store {self.where} is unreachable: {_reason(exc)}") from exc
        self._pool = self._open_pool()

    # -- connections -------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(
            self.url, autocommit=True, connect_timeout=self._connect_timeout, application_name="gemini-kb"
        )

    def _open_pool(self) -> ConnectionPool:
        pool = ConnectionPool(
            self.url,
            min_size=POOL_MIN,
            max_size=self._pool_max,
            open=False,
            timeout=self._operation_timeout,
            # A connection the server closed (a restart) is found and replaced on checkout, not used.
            check=ConnectionPool.check_connection,
            reconnect_timeout=30.0,
            kwargs={"autocommit": True, "connect_timeout": self._connect_timeout, "application_name": "gemini-kb"},
            name="gemini-kb-state",
        )
        try:
            pool.open(wait=True, timeout=self._connect_timeout)
        except psycopg.Error:
            pool.close(timeout=0)
            raise
        return pool

    def _run(self, fn: Callable[[Tx], T], *, tx: bool = False) -> T:
        if self._down_since is not None:
            raise StoreDown(f"PostgreSQL state store {self.where} is unreachable")
        pool = self._pool
        try:
            with pool.connection() as conn:
                if not tx:
                    return fn(_PgTx(conn))
                with conn.transaction():
                    return fn(_PgTx(conn))
        except CONNECTION_ERRORS as exc:
            self._lost(exc, pool)
            raise

    def _failed(self, what: str, exc: BaseException) -> None:
        if isinstance(exc, CONNECTION_ERRORS):
            log.debug("state store: %s kept in memory only: %s", what, exc)  # the outage itself is logged once
        else:
            log.warning("state database: could not record %s: %s", what, _reason(exc))

    # -- outages -----------------------------------------------------------------------------

    def _lost(self, exc: BaseException, pool: ConnectionPool) -> None:
        with self._state_lock:
            if self._down_since is not None or self._closed.is_set() or pool is not self._pool:
                return
            self._down_since = time.monotonic()
            self.outages += 1
            self._prober = threading.Thread(target=self._reconnect, name="state-reconnect", daemon=True)
            self._prober.start()
        log.error(
            "PostgreSQL state store %s lost (%s): deduplication and check limits fall back to this replica's "
            "memory until it is back",
            self.where,
            _reason(exc),
        )
        # The old pool's connections are dead: close it (in the background, it waits for its workers).
        threading.Thread(target=pool.close, kwargs={"timeout": 1.0}, daemon=True).start()

    def _reconnect(self) -> None:
        """Try the server until it answers, then swap in a fresh pool and write back the memory-only claims."""
        while not self._closed.wait(self._probe_every):
            try:
                with self._connect() as conn:
                    replayed = self._replay(conn)
                pool = self._open_pool()
            except psycopg.Error:
                continue
            with self._state_lock:
                if self._closed.is_set():
                    pool.close(timeout=0)
                    return
                down_s = time.monotonic() - (self._down_since or time.monotonic())
                self._pool, self._down_since = pool, None
            # Writes that failed after the replay began (in flight when the server went) follow on the new pool.
            late = self._replay_late()
            log.warning(
                "PostgreSQL state store %s reachable again after %.1f s; %d writes made meanwhile written back%s",
                self.where,
                down_s,
                replayed + late,
                f" ({self.dropped} older ones dropped)" if self.dropped else "",
            )
            return

    def _defer(self, what: str, sql: str, params: tuple, exc: BaseException) -> None:
        """Keep a write the lost server did not take (claims first of all), to replay when it is back."""
        if not isinstance(exc, CONNECTION_ERRORS) or what == "pruning":
            return
        with self._state_lock:
            if len(self._deferred) == self._deferred.maxlen:
                self.dropped += 1
            self._deferred.append((sql, params))

    def _replay(self, conn: psycopg.Connection) -> int:
        """Write what was deferred, in order, in one transaction; on failure keep it all for the next try."""
        with self._state_lock:
            writes = list(self._deferred)
            self._deferred.clear()
        try:
            with conn.transaction():
                tx = _PgTx(conn)
                for sql, params in writes:
                    tx.execute(sql, params)
        except psycopg.Error:
            with self._state_lock:
                self._deferred.extendleft(reversed(writes))
            raise
        return len(writes)

    def _replay_late(self) -> int:
        if not self._deferred:
            return 0
        try:
            with self._pool.connection() as conn:
                return self._replay(conn)
        except psycopg.Error:
            return 0

    @property
    def persistent(self) -> bool:
        return self._down_since is None

    def health(self) -> dict[str, object]:
        """Degraded (still serving) while the server is lost; asks the server at most every couple of seconds."""
        now = time.monotonic()
        if self._down_since is None and now - self._last_health >= HEALTH_PROBE_EVERY_S:
            self._last_health = now
            with contextlib.suppress(psycopg.Error):  # _run marks the store down and logs it
                self._run(lambda c: c.execute("SELECT 1").fetchone())
        data = super().health()
        data["state_store"] = self.where
        if self._down_since is not None:
            data["state_down_s"] = round(now - self._down_since, 1)
        return data

    def describe(self) -> str:
        return self.where

    def _lock_budget(self, c: Tx) -> None:
        # One budget for the deployment: decisions are taken one at a time (checks are rare; this is cheap).
        c.execute("SELECT pg_advisory_xact_lock(?)", (0x6B6D6968,))

    def close(self) -> None:
        with self._state_lock:
            self._closed.set()
            pool = self._pool
        pool.close(timeout=2.0)
        if self._prober is not None:
            self._prober.join(self._connect_timeout + 2)
