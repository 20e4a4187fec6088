"""`gemini-kb`: the command-line adapter. Each subcommand is a thin layer over a library call."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from ingest.build import build
from ingest.guides import GuideError, load_guides
from kb.settings import GUIDES_DIR, Settings, load_settings
from kb.store import PROJECT_ROOT, KnowledgeBase, KnowledgeBaseError, open_kb

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad usage: printed to stderr, exit status 2."""


def _print_json(data: object) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def open_from_args(args: argparse.Namespace) -> KnowledgeBase:
    """The knowledge base named by --db / GEMINI_KB_DB, built when missing or stale."""
    return open_kb(args.settings.kb_path)


# -- ingest -------------------------------------------------------------------------------


def cmd_ingest(args: argparse.Namespace) -> int:
    inputs = [GUIDES_DIR, *[Path(p) for p in args.paths]]
    if args.check:
        guides, problems = load_guides(inputs, root=PROJECT_ROOT)
        if args.json:
            _print_json({"ok": not problems, "guides": len(guides), "problems": [p.__dict__ for p in problems]})
        else:
            for problem in problems:
                print(problem, file=sys.stderr)
            print(f"{len(guides)} guides valid, {len(problems)} problems", file=sys.stderr if problems else sys.stdout)
        return EXIT_FAIL if problems else EXIT_OK
    try:
        report = build(inputs, args.settings.kb_path, root=PROJECT_ROOT)
    except GuideError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"build failed; {args.settings.kb_path} left unchanged", file=sys.stderr)
        return EXIT_FAIL
    if args.json:
        _print_json(report.as_dict())
    else:
        print(
            f"built {report.path}: {report.entries} entries, {report.signatures} signatures, "
            f"{report.sources} sources, {report.models} model records in {report.seconds:.2f}s"
        )
    return EXIT_OK


# -- list / show --------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    from bot.render_text import quick_reference

    kb = open_from_args(args)
    entries = list(kb.entries.values())
    if args.json:
        _print_json(
            [
                {
                    "id": e.id,
                    "title": e.title,
                    "http_status": e.http_status,
                    "status": e.status,
                    "retryable": e.retryable,
                }
                for e in entries
            ]
        )
    else:
        print(quick_reference(entries))
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from bot.render_text import entry_text

    kb = open_from_args(args)
    entry = kb.entry(args.id)
    if entry is None:
        hints = ", ".join(kb.closest_ids(args.id))
        print(f"no entry '{args.id}'. Closest ids: {hints}. 'gemini-kb list' shows them all.", file=sys.stderr)
        return EXIT_FAIL
    if args.json:
        _print_json(entry.as_dict())
    else:
        print(entry_text(entry), end="")
    return EXIT_OK


# -- wiring -------------------------------------------------------------------------------

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _register_core(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "ingest",
        help="build the knowledge base from kb/guides (plus extra guides/articles)",
        description="Build the knowledge base atomically from kb/guides and any extra guide files or folders.",
    )
    p.add_argument("paths", nargs="*", help="extra guide files or folders")
    p.add_argument("--check", action="store_true", help="validate guides without building; exit 1 on problems")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("list", help="the on-call quick reference: one row per entry")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="show one entry in full")
    p.add_argument("id", help="entry id, e.g. rate-limit-exceeded")
    p.add_argument("--json", action="store_true", help="print the entry as JSON")
    p.set_defaults(func=cmd_show)


def _registrars() -> list[Register]:
    """Subcommand groups; each module owns its parser and handler."""
    from bot import commands

    return [_register_core, *commands.REGISTRARS]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gemini-kb",
        description="Answer Gemini API errors from a knowledge base: look up a pasted error, "
        "browse the quick reference, run checks, or serve the Slack bot.",
    )
    parser.add_argument(
        "--db", metavar="PATH", help="knowledge-base file (default: $GEMINI_KB_DB or ~/.cache/gemini-kb/kb.sqlite)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in _registrars():
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    settings: Settings = load_settings()
    if args.db:
        settings = Settings(kb_path=Path(args.db).expanduser(), state_path=settings.state_path)
    args.settings = settings
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"gemini-kb: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (KnowledgeBaseError, GuideError) as exc:
        print(f"gemini-kb: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
