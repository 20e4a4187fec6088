"""Run the requested checks with bounded time: the one entry point for the CLI and the Slack bot."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from bot.checks.endpoint import check_endpoint
from bot.checks.explain import failed, scrub
from bot.checks.key import KeySession, check_key, missing_key
from bot.checks.model import check_model, short_name
from bot.checks.result import CheckReport, CheckResult
from bot.checks.target import BASE_URL_ENV, DEFAULT_BASE_URL, TargetRefused, allow_private_from_env, parse_target
from kb.redact import mask
from kb.store import KnowledgeBase

log = logging.getLogger(__name__)
KINDS = ("key", "endpoint", "model")
ENDPOINT_PHASES = 5  # dns, tcp, tunnel, tls, http: each bounded by `timeout`
KEY_CALLS = 4  # list (maybe two pages), get, count_tokens
GRACE_S = 1.0


def run_checks(
    kinds: list[str],
    *,
    key: str | None,
    base_url: str | None,
    model: str | None,
    timeout: float,
    deep: bool,
    kb: KnowledgeBase | None,
    allow_private: bool | None = None,
) -> CheckReport:
    """Run `kinds` (key, endpoint, model) concurrently; every call is bounded by `timeout` seconds.

    `base_url` defaults to $GEMINI_BASE_URL, then the public Gemini API; `allow_private` to
    $GEMINI_CHECK_ALLOW_PRIVATE. The key is used for these calls only and appears masked in the report.
    """
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"unknown check kind(s) {unknown or kinds}; choose from {', '.join(KINDS)}")
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    base_url = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).strip()
    allow = allow_private_from_env() if allow_private is None else allow_private
    key = (key or "").strip() or None
    report = CheckReport(target=_target(kinds, key, base_url, model))
    log.info("running checks %s for %s", ",".join(kinds), report.target)

    jobs: dict[str, tuple[Callable[[], list[CheckResult]], float]] = {}
    if "endpoint" in kinds:
        jobs["endpoint"] = (
            lambda: check_endpoint(base_url, timeout=timeout, kb=kb, allow_private=allow),
            timeout * ENDPOINT_PHASES + GRACE_S,
        )
    if "key" in kinds or "model" in kinds:
        jobs["api"] = (
            lambda: _api_checks(kinds, key, base_url, model, timeout, deep, kb, allow),
            timeout * KEY_CALLS + GRACE_S,
        )
    label = {"api": "key" if "key" in kinds else "model"}  # what an abandoned api job is reported as
    outcomes = _run_bounded(jobs, kb, label, secrets=(key,) if key else ())
    by_kind = {"endpoint": outcomes.get("endpoint", []), "key": [], "model": []}
    for result in outcomes.get("api", []):
        by_kind["model" if result.name.startswith("model") else "key"].append(result)
    for kind in kinds:
        report.results.extend(by_kind[kind])
    return report


def _target(kinds: list[str], key: str | None, base_url: str, model: str | None) -> str:
    parts = []
    if "key" in kinds or "model" in kinds:
        parts.append(f"key {mask(key) if key else '(none)'}")
    parts.append(base_url)
    if "model" in kinds and model:
        parts.append(f"model {short_name(model)}")
    return " · ".join(parts)


def _api_checks(
    kinds: list[str],
    key: str | None,
    base_url: str,
    model: str | None,
    timeout: float,
    deep: bool,
    kb: KnowledgeBase | None,
    allow: bool,
) -> list[CheckResult]:
    """The key check and/or the model check, sharing one client (kept alive until both are done)."""
    names = [k for k in ("key", "model") if k in kinds]
    if key is None:
        return [
            missing_key(kb) if n == "key" else CheckResult("model", False, None, "not run: no API key") for n in names
        ]
    try:
        target = parse_target(base_url, allow_private=allow, allow_http=True)
    except TargetRefused as exc:
        return [CheckResult(n, False, 0.0, str(exc), data={"url": base_url}) for n in names]
    if "model" in kinds and not (model or "").strip():
        return [CheckResult("model", False, None, "no model name given (e.g. gemini-2.5-flash)")]
    session = KeySession(key, target.url, timeout)
    try:
        results: list[CheckResult] = []
        if "key" in kinds:
            results.append(check_key(session, kb))
            if not results[-1].ok and "model" in kinds:
                results.append(CheckResult("model", False, None, "not run: the key check failed"))
                return results
        if "model" in kinds:
            results.extend(check_model(model or "", session, kb, deep=deep))
        return results
    finally:
        session.close()


def _run_bounded(
    jobs: dict[str, tuple[Callable[[], list[CheckResult]], float]],
    kb: KnowledgeBase | None,
    label: dict[str, str],
    *,
    secrets: tuple[str, ...] = (),
) -> dict[str, list[CheckResult]]:
    """Run each job in a daemon thread; a job past its budget is reported, not waited for."""
    outcomes: dict[str, list[CheckResult]] = {}
    threads: dict[str, threading.Thread] = {}

    def runner(name: str, job: Callable[[], list[CheckResult]]) -> None:
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
