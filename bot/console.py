"""The local console: the bot without Slack. Paste an error, get the same answer as text.

A paste ends at a blank line or at the end of input, so `echo '<error>' | gemini-kb serve`
prints one answer and exits; a chained Python traceback ("The above exception was the direct
cause...", with its blank lines) stays one paste. A line starting with `/gemini-check` runs that
command; `help`, `exit` and `quit` on a line of their own do what they say. On a terminal, lines are
read with readline (editing, history).
"""

from __future__ import annotations

import re
import select
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO

from bot.chat_command import COMMAND, HELP_TEXT
from bot.render_text import answer_text, reply_text
from bot.service import AnswerService, Context

MAX_PASTE_CHARS = 200_000  # a runaway paste is cut (the matcher keeps head and tail anyway)
PROMPT = "> "
WORDS = {"exit": "exit", "quit": "exit", ":q": "exit", "help": "help", "?": "help"}
CONSOLE_HELP = (
    "Paste a Gemini API error (a traceback, a JSON error body, a log line) and end it with a blank line.\n"
    "'help' shows this, 'exit' or Ctrl-D quits. The checks:\n" + HELP_TEXT + "\n"
)
# The lines Python prints between the parts of a chained traceback, each between blank lines.
CHAIN = re.compile(
    r"^(?:The above exception was the direct cause of the following exception:"
    r"|During handling of the above exception, another exception occurred:"
    r"|Traceback \(most recent call last\):)\s*$"
)


def banner(why: str = "") -> str:
    started = f"gemini-kb console ({why}). " if why else "gemini-kb console. "
    return started + "Paste a Gemini API error and end it with a blank line; 'help' for more, 'exit' to quit.\n"


def pastes(lines: Iterable[str], *, more_waiting: Callable[[], bool] = lambda: True) -> Iterator[tuple[str, str]]:
    """('command', line) for a /gemini-check line, ('help' | 'exit', word) for those words alone on a line,
    ('paste', text) for each blank-line-separated paste. At a blank line the next line is looked at when
    `more_waiting()` says it is already there (a paste arrives at once): a chained traceback goes on."""
    source = iter(lines)
    pending: list[str] = []  # a line read ahead
    buffer: list[str] = []
    size = 0

    def next_line() -> str | None:
        if pending:
            return pending.pop()
        return next(source, None)

    while (raw := next_line()) is not None:
        line = raw.rstrip("\r\n")
        if not buffer:
            word = line.strip()
            if word.startswith(COMMAND):
                yield "command", word
                continue
            if word.lower() in WORDS:
                yield WORDS[word.lower()], word
                continue
        if not line.strip():
            if not buffer:
                continue
            if CHAIN.match(buffer[-1].strip()):
                buffer.append("")
                continue
            ahead = next_line() if more_waiting() else None
            if ahead is not None and CHAIN.match(ahead.strip()):
                buffer.append("")
                pending.append(ahead)
                continue
            if ahead is not None:
                pending.append(ahead)
            yield "paste", "\n".join(buffer)
            buffer, size = [], 0
            continue
        if size < MAX_PASTE_CHARS:
            buffer.append(line)
            size += len(line) + 1
    if buffer:
        yield "paste", "\n".join(buffer)


def terminal_lines(prompt: str = PROMPT) -> Iterator[str]:
    """Lines typed at a terminal, with readline's editing and history."""
    import readline  # noqa: F401  (importing it gives input() line editing and history)

    while True:
        try:
            yield input(prompt) + "\n"
        except EOFError:
            return


def _stdin_waiting(stdin: TextIO) -> Callable[[], bool]:
    """Whether more of a paste is already waiting on `stdin` (a terminal); a pipe or file always has it."""
    try:
        fd = stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return lambda: True
    if not stdin.isatty():
        return lambda: True
    return lambda: bool(select.select([fd], [], [], 0.05)[0])


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
    why: str = "",
) -> int:
    """Answer every paste and command on `stdin` until it ends or `exit`. `why` says why the console runs
    (for example: no Slack tokens are set); it is shown in the interactive banner."""
    if interactive:
        stdout.write(banner(why))
        stdout.flush()
    use_readline = interactive and stdin is sys.stdin and stdin.isatty()
    lines = terminal_lines() if use_readline else stdin
    first = True
    for kind, text in pastes(lines, more_waiting=_stdin_waiting(stdin)):
        if kind == "exit":
            break
        if not first:
            stdout.write("\n")
        first = False
        if kind == "help":
            out = CONSOLE_HELP
        else:
            out = run_command(text, service) if kind == "command" else answer_paste(text, service)
        stdout.write(out)
        if interactive and not use_readline:
            stdout.write("\n" + PROMPT)
        stdout.flush()
    if interactive:
        stdout.write("\n")
    return 0
