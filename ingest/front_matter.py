"""The one front-matter splitter: a Markdown file that opens with `---` and closes it with `---`."""

from __future__ import annotations

import re
from dataclasses import dataclass

KEY_RE = re.compile(r"^([A-Za-z_][\w-]*)\s*:\s*(.*)$")


@dataclass(frozen=True)
class FrontMatter:
    """The front matter's text and where it and the body start (1-based line numbers)."""

    text: str
    first_line: int
    body: list[str]
    body_line: int

    def simple_fields(self) -> dict[str, str]:
        """Top-level `key: value` pairs read line by line, for files whose front matter need not be valid YAML."""
        found: dict[str, str] = {}
        for line in self.text.splitlines():
            m = KEY_RE.match(line)
            if m:
                found.setdefault(m.group(1).lower(), m.group(2).strip().strip("'\""))
        return found


def split_front_matter(text: str) -> FrontMatter | None:
    """The front matter of `text`, or None when it has none (or never closes it)."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    for i in range(1, len(lines)):
        if lines[i].strip() == "---":
            return FrontMatter("\n".join(lines[1:i]), 2, lines[i + 1 :], i + 2)
    return None
