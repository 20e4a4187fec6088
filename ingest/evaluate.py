"""Measure what the article ingester attaches against what a careful reader finds.

`python -m ingest.evaluate FOLDER [--expected FILE]` reads FOLDER's articles, plans them against the
shipped guides (nothing is written), and prints per article: recall (share of the expected families
attached), wrong (share of attached families that are neither expected nor acceptable) and the
conflicts found. The expectations default to FOLDER/families.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ingest.build import load_inputs, plan_articles
from ingest.inputs import GuideError, source_files
from kb.settings import GUIDES_DIR


@dataclass
class Score:
    """One article's figures."""

    name: str
    expected: set[str]
    attached: set[str]
    wrong: set[str]
    missed: set[str]
    conflicts: set[tuple[str, str]] = field(default_factory=set)
    missed_conflicts: set[tuple[str, str]] = field(default_factory=set)

    @property
    def recall(self) -> float:
        return 1.0 if not self.expected else len(self.expected & self.attached) / len(self.expected)

    @property
    def wrong_share(self) -> float:
        return len(self.wrong) / len(self.attached) if self.attached else 0.0


def evaluate(folder: Path, expected_path: Path | None = None, guides_dir: Path = GUIDES_DIR) -> list[Score]:
    """Plan every article in `folder` that the expectations name and score it against `guides_dir`."""
    expected = json.loads((expected_path or folder / "families.json").read_text(encoding="utf-8"))["files"]
    articles = [p for p in source_files([folder]) if p.name in expected]
    guides, _, _ = load_inputs([guides_dir])
    planned = plan_articles(guides, articles)
    scores = []
    for plan in planned.plans:
        spec = expected[plan.article.path.name]
        want = set(spec["families"])
        ok = want | set(spec.get("also_ok", []))
        attached = {p.entry_id for p in plan.attached if p.entry_id and not p.new_entry}
        found = {(c.entry_id, c.rule) for c in plan.conflicts}
        wanted = {(c["family"], c["rule"]) for c in spec.get("conflicts", [])}
        scores.append(
            Score(plan.article.path.name, want, attached, attached - ok, want - attached, found, wanted - found)
        )
    return scores


def total(scores: list[Score]) -> tuple[float, float]:
    """Recall and wrong share over all articles, counted per (article, family)."""
    expected = sum(len(s.expected) for s in scores)
    hit = sum(len(s.expected & s.attached) for s in scores)
    attached = sum(len(s.attached) for s in scores)
    wrong = sum(len(s.wrong) for s in scores)
    return (hit / expected if expected else 1.0), (wrong / attached if attached else 0.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--expected", type=Path, help="expectations file (default FOLDER/families.json)")
    parser.add_argument("--guides", type=Path, default=GUIDES_DIR, help="curated guides (default kb/guides)")
    parser.add_argument("-v", "--verbose", action="store_true", help="name the missed and wrong families")
    args = parser.parse_args(argv)
    try:
        scores = evaluate(args.folder, args.expected, args.guides)
    except (OSError, ValueError, KeyError, GuideError) as exc:
        print(f"ingest.evaluate: {exc}", file=sys.stderr)
        return 2
    width = max((len(s.name) for s in scores), default=10)
    print(f"{'article':<{width}}  expected  attached  recall  wrong  conflicts")
    for s in sorted(scores, key=lambda s: s.name):
        conflicts = f"{len(s.conflicts)}" + (f" (missing {len(s.missed_conflicts)})" if s.missed_conflicts else "")
        print(
            f"{s.name:<{width}}  {len(s.expected):>8}  {len(s.attached):>8}  {s.recall:>6.2f}  "
            f"{s.wrong_share:>5.2f}  {conflicts}"
        )
        if args.verbose:
            for label, items in (("missed", s.missed), ("wrong", s.wrong), ("conflict not found", s.missed_conflicts)):
                if items:
                    print(f"    {label}: {', '.join(sorted(map(str, items)))}")
    recall, wrong = total(scores)
    print(
        f"{'TOTAL':<{width}}  {sum(len(s.expected) for s in scores):>8}  "
        f"{sum(len(s.attached) for s in scores):>8}  {recall:>6.2f}  {wrong:>5.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
