"""Versioned schema migrations for both state back ends (SQLite and PostgreSQL).

Each migration has a number and one script per dialect; `schema_migrations` records which were applied.
Start-up applies the missing ones inside one transaction (PostgreSQL: under an advisory lock, so three
replicas starting at once migrate once) and refuses a database whose schema is newer than this code.
Version 1 is the schema the SQLite file had before versions were recorded (every statement says
IF NOT EXISTS), so an existing file adopts it without change.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol


class StateError(Exception):
    """The state store cannot be used as configured (unreachable at start-up, newer schema, bad URL)."""


class Tx(Protocol):
    """One connection inside a transaction; SQL uses `?` placeholders in both dialects."""

    def execute(self, sql: str, params: tuple | list = ()) -> Any: ...


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sqlite: str
    postgresql: str


_V1_SQLITE = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS processed_events (key TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS pastes (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, source TEXT NOT NULL, channel TEXT,
    entry_id TEXT, confidence REAL, confident INTEGER NOT NULL,
    text TEXT, reason TEXT, candidates TEXT
);
CREATE INDEX IF NOT EXISTS pastes_at ON pastes (at);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, user TEXT NOT NULL, channel TEXT NOT NULL,
    message_ts TEXT NOT NULL, entry_id TEXT NOT NULL, verdict TEXT NOT NULL, confidence REAL,
    UNIQUE (user, channel, message_ts)
);
CREATE TABLE IF NOT EXISTS checks (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, source TEXT NOT NULL, user TEXT,
    kinds TEXT NOT NULL, target TEXT, ok INTEGER NOT NULL, failed TEXT, entry_ids TEXT, ms REAL
)
"""

