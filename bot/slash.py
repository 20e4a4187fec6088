"""`/gemini-check`: parse the command, run checks with bounded time and concurrency, look up
the knowledge base, and (in `register`) the Slack listener that acknowledges at once and
answers through the response URL.

`parse_command`, `Checker` and `lookup` know nothing of Slack: the console uses them too.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from bot import blocks
from bot.checks.result import CheckReport, CheckResult
from bot.policy import RateLimiter
from bot.state import StateDB
from kb.matcher import MatchResult, match
from kb.redact import mask, redact
from kb.store import Entry, KnowledgeBase

log = logging.getLogger(__name__)

COMMAND = "/gemini-check"
FLAGS = ("share", "deep")
HELP = f"""*{COMMAND}* checks the Gemini API from the bot's host and looks errors up.
• `{COMMAND}` — check the team API key and the endpoint
• `{COMMAND} key [KEY]` — list models with the team key, or with KEY (used once, never stored, shown masked)
• `{COMMAND} endpoint [URL]` — DNS, TCP, TLS and HTTP to the API (or to URL), with timings and proxy
• `{COMMAND} model NAME` — the model's methods and token limits; on 404 the closest names
• `{COMMAND} list` — the quick reference of every error family
• `{COMMAND} <error text or entry id>` — look it up in the knowledge base
Add `share` to post the result in the channel. Checks are limited per person and for the whole team per minute."""
HELP_TEXT = re.sub(r"[*`]", "", HELP)


@dataclass(frozen=True)
class CheckCommand:
    """What the user asked for. `key` never appears in a repr (and so in no log line)."""

    action: str  # help | list | checks | lookup | usage
    kinds: tuple[str, ...] = ()
    key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    model: str | None = None
    share: bool = False
    deep: bool = False
    text: str = field(default="", repr=False)  # lookup text (may hold a secret until redacted)
    error: str = ""


def _looks_like_secret(token: str) -> bool:
    """The whole word is a key or token (what the redaction rules would hide)."""
    redacted, kinds = redact(token)
    return bool(kinds) and redacted.startswith("[REDACTED") and redacted.endswith("]")


def parse_command(text: str) -> CheckCommand:
    """`help` | `list` | `key [KEY]` | `endpoint [URL]` | `model NAME` | nothing | text to look up;
    `share` and `deep` may lead or trail."""
    words = (text or "").split()
    flags = set()
    while words and words[-1].lower() in FLAGS:
        flags.add(words.pop().lower())
    while words and words[0].lower() in FLAGS:
        flags.add(words.pop(0).lower())
    share, deep = "share" in flags, "deep" in flags
    if not words:
        return CheckCommand("checks", ("key", "endpoint"), share=share, deep=deep)
    head, rest = words[0].lower(), words[1:]
    if head in ("help", "-h", "--help", "?"):
        return CheckCommand("help")
    if head in ("list", "ref", "reference") and not rest:
        return CheckCommand("list", share=share)
    if head == "key" and len(rest) <= 1:
        return CheckCommand("checks", ("key",), key=rest[0] if rest else None, share=share, deep=deep)
    if head == "endpoint" and len(rest) <= 1:
        return CheckCommand("checks", ("endpoint",), base_url=rest[0] if rest else None, share=share, deep=deep)
    if head == "model":
        if len(rest) != 1:
            return CheckCommand("usage", error=f"`{COMMAND} model NAME` needs one model name, e.g. gemini-2.5-flash")
        return CheckCommand("checks", ("model",), model=rest[0], share=share, deep=deep)
    if len(words) == 1 and _looks_like_secret(words[0]):
        # A bare key: check it rather than look it up (and so keep it out of every record).
        return CheckCommand("checks", ("key",), key=words[0], share=share, deep=deep)
    body = (text or "").strip()
    for flag in flags:  # only the leading/trailing flag words, not words inside the text
        body = re.sub(rf"^\s*{flag}\b|\b{flag}\s*$", "", body, flags=re.I).strip()
    return CheckCommand("lookup", text=body, share=share)


@dataclass
class CheckOutcome:
    """A finished (or refused) check run."""

    report: CheckReport | None = None
    notice: str = ""  # rate limited, busy, timed out
    seconds: float = 0.0


GLOBAL_KEY = "*"  # the one key of the all-users limiter


class Checker:
    """Runs checks for Slack and the console: per-user and global rate limits, bounded concurrency, bounded time.

    The global limit caps what all users together can make the team key spend; the per-user limit
    stops one person from using all of it.
    """

    def __init__(
        self,
        kb: KnowledgeBase,
        state: StateDB | None,
        *,
        timeout: float,
        per_user_per_minute: int,
        global_per_minute: int = 0,
        team_key: str | None = None,
        max_parallel: int = 4,
        runner=None,
    ):
        self.kb, self.state, self.timeout = kb, state, timeout
        self._team_key = team_key
        self.limiter = RateLimiter(per_user_per_minute, 60.0)
        self.global_limiter = RateLimiter(global_per_minute, 60.0)
        self._pool = ThreadPoolExecutor(max_parallel, thread_name_prefix="check")
        self.max_queued = max_parallel * 2  # running + queued
        self._slots = threading.BoundedSemaphore(self.max_queued)
        self._runner = runner

    def __repr__(self) -> str:  # keep the team key out of any repr
        return (
            f"Checker(timeout={self.timeout}, limit={self.limiter.limit}/min, global={self.global_limiter.limit}/min)"
        )

    @property
    def budget(self) -> float:
        """The longest a run may take: the runner bounds each step; this bounds the whole."""
        return self.timeout * 6 + 2.0

    def allow(self, user: str) -> tuple[bool, str]:
        """Whether `user` may run a check now; otherwise the notice to show. A use is counted when allowed.

        The per-user limit is asked first, so one person over their limit spends none of the team's
        budget; a refusal by the global limit still counts against the person who asked.
        """
        ok, wait, limited_by = self._spend(user)
        if limited_by == "user":
            return False, (
                f"You have run {self.limiter.limit} checks in the last minute; try again in {max(1, round(wait))} s."
            )
        if not ok:
            log.warning("check refused: the team limit of %d checks a minute is reached", self.global_limiter.limit)
            return False, (
                f"The team has run {self.global_limiter.limit} checks in the last minute (the limit for everyone "
                f"together); try again in {max(1, round(wait))} s."
            )
        return True, ""

    def _spend(self, user: str) -> tuple[bool, float, str | None]:
        """One check from the budgets: the state store's, one for the whole deployment (it falls back to
        the replica's memory while the store is down), or this process's when there is no store."""
        if self.state is not None:
            b = self.state.check_budget(
                user, per_user=self.limiter.limit, overall=self.global_limiter.limit, window_s=self.limiter.per
            )
            return b.allowed, b.wait_s, b.limited_by
        for scope, limiter, key in (("user", self.limiter, user), ("overall", self.global_limiter, GLOBAL_KEY)):
            ok, wait = limiter.allow(key)
            if not ok:
                return False, wait, scope
        return True, 0.0, None

    def run(self, cmd: CheckCommand, *, user: str | None, source: str) -> CheckOutcome:
        """Run `cmd.kinds`; the rate limit must already have been applied with `allow`."""
        if not self._slots.acquire(blocking=False):
            log.warning("check refused: %d checks already running or queued", self.max_queued)
            return CheckOutcome(notice="Too many checks are running right now; try again in a minute.")
        start = time.perf_counter()
        key = cmd.key or self._team_key
        try:
            future = self._pool.submit(self._run, list(cmd.kinds), key, cmd, self.timeout)
            try:
                report = future.result(timeout=self.budget)
            except FutureTimeout:
                return CheckOutcome(notice=f"The checks did not finish within {self.budget:g} s.", seconds=self.budget)
            except Exception as exc:  # a bug in a check must not lose the reply
                log.exception("checks crashed")
                report = CheckReport([CheckResult("checks", False, None, f"the checks failed: {type(exc).__name__}")])
        finally:
            self._slots.release()
        seconds = time.perf_counter() - start
        if cmd.key:
            report = _scrub_report(report, cmd.key)
        ms = round(seconds * 1000, 1)
        log.info(
            "checks %s from %s %s in %.0f ms",
            ",".join(cmd.kinds),
            source,
            "passed" if report.ok else "failed",
            ms,
            extra={"ms": ms, "user": user, "typed_key": bool(cmd.key)},
        )
        if self.state is not None:
            failed = [r for r in report.results if not r.ok]
            self.state.record_check(
                source=source,
                user=user,
                kinds=list(cmd.kinds),
                target=report.target,
                ok=report.ok,
                failed=[r.name for r in failed],
                entry_ids=[r.entry_id for r in failed if r.entry_id],
                ms=round(seconds * 1000, 1),
            )
        return CheckOutcome(report=report, seconds=seconds)

    def _run(self, kinds: list[str], key: str | None, cmd: CheckCommand, timeout: float) -> CheckReport:
        runner = self._runner
        if runner is None:
            from bot.checks.runner import run_checks as runner
        return runner(
            kinds, key=key, base_url=cmd.base_url, model=cmd.model, timeout=timeout, deep=cmd.deep, kb=self.kb
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _scrub_report(report: CheckReport, key: str) -> CheckReport:
    """Mask a typed key wherever a check might have echoed it (the checks mask it already)."""
    masked = mask(key)

    def clean(text: str) -> str:
        return text.replace(key, masked) if text else text

    results = [
        CheckResult(
            r.name, r.ok, r.latency_ms, clean(r.detail), r.entry_id, r.entry_title, [clean(s) for s in r.fix], {}
        )
        for r in report.results
    ]
    return CheckReport(results, clean(report.target))


@dataclass
class Lookup:
    """A knowledge-base lookup: an entry by id, or the matcher's answer to the text."""

    entry: Entry | None = None
    result: MatchResult | None = None


