"""Learning from misses, whatever the platform: the misses queue, signature proposals and the weekly digest.

Part of the answer service (`AnswerService.curation`); adapters and the CLI call it, never the state store.
Who may decide (maintainers) is the adapter's business: this module takes the decision it is given.

- A miss is a paste the bot abstained on, or an answer someone said was wrong ("Not it", 👎); it is kept
  redacted with what the bot said and what the person said, until a maintainer labels or dismisses it.
- A proposal is the error lines of a paste (`kb.excerpt.error_lines`: no prose, redacted) offered as a new
  signature of a family; it stays unreviewed until approved or rejected. `export_approved` writes the
  approved ones to the JSON-lines file `gemini-kb ingest` builds from (ingest/proposals.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.policy import delivery_key
from bot.state_base import StateBase
from kb.clean import clean
from kb.excerpt import error_lines
from kb.matcher import MatchResult
from kb.redact import redact
from kb.settings import Settings
from kb.store import KnowledgeBase

DIGEST_KEY = "digest"
STORED_MISS_CHARS = 4_000


@dataclass(frozen=True)
class Outcome:
    """What a curation request did, in words an adapter can show."""

    ok: bool
    text: str
    id: int | None = None


@dataclass(frozen=True)
class Digest:
    """One channel's week, for the weekly digest."""

    channel: str
    week: str  # ISO week, e.g. 2026-W48
    top: list[tuple[str, int]] = field(default_factory=list)
    misses: int = 0
    open: int = 0
    checks: int = 0
    checks_failed: int = 0


def iso_week(at: float) -> str:
    year, week, _ = dt.datetime.fromtimestamp(at, dt.UTC).isocalendar()
    return f"{year}-W{week:02d}"


def day_of(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d")


def _stored(text: str) -> str:
    # Redact the whole text before cutting it: a cut could leave half a key unrecognised.
    return redact(clean(text), strict=True)[0][:STORED_MISS_CHARS]


# -- corpus records --------------------------------------------------------------------------------

_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("python-genai", re.compile(r"google\.genai|from google import genai")),
    ("python-generativeai", re.compile(r"google\.generativeai|google\.api_core")),
    ("js-genai", re.compile(r"@google/genai|GoogleGenAI")),
    ("curl", re.compile(r"^\s*curl\s", re.M)),
    ("raw-json", re.compile(r"^\s*\{\s*\"error\"")),
    ("gemini-cli", re.compile(r"\[API Error:")),
)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


def guess_shape(text: str) -> str:
    """A first guess at the corpus `shape` (the maintainer corrects it when adding the record)."""
    if _CJK.search(text):
        return "non-english"
    return next((name for name, pattern in _SHAPES if pattern.search(text)), "other")


def guess_lang(text: str) -> str:
    if re.search(r"[\u3040-\u30ff]", text):
        return "ja"
    if re.search(r"[\uac00-\ud7af]", text):
        return "ko"
    return "zh" if _CJK.search(text) else "en"


def corpus_record(miss: dict[str, Any]) -> dict[str, Any]:
    """A labelled miss in the format of tests/data/real/pastes.jsonl (kb/corpus.py)."""
    key = f"{miss['channel']}/{miss['message_ts']}/{miss['kind']}"
    return {
        "id": "slack-" + hashlib.sha256(key.encode()).hexdigest()[:10],
        "text": miss["text"],
        "label": miss["label"],
        "alt": [],
        "shape": guess_shape(miss["text"]),
        "source": f"slack:{miss['channel']}/{day_of(float(miss['at']))}",
        "lang": guess_lang(miss["text"]),
    }


