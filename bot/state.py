"""The bot's run-time state: pastes seen, feedback, check history, processed events.

A separate SQLite file from the knowledge base (a rebuild never touches it). Pastes are
stored only when nothing matched, and only redacted; checks are stored with the masked
target, never a key. Every write tolerates a locked or full database: the failure is
logged and the bot carries on (the reply matters more than the record).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from bot.state_contract import PendingJob
from kb.clean import clean
from kb.matcher import MatchResult
from kb.redact import redact

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
STORED_PASTE_CHARS = 4_000  # an unmatched paste is kept for curation, not in full
EVENT_TTL_S = 2 * 24 * 3600  # Slack retries within minutes; two days is plenty
MEMORY_KEYS = 20_000  # processed-event keys also kept in memory (and used alone if the file fails)
BUSY_TIMEOUT_S = 1.0
PRUNE_EVERY = 1_000  # claims between prunes of old processed-event keys

SCHEMA = """
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
CREATE TABLE IF NOT EXISTS pending_jobs (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, channel TEXT NOT NULL, thread_ts TEXT, "user" TEXT,
    text TEXT NOT NULL, secrets TEXT NOT NULL, payload TEXT NOT NULL, created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, posted_ts TEXT, owner TEXT, lease_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_jobs_lease ON pending_jobs (lease_at);
CREATE TABLE IF NOT EXISTS checks (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, source TEXT NOT NULL, user TEXT,
    kinds TEXT NOT NULL, target TEXT, ok INTEGER NOT NULL, failed TEXT, entry_ids TEXT, ms REAL
);
"""


@dataclass(frozen=True)
class StateSummary:
    """What `gemini-kb stats` and the App Home show."""

    path: str
    days: int
    pastes: int = 0
    matched: int = 0
    unmatched: int = 0
    top_entries: list[tuple[str, int]] = field(default_factory=list)
    recent_unmatched: list[dict[str, object]] = field(default_factory=list)
    feedback: dict[str, dict[str, int]] = field(default_factory=dict)  # entry -> verdict -> count
    checks: int = 0
    checks_failed: int = 0
    check_failures: list[tuple[str, int]] = field(default_factory=list)  # entry id -> count
    persistent: bool = True

    def as_dict(self) -> dict[str, object]:
        data = dict(self.__dict__)
        data["top_entries"] = [{"entry_id": e, "count": n} for e, n in self.top_entries]
        data["check_failures"] = [{"entry_id": e, "count": n} for e, n in self.check_failures]
        return data


class StateDB:
    """Thread-safe access to the state file; one connection guarded by a lock, WAL journal."""

    def __init__(self, path: Path | str, *, clock=time.time, busy_timeout: float = BUSY_TIMEOUT_S):
        self.path = Path(path)
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._claims = 0
        self.persistent = True
        try:
            self.db = self._open(str(self.path))
        except (sqlite3.Error, OSError) as exc:
            # The bot must keep answering: run with an in-memory state and say so loudly.
            log.error("state database %s unusable (%s); using an in-memory state", self.path, exc)
            self.persistent = False
            self.db = self._open(":memory:")

    def _open(self, path: str) -> sqlite_utils.Database:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=self._busy_timeout, check_same_thread=False, isolation_level=None)
        db = sqlite_utils.Database(conn)
        if path != ":memory:":
            db.enable_wal()
            # WAL + NORMAL: a commit is not fsynced, a crash loses at most the last records, never the file.
            conn.execute("PRAGMA synchronous = NORMAL")
        conn.executescript(SCHEMA)
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        return db

    def close(self) -> None:
        with self._lock:
            self.db.conn.close()

    def _write(self, what: str, sql: str, params: tuple = ()) -> int | None:
        """Run one write; on a locked/full/broken database log it and return None."""
        try:
            with self._lock:
                return self.db.conn.execute(sql, params).rowcount
        except sqlite3.Error as exc:
            log.warning("state database: could not record %s: %s", what, exc)
            return None

    # -- processed events ---------------------------------------------------------------

    def claim(self, key: str) -> bool:
        """True the first time `key` is claimed (by any process sharing the file), False after."""
        with self._lock:
            if key in self._seen:
                return False
            self._seen[key] = None
            if len(self._seen) > MEMORY_KEYS:
                self._seen.popitem(last=False)
        inserted = self._write(
            "a processed event", "INSERT OR IGNORE INTO processed_events (key, at) VALUES (?, ?)", (key, self._clock())
        )
        self._claims += 1
        if self._claims % PRUNE_EVERY == 0:
            self.prune()
        # None: the file failed, the in-memory claim stands (better one reply than none).
        return inserted is None or inserted > 0

    def unclaim(self, key: str) -> None:
        """Undo a claim whose work failed, so that a retry may claim it again."""
        with self._lock:
            self._seen.pop(key, None)
        self._write("a processed event", "DELETE FROM processed_events WHERE key = ?", (key,))

    def prune(self, *, older_than: float = EVENT_TTL_S) -> None:
        self._write("pruning", "DELETE FROM processed_events WHERE at < ?", (self._clock() - older_than,))

    # -- durable work (bot.state_contract) --------------------------------------------------
    # The same schema and semantics as the PostgreSQL store: the key is claimed in processed_events (so a
    # Slack retry of a finished job is still recognised) and the job row lives until it is finished.

    def enqueue(self, job: PendingJob) -> bool:
        """Claim `job.key` and store the job as pending, in one transaction; False when already claimed.

        When the file fails the claim falls back to memory, as `claim` does: the job is then not durable."""
        with self._lock:
            if job.key in self._seen:
                return False
            self._seen[job.key] = None
            if len(self._seen) > MEMORY_KEYS:
                self._seen.popitem(last=False)
        now = self._clock()
        row = (
            job.key,
            job.kind,
            job.channel,
            job.thread_ts,
            job.user,
            redact(job.text)[0],  # never a secret at rest, whatever the caller passed
            json.dumps(job.secrets),
            json.dumps(job.payload),
            job.created_at or now,
            job.attempts,
            job.posted_ts,
            now,
        )
        self._claims += 1
        if self._claims % PRUNE_EVERY == 0:
            self.prune()
        try:
            with self._lock:
                conn = self.db.conn
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if not conn.execute(
                        "INSERT OR IGNORE INTO processed_events (key, at) VALUES (?, ?)", (job.key, now)
                    ).rowcount:
                        conn.execute("ROLLBACK")
                        return False
                    conn.execute(
                        'INSERT INTO pending_jobs (key, kind, channel, thread_ts, "user", text, secrets, payload, '
                        "created_at, attempts, posted_ts, lease_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        row,
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            log.warning("state database: could not record a processed event: %s", exc)
        return True

    def mark_posted(self, key: str, posted_ts: str) -> None:
        self._write("a posted reply", "UPDATE pending_jobs SET posted_ts = ? WHERE key = ?", (posted_ts, key))

    def finish(self, key: str) -> None:
        # The claim in processed_events stays (a Slack retry is still recognised); what was said goes.
        self._write("a finished job", "DELETE FROM pending_jobs WHERE key = ?", (key,))

    def renew(self, keys: list[str], *, at: float | None = None) -> None:
        """Extend the lease of jobs this process is working on (so no other replica takes them over), to now
        or to `at` (a later time: the job is left alone until then)."""
        self._lease("a lease", self._clock() if at is None else at, keys)

    def release(self, keys: list[str]) -> None:
        """Give up the lease of unfinished jobs at shutdown, so the next process takes them at once."""
        self._lease("a released job", 0.0, keys)

    def _lease(self, what: str, leased_at: float, keys: list[str]) -> None:
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            self._write(
                what,
                f"UPDATE pending_jobs SET lease_at = ? WHERE key IN ({marks})",
                (leased_at, *chunk),
            )

    def take_over(self, *, owner: str, older_than: float, limit: int = 100) -> list[PendingJob]:
        """Atomically lease pending jobs whose lease is older than `older_than` seconds to `owner` (one statement,
        so two replicas never take the same job); each take counts as an attempt."""
        now = self._clock()
        try:
            with self._lock:
                rows = self.db.conn.execute(
                    "UPDATE pending_jobs SET owner = ?, lease_at = ?, attempts = attempts + 1 WHERE key IN ("
                    "SELECT key FROM pending_jobs WHERE lease_at < ? ORDER BY created_at, key LIMIT ?"
                    ') RETURNING key, kind, channel, thread_ts, "user", text, secrets, payload, created_at, attempts, '
                    "posted_ts",
                    (owner, now, now - older_than, limit),
                ).fetchall()
        except sqlite3.Error as exc:
            log.warning("state database: could not take over pending jobs: %s", exc)
            return []
        return [
            PendingJob(
                key=key,
                kind=kind,
                channel=channel,
                thread_ts=thread_ts,
                user=user,
                text=text,
                secrets=json.loads(secrets),
                payload=json.loads(payload),
                created_at=created_at,
                attempts=attempts,
                posted_ts=posted_ts,
            )
            for key, kind, channel, thread_ts, user, text, secrets, payload, created_at, attempts, posted_ts in rows
        ]

    def pending_count(self) -> int:
        try:
            with self._lock:
                return self.db.conn.execute("SELECT count(*) FROM pending_jobs").fetchone()[0]
        except sqlite3.Error as exc:
            log.warning("state database: could not count pending jobs: %s", exc)
            return 0

    # -- records ------------------------------------------------------------------------

    def record_match(self, result: MatchResult, *, text: str, source: str, channel: str | None) -> None:
        """Record what the matcher said about one paste (see `record_paste`)."""
        top = result.top
        self.record_paste(
            source=source,
            channel=channel,
            entry_id=top.id if top else None,
            confidence=top.score if top else None,
            confident=result.confident,
            text=text,
            reason=result.abstain_reason,
            candidates=[m.id for m in result.matches],
        )

    def record_paste(
        self,
        *,
        source: str,
        channel: str | None,
        entry_id: str | None,
        confidence: float | None,
        confident: bool,
        text: str | None = None,
        reason: str = "",
        candidates: list[str] | None = None,
    ) -> None:
        """One answered paste; the text is kept (redacted, capped) only when it found no confident match."""
        stored = None
        if not confident and text:
            # Redact the whole text before cutting it: a cut could leave half a key unrecognised.
            stored = redact(clean(text))[0][:STORED_PASTE_CHARS]
        self._write(
            "a paste",
            "INSERT INTO pastes (at, source, channel, entry_id, confidence, confident, text, reason, candidates) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self._clock(),
                source,
                channel,
                entry_id,
                confidence,
                int(confident),
                stored,
                reason,
                json.dumps(candidates or []),
            ),
        )

    def record_feedback(
        self, *, user: str, channel: str, message_ts: str, entry_id: str, verdict: str, confidence: float | None
    ) -> None:
        """A click on Fixed it / Not it; a second click by the same user on the same answer replaces the first."""
        self._write(
            "feedback",
            "INSERT INTO feedback (at, user, channel, message_ts, entry_id, verdict, confidence) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user, channel, message_ts) DO UPDATE SET "
            "at = excluded.at, entry_id = excluded.entry_id, verdict = excluded.verdict",
            (self._clock(), user, channel, message_ts, entry_id, verdict, confidence),
        )

    def record_check(
        self,
        *,
        source: str,
        user: str | None,
        kinds: list[str],
        target: str,
        ok: bool,
        failed: list[str],
        entry_ids: list[str],
        ms: float,
    ) -> None:
        """A check run; `target` must already be masked (the caller never passes a key)."""
        target, _ = redact(target)
        self._write(
            "a check",
            "INSERT INTO checks (at, source, user, kinds, target, ok, failed, entry_ids, ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (self._clock(), source, user, ",".join(kinds), target, int(ok), ",".join(failed), ",".join(entry_ids), ms),
        )

    # -- reading ------------------------------------------------------------------------

    def summary(self, *, days: int = 7, recent: int = 10) -> StateSummary:
        """Counts over the last `days` days; an empty summary when the file cannot be read."""
        since = self._clock() - days * 86400
        try:
            with self._lock:
                return self._summary(since, days, recent)
        except sqlite3.Error as exc:
            log.warning("state database: could not read the summary: %s", exc)
            return StateSummary(path=str(self.path), days=days, persistent=self.persistent)

    def _summary(self, since: float, days: int, recent: int) -> StateSummary:
        q = self.db.conn.execute
        pastes, matched = q(
            "SELECT count(*), coalesce(sum(confident), 0) FROM pastes WHERE at >= ?", (since,)
        ).fetchone()
        top = q(
            "SELECT entry_id, count(*) AS n FROM pastes WHERE at >= ? AND confident = 1 "
            "GROUP BY entry_id ORDER BY n DESC, entry_id LIMIT 10",
            (since,),
        ).fetchall()
        unmatched_rows = q(
            "SELECT at, source, text, reason, candidates FROM pastes WHERE at >= ? AND confident = 0 "
            "ORDER BY at DESC, id DESC LIMIT ?",
            (since, recent),
        ).fetchall()
        feedback: dict[str, dict[str, int]] = {}
        for entry_id, verdict, n in q(
            "SELECT entry_id, verdict, count(*) FROM feedback WHERE at >= ? GROUP BY entry_id, verdict", (since,)
        ):
            feedback.setdefault(entry_id, {})[verdict] = n
        checks, checks_failed = q(
            "SELECT count(*), coalesce(sum(1 - ok), 0) FROM checks WHERE at >= ?", (since,)
        ).fetchone()
        failures: dict[str, int] = {}
        for (ids,) in q("SELECT entry_ids FROM checks WHERE at >= ? AND ok = 0", (since,)):
            for entry_id in filter(None, (ids or "").split(",")):
                failures[entry_id] = failures.get(entry_id, 0) + 1
        return StateSummary(
            path=str(self.path),
            days=days,
            pastes=pastes,
            matched=matched,
            unmatched=pastes - matched,
            top_entries=[(e, n) for e, n in top],
            recent_unmatched=[
                {"at": at, "source": src, "text": text, "reason": reason, "candidates": json.loads(cands or "[]")}
                for at, src, text, reason, cands in unmatched_rows
            ],
            feedback=feedback,
            checks=checks,
            checks_failed=checks_failed,
            check_failures=sorted(failures.items(), key=lambda kv: (-kv[1], kv[0])),
            persistent=self.persistent,
        )


def open_state(path: Path) -> StateDB:
    """Open (creating when needed) the state database at `path`; old processed events are pruned."""
    state = StateDB(path)
    state.prune()
    return state
