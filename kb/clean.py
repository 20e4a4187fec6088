"""Clean a paste: Slack markup and entities, control characters, escaped JSON, and a bounded focus.

Rules are declared in order in one table; each has a name so it can be tested on its own.
`focus` keeps what the matcher reads of a long paste: its head and tail and the error-looking
lines anywhere in between, with work bounded by the paste's length.
"""

from __future__ import annotations

import bisect
import html
import re

from kb.rules import Rule, rule

MAX_CHARS = 8_000  # work budget per paste (kb.params.Params.focus_chars is the matcher's copy)
HEAD_CHARS = 2_000
TAIL_CHARS = 2_500

_ESCAPES = {"n": "\n", "r": "\n", "t": "\t", '"': '"', "'": "'", "/": "/", "\\": "\\"}


def _unescape(m: re.Match[str]) -> str:
    if m.group(1):
        code = int(m.group(1), 16)
        return chr(code) if code >= 0x20 and not 0xD800 <= code <= 0xDFFF else " "
    return _ESCAPES[m.group(2)]


RULES: tuple[Rule, ...] = (
    rule("surrogates", r"[\ud800-\udfff]", ""),
    rule("control_chars", r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", " "),
    rule("crlf", r"\r\n?", "\n"),
    rule("slack_link_label", r"<((?:https?|mailto):[^|<>\s]{1,2000})\|([^<>]{0,500})>", r"\1 \2"),
    rule("slack_link", r"<((?:https?|mailto):[^|<>\s]{1,2000})>", r"\1"),
    rule("slack_user", r"<@[A-Z0-9]{2,30}(?:\|[^<>]{0,80})?>", "@user"),
    rule("slack_channel", r"<#[A-Z0-9]{2,30}(?:\|([^<>]{0,80}))?>", r"#\1"),
    rule("slack_special", r"<!(?:here|channel|everyone|subteam\^[A-Z0-9]{1,30})(?:\|[^<>]{0,80})?>", ""),
    rule("code_fence", r"```[a-zA-Z0-9_+-]{0,20}\n?", "\n"),
    rule("inline_code", r"`", ""),
)
# An error nested in another tool's error often arrives as JSON escaped inside a JSON string
# (`{"message": "{\n  \"error\": ...`), sometimes twice: one level is undone per round.
JSON_ESCAPE_RULE = rule(
    "json_escapes", r"\\(?:u([0-9a-fA-F]{4})|([nrt\"'/\\]))", _unescape, hints=('\\"', "\\n", "\\u")
)
UNESCAPE_ROUNDS = 3


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


TRACE_BOILERPLATE_RE = re.compile(
    r"^\s{0,12}(?:Traceback \(most recent call last\):|During handling of the above exception|"
    r"The above exception was the direct cause|\^{3,}|~{3,})"
)


def message_lines(text: str) -> str:
    """`text` without stack frames, the source lines under them and traceback boilerplate."""
    out: list[str] = []
    skip_source = False
    for line in text.split("\n"):
        if FRAME_RE.match(line):
            skip_source = True  # the next indented line is the frame's source code
            continue
        if skip_source and line.startswith((" ", "\t")):
            skip_source = False
            continue
        skip_source = False
        if not TRACE_BOILERPLATE_RE.match(line):
            out.append(line)
    return "\n".join(out)


def cap(text: str, limit: int = MAX_CHARS, head: int = HEAD_CHARS) -> str:
    """Keep the head and the tail of a long paste (see `focus` for what the matcher reads)."""
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


# What makes a line of a long log look like the error: each named marker adds one to its score.
# The word markers read the lower-cased text (a case-insensitive alternation is ten times slower).
ERROR_MARKERS: tuple[Rule, ...] = (
    rule("status_name", r"\b[A-Z]{2,}_[A-Z_]{2,40}\b"),
    rule("http_code", r"(?<![\w.:/-])[45]\d\d(?![\w.:/-])"),
    rule("error_word", r"error|exception|fail|fatal|panic|traceback"),
    rule(
        "problem_word",
        r"denied|invalid|exceeded|exhausted|refused|reset|timed? ?out|unavailable|not found|blocked|"
        r"quota|overloaded|closed|expired|unsupported|not supported",
    ),
    rule("json_error", r"\"(?:error|message|status|reason|code|finishreason)\"\s{0,3}:"),
)
LOWER_MARKERS = frozenset({"error_word", "problem_word", "json_error"})
LINE_SCAN_CHARS = 600  # of each line, the markers read this much
CONTEXT_LINES = 1  # kept around each chosen line


def _line_scores(lines: list[str]) -> dict[int, int]:
    """Line index -> how many named markers the line shows; one pass of each marker over the whole text."""
    text = "\n".join(line[:LINE_SCAN_CHARS] for line in lines)
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + min(len(line), LINE_SCAN_CHARS) + 1)
    lowered = text.lower()
    scores: dict[int, int] = {}
    for marker in ERROR_MARKERS:
        seen: set[int] = set()
        for m in marker.pattern.finditer(lowered if marker.name in LOWER_MARKERS else text):
            i = bisect.bisect_right(starts, m.start()) - 1
            if i not in seen:
                seen.add(i)
                scores[i] = scores.get(i, 0) + 1
    return scores


