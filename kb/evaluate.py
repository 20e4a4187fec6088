"""`make eval`: accuracy and abstention of the matcher on the labelled pastes.

Usage: python -m kb.evaluate [tests/data/pastes.jsonl] [--db PATH] [--misses] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from kb.matcher import match
from kb.settings import load_settings
from kb.store import KnowledgeBase, open_kb

DEFAULT_SET = Path(__file__).resolve().parent.parent / "tests" / "data" / "pastes.jsonl"


@dataclass
class Report:
    """Eval figures over a labelled set."""

    gemini: int = 0
    none: int = 0
    top1: int = 0
    top3: int = 0
    confident_top1: int = 0
    abstained: int = 0
    false_confident: int = 0
    misses: list[dict[str, object]] = field(default_factory=list)
    per_family: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))

    def figures(self) -> dict[str, float]:
        g, n = max(self.gemini, 1), max(self.none, 1)
        return {
            "top1": self.top1 / g,
            "top3": self.top3 / g,
            "confident_correct": self.confident_top1 / g,
            "wrongly_abstained": self.abstained / g,
            "false_confident_on_none": self.false_confident / n,
        }


def load_set(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def evaluate(kb: KnowledgeBase, records: list[dict[str, object]]) -> Report:
    """Run every paste through the matcher and count."""
    report = Report()
    for rec in records:
        label, text = str(rec["label"]), str(rec["text"])
        result = match(text, kb, limit=3)
        ids = [m.id for m in result.matches]
        if label == "none":
            report.none += 1
            if result.confident:
                report.false_confident += 1
                report.misses.append({"id": rec.get("id"), "label": label, "got": ids[:1], "confident": True})
            continue
        report.gemini += 1
        fam = report.per_family[label]
        fam["n"] += 1
        if ids[:1] == [label]:
            report.top1 += 1
            fam["top1"] += 1
            if result.confident:
                report.confident_top1 += 1
        if label in ids:
            report.top3 += 1
        if not result.confident:
            report.abstained += 1
            fam["abstained"] += 1
        if ids[:1] != [label] or not result.confident:
            report.misses.append(
                {
                    "id": rec.get("id"),
                    "label": label,
                    "got": ids,
                    "confident": result.confident,
                    "why": result.top.why if result.top else "",
                    "abstain": result.abstain_reason,
                }
            )
    return report


def render(report: Report) -> str:
    f = report.figures()
    lines = [
        f"Gemini pastes: {report.gemini}   none pastes: {report.none}",
        f"top-1 accuracy            {f['top1']:.3f}",
        f"top-3 accuracy            {f['top3']:.3f}",
        f"confident and correct     {f['confident_correct']:.3f}",
        f"wrongly abstained         {f['wrongly_abstained']:.3f}",
        f"false confident on none   {f['false_confident_on_none']:.3f}",
        "",
        "Per-family misses (top-1 wrong or abstained):",
        f"  {'family':<26} {'n':>3} {'top1':>5} {'abst':>5}",
    ]
    for fam, c in sorted(report.per_family.items(), key=lambda kv: (kv[1]["top1"] / kv[1]["n"], kv[0])):
        if c["top1"] < c["n"] or c["abstained"]:
            lines.append(f"  {fam:<26} {c['n']:>3} {c['top1']:>5} {c['abstained']:>5}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kb.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=str(DEFAULT_SET), help="labelled JSON lines")
    parser.add_argument("--db", help="knowledge-base file (default: the configured one, built if needed)")
    parser.add_argument("--misses", action="store_true", help="list every miss")
    parser.add_argument("--json", action="store_true", help="print figures as JSON")
    args = parser.parse_args(argv)
    kb = open_kb(Path(args.db) if args.db else load_settings().kb_path)
    report = evaluate(kb, load_set(Path(args.path)))
    if args.json:
        print(json.dumps({"figures": report.figures(), "misses": report.misses}, indent=2))
    else:
        print(render(report))
        if args.misses:
            print("\nMisses:")
            for m in report.misses:
                print(f"  {m}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