def lookup(text: str, kb: KnowledgeBase, state: StateDB | None, *, source: str, channel: str | None = None) -> Lookup:
    found = kb.entry(text.strip().lower())
    if found is not None:
        return Lookup(entry=found)
    result = match(text, kb)
    if state is not None:
        state.record_match(result, text=text, source=source, channel=channel)
    return Lookup(result=result)


def lookup_message(found: Lookup, kb: KnowledgeBase) -> blocks.SlackMessage:
    if found.entry is not None:
        return blocks.entry_message(found.entry)
    assert found.result is not None
    message = blocks.answer_message(found.result, kb)
    if found.result.secrets_found:
        warning = blocks.secret_warning(found.result.secret_kinds)
        message = blocks.SlackMessage(message.text, warning.blocks + message.blocks)
    return message


# -- Slack ------------------------------------------------------------------------------


def register(app, *, kb: KnowledgeBase, state: StateDB, checker: Checker) -> None:
    """Add the `/gemini-check` listener to a bolt App."""

    @app.command(COMMAND)
    def on_command(ack, command, respond):
        cmd = parse_command(command.get("text", ""))
        user, channel = command.get("user_id", ""), command.get("channel_id")
        visibility = "in_channel" if cmd.share else "ephemeral"
        if cmd.action == "help":
            ack(**blocks.notice_message(HELP, fallback=HELP_TEXT).kwargs())
            return
        if cmd.action == "usage":
            ack(**blocks.notice_message(cmd.error).kwargs())
            return
        if cmd.action == "list":
            ack(response_type=visibility, **blocks.quick_reference_message(kb).kwargs())
            return
        if cmd.action == "lookup":
            # Fast (milliseconds): the answer is the acknowledgement itself.
            message = lookup_message(lookup(cmd.text, kb, state, source="slash", channel=channel), kb)
            ack(response_type=visibility, **message.kwargs())
            return
        allowed, why = checker.allow(user)
        if not allowed:
            ack(**blocks.notice_message(why).kwargs())
            return
        names = " and ".join(blocks.CHECK_TITLES[k].lower() for k in cmd.kinds)
        typed = f" with key {mask(cmd.key)}" if cmd.key else ""
        ack(**blocks.notice_message(f"Running the {names} check{typed}… the result follows in a few seconds.").kwargs())
        outcome = checker.run(cmd, user=user, source="slash")
        if outcome.report is None:
            message = blocks.notice_message(outcome.notice)
        else:
            message = blocks.check_report_message(
                outcome.report, list(cmd.kinds), requested_by=user if cmd.share else None
            )
        message = blocks.scrub(message, cmd.key)
        respond(response_type=visibility, replace_original=False, **message.kwargs())
