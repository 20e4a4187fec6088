"""Plain-text rendering for the terminal and the local console."""

from __future__ import annotations

import textwrap

from kb.matcher import MatchResult
from kb.store import Entry, KnowledgeBase


def _wrap(text: str, indent: str = "  ", width: int = 100) -> str:
    out = []
    for para in text.splitlines() or [""]:
        out.append(textwrap.fill(para, width, initial_indent=indent, subsequent_indent=indent) if para.strip() else "")
    return "\n".join(out)


def status_label(entry: Entry) -> str:
    """`429 RESOURCE_EXHAUSTED`, `client side` when the API sent no status."""
    parts = [str(entry.http_status) if entry.http_status else "", entry.status or ""]
    return " ".join(p for p in parts if p) or "client side"


def quick_reference(entries: list[Entry]) -> str:
    """One row per entry: id, HTTP status, status name, title."""
    rows = [(e.id, str(e.http_status or "-"), e.status or "-", e.title) for e in entries]
    widths = [max(len(r[i]) for r in [*rows, ("ID", "HTTP", "STATUS", "")]) for i in range(3)]
    lines = [f"{'ID':<{widths[0]}}  {'HTTP':<{widths[1]}}  {'STATUS':<{widths[2]}}  TITLE"]
    lines += [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}" for a, b, c, d in rows]
    return "\n".join(lines)


def numbered(items: list[str], indent: str = "  ") -> str:
    lines = []
    for i, item in enumerate(items, start=1):
        first, *rest = item.splitlines() or [""]
        lines.append(f"{indent}{i}. {first}")
        lines += [f"{indent}   {r}" for r in rest]
    return "\n".join(lines)


def bullets(items: list[str], indent: str = "  ") -> str:
    return "\n".join(f"{indent}- {item}" for item in items)


def entry_text(entry: Entry, *, full: bool = True) -> str:
    """The whole entry, readable in a terminal (`full=False` keeps the essentials)."""
    mark = "" if entry.reviewed else "  [unreviewed]"
    out = [f"{entry.title}  ({entry.id}, {status_label(entry)}){mark}", "", _wrap(entry.summary), ""]
    out += ["Likely causes:", bullets(entry.causes), "", "Fix:", numbered(entry.fix), ""]
    if full:
        out += ["How to confirm:", bullets(entry.diagnosis), ""]
        if entry.example:
            out += [f"Example ({entry.example_lang or 'code'}):", textwrap.indent(entry.example, "    "), ""]
        if entry.notes:
            out += ["Notes:", _wrap(entry.notes), ""]
    out.append(f"Retry helps: {entry.retryable}")
    if entry.docs:
        out += ["Docs:", *[f"  {d}" for d in entry.docs]]
    articles = [s for s in entry.sources if s.kind != "guide"]
    if articles:
        out += [
            "Also described in:",
            *[f"  {s.title} ({s.path}{', ' + s.section if s.section else ''})" for s in articles],
        ]
    return "\n".join(out).rstrip() + "\n"


def answer_text(result: MatchResult, kb: KnowledgeBase) -> str:
    """A paste's answer: the entry's essentials, why it matched, confidence, alternatives."""
    out: list[str] = []
    if result.secrets_found:
        out += [
            "WARNING: your paste contains a secret (" + ", ".join(result.secret_kinds) + "). "
            "It was redacted here; rotate it now.",
            "",
        ]
    top = result.top
    if top is None or not result.confident:
        out.append("No confident match" + (f": {result.abstain_reason}." if result.abstain_reason else "."))
        if result.matches:
            out.append("Closest candidates:")
            out += [f"  - {m.id} ({m.score:.2f}): {m.title} [{m.why}]" for m in result.matches]
        out.append("Try pasting the full error body or the last lines of the traceback, or run 'gemini-kb check'.")
        return "\n".join(out) + "\n"
    entry = kb.entries[top.id]
    out.append(entry_text(entry, full=False).rstrip())
    out += ["", f"Why: {top.why}", f"Confidence: {top.score:.2f}"]
    others = result.matches[1:]
    if others:
        out.append("Other candidates: " + ", ".join(f"{m.id} ({m.score:.2f})" for m in others))
    return "\n".join(out) + "\n"
