"""The error in a paste, without the person around it: the lines a program printed (an HTTP status, a
status name, an ErrorInfo reason, an exception, a finish reason, a quota id, a JSON error field), cleaned
the way the matcher cleans a paste and redacted.

A signature proposed from a Slack thread is made of these lines only: the poster's own words never reach
the knowledge base.
"""

from __future__ import annotations

import re

from kb.clean import FRAME_RE, clean
from kb.redact import redact
from kb.signals import extract

MAX_LINES = 12
MAX_LINE_CHARS = 300
MAX_CHARS = 1_200

# Lines that are machine output even without a status or exception name in them.
_MACHINE_LINE = re.compile(
    r"^\s{0,12}(?:[\"']?(?:message|status|code|reason|error|details|domain)[\"']?\s{0,3}[:=]|"
    r"[\w.]{0,120}(?:Error|Exception)\b[^\n]{0,20}:|\{\s{0,3}[\"']error[\"'])"
)


# Where the machine output on a line begins: what comes before it is the person talking ("what is this? ").
_START = re.compile(
    r"[\[{]|\b[\w.]*(?:Error|Exception|ERROR)\b|\b[1-5]\d\d\b|\b[A-Z][A-Z0-9]*_[A-Z0-9_]{3,}\b|"
    r"[\"']?(?:message|status|code|reason|error)[\"']?\s{0,3}[:=]"
)


def _machine_part(line: str) -> str:
    """The line from where its machine output begins."""
    found = _START.search(line)
    return line[found.start() :] if found else line


# An exception name, not any qualified name (`genai.Client` in a line of code is not an error).
_EXCEPTION_NAME = re.compile(
    r"(?:Error|Exception|Exhausted|Unavailable|Timeout|Denied|Exceeded|Failure|NotFound|Invalid|Cancelled|"
    r"Refused|Reset|Unauthenticated|Argument)$"
)


def _is_error_line(line: str) -> bool:
    if _MACHINE_LINE.match(line):
        return True
    s = extract(line)
    exceptions = [e for e in s.exceptions if _EXCEPTION_NAME.search(e)]
    return bool(
        (s.http_status and s.http_status >= 400) or s.status or s.reasons or exceptions or s.finish_reasons
    ) or (bool(s.quota_ids))


def error_lines(text: str) -> str:
    """The error-looking lines of `text` (cleaned, redacted, capped); empty when there are none."""
    cleaned, _ = redact(clean(text))
    kept: list[str] = []
    source_line = False
    for raw in cleaned.split("\n"):
        if FRAME_RE.match(raw):
            source_line = True  # a frame names the caller's files, and the line after it is their code
            continue
        if source_line and raw.startswith((" ", "\t")):
            source_line = False
            continue
        source_line = False
        line = " ".join(raw.split())
        if not line or not _is_error_line(line):
            continue
        line = _machine_part(line)
        if line in kept:
            continue
        kept.append(line[:MAX_LINE_CHARS])
        if len(kept) >= MAX_LINES:
            break
    return "\n".join(kept)[:MAX_CHARS].strip()
