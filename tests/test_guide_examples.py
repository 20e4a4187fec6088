"""Every code block in the guides must run against the installed google-genai.

Python blocks are compiled, and every import, every attribute chain rooted at an imported
name (`genai.Client`, `types.HttpOptions`, `errors.APIError`, `google.genai.types.X`) and
every keyword passed to an SDK model class (`types.HttpOptions(timeout=...)`) is resolved
in this environment. A misspelt or removed name fails the suite. Other blocks must say
which language they are.
"""

from __future__ import annotations

import ast
import importlib
import re
from typing import Any

import pytest
from pydantic import BaseModel

from kb.settings import GUIDES_DIR

FENCE_RE = re.compile(r"^(```|~~~)\s*([\w+-]*)\s*$")
# Labels a non-Python block may carry; Python blocks are checked, the rest only need a label.
OTHER_LANGS = {"bash", "sh", "shell", "console", "json", "text", "javascript", "js", "typescript", "ts", "go", "yaml"}
MISSING = object()
FIELD = object()


def code_blocks(text: str) -> list[tuple[int, str, str]]:
    """Fenced blocks of a Markdown text: (first line, language label, code)."""
    blocks: list[tuple[int, str, str]] = []
    start, lang, lines = 0, "", []
    inside = False
    for number, line in enumerate(text.splitlines(), 1):
        fence = FENCE_RE.match(line.strip())
        if fence and not inside:
            inside, start, lang, lines = True, number, fence.group(2), []
        elif fence and inside:
            inside = False
            blocks.append((start, lang, "\n".join(lines)))
        elif inside:
            lines.append(line)
    return blocks


def _import(dotted: str) -> Any:
    """The module or module attribute named by a dotted path, or MISSING."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        return _getattr_chain(obj, parts[cut:])
    return MISSING


def _getattr_chain(obj: Any, attrs: list[str]) -> Any:
    for attr in attrs:
        if isinstance(obj, type) and issubclass(obj, BaseModel) and attr in obj.model_fields:
            return FIELD  # a pydantic field exists but has no class attribute to follow
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            return MISSING
    return obj


def _chain(node: ast.expr) -> list[str] | None:
    """`a.b.c` as ['a', 'b', 'c']; None when the chain does not start at a plain name."""
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(attrs)]


def unresolved(code: str) -> list[str]:
    """Names a snippet imports or uses from imported modules that do not exist in this environment."""
    tree = ast.parse(code)
    bound: dict[str, str] = {}  # local name -> dotted path it was imported as
    problems: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _import(alias.name) is MISSING:
                    problems.append((node.lineno, f"import {alias.name}"))
                local = alias.asname or alias.name.split(".")[0]
                bound[local] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                if alias.name == "*":
                    continue
                path = f"{node.module}.{alias.name}"
                if _import(path) is MISSING:
                    problems.append((node.lineno, f"from {node.module} import {alias.name}"))
                bound[alias.asname or alias.name] = path
    inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and id(node) not in inner:  # only the longest chain
            chain = _chain(node)
            if chain and chain[0] in bound and _import(".".join([bound[chain[0]], *chain[1:]])) is MISSING:
                problems.append((node.lineno, ".".join(chain)))
        elif isinstance(node, ast.Call):
            chain = _chain(node.func)
            if not chain or chain[0] not in bound:
                continue
            target = _import(".".join([bound[chain[0]], *chain[1:]]))
            if isinstance(target, type) and issubclass(target, BaseModel):
                known = set(target.model_fields) | {f.alias for f in target.model_fields.values() if f.alias}
                for kw in node.keywords:
                    if kw.arg is not None and kw.arg not in known:
                        problems.append((node.lineno, f"{'.'.join(chain)}({kw.arg}=...)"))
    return [f"line {line}: {what}" for line, what in sorted(set(problems))]


def _guide_blocks() -> list[tuple[str, int, str, str]]:
    found = []
    for path in sorted(GUIDES_DIR.glob("*.md")):
        for line, lang, code in code_blocks(path.read_text(encoding="utf-8")):
            found.append((path.name, line, lang, code))
    return found


BLOCKS = _guide_blocks()


def test_the_guides_have_code_blocks():
    assert len([b for b in BLOCKS if b[2] == "python"]) >= 40


@pytest.mark.parametrize(("guide", "line", "lang", "code"), BLOCKS, ids=[f"{b[0]}:{b[1]}" for b in BLOCKS])
def test_code_block_is_labelled_and_resolves(guide, line, lang, code):
    assert lang in OTHER_LANGS | {"python"}, f"{guide}:{line}: code block without a known language label"
    if lang != "python":
        return
    compile(code, f"{guide}:{line}", "exec")
    assert unresolved(code) == [], f"{guide}:{line}"


def test_made_up_names_are_reported():
    snippet = """
import httpx_not_a_package
from google import genai
from google.genai import types, errorz
import google.genai

client = genai.Client(http_options=types.HttpOptions(timeout=1000, retry_option=None))
opts = types.HttpRetryOptionz(attempts=3)
cfg = google.genai.types.GenerateContentConfigg()
ok = types.FinishReason.SAFETY
bad = types.FinishReason.NOT_A_REASON
"""
    assert unresolved(snippet) == [
        "line 2: import httpx_not_a_package",
        "line 4: from google.genai import errorz",
        "line 7: types.HttpOptions(retry_option=...)",
        "line 8: types.HttpRetryOptionz",
        "line 9: google.genai.types.GenerateContentConfigg",
        "line 11: types.FinishReason.NOT_A_REASON",
    ]


def test_real_names_pass():
    snippet = """
import httpx2
from google import genai
from google.genai import errors, types

client = genai.Client(http_options=types.HttpOptions(
    timeout=30_000, retry_options=types.HttpRetryOptions(attempts=3, http_status_codes=[429, 503])))
try:
    pass
except (errors.ClientError, errors.ServerError, httpx2.TimeoutException):
    pass
"""
    assert unresolved(snippet) == []


def test_unlabelled_blocks_are_found():
    text = "## Example\n```\nprint(1)\n```\n```python\nx = 1\n```\n"
    assert code_blocks(text) == [(2, "", "print(1)"), (5, "python", "x = 1")]