def _pieces(line: str) -> list[str]:
    """A long line cut into pieces of about LINE_SCAN_CHARS, at a space or comma where there is one."""
    out: list[str] = []
    start = 0
    while start < len(line):
        end = min(len(line), start + LINE_SCAN_CHARS)
        if end < len(line):
            cut = max(
                line.rfind(" ", start + LINE_SCAN_CHARS // 2, end), line.rfind(",", start + LINE_SCAN_CHARS // 2, end)
            )
            end = cut + 1 if cut > 0 else end
        out.append(line[start:end])
        start = end
    return out


def focus(text: str, limit: int = MAX_CHARS, head: int = HEAD_CHARS, tail: int = TAIL_CHARS) -> str:
    """At most about `limit` characters of `text`: its head, its tail, and between them the lines that
    look most like an error (with a line of context each), in their original order.

    An error followed by pages of log lines is kept wherever it is; work is one bounded scan per line.
    """
    if len(text) <= limit:
        return text
    lines: list[str] = []
    for line in text.split("\n"):  # a long line (minified JSON) is read in pieces
        lines.extend([line] if len(line) <= 2 * LINE_SCAN_CHARS else _pieces(line))
    keep: set[int] = set()
    used = 0
    for i, line in enumerate(lines):  # the head
        if used + len(line) > head:
            break
        keep.add(i)
        used += len(line) + 1
    used_tail = 0
    for i in range(len(lines) - 1, -1, -1):  # the tail
        if i in keep or used_tail + len(lines[i]) > tail:
            break
        keep.add(i)
        used_tail += len(lines[i]) + 1
    budget = limit - used - used_tail
    scored = sorted(
        ((s, i) for i, s in _line_scores(lines).items() if i not in keep),
        key=lambda si: (-si[0], -si[1]),  # strongest first; among equals the later line (the last error says most)
    )
    for _score, i in scored:
        window = [j for j in range(i - CONTEXT_LINES, i + CONTEXT_LINES + 1) if 0 <= j < len(lines) and j not in keep]
        cost = sum(len(lines[j]) + 1 for j in window)
        if cost > budget:
            if budget < 200:
                break
            continue
        keep.update(window)
        budget -= cost
    out: list[str] = []
    last = -1
    for i in sorted(keep):
        if i != last + 1:
            out.append("...")
        out.append(lines[i])
        last = i
    return "\n".join(out)


def clean(text: str) -> str:
    """Unescape entities and escaped JSON, strip Slack markup and control characters (no length cap)."""
    text = html.unescape(text)
    for r in RULES:
        text = r.sub(text)
    for _ in range(UNESCAPE_ROUNDS):
        if not JSON_ESCAPE_RULE.applies(text):
            break
        text = JSON_ESCAPE_RULE.sub(text, text)
    return text
