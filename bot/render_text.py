"""Plain-text rendering for the terminal and the local console."""

from __future__ import annotations

import re
import textwrap
from typing import TYPE_CHECKING

from kb.matcher import MatchResult
from kb.redact import scrub
from kb.schema import Entry
from kb.store import KnowledgeBase

if TYPE_CHECKING:
    from bot.service import Reply
    from ingest.attach import ArticlePlan


WIDTH = 100
# Guide Markdown in plain text: **bold** loses its stars, [label](url) reads "label (url)".
_PLAIN_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\*\*([^*\n]{1,200})\*\*"), r"\1"),
    (re.compile(r"\[([^\]\n]{1,200})\]\((https?://[^)\s]{1,1000})\)"), r"\1 (\2)"),
)


def plain(text: str) -> str:
    """Guide Markdown as terminal text."""
    for pattern, repl in _PLAIN_RULES:
        text = pattern.sub(repl, text)
    return text


def _fill(line: str, width: int, first: str, rest: str) -> str:
    """One line wrapped at spaces only: ids such as gemini-2.5-flash and URLs are never cut."""
    return textwrap.fill(
        line, width, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False, break_long_words=False
    )


def _wrap(text: str, indent: str = "  ", width: int = WIDTH) -> str:
    out = []
    for para in plain(text).splitlines() or [""]:
        out.append(_fill(para.strip(), width, indent, indent) if para.strip() else "")
    return "\n".join(out)


def _item(marker: str, item: str, indent: str, width: int | None) -> list[str]:
    """A list item: its first line after `marker`, its own sub-lines (sub-bullets, code) kept, each wrapped."""
    first, *rest = item.splitlines() or [""]
    hang = indent + " " * len(marker)
    if width is None:
        return [f"{indent}{marker}{first}", *[f"{hang}{r}" for r in rest]]
    lines = [_fill(plain(first), width, indent + marker, hang)]
    for sub in rest:
        body = sub.strip()
        mark = re.match(r"^(?:[-*]|\d+[.)])\s+", body)
        pad = hang + " " * (len(sub) - len(sub.lstrip()) if not mark else 2)
        lines.append(_fill(plain(body), width, pad, pad + " " * (mark.end() if mark else 0)) if body else "")
    return lines


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


def numbered(items: list[str], indent: str = "  ", *, width: int | None = None) -> str:
    """`1. item` lines; with `width`, wrapped as terminal text."""
    lines: list[str] = []
    for i, item in enumerate(items, start=1):
        lines += _item(f"{i}. ", item, indent, width)
    return "\n".join(lines)


def bullets(items: list[str], indent: str = "  ", *, width: int | None = None) -> str:
    lines: list[str] = []
    for item in items:
        lines += _item("- ", item, indent, width)
    return "\n".join(lines)


def entry_text(entry: Entry, *, full: bool = True) -> str:
    """The whole entry, readable in a terminal (`full=False` keeps the essentials)."""
    mark = "" if entry.reviewed else "  [unreviewed]"
    out = [f"{entry.title}  ({entry.id}, {status_label(entry)}){mark}", "", _wrap(entry.summary), ""]
    if entry.causes:
        out += ["Likely causes:", bullets(entry.causes, width=WIDTH), ""]
    if entry.fix:
        out += ["Fix:", numbered(entry.fix, width=WIDTH), ""]
    if full:
        if entry.diagnosis:
            out += ["How to confirm:", bullets(entry.diagnosis, width=WIDTH), ""]
        if entry.example:
            out += [f"Example ({entry.example_lang or 'code'}):", textwrap.indent(entry.example, "    "), ""]
        if entry.notes:
            out += ["Notes:", _wrap(entry.notes), ""]
    out.append(f"Retry helps: {entry.retryable}")
    if entry.docs:
        out += ["Docs:", *[f"  {d}" for d in entry.docs]]
    articles = [s for s in entry.sources if s.kind != "guide"]
    if articles:
        out.append("Also described in:")
        for source in articles:
            out.append(f"  {source.title} ({source.path}{' > ' + source.section if source.section else ''})")
            if full:
                out += advice_lines(source.advice, indent="      ")
    return "\n".join(out).rstrip() + "\n"


ADVICE_LABELS = {"summary": "Says", "causes": "Causes", "diagnosis": "To confirm", "fix": "Fix"}


def advice_lines(advice: dict[str, list], *, indent: str = "  ", limit: int = 4) -> list[str]:
    """What an article adds to an entry, a few lines per kind."""
    out: list[str] = []
    for kind, label in ADVICE_LABELS.items():
        items = [str(i) for i in advice.get(kind, [])][:limit]
        if items:
            out.append(f"{indent}{label}: " + items[0])
            out += [f"{indent}{' ' * (len(label) + 2)}{i}" for i in items[1:]]
    for pair in advice.get("faq", [])[:limit]:
        if isinstance(pair, dict):
            out += [f"{indent}Q: {pair.get('q', '')}", f"{indent}A: {pair.get('a', '')}"]
    if advice.get("code"):
        out.append(f"{indent}(and {len(advice['code'])} code example{'s' * (len(advice['code']) > 1)})")
    return out


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


def article_plan_text(plan: ArticlePlan) -> str:
    """An ingest dry run for one article: each section and where it goes, then the signatures."""
    a = plan.article
    placed = plan.attached
    out = [
        f"{a.title}  ({plan.display})",
        f"  {len(plan.placements)} sections read: {len(placed)} attached "
        f"({len(plan.new_entries)} as new unreviewed entries); {len(a.dropped)} boilerplate blocks left out",
    ]
    for p in plan.placements:
        counts = ", ".join(f"{len(v)} {k}" for k, v in p.unit.advice.as_dict().items())
        if p.new_entry:
            target = f"NEW unreviewed entry {p.entry_id}"
        elif p.entry_id:
            target = f"{p.entry_id} ({p.score:.2f}: {p.why})"
        else:
            target = f"left out: {p.why}"
        out += [f"  [{p.unit.kind}] {p.unit.label}", f"      -> {target}" + (f"; {counts}" if p.entry_id else "")]
    if plan.conflicts:
        out.append("  Conflicts with the curated guides (not attached as advice):")
        for c in plan.conflicts:
            out += [f"    ! {c.entry_id} [{c.rule}] {c.section}: {c.claim[:100]}", f"      guide: {c.guide[:160]}"]
    if plan.signatures:
        out.append("  Error messages:")
        mark = {"new": "+ new signature of", "known": "= already a signature of", "unrecognised": "? left out,"}
        for s in plan.signatures:
            where = s.entry_id if s.outcome != "unrecognised" else s.why
            out.append(f"    {mark[s.outcome]} {where}: {s.text[:100]}")
    return "\n".join(out) + "\n"


def reply_text(reply: Reply, kb: KnowledgeBase) -> str:
    """A command's reply as text (the console)."""
    from bot.chat_command import HELP_TEXT
    from bot.checks.render import report_text

    if reply.kind == "help":
        return HELP_TEXT + "\n"
    if reply.kind == "list":
        return quick_reference(list(kb.entries.values())) + "\n"
    if reply.kind == "entry" and reply.entry is not None:
        return entry_text(reply.entry)
    if reply.kind == "answer" and reply.result is not None:
        return answer_text(reply.result, kb)
    outcome = reply.report_outcome
    if reply.kind == "report" and outcome is not None and outcome.report is not None:
        return scrub(report_text(outcome.report), (reply.key,), redact_rest=False)
    return reply.text.replace("`", "") + "\n"
