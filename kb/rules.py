"""One rule type for the matcher's declared tables (cleaning, normalisation, signals).

A rule is a name, a bounded pattern, what to put in place of a match (text, a function, or
nothing for extraction rules whose group 1 is the value) and optional hints: lower-case literals
one of which must be in the text for the rule to run at all (a cheap pre-filter).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """A named pattern in an ordered table."""

    name: str
    pattern: re.Pattern[str]
    replacement: str | Callable[[re.Match[str]], str] | None = None
    hints: tuple[str, ...] = ()

    def applies(self, lowered: str) -> bool:
        """Whether a hint is present (always, when the rule has none)."""
        return not self.hints or any(h in lowered for h in self.hints)

    def sub(self, text: str, lowered: str | None = None) -> str:
        """`text` with every match replaced (unchanged when no hint is present)."""
        if self.replacement is None:
            raise ValueError(f"rule {self.name} extracts; it does not replace")
        if self.hints and not self.applies(text.lower() if lowered is None else lowered):
            return text
        return self.pattern.sub(self.replacement, text)


def rule(
    name: str,
    pattern: str,
    replacement: str | Callable[[re.Match[str]], str] | None = None,
    *,
    flags: int = 0,
    hints: tuple[str, ...] = (),
) -> Rule:
    """Compile one rule."""
    return Rule(name, re.compile(pattern, flags), replacement, hints)


def apply_all(rules: tuple[Rule, ...], text: str, *, lower: bool = False) -> str:
    """Run a replacement table in order (hints are checked against the current text)."""
    for r in rules:
        text = r.sub(text, text if lower else None)
    return text
