"""The answer service: what the bot does with a paste or a command, whatever platform it came from.

It holds the policy (when to answer, dedupe of retried deliveries and double events, secret warnings,
recording to the state database, check limits) and returns plain records; adapters (Slack, the console,
the CLI) only translate their input into a `Context` and render the `Answer` or `Reply`. Every state call
of the bot goes through here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.chat_command import HELP, CheckCommand, parse_command
from bot.checker import Checker, CheckOutcome
from bot.checks.registry import CHECKS
from bot.curation import Curation
from bot.policy import delivery_key, looks_like_error, message_key, worth_answering
from bot.state import StateBase, StateSummary
from kb.matcher import MatchResult, match
from kb.redact import mask, redact
from kb.schema import Entry
from kb.settings import ChannelMode
from kb.store import KnowledgeBase

log = logging.getLogger(__name__)

ADDRESSED = frozenset({"mention", "dm", "console", "slash", "button", "cli", "shortcut"})
NEGATIVE_VERDICTS = frozenset({"not_it", "thumbs_down"})  # these queue the answer as a miss

# Why an answer was wrong: the choices a 👎 offers (id -> what the person reads).
FEEDBACK_REASONS: dict[str, str] = {
    "wrong_family": "Wrong error family",
    "fix_did_not_help": "Right family, but the fix did not help",
    "out_of_date": "Out of date",
    "other": "Something else",
}
NOTE_CHARS = 1_000
NO_ENTRY = "-"  # the entry id of feedback on an answer that matched nothing
DIAGNOSE_SETTING = "diagnose"  # the user setting: where the shortcut answers (`private` or `thread`)


@dataclass(frozen=True)
class Context:
    """Where a paste or command comes from, in platform-neutral terms."""

    source: str  # channel | mention | dm | console | slash | button | cli | shortcut
    user: str | None = None
    channel: str | None = None
    message_id: str | None = None  # the platform's id of the message: one answer and one warning per message
    delivery_id: str | None = None  # the platform's id of this delivery: a redelivery is dropped
    # The adapter has claimed this message already (bot/durable.py: a pending job, which may be resumed by
    # another process after a crash): answer it without claiming again; the adapter then claims the secret
    # warning itself (`warning_once`), since a resumed job's text is redacted.
    deduplicated: bool = False

    @property
    def addressed(self) -> bool:
        """Said to the bot (always answered), rather than overheard in a channel."""
        return self.source in ADDRESSED


@dataclass(frozen=True)
class Answer:
    """What to do with a paste: post the answer, post the help, or nothing (and why)."""

    action: str  # answer | help | none
    result: MatchResult | None = None
    warn_secret: bool = False  # tell the poster privately that the paste holds a secret
    why: str = ""
    text: str = ""  # what was matched: the paste and the text it points at (a thread's first message, snippets)


@dataclass(frozen=True)
class Reply:
    """The result of a command."""

    kind: str  # help | usage | list | entry | answer | report | notice
    text: str = ""
    entry: Entry | None = None
    result: MatchResult | None = None
    report_outcome: CheckOutcome | None = None
    kinds: tuple[str, ...] = ()
    share: bool = False
    key: str | None = field(default=None, repr=False)  # a typed key, masked wherever the reply is rendered
    started: bool = False  # `on_start` was called (the adapter acknowledged with a "running" notice)


class AnswerService:
    """One per process: the knowledge base, the state database and the checker it answers with."""

    def __init__(self, kb: KnowledgeBase, state: StateBase | None, checker: Checker, *, mode: ChannelMode):
        self.kb, self.state, self.checker, self.mode = kb, state, checker, mode
        self.curation = Curation(kb, state)  # the misses queue, signature proposals, weekly digests

    # -- state ------------------------------------------------------------------------------

    def _claim(self, key: str | None) -> bool:
        """True the first time `key` is seen (always True without a key or a state database)."""
        return key is None or self.state is None or self.state.claim(key)

    def _record(self, result: MatchResult, text: str, ctx: Context) -> None:
        if self.state is not None:
            self.state.record_match(result, text=text, source=ctx.source, channel=ctx.channel)

    def record_feedback(
        self, *, user: str, channel: str, message_ts: str, entry_id: str, verdict: str, confidence, reason: str = ""
    ):
        """Feedback on an answer; only the knowledge base's own ids (or NO_ENTRY: the answer matched nothing)
        are recorded, whatever a button carries. A negative verdict also queues the answer as a miss (with the
        person's reason, if any)."""
        if verdict in NEGATIVE_VERDICTS:
            self._queue_negative(
                verdict, user=user, channel=channel, message_ts=message_ts, entry_id=entry_id, said=reason
            )
        if (entry_id in self.kb.entries or entry_id == NO_ENTRY) and self.state is not None:
            self.state.record_feedback(
                user=user,
                channel=channel,
                message_ts=message_ts,
                entry_id=entry_id,
                verdict=verdict,
                confidence=float(confidence) if isinstance(confidence, int | float) else None,
            )

    def record_feedback_reason(
        self,
        *,
        user: str,
        channel: str,
        message_ts: str,
        entry_id: str,
        reason: str,
        actual_entry_id: str | None = None,
        note: str | None = None,
        verdict: str = "not_it",
    ) -> bool:
        """The reasons given for a 👎 (`verdict`, already recorded by the click): only known reasons and the
        knowledge base's own ids are kept, the note redacted (before it is cut: a cut could leave half a key
        unrecognised). The miss the 👎 queued gets what the person said, and the family they name first among
        its candidates. False when refused."""
        if reason not in FEEDBACK_REASONS or (entry_id not in self.kb.entries and entry_id != NO_ENTRY):
            return False
        actual = actual_entry_id if actual_entry_id in self.kb.entries else None
        text = redact(note.strip())[0][:NOTE_CHARS] if isinstance(note, str) and note.strip() else None
        if self.state is not None:
            self.state.record_feedback_reason(
                user=user,
                channel=channel,
                message_ts=message_ts,
                entry_id=entry_id,
                reason=reason,
                actual_entry_id=actual,
                note=text,
            )
        said = (
            FEEDBACK_REASONS[reason] + (f"; they say it is {actual}" if actual else "") + (f": {text}" if text else "")
        )
        if verdict in NEGATIVE_VERDICTS:
            self._queue_negative(
                verdict, user=user, channel=channel, message_ts=message_ts, entry_id=entry_id, said=said, actual=actual
            )
        return True

    def _queue_negative(
        self,
        kind: str,
        *,
        user: str,
        channel: str,
        message_ts: str,
        entry_id: str,
        said: str,
        actual: str | None = None,
    ) -> None:
        """An answer called wrong, into the misses queue (only answers the bot posted; see Curation)."""
        if self.state is None or not (channel and message_ts):
            return
        known = entry_id if entry_id in self.kb.entries else None
        self.curation.record_negative(
            kind=kind, channel=channel, answer_ts=message_ts, user=user, entry_id=known, reason=said, suggested=actual
        )

    def claim_escalation(self, channel: str, message_id: str) -> bool:
        """True once per answer, for every replica sharing the state: two clicks on Escalate page once."""
        return self._claim(message_key(channel, message_id, "escalate"))

    def answers_privately(self, user: str) -> bool:
        """Whether the "Diagnose this error" shortcut answers `user` privately (their setting; default: thread)."""
        return self.state is not None and self.state.user_setting(user, DIAGNOSE_SETTING) == "private"

    def allow_check(self, user: str) -> tuple[bool, str]:
        """The check limits: one budget for the whole deployment when there is a state store."""
        decision = self.state.check_budget(user, **self.checker.limits) if self.state is not None else None
        return self.checker.allow(user, decision)

    def summary(self, days: int = 7) -> StateSummary | None:
        return self.state.summary(days=days) if self.state is not None else None

    # -- pastes -----------------------------------------------------------------------------

    def answer(self, paste: str, ctx: Context, *, more: Callable[[], str] | None = None) -> Answer:
        """Whether and what to answer to `paste`; records what is answered and errors nothing matched.

        `more` fetches text the paste points at (a thread's first message, a long paste kept as a file): it is
        called once per delivery, after a redelivery is dropped, and its text is matched before the paste."""
        if ctx.delivery_id and not ctx.deduplicated and not self._claim(delivery_key(ctx.delivery_id)):
            return Answer("none", why="already handled (a redelivery)")
        extra = more() if more is not None else ""
        if extra.strip():
            paste = f"{extra.strip()}\n\n{paste}".strip()

        def once(purpose: str) -> bool:  # one answer and one warning per message
            key = message_key(ctx.channel, ctx.message_id, purpose) if ctx.message_id else None
            if ctx.deduplicated:  # the job decides; the answer is still recorded for other paths (a shortcut)
                if purpose == "answer":
                    self._claim(key)
                return True
            return self._claim(key)

        if not paste.strip():
            if ctx.addressed and once("answer"):
                return Answer("help")
            return Answer("none", why="empty")
        result = match(paste, self.kb)
        warn = result.secrets_found and once("warn")
        missed = not result.confident and looks_like_error(paste, result.signals)
        if not worth_answering(paste, result, addressed=ctx.addressed, mode=self.mode):
            if missed:
                self._record(result, paste, ctx)  # an error we had nothing for: curation material
                self._queue_miss(paste, result, ctx)
            return Answer("none", result, warn, why=result.abstain_reason or "channel mode")
        if not once("answer"):
            return Answer("none", result, warn, why="already answered")
        self._record(result, paste, ctx)
        if missed:
            self._queue_miss(paste, result, ctx)
        return Answer("answer", result, warn, text=paste)

    def warning_once(self, ctx: Context) -> bool:
        """True the first time a secret warning is due for this message (claimed in the state)."""
        return self._claim(message_key(ctx.channel, ctx.message_id, "warn") if ctx.message_id else None)

    def warning_failed(self, ctx: Context) -> None:
        """The warning did not reach the poster: a retry of the message may send it again."""
        if self.state is not None and ctx.message_id:
            self.state.unclaim(message_key(ctx.channel, ctx.message_id, "warn"))

    def _queue_miss(self, paste: str, result: MatchResult, ctx: Context) -> None:
        self.curation.record_abstention(paste, result, channel=ctx.channel, message_ts=ctx.message_id, user=ctx.user)

    # -- commands ---------------------------------------------------------------------------

    def run_command(self, text: str, user: str | None, ctx: Context, *, on_start: Callable[[str], None] | None = None):
        """`/gemini-check TEXT` from `user`. Checks take seconds: `on_start` gets the "running" notice first."""
        return self.run(parse_command(text), user, ctx, on_start=on_start)

    def run(self, cmd: CheckCommand, user: str | None, ctx: Context, *, on_start=None) -> Reply:
        if cmd.action == "help":
            return Reply("help", HELP)
        if cmd.action == "usage":
            return Reply("usage", cmd.error)
        if cmd.action == "digest":
            outcome = self.curation.set_digest(ctx.channel, cmd.text == "on")
            return Reply("notice", outcome.text)
        if cmd.action == "list":
            return Reply("list", share=cmd.share)
        if cmd.action == "setting":
            if self.state is None or not user:
                return Reply("notice", "Settings need the state database; the shortcut answers in the thread.")
            self.state.set_user_setting(user, DIAGNOSE_SETTING, cmd.text)
            where = "privately, to you only" if cmd.text == "private" else "in the message's thread"
            return Reply("notice", f"*Diagnose this error* now answers you {where}.")
        if cmd.action == "lookup":
            entry = self.kb.entry(cmd.text.strip().lower())
            if entry is not None:
                return Reply("entry", entry=entry, share=cmd.share)
            result = match(cmd.text, self.kb)
            self._record(result, cmd.text, ctx)
            return Reply("answer", result=result, share=cmd.share)
        allowed, why = self.allow_check(user or ctx.source)
        if not allowed:
            return Reply("notice", why)
        started = False
        if on_start is not None:
            names = " and ".join(CHECKS[k].title.lower() for k in cmd.kinds)
            typed = f" with key {mask(cmd.key)}" if cmd.key else ""
            on_start(f"Running the {names} check{typed}… the result follows in a few seconds.")
            started = True
        outcome = self.checker.run(cmd, user=user, source=ctx.source)
        if outcome.report is not None and self.state is not None:
            failed = [r for r in outcome.report.results if not r.ok]
            self.state.record_check(
                source=ctx.source,
                user=user,
                kinds=list(cmd.kinds),
                target=outcome.report.target,
                ok=outcome.report.ok,
                failed=[r.name for r in failed],
                entry_ids=[r.entry_id for r in failed if r.entry_id],
                ms=round(outcome.seconds * 1000, 1),
                channel=ctx.channel,
            )
        if outcome.report is None:
            return Reply("notice", outcome.notice, key=cmd.key, started=started, share=cmd.share)
        return Reply("report", report_outcome=outcome, kinds=cmd.kinds, share=cmd.share, key=cmd.key, started=started)

    def run_check(self, kind: str, *, model: str | None, user: str, ctx: Context) -> Reply | None:
        """A check asked for by a button: only kinds of the registry, with the model the answer named."""
        spec = CHECKS.get(str(kind))
        if spec is None:
            return None
        named = model if spec.arg == "model" and isinstance(model, str) else None
        cmd = CheckCommand("checks", (spec.name,), model=named)
        return self.run(cmd, user, ctx)

    def close(self) -> None:
        self.checker.close()
