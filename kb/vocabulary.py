"""Words people use for each family, learned from labelled pastes of the train side (`make fit`).

A family's vocabulary is the words found in at least MIN_PASTES of its pastes, ranked by how much
more often they appear there than in all pastes; the matcher compares a paste with each family's
vocabulary as with a description (BM25). Words of a single paste (names, paths) never get in.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable

from kb.bm25 import tokens
from kb.clean import clean
from kb.normalize import STOPWORDS, normalize

MIN_PASTES = 2  # a word must come up in this many pastes of the family
WORDS_PER_FAMILY = 60
MIN_LEN = 3


CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]{2,}")


def terms(norm: str) -> list[str]:
    """Content words of normalised text; runs of Chinese, Japanese or Korean script (written without
    spaces) as their two-character pieces, so `连接超时` and `超时了` share `超时`."""
    out = [t for t in tokens(norm) if len(t) >= MIN_LEN and not t.isdigit() and t not in STOPWORDS]
    for run in CJK_RE.findall(norm):
        out += [run[i : i + 2] for i in range(len(run) - 1)]
    return out


def paste_words(text: str) -> set[str]:
    """The distinct content words of a paste."""
    return set(terms(normalize(clean(text))))


def learn(records: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """family -> its most distinctive words, from (label, text) pairs ("none" pastes only count as background)."""
    per_family: dict[str, Counter[str]] = defaultdict(Counter)
    sizes: Counter[str] = Counter()
    everywhere: Counter[str] = Counter()
    total = 0
    for label, text in records:
        words = paste_words(text)
        everywhere.update(words)
        total += 1
        if label != "none":
            per_family[label].update(words)
            sizes[label] += 1
    out: dict[str, list[str]] = {}
    for family, counts in sorted(per_family.items()):
        scored = [
            (counts[w] / sizes[family] * math.log((total + 1) / (everywhere[w] + 1)), w)
            for w in counts
            if counts[w] >= MIN_PASTES
        ]
        scored.sort(key=lambda sw: (-sw[0], sw[1]))
        if scored:
            out[family] = [w for _s, w in scored[:WORDS_PER_FAMILY]]
    return out