# The same tables in PostgreSQL's words: identity keys, double precision times, "user" quoted (reserved).
_V1_POSTGRESQL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS processed_events (key TEXT PRIMARY KEY, at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS pastes (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at DOUBLE PRECISION NOT NULL, source TEXT NOT NULL,
    channel TEXT, entry_id TEXT, confidence DOUBLE PRECISION, confident INTEGER NOT NULL,
    text TEXT, reason TEXT, candidates TEXT
);
CREATE INDEX IF NOT EXISTS pastes_at ON pastes (at);
CREATE TABLE IF NOT EXISTS feedback (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at DOUBLE PRECISION NOT NULL, "user" TEXT NOT NULL,
    channel TEXT NOT NULL, message_ts TEXT NOT NULL, entry_id TEXT NOT NULL, verdict TEXT NOT NULL,
    confidence DOUBLE PRECISION, UNIQUE ("user", channel, message_ts)
);
CREATE TABLE IF NOT EXISTS checks (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at DOUBLE PRECISION NOT NULL, source TEXT NOT NULL,
    "user" TEXT, kinds TEXT NOT NULL, target TEXT, ok INTEGER NOT NULL, failed TEXT, entry_ids TEXT,
    ms DOUBLE PRECISION
)
"""

# Durable work (bot/state_contract.py) and the deployment-wide check budget. The type names are ones both
# dialects accept, so one script serves both.
_V2 = """
CREATE TABLE pending_jobs (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, channel TEXT NOT NULL, thread_ts TEXT, "user" TEXT,
    text TEXT NOT NULL, secrets TEXT NOT NULL, payload TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, posted_ts TEXT, owner TEXT, lease_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX pending_jobs_lease ON pending_jobs (lease_at);
CREATE TABLE check_uses (key TEXT NOT NULL, at DOUBLE PRECISION NOT NULL);
CREATE INDEX check_uses_key_at ON check_uses (key, at);
CREATE INDEX IF NOT EXISTS processed_events_at ON processed_events (at)
"""

# Curation (issue 17): the misses queue, the answers the bot posted (to find what a reaction or a click is
# about), signature proposals, per-channel settings (the weekly digest) and the digests posted. `{ID}` is
# each dialect's auto-increment key.
_V3 = """
CREATE TABLE miss_queue (
    id {ID}, at DOUBLE PRECISION NOT NULL, kind TEXT NOT NULL, channel TEXT NOT NULL, message_ts TEXT NOT NULL,
    "user" TEXT, text TEXT NOT NULL, bot_said TEXT NOT NULL, person_said TEXT NOT NULL, entry_id TEXT,
    candidates TEXT NOT NULL, status TEXT NOT NULL, label TEXT, decided_by TEXT, decided_at DOUBLE PRECISION,
    UNIQUE (channel, message_ts, kind)
);
CREATE INDEX miss_queue_status ON miss_queue (status, at);
CREATE TABLE posted_answers (
    channel TEXT NOT NULL, ts TEXT NOT NULL, paste_ts TEXT, thread_ts TEXT, poster TEXT, entry_id TEXT,
    confident INTEGER NOT NULL, errors TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, PRIMARY KEY (channel, ts)
);
CREATE INDEX posted_answers_at ON posted_answers (at);
CREATE TABLE proposals (
    id {ID}, at DOUBLE PRECISION NOT NULL, entry_id TEXT NOT NULL, text TEXT NOT NULL, channel TEXT NOT NULL,
    day TEXT NOT NULL, origin TEXT NOT NULL, miss_id INTEGER, proposed_by TEXT, status TEXT NOT NULL,
    decided_by TEXT, decided_at DOUBLE PRECISION, UNIQUE (entry_id, text)
);
CREATE TABLE channel_settings (
    channel TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (channel, key)
);
CREATE TABLE digests (
    channel TEXT NOT NULL, week TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, owner TEXT, PRIMARY KEY (channel, week)
);
ALTER TABLE checks ADD COLUMN channel TEXT
"""

# Why an answer was wrong (the reasons of a 👎, the family it really was, a redacted note) and small per-user
# settings (where the "Diagnose this error" shortcut answers).
_V4 = """
CREATE TABLE feedback_reasons (
    id {ID}, at DOUBLE PRECISION NOT NULL, "user" TEXT NOT NULL,
    channel TEXT NOT NULL, message_ts TEXT NOT NULL, entry_id TEXT NOT NULL, reason TEXT NOT NULL,
    actual_entry_id TEXT, note TEXT
);
CREATE INDEX feedback_reasons_at ON feedback_reasons (at);
CREATE TABLE user_settings (
    "user" TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY ("user", name)
)
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "events, pastes, feedback, checks", _V1_SQLITE, _V1_POSTGRESQL),
    Migration(2, "pending jobs, check budget", _V2, _V2),
    Migration(
        3,
        "curation: misses queue, posted answers, signature proposals, channel settings, digests",
        _V3.replace("{ID}", "INTEGER PRIMARY KEY"),
        _V3.replace("{ID}", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
    ),
    Migration(
        4,
        "feedback reasons, user settings",
        _V4.replace("{ID}", "INTEGER PRIMARY KEY"),
        _V4.replace("{ID}", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
    ),
)
LATEST = MIGRATIONS[-1].version

_CREATE_VERSIONS = (
    "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
)
ADVISORY_LOCK_ID = 0x6B6D6967  # any constant shared by every replica: serialises concurrent migrations


@dataclass(frozen=True)
class MigrationReport:
    before: int  # schema version found (0 = empty database)
    after: int
    applied: list[int]


def _statements(script: str) -> list[str]:
    # The scripts hold no semicolons inside literals, so a split is exact.
    return [s.strip() for s in script.split(";") if s.strip()]


def current_version(tx: Tx) -> int:
    tx.execute(_CREATE_VERSIONS)
    (version,) = tx.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(version)


def migrate(tx: Tx, dialect: str, *, where: str, clock=time.time) -> MigrationReport:
    """Apply the missing migrations in the caller's transaction; StateError when the schema is newer."""
    if dialect == "postgresql":
        tx.execute("SELECT pg_advisory_xact_lock(?)", (ADVISORY_LOCK_ID,))
    before = current_version(tx)
    if before > LATEST:
        raise StateError(
            f"the state database {where} is at schema version {before} but this gemini-kb knows only up to "
            f"{LATEST}: run the newer gemini-kb that migrated it (or point this one at another database)"
        )
    applied = []
    for migration in MIGRATIONS:
        if migration.version <= before:
            continue
        for statement in _statements(getattr(migration, dialect)):
            tx.execute(statement)
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, clock()),
        )
        applied.append(migration.version)
    after = max(before, LATEST)
    tx.execute("DELETE FROM meta WHERE key = 'schema_version'")
    tx.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(after),))
    return MigrationReport(before=before, after=after, applied=applied)
