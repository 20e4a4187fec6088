"""`make bench`: matcher latency and accuracy, at scale, against two baselines.

Prints in one run: p50/p99 over the team-written and real pastes up to 8 KB; the
worst time for generated logs of 8 KB to 1 MB with the error in the middle; the
same at 1,000 and 10,000 entries (a synthetic knowledge base around the shipped
one); and FTS5-bm25-only and rapidfuzz-over-everything baselines side by side.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rapidfuzz import fuzz, process

from ingest.build import write_database
from ingest.guides import Guide, Signature, load_guides
from kb.clean import clean, focus
from kb.corpus import CORPUS, load
from kb.evaluate import DEFAULT_SET, load_set
from kb.matcher import Matcher
from kb.normalize import normalize, words
from kb.redact import redact
from kb.settings import GUIDES_DIR
from kb.store import PROJECT_ROOT, KnowledgeBase

VOCAB = """request model quota token stream upload cache schema tool function region billing project key
service endpoint handler worker session batch tenant shard index vector pipeline payload header
timeout deadline retry backoff limit budget config field value parameter version method region
""".split()


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered), p99


def _synthetic(n: int, base: list[Guide], rng: random.Random) -> list[Guide]:
    """`n` guides: the shipped ones plus made-up families whose signatures reuse real words."""
    real_words = sorted({w for g in base for s in g.signatures for w in words(normalize(s.text))})
    out = list(base)
    for i in range(n - len(base)):
        sigs = []
        for j in range(8):
            phrase = " ".join(rng.choice(real_words + VOCAB) for _ in range(rng.randint(3, 9)))
            sigs.append(Signature("messages", f"{phrase} e{i}x{j}", 0))
        sigs.append(Signature("reasons", f"SYNTH_REASON_{i}", 0))
        out.append(
            Guide(
                path=f"synthetic/{i}.md",
                id=f"synthetic-{i}",
                title=f"Synthetic family {i}: " + " ".join(rng.choice(VOCAB) for _ in range(4)),
                http_status=rng.choice([400, 403, 404, 429, 500, None]),
                status=None,
                retryable="no",
                docs=["https://example.invalid/"],
                signatures=sigs,
                summary=" ".join(rng.choice(real_words + VOCAB) for _ in range(25)),
                causes=[" ".join(rng.choice(VOCAB) for _ in range(8)) for _ in range(3)],
                fix=["step one", "step two"],
                diagnosis=["look"],
            )
        )
    return out


def _open(guides: list[Guide], folder: Path, name: str) -> KnowledgeBase:
    path = folder / name
    write_database(guides, path, digest=name, inputs=[], source_hashes={})
    return KnowledgeBase(path)


def _long_paste(records: list[dict[str, object]], size: int, rng: random.Random) -> str:
    """A log of about `size` bytes with a real error a third of the way in, followed by plain log lines."""
    error = next(str(r["text"]) for r in records if r["label"] == "rate-limit-exceeded")
    lines = []
    while sum(len(x) + 1 for x in lines) < size - len(error):
        n = rng.randint(10, 99_999)
        lines.append(
            f"2026-11-29T10:{n % 60:02d}:{n % 59:02d}Z INFO worker-{n % 7} handled request {n} in {n % 900} ms"
        )
    cut = len(lines) // 3
    return "\n".join([*lines[:cut], error, *lines[cut:]])


# CPU time of this process: on a machine shared with other jobs, wall time measures the neighbours too.
# (The matcher is single-threaded, so on a quiet machine the two agree; `--wall` measures wall time.)
CLOCK = time.process_time


def _time(fn: Callable[[str], object], texts: list[str], repeat: int = 1) -> list[float]:
    samples = []
    for _ in range(repeat):
        for text in texts:
            started = CLOCK()
            fn(text)
            samples.append((CLOCK() - started) * 1000)
    return samples


def _prepare(text: str) -> str:
    return normalize(focus(redact(clean(text))[0]))


def fts_only(kb: KnowledgeBase, matcher: Matcher) -> Callable[[str], str | None]:
    """Baseline: the entry of the best FTS5 bm25() signature row, no scoring step."""

    def run(text: str) -> str | None:
        terms = matcher.evidence._query_terms(_prepare(text))
        hits = kb.search_signatures(" OR ".join(f'"{t}"' for t in terms), 1)
        return kb.signature_by_id[hits[0][0]].entry_id if hits else None

    return run


def fuzzy_only(kb: KnowledgeBase) -> Callable[[str], str | None]:
    """Baseline: rapidfuzz partial_ratio of the paste against every signature, no candidate step."""
    sigs = [s for s in kb.signatures if s.kind != "prose"]
    choices = [s.norm for s in sigs]

    def run(text: str) -> str | None:
        norm = _prepare(text)[-4000:]
        best = process.extractOne(norm, choices, scorer=lambda a, b, **_: fuzz.partial_ratio(b, a))
        return sigs[best[2]].entry_id if best else None

    return run


def _accuracy(fn: Callable[[str], str | None], gemini: list[dict[str, object]]) -> float:
    return sum(fn(str(r["text"])) == r["label"] for r in gemini) / len(gemini)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.matcher", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="passes over the pastes (default 3)")
    parser.add_argument("--sizes", default="1000,10000", help="synthetic knowledge-base sizes")
    parser.add_argument("--wall", action="store_true", help="time with the wall clock instead of CPU time")
    args = parser.parse_args(argv)
    global CLOCK
    if args.wall:
        CLOCK = time.perf_counter
    rng = random.Random(7)
    records = load_set(DEFAULT_SET)
    gemini = [r for r in records if r["label"] != "none"]
    real = load(CORPUS) if CORPUS.exists() else []
    texts = [str(r["text"]) for r in [*records, *real]]
    small = [t for t in texts if len(t.encode()) <= 8192]  # the p50/p99 targets are for pastes up to 8 KB
    big = {kb_: _long_paste(records, kb_ * 1000, rng) for kb_ in (8, 40, 200, 1000)}
    base, problems = load_guides([GUIDES_DIR], root=PROJECT_ROOT)
    if problems:
        raise SystemExit("\n".join(map(str, problems)))

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sizes = [len(base), *[int(s) for s in args.sizes.split(",") if s]]
        for size in sizes:
            started = time.perf_counter()
            kb = _open(_synthetic(size, base, rng), Path(tmp), f"kb-{size}.sqlite")
            matcher = Matcher(kb)
            load_s = time.perf_counter() - started

            def ours(text: str, m: Matcher = matcher) -> str | None:
                top = m.match(text).top
                return top.id if top else None

            for text in texts[:5]:
                ours(text)  # warm caches
            p50, p99 = _percentiles(_time(ours, small, args.repeat))
            for t in big.values():
                ours(t)  # once untimed: the first long paste of a process also pays one-off set-up
            worst = {k: max(_time(ours, [t], 5 if k < 1000 else 2)) for k, t in big.items()}
            rows.append(("gemini-kb", size, _accuracy(ours, gemini), p50, p99, worst, load_s))
            for name, fn in (("fts5-bm25 only", fts_only(kb, matcher)), ("rapidfuzz all", fuzzy_only(kb))):
                if name == "rapidfuzz all" and size > len(base):
                    continue  # minutes per pass at scale: the point is made on the shipped KB
                b50, b99 = _percentiles(_time(fn, small))
                bw = {k: max(_time(fn, [t], 2)) for k, t in big.items() if k <= 200}
                rows.append((name, size, _accuracy(fn, gemini), b50, b99, bw, 0.0))

    print(
        f"{'wall' if args.wall else 'CPU'} time; pastes: {len(small)} up to 8 KB"
        f" ({len(records)} team-written, {len(real)} real) for p50/p99, x{args.repeat};"
        " generated logs of 8, 40, 200 and 1000 KB with the error a third of the way in: worst of a few runs;"
        " top1 on the team-written set"
    )
    header = ("method", "entries", "top1", "p50 ms", "p99 ms", "8KB max", "40KB max", "200KB max", "1MB max", "load s")
    print(f"{header[0]:<16} " + " ".join(f"{h:>9}" for h in header[1:]))
    for name, size, acc, p50, p99, worst, load_s in rows:
        cells = [f"{worst[k]:>9.1f}" if k in worst else f"{'-':>9}" for k in (8, 40, 200, 1000)]
        print(f"{name:<16} {size:>9} {acc:>9.3f} {p50:>9.2f} {p99:>9.2f} {' '.join(cells)} {load_s:>9.2f}")
    print(
        "targets: p99 <= 10 ms up to 8 KB on the shipped KB and <= 15 ms at 10,000 entries;"
        " <= 100 ms for 200 KB; <= 500 ms up to 1 MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
