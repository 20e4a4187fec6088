"""The real paste corpus: loading, validation and the frozen train/test split.

The split is chosen by source (one GitHub issue or page goes wholly to one side), from a hash of the
source, before any tuning; the ids on the test side are recorded in `test_ids.txt` and never move.

Usage: python -m kb.corpus assemble PARTS_DIR   (merge collected parts into tests/data/real/)
       python -m kb.corpus check                (validate the corpus and print its make-up)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections import Counter
from pathlib import Path

REAL_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "real"
CORPUS = REAL_DIR / "pastes.jsonl"
TEST_IDS = REAL_DIR / "test_ids.txt"
TEST_SHARE = 0.35

SHAPES = frozenset(
    "python-genai python-generativeai vertexai-python langchain litellm llama-index python-other js-genai vercel-ai"
    " js-other go java dotnet curl raw-json gemini-cli gateway-wrapped live-close non-english garbled question"
    " long-log log-line other".split()
)
FIELDS = {"id", "text", "label", "alt", "shape", "source", "lang", "note", "secret"}
# owner/repo#N, a page address, or a Slack channel and day (`gemini-kb misses --jsonl`)
_SOURCE_RE = re.compile(r"^[\w.-]+/[\w.-]+#\d+$|^https?://\S+$|^slack:[A-Z0-9]+/\d{4}-\d{2}-\d{2}$")


def load(path: Path = CORPUS) -> list[dict]:
    """Records of a JSON-lines corpus file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def source_key(source: str) -> str:
    """The unit of the split: an issue (`owner/repo#N`) or a page address without its fragment."""
    return source.strip().split("#", 1)[0] if source.startswith("http") else source.strip().lower()


def side_of(source: str) -> str:
    """'test' or 'train', fixed by a hash of the source so one thread never straddles the split."""
    digest = hashlib.sha256(source_key(source).encode()).digest()
    return "test" if int.from_bytes(digest[:4], "big") / 2**32 < TEST_SHARE else "train"


def problems(records: list[dict], family_ids: set[str]) -> list[str]:
    """What is wrong with the records: unknown fields, labels, shapes, sources, duplicate ids or texts."""
    out: list[str] = []
    seen_ids: set[str] = set()
    seen_texts: dict[str, str] = {}
    for rec in records:
        rid = str(rec.get("id", "?"))
        if extra := set(rec) - FIELDS:
            out.append(f"{rid}: unknown fields {sorted(extra)}")
        if rid in seen_ids:
            out.append(f"{rid}: duplicate id")
        seen_ids.add(rid)
        text = str(rec.get("text", ""))
        if not text.strip():
            out.append(f"{rid}: empty text")
        norm = " ".join(text.split()).lower()
        if norm in seen_texts:
            out.append(f"{rid}: same text as {seen_texts[norm]}")
        seen_texts.setdefault(norm, rid)
        for label in [rec.get("label"), *rec.get("alt", [])]:
            if label != "none" and label not in family_ids:
                out.append(f"{rid}: unknown label {label!r}")
        if rec.get("shape") not in SHAPES:
            out.append(f"{rid}: unknown shape {rec.get('shape')!r}")
        if not _SOURCE_RE.match(str(rec.get("source", ""))):
            out.append(f"{rid}: source is not owner/repo#N, a URL or slack:CHANNEL/DATE: {rec.get('source')!r}")
    return out


def test_ids(path: Path = TEST_IDS) -> set[str]:
    """The frozen test split."""
    if not path.exists():
        return set()
    return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def split(records: list[dict], frozen: set[str] | None = None) -> tuple[list[dict], list[dict]]:
    """(train, test) by the recorded test ids."""
    frozen = test_ids() if frozen is None else frozen
    return [r for r in records if r["id"] not in frozen], [r for r in records if r["id"] in frozen]


def assemble(parts_dir: Path, family_ids: set[str]) -> tuple[int, int, list[str]]:
    """Rebuild the corpus from the part files; new ids join the side of their source, recorded ids stay put."""
    records: dict[str, dict] = {}
    for part in sorted(parts_dir.glob("*.jsonl")):
        for rec in load(part):
            records[rec["id"]] = rec
    ordered = sorted(records.values(), key=lambda r: r["id"])
    bad = problems(ordered, family_ids)
    bad_ids = {b.split(":", 1)[0] for b in bad}
    kept = [r for r in ordered if r["id"] not in bad_ids]
    frozen = test_ids()
    on_test = frozen | {r["id"] for r in kept if r["id"] not in frozen and side_of(r["source"]) == "test"}
    REAL_DIR.mkdir(parents=True, exist_ok=True)
    CORPUS.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept), encoding="utf-8")
    TEST_IDS.write_text("".join(f"{i}\n" for i in sorted(on_test & {r["id"] for r in kept})), encoding="utf-8")
    return len(kept), len(on_test & {r["id"] for r in kept}), bad


def coverage_ids() -> set[str]:
    """The family ids of the shared coverage list, or of the shipped guides when it is absent."""
    shared = Path(__file__).resolve().parent.parent.parent / "shared" / "kb-coverage.md"
    if shared.exists():
        return set(re.findall(r"^\| ([a-z0-9-]+) \|", shared.read_text(encoding="utf-8"), re.M)) - {"id"}
    guides = Path(__file__).resolve().parent / "guides"
    return {p.stem for p in guides.glob("*.md")}


def describe(records: list[dict]) -> str:
    """Counts by label, shape and side."""
    train, test = split(records)
    labels = Counter(r["label"] for r in records)
    shapes = Counter(r["shape"] for r in records)
    sources = len({r["source"] for r in records})
    lines = [f"records {len(records)}  train {len(train)}  test {len(test)}  sources {sources}"]
    lines.append("labels: " + ", ".join(f"{k} {v}" for k, v in sorted(labels.items())))
    lines.append("shapes: " + ", ".join(f"{k} {v}" for k, v in sorted(shapes.items())))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kb.corpus", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("check", help="validate the corpus and print its make-up")
    asm = sub.add_parser("assemble", help="merge part files (JSON lines) into the corpus")
    asm.add_argument("parts", type=Path)
    args = parser.parse_args(argv)
    families = coverage_ids()
    if args.cmd == "assemble":
        kept, on_test, bad = assemble(args.parts, families)
        for line in bad:
            print(f"left out: {line}", file=sys.stderr)
        print(f"corpus: {kept} records, {on_test} on the test side")
    records = load(CORPUS)
    print(describe(records))
    bad = problems(records, families)
    for line in bad:
        print(f"problem: {line}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
