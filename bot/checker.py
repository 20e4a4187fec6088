"""Runs checks for every adapter: per-user and global rate limits, bounded concurrency, bounded time."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from bot.chat_command import CheckCommand
from bot.checks.registry import CHECKS, budget
from bot.checks.result import CheckReport, CheckResult
from bot.policy import Budget, RateLimiter
from kb.redact import scrub
from kb.settings import DEFAULT_BASE_URL
from kb.store import KnowledgeBase

log = logging.getLogger(__name__)
GLOBAL_KEY = "*"  # the one key of the all-users limiter


@dataclass
class CheckOutcome:
    """A finished (or refused) check run."""

    report: CheckReport | None = None
    notice: str = ""  # rate limited, busy, timed out
    seconds: float = 0.0


class Checker:
    """The global limit caps what all users together can make the team key spend; the per-user limit
    stops one person from using all of it."""

    def __init__(
        self,
        kb: KnowledgeBase,
        *,
        timeout: float,
        per_user_per_minute: int,
        global_per_minute: int = 0,
        team_key: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        allow_private: bool = False,
        max_parallel: int = 4,
    ):
        self.kb, self.timeout = kb, timeout
        self._team_key = team_key
        self.base_url, self.allow_private = base_url, allow_private
        self.limiter = RateLimiter(per_user_per_minute, 60.0)
        self.global_limiter = RateLimiter(global_per_minute, 60.0)
        self._pool = ThreadPoolExecutor(max_parallel, thread_name_prefix="check")
        self.max_queued = max_parallel * 2  # running + queued
        self._slots = threading.BoundedSemaphore(self.max_queued)

    def __repr__(self) -> str:  # keep the team key out of any repr
        return (
            f"Checker(timeout={self.timeout}, limit={self.limiter.limit}/min, global={self.global_limiter.limit}/min)"
        )

    @property
    def budget(self) -> float:
        """The longest any run may take: the runner bounds each step; this bounds the whole."""
        return budget(tuple(CHECKS), self.timeout, grace=2.0)

    @property
    def limits(self) -> dict[str, int | float]:
        """The check limits, as the state store's deployment-wide budget takes them (0: no limit)."""
        return {"per_user": self.limiter.limit, "overall": self.global_limiter.limit, "window_s": self.limiter.per}

    def spend(self, user: str) -> Budget:
        """One check from this process's own budgets (used when there is no state store)."""
        for scope, limiter, key in (("user", self.limiter, user), ("overall", self.global_limiter, GLOBAL_KEY)):
            ok, wait = limiter.allow(key)
            if not ok:
                return Budget(False, wait, scope)
        return Budget(True)

    def allow(self, user: str, decision: Budget | None = None) -> tuple[bool, str]:
        """Whether `user` may run a check now; otherwise the notice to show. A use is counted when allowed.

        `decision` is the deployment-wide one the answer service took from the state store (one budget for
        every replica; the store falls back to the replica's memory while it is down); without it this
        process's own limits decide. The per-user limit is asked first, so one person over their limit
        spends none of the team's budget; a refusal by the global limit still counts against the person
        who asked.
        """
        b = decision if decision is not None else self.spend(user)
        if b.allowed:
            return True, ""
        wait = max(1, round(b.wait_s))
        if b.limited_by == "user":
            return False, f"You have run {self.limiter.limit} checks in the last minute; try again in {wait} s."
        log.warning("check refused: the team limit of %d checks a minute is reached", self.global_limiter.limit)
        return False, (
            f"The team has run {self.global_limiter.limit} checks in the last minute (the limit for everyone "
            f"together); try again in {wait} s."
        )

    def run(self, cmd: CheckCommand, *, user: str | None, source: str) -> CheckOutcome:
        """Run `cmd.kinds`; the rate limit must already have been applied with `allow`. Recording the run
        is the answer service's business."""
        from bot.checks.runner import run_checks  # google-genai is imported only when a check runs

        if not self._slots.acquire(blocking=False):
            log.warning("check refused: %d checks already running or queued", self.max_queued)
            return CheckOutcome(notice="Too many checks are running right now; try again in a minute.")
        start = time.perf_counter()
        key = cmd.key or self._team_key
        try:
            future = self._pool.submit(
                run_checks,
                list(cmd.kinds),
                key=key,
                base_url=cmd.base_url or self.base_url,
                model=cmd.model,
                timeout=self.timeout,
                deep=cmd.deep,
                kb=self.kb,
                allow_private=self.allow_private,
            )
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
            report = scrub_report(report, cmd.key)
        ms = round(seconds * 1000, 1)
        log.info(
            "checks %s from %s %s in %.0f ms",
            ",".join(cmd.kinds),
            source,
            "passed" if report.ok else "failed",
            ms,
            extra={"ms": ms, "user": user, "typed_key": bool(cmd.key)},
        )
        return CheckOutcome(report=report, seconds=seconds)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def scrub_report(report: CheckReport, key: str) -> CheckReport:
    """Mask a typed key wherever a check might have echoed it (the checks mask it already)."""

    def clean(text: str) -> str:
        return scrub(text, (key,), redact_rest=False)

    results = [
        CheckResult(
            r.name, r.ok, r.latency_ms, clean(r.detail), r.entry_id, r.entry_title, [clean(s) for s in r.fix], {}
        )
        for r in report.results
    ]
    return CheckReport(results, clean(report.target))
