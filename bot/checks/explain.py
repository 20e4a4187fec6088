"""Explain a failed check with the knowledge base: its failure text goes through the same matcher as a paste."""

from __future__ import annotations

from bot.checks.result import CheckResult
from kb.matcher import match
from kb.redact import scrub
from kb.store import KnowledgeBase

FIX_STEPS = 3


def failed(
    name: str,
    detail: str,
    error_text: str,
    kb: KnowledgeBase | None,
    *,
    latency_ms: float | None = None,
    secrets: tuple[str, ...] = (),
    data: dict[str, object] | None = None,
) -> CheckResult:
    """A failed result whose entry is the matcher's best answer for `error_text`."""
    error_text = scrub(error_text, secrets)
    result = CheckResult(
        name=name,
        ok=False,
        latency_ms=latency_ms,
        detail=scrub(detail, secrets),
        data={**(data or {}), "error": error_text},
    )
    if kb is None:
        return result
    found = match(error_text, kb, limit=2)
    top = found.top
    if top is None:
        result.data["match"] = {"confident": False, "why": found.abstain_reason}
        return result
    entry = kb.entries.get(top.id)
    result.entry_id = top.id
    result.entry_title = top.title
    result.fix = list(entry.fix[:FIX_STEPS]) if entry else []
    # The checks know the text is a Gemini failure, so the top match is used even when the
    # matcher would abstain on a bare paste; its own confidence is kept for the reader.
    result.data["match"] = {"score": top.score, "why": top.why, "confident": found.confident}
    return result


def ms_since(start: float, now: float) -> float:
    """Elapsed milliseconds, rounded for display."""
    return round((now - start) * 1000.0, 1)
