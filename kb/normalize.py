"""Normalise variable parts of error text, in the spirit of log-template mining.

A table of named patterns applied in a fixed order: the same table serves the
signatures at build time and the pastes at match time, so that
`models/gemini-9-ultra is not found` meets the signature written as
`models/<model> is not found`.
"""

from __future__ import annotations

import re

from kb.rules import Rule, apply_all, rule

PLACEHOLDER = "<*>"


def _rule(name: str, pattern: str, replacement: str = PLACEHOLDER, hints: tuple[str, ...] = ()) -> Rule:
    return rule(name, pattern, replacement, flags=re.IGNORECASE, hints=hints)


# Order matters: wide shapes (URLs, placeholders) before narrow ones (numbers).
# Every quantifier is bounded or applies to a disjoint class, so no pattern can
# backtrack catastrophically on hostile input.
RULES: tuple[Rule, ...] = (
    _rule("placeholder", r"<[^<>\s][^<>\n]{0,40}>", hints=("<",)),
    _rule("url", r"\b(?:https?|wss?)://[^\s\"'<>()\[\]{}]{1,2000}", hints=("://",)),
    _rule("email", r"\b[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}\b", hints=("@",)),
    _rule("uuid", r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"),
    _rule("resource", r"\b(files|cachedContents|tunedModels|operations|batches|corpora)/[\w.-]{1,200}", r"\1/<*>"),
    _rule("project", r"\bprojects/[\w.-]{1,200}", "projects/<*>", hints=("projects/",)),
    _rule("model_path", r"\bmodels/[\w.-]{1,200}", "models/<*>", hints=("models/",)),
    _rule(
        "model_name",
        r"\b(?:gemini|gemma|imagen|veo|learnlm|text-bison|chat-bison|text-embedding|embedding|aqa)"
        r"(?:-[\w.]{1,40}){0,8}(?:@[\w.]{1,20})?\b",
    ),
    _rule("hex", r"\b(?=[0-9a-f]{0,63}[0-9])[0-9a-f]{8,64}\b"),
    _rule("token", r"\b(?=[\w-]{0,199}\d)(?=[\w-]{0,199}[A-Za-z])[\w-]{8,200}\b"),
    _rule("duration", r"\b\d{1,12}(?:\.\d{1,9})?(?:ms|s|m|h)\b"),
    _rule("number", r"\b\d{2,}(?:[.,]\d{1,12})*\b"),
)

WHITESPACE_RE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Lower-case `text`, replace variable parts by `<*>` and fold white space."""
    return WHITESPACE_RE.sub(" ", apply_all(RULES, text.lower(), lower=True)).strip()


WORD_RE = re.compile(r"[a-z][a-z0-9_]{2,40}")
STOPWORDS = frozenset(
    [
        "the",
        "and",
        "for",
        "you",
        "your",
        "with",
        "this",
        "that",
        "not",
        "are",
        "was",
        "were",
        "has",
        "have",
        "had",
        "from",
        "but",
        "can",
        "use",
        "please",
        "try",
        "again",
        "into",
        "when",
        "than",
        "then",
        "there",
        "their",
        "which",
        "will",
        "would",
        "should",
        "could",
        "been",
        "being",
        "its",
        "our",
        "out",
        "all",
        "any",
        "one",
        "only",
        "also",
        "more",
        "most",
        "some",
        "such",
        "via",
        "per",
        "what",
        "how",
        "does",
        "did",
        "doing",
        "just",
        "get",
        "got",
        "see",
        "may",
        "might",
        "let",
    ]
)


def words(normalized: str) -> list[str]:
    """Distinct content words of normalised text, in order of first appearance."""
    seen: dict[str, None] = {}
    for word in WORD_RE.findall(normalized):
        if word not in STOPWORDS:
            seen.setdefault(word, None)
    return list(seen)
