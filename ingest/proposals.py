"""Approved signature proposals as a build input: a JSON-lines file the CLI exports from the state store
(`gemini-kb proposals approve` / `gemini-kb ingest` write it; see docs/architecture.md).

One object a line: `{"id": 7, "entry_id": "rate-limit-exceeded", "text": "...", "channel": "C123",
"date": "2026-11-29", "approved_by": "U1"}`. The text is already the error lines of a thread
(`kb.excerpt.error_lines`), redacted; the build re-extracts and re-redacts it anyway, so a hand-edited file
cannot bring prose or a key into the knowledge base.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ingest.inputs import Problem
from kb.excerpt import error_lines

SUFFIX = ".jsonl"


@dataclass(frozen=True)
class ApprovedSignature:
    """One approved proposal, with where it came from (channel and day, never a person's words)."""

    id: str
    entry_id: str
    text: str
    channel: str
    date: str

    @property
    def provenance(self) -> str:
        return f"slack:{self.channel}/{self.date}"


def is_signature_file(path: Path) -> bool:
    return path.suffix.lower() == SUFFIX


def load_signatures(path: Path, display: str) -> tuple[list[ApprovedSignature], list[Problem]]:
    """The approved signatures of one file, and the problems of lines that cannot be used."""
    found: list[ApprovedSignature] = []
    problems: list[Problem] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            problems.append(Problem(display, n, f"not JSON: {exc}"))
            continue
        if not isinstance(row, dict) or not row.get("entry_id") or not isinstance(row.get("text"), str):
            problems.append(Problem(display, n, "needs entry_id and text"))
            continue
        text = error_lines(row["text"])
        if not text:
            problems.append(Problem(display, n, "no error lines in the text"))
            continue
        found.append(
            ApprovedSignature(
                id=str(row.get("id", n)),
                entry_id=str(row["entry_id"]),
                text=text,
                channel=str(row.get("channel") or "unknown"),
                date=str(row.get("date") or ""),
            )
        )
    return found, problems
