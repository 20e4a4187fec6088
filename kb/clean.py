"""Clean a paste: Slack markup and entities, control characters, and a length cap.

Rules are declared in order in one table; each has a name so it can be tested
on its own.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

MAX_CHARS = 8_000  # work budget per paste; longer pastes keep head and tail
HEAD_CHARS = 2_000


@dataclass(frozen=True)
class CleanRule:
    """A named substitution applied to the raw paste."""

    name: str
    pattern: re.Pattern[str]
    replacement: str


def _rule(name: str, pattern: str, replacement: str, flags: int = 0) -> CleanRule:
    return CleanRule(name, re.compile(pattern, flags), replacement)


RULES: tuple[CleanRule, ...] = (
    _rule("surrogates", r"[\ud800-\udfff]", ""),
    _rule("control_chars", r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", " "),
    _rule("crlf", r"\r\n?", "\n"),
    _rule("slack_link_label", r"<((?:https?|mailto):[^|<>\s]{1,2000})\|([^<>]{0,500})>", r"\1 \2"),
    _rule("slack_link", r"<((?:https?|mailto):[^|<>\s]{1,2000})>", r"\1"),
    _rule("slack_user", r"<@[A-Z0-9]{2,30}(?:\|[^<>]{0,80})?>", "@user"),
    _rule("slack_channel", r"<#[A-Z0-9]{2,30}(?:\|([^<>]{0,80}))?>", r"#\1"),
    _rule("slack_special", r"<!(?:here|channel|everyone|subteam\^[A-Z0-9]{1,30})(?:\|[^<>]{0,80})?>", ""),
    _rule("code_fence", r"```[a-zA-Z0-9_+-]{0,20}\n?", "\n"),
    _rule("inline_code", r"`", ""),
)


FRAME_RE = re.compile(
    r"^[ \t]{0,12}(?:File \"[^\n]{0,400}\", line \d{1,7}|at [^\n]{0,400}:\d{1,7}|[\w./-]{1,300}\.go:\d{1,7})"
)
KEEP_FRAMES = 4  # at each end of a run of stack frames


def collapse_frames(text: str) -> str:
    """Shorten long runs of stack frames to their first and last few: the frames in between rarely say more."""
    lines = text.split("\n")
    if len(lines) < 4 * KEEP_FRAMES:
        return text
    out: list[str] = []
    run: list[str] = []  # lines of the current run of frames (a frame and its source line)

    def flush() -> None:
        frames = [i for i, line in enumerate(run) if FRAME_RE.match(line)]
        if len(frames) > 2 * KEEP_FRAMES + 1:
            head_end, tail_start = frames[KEEP_FRAMES], frames[-KEEP_FRAMES]
            out.extend(run[:head_end])
            out.append(f"  ... {len(frames) - 2 * KEEP_FRAMES} frames ...")
            out.extend(run[tail_start:])
        else:
            out.extend(run)
        run.clear()

    for line in lines:
        if FRAME_RE.match(line) or (run and line.startswith((" ", "\t")) and len(run) < 100_000):
            run.append(line)
        else:
            flush()
            out.append(line)
    flush()
    return "\n".join(out)


def cap(text: str, limit: int = MAX_CHARS, head: int = HEAD_CHARS) -> str:
    """Keep the head and the tail of a long paste: the last lines of a traceback say most."""
    if len(text) <= limit:
        return text
    first = text[:head]
    last = text[len(text) - (limit - head) :]
    # Cut on line boundaries where there is one nearby.
    nl = first.rfind("\n")
    if nl > head // 2:
        first = first[:nl]
    nl = last.find("\n")
    if 0 <= nl < (limit - head) // 4:
        last = last[nl + 1 :]
    return f"{first}\n...\n{last}"


def clean(text: str) -> str:
    """Unescape entities, strip Slack markup and control characters (no length cap)."""
    text = html.unescape(text)
    for rule in RULES:
        text = rule.pattern.sub(rule.replacement, text)
    return text
