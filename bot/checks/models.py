"""The models check: list the models the API serves (ListModels, every page) and compare them with the
lifecycle table (`models:` of the model-retired guide, as stored in the knowledge base)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date

from google.genai import errors

from bot.checks.explain import ms_since
from bot.checks.key import PAGE_SIZE, TRANSPORT_ERRORS, KeySession, sdk_failure
from bot.checks.model import short_name
from bot.checks.result import CheckResult
from kb.schema import ModelInfo
from kb.store import KnowledgeBase

MAX_NAMED = 8  # names listed in the detail line per kind of drift (all are in data)


@dataclass
class Drift:
    """How the served models and the lifecycle table disagree."""

    still_served: list[str] = field(default_factory=list)  # the table says shut down; the API still lists it
    missing: list[str] = field(default_factory=list)  # the table treats it as current; the API does not list it
    unknown: list[str] = field(default_factory=list)  # served, but the table does not know it

    @property
    def none(self) -> bool:
        return not (self.still_served or self.missing or self.unknown)


def lifecycle(kb: KnowledgeBase) -> list[ModelInfo]:
    """The lifecycle table as stored: every model row, in the guide's order."""
    return list(kb.models.values())


def current_names(table: list[ModelInfo], today: str) -> set[str]:
    """Models the table treats as available: rows marked active, deprecated ones not yet shut down, and
    every replacement it recommends that is not itself shut down."""
    shut = {m.name for m in table if m.shut_down(today)}
    active = {m.name for m in table if not m.shut_down(today)}
    active |= {m.replacement.lower() for m in table if m.replacement and m.replacement.lower() not in shut}
    return active


def drift(served: list[str], table: list[ModelInfo], today: str) -> Drift:
    """Compare served model names (`models/` dropped) with the table on `today` (ISO date)."""
    served_set = {short_name(n).lower() for n in served}
    known = {m.name for m in table} | {m.replacement.lower() for m in table if m.replacement}
    shut = sorted(m.name for m in table if m.shut_down(today) and m.name in served_set)
    missing = sorted(current_names(table, today) - served_set)
    unknown = sorted(served_set - known)
    return Drift(shut, missing, unknown)


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMED])
    return shown + (f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else "")


def check_models(session: KeySession, kb: KnowledgeBase | None, *, today: str | None = None) -> CheckResult:
    """ListModels with the key (all pages), then the drift against the lifecycle table."""
    start = time.perf_counter()
    try:
        models = list(session.client.models.list(config={"page_size": PAGE_SIZE}))
    except (errors.APIError, *TRANSPORT_ERRORS) as exc:
        return sdk_failure("models", "client.models.list()", exc, kb, start=start, key=session.key)
    session.models = models
    latency = ms_since(start, time.perf_counter())
    served = [m.name for m in models if m.name]
    if kb is None or not kb.models:
        return CheckResult("models", False, latency, "the knowledge base has no model lifecycle table to compare with")
    today = today or date.today().isoformat()
    found = drift(served, lifecycle(kb), today)
    data: dict[str, object] = {
        "served": len(served),
        "table": len(kb.models),
        "still_served": found.still_served,
        "missing": found.missing,
        "unknown": found.unknown,
        "today": today,
    }
    if found.none:
        return CheckResult("models", True, latency, f"{len(served)} models served; the table agrees", data=data)
    parts = []
    if found.still_served:
        parts.append(f"still served though the table says shut down: {_names(found.still_served)}")
    if found.missing:
        parts.append(f"current in the table but not served: {_names(found.missing)}")
    if found.unknown:
        parts.append(f"served but not in the table: {_names(found.unknown)}")
    result = CheckResult("models", False, latency, f"{len(served)} models served; " + "; ".join(parts), data=data)
    entry = kb.entries.get("model-retired")
    if entry is not None:  # the drift is about this family's table, so it explains the failure
        result.entry_id, result.entry_title, result.fix = entry.id, entry.title, list(entry.fix[:3])
    return result
