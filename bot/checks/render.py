"""Render a check report as a terminal table, with each failure explained below it."""

from __future__ import annotations

import shutil
import textwrap

from bot.checks.result import CheckReport, CheckResult

MIN_DETAIL = 30


def _latency(result: CheckResult) -> str:
    return "" if result.latency_ms is None else f"{result.latency_ms:.0f} ms"


def _status(result: CheckResult) -> str:
    return "ok" if result.ok else "FAIL"


def _step(number: int, step: str, width: int) -> list[str]:
    """A numbered fix step; its own line breaks (sub-bullets) are kept."""
    out: list[str] = []
    for i, line in enumerate(step.splitlines() or [""]):
        first = f"  {number}. " if i == 0 else "     "
        out.extend(
            textwrap.wrap(
                line.strip(),
                max(20, width - 6),
                initial_indent=first + ("  " if i else ""),
                subsequent_indent="       " if i else "     ",
                break_on_hyphens=False,  # a model id or URL is never cut at its hyphens
            )
            or [first]
        )
    return out


def report_text(report: CheckReport, *, width: int | None = None) -> str:
    """The report as a fixed-width table plus a block per failed check."""
    width = width or shutil.get_terminal_size((100, 24)).columns
    rows = [(r.name, _status(r), _latency(r), r.detail) for r in report.results]
    name_w = max([len("check"), *(len(r[0]) for r in rows)])
    time_w = max([len("time"), *(len(r[2]) for r in rows)])
    detail_w = max(MIN_DETAIL, width - name_w - time_w - 4 - 3 * 2)
    lines = [f"gemini-kb check: {report.target}", ""]
    lines.append(f"{'check':<{name_w}}  {'':<4}  {'time':>{time_w}}  detail")
    lines.append(f"{'-' * name_w}  {'-' * 4}  {'-' * time_w}  {'-' * min(detail_w, 40)}")
    for name, status, latency, detail in rows:
        wrapped = textwrap.wrap(detail, detail_w, break_on_hyphens=False) or [""]
        lines.append(f"{name:<{name_w}}  {status:<4}  {latency:>{time_w}}  {wrapped[0]}")
        indent = " " * (name_w + time_w + 4 + 2 * 3)
        lines.extend(indent + more for more in wrapped[1:])
    for result in report.results:
        if not result.ok and result.entry_id:
            lines.extend(["", f"{result.name}: {result.entry_title} [{result.entry_id}]"])
            for number, step in enumerate(result.fix, start=1):
                lines.extend(_step(number, step, width))
            lines.append(f"  More: gemini-kb show {result.entry_id}")
    failures = sum(not r.ok for r in report.results)
    lines.extend(["", "all checks passed" if report.ok else f"{failures} check(s) failed"])
    return "\n".join(lines) + "\n"
