"""Run the requested checks with bounded time: the one entry point for the CLI and the Slack bot.

Which checks exist and what each needs comes from `bot.checks.registry`: the checks that need a key
share one google-genai session and run one after another (the key check first); the others run beside them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from bot.checks.explain import failed
from bot.checks.key import KeySession, missing_key
from bot.checks.model import model_name
from bot.checks.registry import CHECKS, CheckRun
from bot.checks.result import CheckReport, CheckResult
from bot.checks.target import TargetRefused, parse_target
from kb.redact import mask, redact, scrub
from kb.store import KnowledgeBase

log = logging.getLogger(__name__)
KINDS = tuple(CHECKS)
GRACE_S = 1.0


def run_checks(
    kinds: list[str],
    *,
    key: str | None,
    base_url: str,
    model: str | None,
    timeout: float,
    deep: bool,
    kb: KnowledgeBase | None,
    allow_private: bool = False,
) -> CheckReport:
    """Run `kinds` (see `CHECKS`) concurrently; every network step is bounded by `timeout` seconds.

    `base_url` and `allow_private` come from the settings (GEMINI_BASE_URL, GEMINI_CHECK_ALLOW_PRIVATE).
    The key is used for these calls only and appears masked in the report.
    """
    unknown = [k for k in kinds if k not in CHECKS]
    if unknown or not kinds:
        raise ValueError(f"unknown check kind(s) {unknown or kinds}; choose from {', '.join(KINDS)}")
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    base_url = base_url.strip()
    key = (key or "").strip() or None
    report = CheckReport(target=_target(kinds, key, base_url, model))
    log.info("running checks %s for %s", ",".join(kinds), report.target)
    run = CheckRun(key, base_url, model, timeout, deep, kb, allow_private)

    jobs: dict[str, tuple[Callable[[], dict[str, list[CheckResult]]], float]] = {}
    for kind in kinds:
        spec = CHECKS[kind]
        if not spec.needs_key:
            jobs[kind] = (lambda spec=spec: {spec.name: spec.run(run)}, timeout * spec.calls + GRACE_S)
    keyed = [k for k in kinds if CHECKS[k].needs_key]
    if keyed:
        keyed.sort(key=lambda k: k != "key")  # the key check first: when it fails the others are not run
        jobs["api"] = (lambda: _api_checks(keyed, run), timeout * sum(CHECKS[k].calls for k in keyed) + GRACE_S)
    outcomes = _run_bounded(jobs, kb, label={"api": keyed[0] if keyed else "api"}, secrets=(key,) if key else ())
    by_kind: dict[str, list[CheckResult]] = {}
    for name, found in outcomes.items():
        if isinstance(found, dict):
            by_kind.update(found)
        else:  # a crashed or abandoned job: reported under its first check
            by_kind[keyed[0] if name == "api" else name] = found
    for kind in kinds:
        report.results.extend(by_kind.get(kind, []))
    return report


def _target(kinds: list[str], key: str | None, base_url: str, model: str | None) -> str:
    parts = []
    if any(CHECKS[k].needs_key for k in kinds):
        parts.append(f"key {mask(key) if key else '(none)'}")
    parts.append(redact(base_url, strict=True)[0])  # a base URL may carry a token in its path
    if "model" in kinds and model:
        parts.append(f"model {model_name(model) or '(not a model name)'}")
    return " · ".join(parts)


def _api_checks(kinds: list[str], run: CheckRun) -> dict[str, list[CheckResult]]:
    """The checks that need a key, sharing one client (kept alive until all are done)."""
    if run.key is None:
        return {
            n: [missing_key(run.kb) if n == "key" else CheckResult(n, False, None, "not run: no API key")]
            for n in kinds
        }
    try:
        target = parse_target(run.base_url, allow_private=run.allow_private, allow_http=True)
    except TargetRefused as exc:
        return {n: [CheckResult(n, False, 0.0, str(exc), data={"url": run.base_url})] for n in kinds}
    session = KeySession(run.key, target.url, run.timeout)
    shared = CheckRun(**{**run.__dict__, "session": session})
    try:
        results: dict[str, list[CheckResult]] = {}
        for kind in kinds:
            if kind != "key" and not all(r.ok for r in results.get("key", [])):
                results[kind] = [CheckResult(kind, False, None, "not run: the key check failed")]
                continue
            results[kind] = CHECKS[kind].run(shared)
        return results
    finally:
        session.close()


Outcome = dict[str, list[CheckResult]] | list[CheckResult]


def _run_bounded(
    jobs: dict[str, tuple[Callable[[], dict[str, list[CheckResult]]], float]],
    kb: KnowledgeBase | None,
    label: dict[str, str],
    *,
    secrets: tuple[str, ...] = (),
) -> dict[str, Outcome]:
    """Run each job in a daemon thread; a job past its budget is reported, not waited for."""
    outcomes: dict[str, Outcome] = {}
    threads: dict[str, threading.Thread] = {}

    def runner(name: str, job: Callable[[], dict[str, list[CheckResult]]]) -> None:
        try:
            outcomes[name] = job()
        except Exception as exc:  # a bug in a check must not take the bot down; say what happened
            # No traceback in the log: frames and messages of a crashed check may hold the key.
            message = scrub(f"{type(exc).__name__}: {exc}", secrets)
            log.error("check %s crashed: %s", name, message)
            outcomes[name] = [CheckResult(label.get(name, name), False, None, f"the check itself failed: {message}")]

    start = time.perf_counter()
    for name, (job, _budget) in jobs.items():
        threads[name] = threading.Thread(target=runner, args=(name, job), daemon=True, name=f"check-{name}")
        threads[name].start()
    for name, thread in threads.items():
        budget = jobs[name][1]
        thread.join(max(0.0, budget - (time.perf_counter() - start)))
        if thread.is_alive():
            outcomes[name] = [
                failed(
                    label.get(name, name),
                    f"no result within {budget:g} s; the check was abandoned",
                    f"TimeoutError: the {name} check did not finish within {budget:g} s (ReadTimeout)",
                    kb,
                    latency_ms=round(budget * 1000.0, 1),
                )
            ]
    return outcomes
