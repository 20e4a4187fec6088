"""What both state back ends share: the records, claims, summaries, durable work and check budgets.

A back end (bot/state.py for SQLite, bot/state_postgres.py for PostgreSQL) supplies a connection
(`_run`) and says what a failure looks like (`_failed`); every query is written here once, with `?`
placeholders and the reserved word `user` quoted, so the two cannot drift apart. Every write tolerates
a failing database: the failure is logged and the bot carries on (the reply matters more than the
record), and claims and check budgets fall back to this process's memory.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bot.policy import Budget, RateLimiter
from bot.state_contract import PendingJob
from bot.state_curation import CurationStore
from bot.state_migrations import StateError, Tx
from kb.clean import clean
from kb.matcher import MatchResult
from kb.redact import redact

# One logger for the whole state store, whichever back end.
log = logging.getLogger("bot.state")

T = TypeVar("T")

STORED_PASTE_CHARS = 4_000  # an unmatched paste is kept for curation, not in full
STORED_NOTE_CHARS = 1_000  # the free-text note of a 👎
EVENT_TTL_S = 2 * 24 * 3600  # Slack retries within minutes; two days is plenty
MEMORY_KEYS = 20_000  # processed-event keys also kept in memory (and used alone if the store fails)
PRUNE_EVERY = 1_000  # claims between prunes of old processed-event keys
GLOBAL_BUDGET_KEY = "*"  # the deployment-wide check budget; a person's is "user:<id>"
EXPORT_KINDS = ("feedback", "reasons", "misses", "checks")
CLAIM_SQL = "INSERT INTO processed_events (key, at) VALUES (?, ?) ON CONFLICT DO NOTHING"

__all__ = ["EVENT_TTL_S", "STORED_PASTE_CHARS", "StateBase", "StateError", "StateSummary"]


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


class StateBase(CurationStore):
    """The state store's behaviour, independent of the database behind it."""

    backend = ""
    shared = False  # a store several replicas use as one (their own memory cannot stand in for it)
    errors: tuple[type[BaseException], ...] = ()  # what a failing database raises

    def __init__(self, *, clock: Callable[[], float] = time.time, owner: str = ""):
        self._clock = clock
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"  # who holds a pending job's lease
        self._memory_lock = threading.Lock()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.fallbacks = 0  # claims decided by this process's memory alone because the store failed
        self._limiters: dict[tuple[str, int, float], RateLimiter] = {}
        self._claims = 0

    # -- what a back end supplies ------------------------------------------------------------

    def _run(self, fn: Callable[[Tx], T], *, tx: bool = False) -> T:
        """Call `fn` with a connection (inside one transaction when `tx`); raise one of `errors` on failure."""
        raise NotImplementedError

    def _failed(self, what: str, exc: BaseException) -> None:
        log.warning("state database: could not record %s: %s", what, exc)

    def describe(self) -> str:
        """Where the state lives, without any password."""
        raise NotImplementedError

    @property
    def persistent(self) -> bool:
        return True

    def health(self) -> dict[str, object]:
        """For /healthz: a failing state store degrades the replica but never takes it out of service."""
        return {
            "state_backend": self.backend,
            "state_persistent": self.persistent,
            "state": "ok" if self.persistent else "degraded",
        }

    def close(self) -> None:
        raise NotImplementedError

    # -- helpers -----------------------------------------------------------------------------

    def _try(self, what: str, fn: Callable[[Tx], T], default: T, *, tx: bool = False) -> T:
        try:
            return self._run(fn, tx=tx)
        except self.errors as exc:
            self._failed(what, exc)
            return default

    def _write(self, what: str, sql: str, params: tuple = ()) -> int | None:
        """Run one write; on a failing database log it, offer it for a later replay, and return None."""
        try:
            return self._run(lambda c: c.execute(sql, params).rowcount)
        except self.errors as exc:
            self._failed(what, exc)
            self._defer(what, sql, params, exc)
            return None

    def fetch(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of a read-only query (operators' tools and tests); raises when the store fails."""
        return self._run(lambda c: list(c.execute(sql, params).fetchall()))

    def _remember(self, key: str) -> bool:
        """The in-memory claim: True the first time this process sees `key`."""
        with self._memory_lock:
            if key in self._seen:
                return False
            self._seen[key] = None
            if len(self._seen) > MEMORY_KEYS:
                self._seen.popitem(last=False)
            return True

    def _defer(self, what: str, sql: str, params: tuple, exc: BaseException) -> None:
        """A write the store failed to take; a back end that can replay it later keeps it (SQLite does not:
        its failures are a lock or a full disk, not an outage that ends)."""

    # -- processed events --------------------------------------------------------------------

    def claim(self, key: str) -> bool:
        """True the first time `key` is claimed (by any replica sharing the store), False after."""
        if not self._remember(key):
            return False
        inserted = self._write("a processed event", CLAIM_SQL, (key, self._clock()))
        self._claims += 1
        if self._claims % PRUNE_EVERY == 0:
            self.prune()
        if inserted is None:  # the store failed: the in-memory claim stands (better one reply than none)
            self.fallbacks += 1
            return True
        return inserted > 0

    def prune(self, *, older_than: float = EVENT_TTL_S) -> None:
        self._write("pruning", "DELETE FROM processed_events WHERE at < ?", (self._clock() - older_than,))

    # -- records -----------------------------------------------------------------------------

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
            stored = redact(clean(text), strict=True)[0][:STORED_PASTE_CHARS]
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
            'INSERT INTO feedback (at, "user", channel, message_ts, entry_id, verdict, confidence) '
            'VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT ("user", channel, message_ts) DO UPDATE SET '
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
        channel: str | None = None,
    ) -> None:
        """A check run; `target` must already be masked (the caller never passes a key)."""
        target, _ = redact(target, strict=True)
        self._write(
            "a check",
            'INSERT INTO checks (at, source, "user", kinds, target, ok, failed, entry_ids, ms, channel) '
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self._clock(),
                source,
                user,
                ",".join(kinds),
                target,
                int(ok),
                ",".join(failed),
                ",".join(entry_ids),
                ms,
                channel,
            ),
        )

    def record_feedback_reason(
        self,
        *,
        user: str,
        channel: str,
        message_ts: str,
        entry_id: str,
        reason: str,
        actual_entry_id: str | None,
        note: str | None,
    ) -> None:
        """Why an answer was wrong (a 👎 and its form); the note is redacted here too, whoever calls."""
        stored = redact(note, strict=True)[0][:STORED_NOTE_CHARS] if note else None
        self._write(
            "a feedback reason",
            'INSERT INTO feedback_reasons (at, "user", channel, message_ts, entry_id, reason, actual_entry_id, note) '
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (self._clock(), user, channel, message_ts, entry_id, reason, actual_entry_id, stored),
        )

    def user_setting(self, user: str, name: str) -> str | None:
        """One person's setting (None when unset, or when the store fails: the default applies)."""

        def read(c: Tx) -> str | None:
            row = c.execute('SELECT value FROM user_settings WHERE "user" = ? AND name = ?', (user, name)).fetchone()
            return str(row[0]) if row else None

        return self._try("a user setting", read, None)

    def set_user_setting(self, user: str, name: str, value: str) -> None:
        self._write(
            "a user setting",
            'INSERT INTO user_settings ("user", name, value, at) VALUES (?, ?, ?, ?) '
            'ON CONFLICT ("user", name) DO UPDATE SET value = excluded.value, at = excluded.at',
            (user, name, value, self._clock()),
        )

    # -- reading -----------------------------------------------------------------------------

    def summary(self, *, days: int = 7, recent: int = 10) -> StateSummary:
        """Counts over the last `days` days, for the whole deployment; an empty summary when the store fails."""
        since = self._clock() - days * 86400
        try:
            return self._run(lambda c: self._summary(c, since, days, recent))
        except self.errors as exc:
            log.warning("state database: could not read the summary: %s", exc)
            return StateSummary(path=self.describe(), days=days, persistent=self.persistent)

    def _summary(self, c: Tx, since: float, days: int, recent: int) -> StateSummary:
        q = c.execute
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
        ).fetchall():
            feedback.setdefault(entry_id, {})[verdict] = int(n)
        checks, checks_failed = q(
            "SELECT count(*), coalesce(sum(1 - ok), 0) FROM checks WHERE at >= ?", (since,)
        ).fetchone()
        failures: dict[str, int] = {}
        for (ids,) in q("SELECT entry_ids FROM checks WHERE at >= ? AND ok = 0", (since,)).fetchall():
            for entry_id in filter(None, (ids or "").split(",")):
                failures[entry_id] = failures.get(entry_id, 0) + 1
        return StateSummary(
            path=self.describe(),
            days=days,
            pastes=int(pastes),
            matched=int(matched),
            unmatched=int(pastes) - int(matched),
            top_entries=[(e, int(n)) for e, n in top],
            recent_unmatched=[
                {"at": at, "source": src, "text": text, "reason": reason, "candidates": json.loads(cands or "[]")}
                for at, src, text, reason, cands in unmatched_rows
            ],
            feedback=feedback,
            checks=int(checks),
            checks_failed=int(checks_failed),
            check_failures=sorted(failures.items(), key=lambda kv: (-kv[1], kv[0])),
            persistent=self.persistent,
        )

    def export(self, kinds: tuple[str, ...] = EXPORT_KINDS, *, days: int | None = None) -> Iterator[dict[str, Any]]:
        """Rows for operators (`gemini-kb state export --jsonl`): feedback, reasons, misses (unmatched pastes), checks.

        Everything stored is already redacted; raises when the store fails (an export must not be partial)."""
        since = self._clock() - days * 86400 if days else float("-inf")
        queries = {
            "feedback": 'SELECT at, "user", channel, message_ts, entry_id, verdict, confidence FROM feedback '
            "WHERE at >= ? ORDER BY at, id",
            "reasons": 'SELECT at, "user", channel, message_ts, entry_id, reason, actual_entry_id, note '
            "FROM feedback_reasons WHERE at >= ? ORDER BY at, id",
            "misses": "SELECT at, source, channel, entry_id, confidence, text, reason, candidates FROM pastes "
            "WHERE at >= ? AND confident = 0 ORDER BY at, id",
            "checks": 'SELECT at, source, "user", kinds, target, ok, failed, entry_ids, ms FROM checks '
            "WHERE at >= ? ORDER BY at, id",
        }
        for kind in kinds:

            def rows(c: Tx, sql: str = queries[kind]) -> list[dict[str, Any]]:
                cur = c.execute(sql, (since,))
                names = [d[0] for d in cur.description]
                return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

            for row in self._run(rows):
                if kind == "misses":
                    row["candidates"] = json.loads(row["candidates"] or "[]")
                yield {"kind": kind, **row}

    # -- durable work (bot/state_contract.py) ------------------------------------------------

    def enqueue(self, job: PendingJob) -> bool:
        """Claim `job.key` and store the job as pending, atomically; False when the key was already claimed."""
        if not self._remember(job.key):
            return False
        now = self._clock()
        text, _ = redact(job.text)  # the caller redacted it; a second pass costs little and stores no secret
        payload, _ = redact(json.dumps(job.payload, sort_keys=True))

        def write(c: Tx) -> bool:
            claimed = c.execute(CLAIM_SQL, (job.key, now)).rowcount
            if not claimed:
                return False
            c.execute(
                'INSERT INTO pending_jobs (key, kind, channel, thread_ts, "user", text, secrets, payload, '
                "created_at, attempts, posted_ts, owner, lease_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job.key,
                    job.kind,
                    job.channel,
                    job.thread_ts,
                    job.user,
                    text,
                    json.dumps(job.secrets),
                    payload,
                    job.created_at or now,
                    job.attempts,
                    job.posted_ts,
                    self.owner,
                    now,
                ),
            )
            return True

        try:
            return self._run(write, tx=True)
        except self.errors as exc:  # the store failed: this process's memory decides, the job is not durable
            self._failed("a pending job", exc)
            self._defer("a processed event", CLAIM_SQL, (job.key, now), exc)
            self.fallbacks += 1
            return True

    def mark_posted(self, key: str, posted_ts: str) -> None:
        """Record that the reply for `key` was posted as message `posted_ts`."""
        self._write("a posted reply", "UPDATE pending_jobs SET posted_ts = ? WHERE key = ?", (posted_ts, key))

    def finish(self, key: str) -> None:
        """The job is done: nothing is left to resume."""
        self._write("a finished job", "DELETE FROM pending_jobs WHERE key = ?", (key,))

    def take_over(self, *, owner: str, older_than: float, limit: int = 100) -> list[PendingJob]:
        """Atomically take pending jobs whose lease is older than `older_than` seconds; each goes to one owner.

        The conditional UPDATE is what makes it atomic in both dialects: of two stores that selected the
        same stale job, the second one's UPDATE finds the lease renewed and changes nothing."""
        now = self._clock()
        cutoff = now - older_than
        columns = 'key, kind, channel, thread_ts, "user", text, secrets, payload, created_at, attempts, posted_ts'

        def take(c: Tx) -> list[PendingJob]:
            stale = c.execute(
                f"SELECT {columns} FROM pending_jobs WHERE lease_at < ? ORDER BY created_at, key LIMIT ?",
                (cutoff, limit),
            ).fetchall()
            taken = []
            for row in stale:
                won = c.execute(
                    "UPDATE pending_jobs SET owner = ?, lease_at = ?, attempts = attempts + 1 "
                    "WHERE key = ? AND lease_at < ?",
                    (owner, now, row[0], cutoff),
                ).rowcount
                if won:
                    key, kind, channel, thread_ts, user, text, secrets, payload, created_at, attempts, posted = row
                    taken.append(
                        PendingJob(
                            key=key,
                            kind=kind,
                            channel=channel,
                            thread_ts=thread_ts,
                            user=user,
                            text=text,
                            secrets=json.loads(secrets or "[]"),
                            payload=json.loads(payload or "{}"),
                            created_at=float(created_at),
                            attempts=int(attempts) + 1,
                            posted_ts=posted,
                        )
                    )
            return taken

        return self._try("a take-over of pending jobs", take, [], tx=True)

    def pending_count(self) -> int:
        """How many jobs are pending (for health and drain); 0 when the store cannot say."""
        return self._try(
            "a pending count", lambda c: int(c.execute("SELECT count(*) FROM pending_jobs").fetchone()[0]), 0
        )

    def renew(self, keys: list[str], *, at: float | None = None) -> None:
        """Extend the lease of jobs this process is working on (no other replica takes them over), to now or
        to `at` (a later time: the job is left alone until then). bot/durable.py calls it every few seconds."""
        self._lease("a lease", self._clock() if at is None else at, keys)

    def release(self, keys: list[str]) -> None:
        """Give up the lease of unfinished jobs at shutdown, so that the next process takes them at once."""
        self._lease("a released job", 0.0, keys)

    def _lease(self, what: str, lease_at: float, keys: list[str]) -> None:
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            self._write(what, f"UPDATE pending_jobs SET lease_at = ? WHERE key IN ({marks})", (lease_at, *chunk))

    def unclaim(self, key: str) -> None:
        """Undo a claim whose work failed (a secret warning Slack refused), so that a retry may claim it."""
        with self._memory_lock:
            self._seen.pop(key, None)
        self._write("a processed event", "DELETE FROM processed_events WHERE key = ?", (key,))

    # -- check budget ------------------------------------------------------------------------

    def take_check_budget(self, user: str, *, per_user: int, overall: int, window_s: float) -> tuple[bool, float]:
        """Spend one check from the user's and the deployment's budget; (allowed, seconds until allowed)."""
        decision = self.check_budget(user, per_user=per_user, overall=overall, window_s=window_s)
        return decision.allowed, decision.wait_s

    def check_budget(self, user: str, *, per_user: int, overall: int, window_s: float) -> Budget:
        """`take_check_budget` saying which limit refused. A limit of 0 means none.

        The person's budget is asked first, so one person over their limit spends none of the deployment's;
        a refusal by the overall limit still counts against the person who asked (as the in-memory limiter
        always did). The store's lock makes the whole decision atomic across replicas."""
        if per_user <= 0 and overall <= 0:
            return Budget(True)
        now = self._clock()

        def spend(c: Tx) -> Budget:
            self._lock_budget(c)
            c.execute("DELETE FROM check_uses WHERE at <= ?", (now - window_s,))
            for scope, key, limit in (("user", f"user:{user}", per_user), ("overall", GLOBAL_BUDGET_KEY, overall)):
                if limit <= 0:
                    continue
                used, oldest = c.execute(
                    "SELECT count(*), min(at) FROM check_uses WHERE key = ? AND at > ?", (key, now - window_s)
                ).fetchone()
                if int(used) >= limit:
                    return Budget(False, max(0.0, window_s - (now - float(oldest))), scope)
                c.execute("INSERT INTO check_uses (key, at) VALUES (?, ?)", (key, now))
            return Budget(True)

        try:
            return self._run(spend, tx=True)
        except self.errors as exc:
            self._failed("a check budget", exc)
            return self._memory_budget(user, per_user=per_user, overall=overall, window_s=window_s)

    def _lock_budget(self, c: Tx) -> None:
        """Serialise budget decisions across replicas (SQLite's write transaction already does)."""

    def _memory_budget(self, user: str, *, per_user: int, overall: int, window_s: float) -> Budget:
        """This process's own budget, while the store fails."""
        for scope, key, limit in (("user", user, per_user), ("overall", GLOBAL_BUDGET_KEY, overall)):
            if limit <= 0:
                continue
            with self._memory_lock:
                limiter = self._limiters.setdefault((scope, limit, window_s), RateLimiter(limit, window_s))
            ok, wait = limiter.allow(key)
            if not ok:
                return Budget(False, wait, scope)
        return Budget(True)
