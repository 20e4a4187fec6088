"""The curation part of the state store (both back ends; migration 3): the misses queue, the answers the bot
posted, signature proposals, per-channel settings and the weekly digests' claims.

Written once here with `?` placeholders, like bot/state_base.py. Everything stored is redacted by the caller
(`bot.curation`) and redacted again here; a person's words are kept only in a miss (what they said about the
answer, capped), never in a proposal.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from bot.state_migrations import Tx
from kb.redact import redact

T = TypeVar("T")

MISS_KINDS = ("abstain", "not_it", "thumbs_down")
MISS_STATUSES = ("open", "labelled", "dismissed")
PROPOSAL_STATUSES = ("unreviewed", "approved", "rejected")
SAID_CHARS = 500  # what a person said about an answer: enough to label it, no more
ANSWER_TTL_S = 30 * 86400  # a reaction or a click on an answer older than this finds nothing

_MISS_COLUMNS = (
    'id, at, kind, channel, message_ts, "user", text, bot_said, person_said, entry_id, candidates, status, label, '
    "decided_by, decided_at"
)
_PROPOSAL_COLUMNS = "id, at, entry_id, text, channel, day, origin, miss_id, proposed_by, status, decided_by, decided_at"


def _rows(c: Tx, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    cur = c.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _miss(row: dict[str, Any]) -> dict[str, Any]:
    row["candidates"] = json.loads(row.get("candidates") or "[]")
    return row


class CurationStore:
    """Mixed into `StateBase`: the queries behind `bot.curation.Curation`."""

    _clock: Callable[[], float]
    owner: str

    def _run(self, fn: Callable[[Tx], T], *, tx: bool = False) -> T:  # supplied by StateBase
        raise NotImplementedError

    def _try(self, what: str, fn: Callable[[Tx], T], default: T, *, tx: bool = False) -> T:
        raise NotImplementedError

    def _write(self, what: str, sql: str, params: tuple = ()) -> int | None:
        raise NotImplementedError

    # -- answers the bot posted ------------------------------------------------------------------

    def note_answer(
        self,
        *,
        channel: str,
        ts: str,
        paste_ts: str | None,
        thread_ts: str | None,
        poster: str | None,
        entry_id: str | None,
        confident: bool,
        errors: str,
    ) -> None:
        """Remember a posted answer: its family and the error lines it answered (for a ✅ or a "Not it")."""
        now = self._clock()
        self._write(
            "a posted answer",
            "INSERT INTO posted_answers (channel, ts, paste_ts, thread_ts, poster, entry_id, confident, errors, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (channel, ts) DO NOTHING",
            (channel, ts, paste_ts, thread_ts, poster, entry_id, int(confident), redact(errors, strict=True)[0], now),
        )
        self._write("pruning answers", "DELETE FROM posted_answers WHERE at < ?", (now - ANSWER_TTL_S,))

    def posted_answer(self, channel: str, ts: str) -> dict[str, Any] | None:
        found = self._try(
            "an answer",
            lambda c: _rows(c, "SELECT * FROM posted_answers WHERE channel = ? AND ts = ?", (channel, ts)),
            [],
        )
        return found[0] if found else None

    # -- the misses queue ------------------------------------------------------------------------

    def record_miss(
        self,
        *,
        kind: str,
        channel: str,
        message_ts: str,
        user: str | None,
        text: str,
        bot_said: str,
        person_said: str = "",
        entry_id: str | None = None,
        candidates: list[str] | None = None,
    ) -> int | None:
        """Queue a miss once per message and kind (a second report with words replaces what the person said and
        the candidates); its id."""
        said = redact(person_said, strict=True)[0][:SAID_CHARS]
        params = (
            self._clock(),
            kind,
            channel,
            message_ts,
            user,
            redact(text, strict=True)[0],
            redact(bot_said, strict=True)[0],
            said,
            entry_id,
            json.dumps(candidates or []),
        )
        sql = (
            'INSERT INTO miss_queue (at, kind, channel, message_ts, "user", text, bot_said, person_said, entry_id, '
            "candidates, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open') "
            "ON CONFLICT (channel, message_ts, kind) DO UPDATE SET "
            "person_said = CASE WHEN excluded.person_said = '' THEN miss_queue.person_said "
            "ELSE excluded.person_said END, "
            "candidates = CASE WHEN excluded.person_said = '' THEN miss_queue.candidates ELSE excluded.candidates END "
            "RETURNING id"
        )
        row = self._try("a miss", lambda c: c.execute(sql, params).fetchone(), None)
        return int(row[0]) if row else None

    def misses(self, *, status: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Queued misses, newest first (raises when the store fails: a listing must not be silently empty)."""
        where, params = ("WHERE status = ?", (status, limit)) if status else ("", (limit,))
        sql = f"SELECT {_MISS_COLUMNS} FROM miss_queue {where} ORDER BY at DESC, id DESC LIMIT ?"
        return [_miss(r) for r in self._run(lambda c: _rows(c, sql, params))]

    def miss(self, miss_id: int) -> dict[str, Any] | None:
        found = self._run(lambda c: _rows(c, f"SELECT {_MISS_COLUMNS} FROM miss_queue WHERE id = ?", (miss_id,)))
        return _miss(found[0]) if found else None

    def miss_for_message(self, channel: str, message_ts: str) -> dict[str, Any] | None:
        """The labelled miss of a message, if any (a ✅ on an abstention answers with its label)."""
        sql = (
            f"SELECT {_MISS_COLUMNS} FROM miss_queue WHERE channel = ? AND message_ts = ? "
            "ORDER BY (label IS NULL), at DESC LIMIT 1"
        )
        found = self._try("a miss", lambda c: _rows(c, sql, (channel, message_ts)), [])
        return _miss(found[0]) if found else None

    def decide_miss(self, miss_id: int, *, status: str, by: str, label: str | None = None) -> bool:
        """Label (status `labelled`, with `label`) or dismiss a miss; False when there is no such miss."""
        if status not in MISS_STATUSES:
            raise ValueError(f"unknown miss status {status!r}")
        sql = (
            "UPDATE miss_queue SET status = ?, label = coalesce(?, label), decided_by = ?, decided_at = ? WHERE id = ?"
        )
        return bool(self._run(lambda c: c.execute(sql, (status, label, by, self._clock(), miss_id)).rowcount))

    # -- signature proposals ---------------------------------------------------------------------

    def propose(
        self,
        *,
        entry_id: str,
        text: str,
        channel: str,
        day: str,
        origin: str,
        by: str | None,
        miss_id: int | None = None,
    ) -> tuple[int, bool]:
        """Store a proposal as unreviewed; (its id, whether it is new). The same text for the same family is
        one proposal, however many people propose it."""
        text = redact(text, strict=True)[0]

        def write(c: Tx) -> tuple[int, bool]:
            row = c.execute(
                "INSERT INTO proposals (at, entry_id, text, channel, day, origin, miss_id, proposed_by, status) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'unreviewed') ON CONFLICT (entry_id, text) DO NOTHING RETURNING id",
                (self._clock(), entry_id, text, channel, day, origin, miss_id, by),
            ).fetchone()
            if row:
                return int(row[0]), True
            same = "SELECT id FROM proposals WHERE entry_id = ? AND text = ?"
            (found,) = c.execute(same, (entry_id, text)).fetchone()
            return int(found), False

        return self._run(write, tx=True)

    def proposals(self, *, status: str | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE status = ?", (status,)) if status else ("", ())
        sql = f"SELECT {_PROPOSAL_COLUMNS} FROM proposals {where} ORDER BY id"
        return self._run(lambda c: _rows(c, sql, params))

    def proposal(self, proposal_id: int) -> dict[str, Any] | None:
        found = self._run(lambda c: _rows(c, f"SELECT {_PROPOSAL_COLUMNS} FROM proposals WHERE id = ?", (proposal_id,)))
        return found[0] if found else None

    def decide_proposal(self, proposal_id: int, *, status: str, by: str) -> bool:
        if status not in PROPOSAL_STATUSES:
            raise ValueError(f"unknown proposal status {status!r}")
        sql = "UPDATE proposals SET status = ?, decided_by = ?, decided_at = ? WHERE id = ?"
        return bool(self._run(lambda c: c.execute(sql, (status, by, self._clock(), proposal_id)).rowcount))

    # -- channel settings and digests ------------------------------------------------------------

    def set_channel_setting(self, channel: str, key: str, value: str) -> bool:
        sql = (
            "INSERT INTO channel_settings (channel, key, value, at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (channel, key) DO UPDATE SET value = excluded.value, at = excluded.at"
        )
        return self._write("a channel setting", sql, (channel, key, value, self._clock())) is not None

    def channels_with(self, key: str, value: str) -> list[str]:
        sql = "SELECT channel FROM channel_settings WHERE key = ? AND value = ? ORDER BY channel"
        return [r[0] for r in self._try("channel settings", lambda c: c.execute(sql, (key, value)).fetchall(), [])]

    def claim_digest(self, channel: str, week: str) -> bool:
        """True for the one replica that may post `channel`'s digest of ISO week `week` (kept, never pruned);
        False when another took it or the store fails (a digest missed beats one posted twice)."""
        sql = "INSERT INTO digests (channel, week, at, owner) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
        return bool(self._write("a digest claim", sql, (channel, week, self._clock(), self.owner)))

    def channel_activity(self, channel: str, *, since: float) -> dict[str, Any]:
        """What a channel's digest reports: families answered, misses queued, checks run and failed."""

        def read(c: Tx) -> dict[str, Any]:
            top = c.execute(
                "SELECT entry_id, count(*) AS n FROM pastes WHERE channel = ? AND at >= ? AND confident = 1 "
                "GROUP BY entry_id ORDER BY n DESC, entry_id LIMIT 5",
                (channel, since),
            ).fetchall()
            misses, still_open = c.execute(
                "SELECT count(*), coalesce(sum(CASE WHEN status = 'open' THEN 1 ELSE 0 END), 0) FROM miss_queue "
                "WHERE channel = ? AND at >= ?",
                (channel, since),
            ).fetchone()
            checks, failed = c.execute(
                "SELECT count(*), coalesce(sum(1 - ok), 0) FROM checks WHERE channel = ? AND at >= ?", (channel, since)
            ).fetchone()
            return {
                "top": [(e, int(n)) for e, n in top],
                "misses": int(misses),
                "open": int(still_open),
                "checks": int(checks),
                "checks_failed": int(failed),
            }

        return self._run(read)
