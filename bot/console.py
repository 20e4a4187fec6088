"""The local console: the bot without Slack. Paste an error, get the same answer as text.

A paste ends at a blank line or at the end of input, so `echo '<error>' | gemini-kb serve`
prints one answer and exits. A line starting with `/gemini-check` runs that command.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TextIO

from bot.chat_command import COMMAND
from bot.render_text import answer_text, reply_text
from bot.service import AnswerService, Context

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


CONSOLE = Context("console")


def answer_paste(text: str, service: AnswerService) -> str:
    """The same answer the bot posts, as text; the paste is recorded like a DM."""
    answer = service.answer(text, CONSOLE)
    assert answer.result is not None or answer.action != "answer"
    return answer_text(answer.result, service.kb) if answer.result is not None else ""


def run_command(line: str, service: AnswerService) -> str:
    """`/gemini-check ...` as in Slack, answered as text."""
    reply = service.run_command(line[len(COMMAND) :], None, CONSOLE)
    return reply_text(reply, service.kb)


def run_console(
    service: AnswerService,
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
        out = run_command(text, service) if kind == "command" else answer_paste(text, service)
        stdout.write(out)
        if interactive:
            stdout.write("\n" + PROMPT)
        stdout.flush()
    if interactive:
        stdout.write("\n")
    return 0
