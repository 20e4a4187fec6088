"""`gemini-kb misses` and `gemini-kb proposals`: the curation queue from the command line.

`misses --jsonl` prints labelled misses as records of the real paste corpus (tests/data/real/pastes.jsonl),
ready to append to a part file; `proposals approve|reject ID` decide a signature proposal and re-export the
approved ones to the file `gemini-kb ingest` builds from (`kb.settings.approved_file`).
"""

from __future__ import annotations

import argparse
import json
import sys

from bot.cli_errors import EXIT_FAIL, EXIT_OK, print_json
from bot.curation import day_of, open_curation
from kb.settings import approved_file

_curation = open_curation


def _first_line(text: str, width: int = 70) -> str:
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= width else line[: width - 1] + "…"


def cmd_misses(args: argparse.Namespace) -> int:
    curation = _curation(args.settings)
    try:
        if args.jsonl:
            for record in curation.corpus_records():
                sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
            return EXIT_OK
        misses = curation.all_misses(dismissed=args.all)
        if args.json:
            print_json(misses)
            return EXIT_OK
        if not misses:
            print("No misses queued.")
        for m in misses:
            label = m["label"] or "-"
            where = f"{m['channel'] or '-'} {day_of(float(m['at']))}"
            print(f"{m['id']:>5}  {m['status']:<9} {m['kind']:<11} {where:<24} {label:<28} {_first_line(m['text'])}")
        return EXIT_OK
    finally:
        curation.state.close()  # type: ignore[union-attr]


def cmd_proposals(args: argparse.Namespace) -> int:
    curation = _curation(args.settings)
    try:
        if args.verb in ("approve", "reject"):
            outcome = curation.decide(args.id, approve=args.verb == "approve", by="cli")
            if not outcome.ok:
                print(f"gemini-kb: {outcome.text}", file=sys.stderr)
                return EXIT_FAIL
            path = approved_file(args.settings)
            count = curation.export_approved(path)
            print(f"{outcome.text} {count} approved proposals in {path}; `gemini-kb ingest` builds them in.")
            return EXIT_OK
        rows = curation.proposals(decided=args.all)
        if args.json:
            print_json(rows)
            return EXIT_OK
        if not rows:
            print("No proposals to review." if not args.all else "No proposals.")
        for p in rows:
            where = f"slack:{p['channel']}/{p['day']}"
            print(f"{p['id']:>5}  {p['status']:<10} {p['entry_id']:<28} {where:<26} {_first_line(p['text'], 60)}")
        return EXIT_OK
    finally:
        curation.state.close()  # type: ignore[union-attr]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "misses",
        help="pastes the bot missed (abstentions, 'Not it', 👎): list them, or export labelled ones as corpus records",
    )
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="every queued miss as a JSON array (all fields)")
    fmt.add_argument(
        "--jsonl",
        action="store_true",
        help="labelled misses as JSON lines in the format of tests/data/real/pastes.jsonl",
    )
    p.add_argument("--all", action="store_true", help="include dismissed misses")
    p.set_defaults(func=cmd_misses)

    p = sub.add_parser("proposals", help="signature proposals from Slack: list, approve or reject them")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.add_argument("--all", action="store_true", help="include approved and rejected proposals")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    for verb in ("approve", "reject"):
        v = verbs.add_parser(verb, help=f"{verb} proposal ID")
        v.add_argument("id", type=int, metavar="ID")
    p.set_defaults(func=cmd_proposals, verb=None)
