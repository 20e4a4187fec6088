"""The local console: the bot without Slack. Paste an error, get the same answer as text.

A paste ends at a blank line or at the end of input, so `echo '<error>' | gemini-kb serve`
prints one answer and exits. A line starting with `/gemini-check` runs that command.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TextIO

from bot.checks.render import report_text
from bot.render_text import answer_text, entry_text, quick_reference
from bot.slash import COMMAND, HELP_TEXT, Checker, lookup, parse_command
from bot.state import StateDB
from kb.matcher import match
from kb.redact import mask
from kb.store import KnowledgeBase

MAX_PASTE_CHARS = 200_000  # a runaway paste is cut (the matcher keeps head and tail anyway)
BANNER = (
    "gemini-kb console: paste a Gemini API error and end it with a blank line "
    f"(Ctrl-D to quit). '{COMMAND} help' lists the checks.\n"
)
PROMPT = "> "


def pastes(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """('command', line) for a /gemini-check line, ('paste', text) for each blank-line-separated paste."""
    buffer: list[str] = []
    size = 0
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not buffer and line.strip().startswith(COMMAND):
            yield "command", line.strip()
            continue
        if not line.strip():
            if buffer:
                yield "paste", "\n".join(buffer)
                buffer, size = [], 0
            continue
        if size < MAX_PASTE_CHARS:
            buffer.append(line)
            size += len(line) + 1
    if buffer:
        yield "paste", "\n".join(buffer)


def answer_paste(text: str, kb: KnowledgeBase, state: StateDB | None) -> str:
    """The same answer the bot posts, as text; the paste is recorded like a DM."""
    result = match(text, kb)
    if state is not None:
        state.record_match(result, text=text, source="console", channel=None)
    return answer_text(result, kb)


def run_command(line: str, kb: KnowledgeBase, state: StateDB | None, checker: Checker) -> str:
    """`/gemini-check ...` as in Slack, answered as text."""
    cmd = parse_command(line[len(COMMAND) :])
    if cmd.action == "help":
        return HELP_TEXT + "\n"
    if cmd.action == "usage":
        return cmd.error.replace("`", "") + "\n"
    if cmd.action == "list":
        return quick_reference(list(kb.entries.values())) + "\n"
    if cmd.action == "lookup":
        found = lookup(cmd.text, kb, state, source="console")
        return entry_text(found.entry) if found.entry else answer_text(found.result, kb)
    allowed, why = checker.allow("console")
    if not allowed:
        return why + "\n"
    outcome = checker.run(cmd, user=None, source="console")
    if outcome.report is None:
        return outcome.notice + "\n"
    text = report_text(outcome.report)
    return text.replace(cmd.key, mask(cmd.key)) if cmd.key else text


def run_console(
    kb: KnowledgeBase,
    state: StateDB | None,
    checker: Checker,
    *,
    stdin: TextIO,
    stdout: TextIO,
    interactive: bool = False,
) -> int:
    """Answer every paste and command on `stdin` until it ends."""
    if interactive:
        stdout.write(BANNER + PROMPT)
        stdout.flush()
    first = True
    for kind, text in pastes(stdin):
        if not first:
            stdout.write("\n")
        first = False
        out = run_command(text, kb, state, checker) if kind == "command" else answer_paste(text, kb, state)
        stdout.write(out)
        if interactive:
            stdout.write("\n" + PROMPT)
        stdout.flush()
    if interactive:
        stdout.write("\n")
    return 0