class Curation:
    """The misses queue, proposals and digests over one state store (None: nothing is kept)."""

    def __init__(self, kb: KnowledgeBase | None, state: StateBase | None, *, clock: Callable[[], float] = time.time):
        self.kb, self.state, self._clock = kb, state, clock

    # -- what the bot saw ------------------------------------------------------------------------

    def record_abstention(self, paste: str, result: MatchResult, *, channel: str | None, message_ts: str | None, user):
        """A paste that looked like an error and got no confident answer."""
        if self.state is None or not message_ts:
            return
        candidates = [m.id for m in result.matches]
        said = f"abstained: {result.abstain_reason or 'no confident match'}"
        if candidates:
            said += f"; closest {', '.join(candidates[:3])}"
        self.state.record_miss(
            kind="abstain",
            channel=channel or "",
            message_ts=message_ts,
            user=user,
            text=_stored(paste),
            bot_said=said,
            candidates=candidates,
        )

    def note_answer(
        self,
        paste: str,
        result: MatchResult,
        *,
        channel: str,
        ts: str | None,
        paste_ts: str | None,
        thread_ts: str | None,
        poster: str | None,
    ) -> None:
        """A posted answer (`ts`): its family and the paste's error lines, for a later ✅, 👎 or "Not it"."""
        if self.state is None or not ts:
            return
        top = result.top
        self.state.note_answer(
            channel=channel,
            ts=ts,
            paste_ts=paste_ts,
            thread_ts=thread_ts,
            poster=poster,
            entry_id=top.id if top and result.confident else None,
            confident=result.confident,
            errors=error_lines(paste),
        )

    def record_negative(
        self,
        *,
        kind: str,
        channel: str,
        answer_ts: str,
        user: str,
        entry_id: str | None,
        reason: str = "",
        suggested: str | None = None,
    ) -> int | None:
        """Someone said an answer was wrong ("Not it", 👎, with their reason if they gave one, and the family
        they say it is: `suggested`, offered first when a maintainer labels the miss)."""
        if self.state is None:
            return None
        answer = self.state.posted_answer(channel, answer_ts)
        if answer is None:
            return None  # not an answer the bot posted (or too old): nothing to learn from
        entry = entry_id or answer.get("entry_id")
        said = "answered " + (f"{entry}" if entry else "with no match")
        return self.state.record_miss(
            kind=kind,
            channel=channel,
            message_ts=answer.get("paste_ts") or answer_ts,
            user=user,
            text=answer.get("errors") or "",
            bot_said=said,
            person_said=reason or kind.replace("_", " "),
            entry_id=entry,
            candidates=list(dict.fromkeys(f for f in (suggested, entry) if f)),
        )

    def first_delivery(self, delivery_id: str | None) -> bool:
        """False for a redelivered event (a reaction Slack retried), on any replica sharing the store."""
        return not delivery_id or self.state is None or self.state.claim(delivery_key(delivery_id))

    # -- the queue -------------------------------------------------------------------------------

    def _known(self, family: str) -> bool:
        return self.kb is not None and family in self.kb.entries

    def _require(self) -> StateBase:
        if self.state is None:
            raise LookupError("no state store: misses and proposals are not kept")
        return self.state

    def open_misses(self, limit: int = 1000) -> list[dict[str, Any]]:
        return self._require().misses(status="open", limit=limit)

    def all_misses(self, *, dismissed: bool = False) -> list[dict[str, Any]]:
        return [m for m in self._require().misses() if dismissed or m["status"] != "dismissed"]

    def proposals(self, *, decided: bool = False) -> list[dict[str, Any]]:
        return self._require().proposals(status=None if decided else "unreviewed")

    def label(self, miss_id: int, family: str, *, by: str) -> Outcome:
        if not self._known(family):
            return Outcome(False, f"There is no family `{family}`.")
        if not self._require().decide_miss(miss_id, status="labelled", by=by, label=family):
            return Outcome(False, f"There is no miss {miss_id}.")
        return Outcome(True, f"Miss {miss_id} labelled `{family}`.", miss_id)

    def dismiss(self, miss_id: int, *, by: str) -> Outcome:
        if not self._require().decide_miss(miss_id, status="dismissed", by=by):
            return Outcome(False, f"There is no miss {miss_id}.")
        return Outcome(True, f"Miss {miss_id} dismissed.", miss_id)

    def corpus_records(self) -> list[dict[str, Any]]:
        """Labelled misses as corpus records, oldest first."""
        labelled = [m for m in self._require().misses(status="labelled") if m["label"] and m["text"].strip()]
        return [corpus_record(m) for m in reversed(labelled)]

    # -- proposals -------------------------------------------------------------------------------

    def propose(
        self, *, family: str, text: str, channel: str, origin: str, by: str, miss_id: int | None = None
    ) -> Outcome:
        """The error lines of `text` as an unreviewed signature proposal for `family`."""
        lines = error_lines(text)
        if not lines:
            return Outcome(False, "No error lines found to propose as a signature.")
        if not self._known(family):
            return Outcome(False, f"There is no family `{family}`.")
        pid, new = self._require().propose(
            entry_id=family,
            text=lines,
            channel=channel,
            day=day_of(self._clock()),
            origin=origin,
            by=by,
            miss_id=miss_id,
        )
        verb = "Proposed" if new else "Already proposed"
        return Outcome(True, f"{verb} as a new signature of `{family}` (proposal {pid}, unreviewed).", pid)

    def propose_from_miss(self, miss_id: int, *, by: str) -> Outcome:
        """A labelled miss's error lines as a signature of its label."""
        miss = self._require().miss(miss_id)
        if miss is None:
            return Outcome(False, f"There is no miss {miss_id}.")
        if not miss["label"]:
            return Outcome(False, f"Label miss {miss_id} with a family first.")
        return self.propose(
            family=miss["label"], text=miss["text"], channel=miss["channel"], origin="home", by=by, miss_id=miss_id
        )

    def propose_from_answer(self, *, channel: str, answer_ts: str, user: str, maintainer: bool, origin: str) -> Outcome:
        """✅ or "Add to KB" on an answer: by its poster or a maintainer, for the family the bot answered (or the
        one a maintainer labelled the paste with)."""
        state = self._require()
        answer = state.posted_answer(channel, answer_ts)
        if answer is None:
            return Outcome(False, "I don't know that answer (too old, or not one of mine).")
        if not maintainer and user != answer.get("poster"):
            return Outcome(False, "Only the person who asked, or a maintainer, can add this thread to the KB.")
        family = answer.get("entry_id")
        if not family and answer.get("paste_ts"):
            miss = state.miss_for_message(channel, answer["paste_ts"])
            family = miss["label"] if miss else None
        if not family:
            return Outcome(False, "I didn't answer this with a family: a maintainer labels it in my App Home first.")
        return self.propose(family=family, text=answer.get("errors") or "", channel=channel, origin=origin, by=user)

    def unreviewed(self) -> list[dict[str, Any]]:
        return self._require().proposals(status="unreviewed")

    def decide(self, proposal_id: int, *, approve: bool, by: str) -> Outcome:
        status = "approved" if approve else "rejected"
        if not self._require().decide_proposal(proposal_id, status=status, by=by):
            return Outcome(False, f"There is no proposal {proposal_id}.")
        return Outcome(True, f"Proposal {proposal_id} {status}.", proposal_id)

    def approved_rows(self) -> list[dict[str, Any]]:
        """Approved proposals as the build reads them (ingest/proposals.py): channel and day, no person."""
        return [
            {"id": p["id"], "entry_id": p["entry_id"], "text": p["text"], "channel": p["channel"], "date": p["day"]}
            for p in self._require().proposals(status="approved")
        ]

    def export_approved(self, path: Path) -> int:
        """Write the approved proposals to `path` atomically (an empty list removes it); how many."""
        rows = self.approved_rows()
        if not rows:
            path.unlink(missing_ok=True)
            return 0
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.writelines(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
        os.replace(tmp, path)
        return len(rows)

    # -- the weekly digest -----------------------------------------------------------------------

    def set_digest(self, channel: str | None, on: bool) -> Outcome:
        if not channel:
            return Outcome(False, "The digest is a channel's: run this in the channel.")
        if self.state is None or not self.state.set_channel_setting(channel, DIGEST_KEY, "on" if on else "off"):
            return Outcome(False, "The setting could not be stored; try again later.")
        if on:
            return Outcome(
                True,
                "Weekly digest on for this channel: once a week I post the top errors, misses and "
                "failed checks here. `/gemini-check digest off` stops it.",
            )
        return Outcome(True, "Weekly digest off for this channel.")

    def due_digests(self, now: float | None = None) -> list[Digest]:
        """The digests this replica won the right to post now: one per channel with the digest on and ISO week,
        claimed in the shared store first (so two replicas never both post it)."""
        if self.state is None:
            return []
        now = self._clock() if now is None else now
        week = iso_week(now)
        due = []
        for channel in self.state.channels_with(DIGEST_KEY, "on"):
            if not self.state.claim_digest(channel, week):
                continue
            try:
                activity = self.state.channel_activity(channel, since=now - 7 * 86400)
            except self.state.errors:
                activity = {}  # claimed: post what we have rather than nothing this week
            due.append(Digest(channel, week, **activity))
        return due


def open_curation(settings: Settings, *, create: bool = False) -> Curation:
    """Curation over the state store the settings name, for operators' commands (no knowledge base needed to
    list or decide). Raises StateError when there is no store; the caller closes `curation.state`."""
    from bot.state import open_state

    return Curation(None, open_state(settings, create=create, strict=True))
