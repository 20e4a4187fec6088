"""`/gemini-check ...` as text: parse it into a `CheckCommand`, and its help, from the check registry.

Platform-neutral: Slack's slash command, the console and the answer buttons all parse with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.checks.registry import CHECKS, default_kinds, help_lines
from kb.redact import redact

COMMAND = "/gemini-check"
FLAGS = ("share", "deep")
DIAGNOSE_CHOICES = ("private", "thread")  # where the "Diagnose this error" shortcut answers a person


def _help() -> str:
    lines = [
        f"*{COMMAND}* checks the Gemini API from the bot's host and looks errors up.",
        f"• `{COMMAND}` — check the team API key and the endpoint",
        *help_lines(COMMAND),
        f"• `{COMMAND} list` — the quick reference of every error family",
        f"• `{COMMAND} digest on|off` — a weekly digest in this channel (top errors, misses, failed checks)",
        f"• `{COMMAND} <error text or entry id>` — look it up in the knowledge base",
        f"• `{COMMAND} diagnose private` (or `thread`) — where the *Diagnose this error* shortcut answers you",
        "Add `share` to post the result in the channel. Checks are limited per person and for the whole team "
        "per minute.",
    ]
    return "\n".join(lines)


HELP = _help()
HELP_TEXT = re.sub(r"[*`]", "", HELP)


@dataclass(frozen=True)
class CheckCommand:
    """What the user asked for. `key` never appears in a repr (and so in no log line)."""

    action: str  # help | list | checks | lookup | usage | digest (text: on | off) | setting (text: private | thread)
    kinds: tuple[str, ...] = ()
    key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    model: str | None = None
    share: bool = False
    deep: bool = False
    text: str = field(default="", repr=False)  # lookup text (may hold a secret until redacted)
    error: str = ""


def _looks_like_secret(token: str) -> bool:
    """The whole word is a key or token (what the redaction rules would hide)."""
    redacted, kinds = redact(token)
    return bool(kinds) and redacted.startswith("[REDACTED") and redacted.endswith("]")


def parse_command(text: str) -> CheckCommand:
    """`help` | `list` | a check from the registry with its argument | nothing | text to look up;
    `share` and `deep` may lead or trail."""
    words = (text or "").split()
    flags = set()
    while words and words[-1].lower() in FLAGS:
        flags.add(words.pop().lower())
    while words and words[0].lower() in FLAGS:
        flags.add(words.pop(0).lower())
    share, deep = "share" in flags, "deep" in flags
    if not words:
        return CheckCommand("checks", default_kinds(), share=share, deep=deep)
    head, rest = words[0].lower(), words[1:]
    if head in ("help", "-h", "--help", "?"):
        return CheckCommand("help")
    if head in ("list", "ref", "reference") and not rest:
        return CheckCommand("list", share=share)
    if head == "digest" and len(rest) <= 1:
        if rest and rest[0].lower() in ("on", "off"):
            return CheckCommand("digest", text=rest[0].lower())
        return CheckCommand("usage", error=f"`{COMMAND} digest on` or `{COMMAND} digest off`")
    if head == "diagnose":
        if len(rest) == 1 and rest[0].lower() in DIAGNOSE_CHOICES:
            return CheckCommand("setting", text=rest[0].lower())
        return CheckCommand("usage", error=f"`{COMMAND} diagnose private` or `{COMMAND} diagnose thread`")
    spec = CHECKS.get(head)
    if spec is not None and spec.arg_required and len(rest) != 1:
        return CheckCommand("usage", error=f"`{COMMAND} {spec.usage}` needs {spec.arg_help}")
    if spec is not None and len(rest) <= (1 if spec.arg else 0):
        options = {spec.arg: rest[0] if rest else None} if spec.arg else {}
        return CheckCommand("checks", (spec.name,), share=share, deep=deep, **options)  # type: ignore[arg-type]
    if len(words) == 1 and _looks_like_secret(words[0]):
        # A bare key: check it rather than look it up (and so keep it out of every record).
        return CheckCommand("checks", ("key",), key=words[0], share=share, deep=deep)
    body = (text or "").strip()
    for flag in flags:  # only the leading/trailing flag words, not words inside the text
        body = re.sub(rf"^\s*{flag}\b|\b{flag}\s*$", "", body, flags=re.I).strip()
    return CheckCommand("lookup", text=body, share=share)
