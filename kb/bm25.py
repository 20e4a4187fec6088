"""An in-memory BM25 index over short documents (signatures, descriptions), scored like SQLite FTS5.

FTS5 computes bm25() for every row that matches any query term; at 10,000 entries that was most
of a paste's time. Here each term's posting list holds its final per-document weight (idf times
the saturated term frequency, both known at build time), so a query is a few dictionary sums.
"""

from __future__ import annotations

import heapq
import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable
from operator import itemgetter

# FTS5's unicode61 tokenizer: runs of letters and digits, lower-cased; everything else separates.
TOKEN_RE = re.compile(r"[^\W_]{1,64}")


def tokens(text: str) -> list[str]:
    """The terms of `text`, as unicode61 would split them."""
    return TOKEN_RE.findall(text.lower())


def with_pairs(text: str) -> list[str]:
    """The terms of `text` and each pair of neighbouring terms (`no_text`): a phrase says what its words
    alone do not ("no text" is not "text")."""
    words = tokens(text)
    return words + [f"{a}_{b}" for a, b in itertools.pairwise(words)]


class BM25Index:
    """Documents by integer id; `search` returns (id, score) best first, scores positive."""

    def __init__(self, docs: Iterable[tuple[int, str]], *, k1: float = 1.2, b: float = 0.75, pairs: bool = False):
        split = with_pairs if pairs else tokens
        counts: dict[int, Counter[str]] = {doc_id: Counter(split(text)) for doc_id, text in docs}
        self.size = len(counts)
        lengths = {doc_id: sum(c.values()) for doc_id, c in counts.items()}
        avg = (sum(lengths.values()) / self.size) if self.size else 1.0
        df: Counter[str] = Counter()
        for c in counts.values():
            df.update(c.keys())
        self.df: dict[str, int] = dict(df)
        self.postings: dict[str, list[tuple[int, float]]] = {}
        for doc_id, c in counts.items():
            norm = k1 * (1 - b + b * lengths[doc_id] / (avg or 1.0))
            for term, tf in c.items():
                n = df[term]
                # FTS5's idf, floored at a small positive value as it does for very common terms.
                idf = max(math.log((self.size - n + 0.5) / (n + 0.5)), 1e-6)
                self.postings.setdefault(term, []).append((doc_id, idf * tf * (k1 + 1) / (tf + norm)))

    def scores(self, terms: Iterable[str], *, max_postings: int | None = None) -> dict[int, float]:
        """BM25 score of every document containing at least one of `terms` (each term counted once).

        Terms are taken in the order given (put the most specific first); once `max_postings` entries
        have been read, further terms are left out, so the work per query is bounded at any index size."""
        acc: dict[int, float] = {}
        get = acc.get
        read = 0
        for term in dict.fromkeys(terms):
            postings = self.postings.get(term, ())
            if max_postings is not None and read and read + len(postings) > max_postings:
                break
            read += len(postings)
            for doc_id, weight in postings:
                acc[doc_id] = get(doc_id, 0.0) + weight
        return acc

    def search(self, terms: Iterable[str], limit: int, *, max_postings: int | None = None) -> list[tuple[int, float]]:
        """The `limit` best documents for `terms`, best first (ties by id, so results are deterministic)."""
        acc = self.scores(terms, max_postings=max_postings)
        best = heapq.nlargest(limit, acc.items(), key=itemgetter(1))
        return sorted(best, key=lambda kv: (-kv[1], kv[0]))
