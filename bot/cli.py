"""`gemini-kb`: the command-line adapter. Each subcommand is a thin layer over a library call."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable
from pathlib import Path

from bot import ask, curation_cli, serve
from bot.checks import command as check_command
from bot.cli_errors import EXIT_FAIL, EXIT_OK, EXIT_USAGE, UsageError, open_from_args
from bot.cli_errors import print_json as _print_json
from bot.state_migrations import StateError
from ingest.article_text import ARTICLE_SUFFIXES
from ingest.inputs import GuideError, source_files
from kb.settings import GUIDES_DIR, ConfigError, Settings, approved_file, load_settings
from kb.store import PROJECT_ROOT, KnowledgeBaseError, recorded_inputs

# -- ingest -------------------------------------------------------------------------------


def _ingest_inputs(args: argparse.Namespace) -> tuple[list[Path], list[Path]]:
    """(every input of the build, the paths named on this command line), checked."""
    named = [Path(p).expanduser() for p in args.paths]
    for path in named:
        if not path.exists():
            raise UsageError(f"{path}: no such file or folder")
        if path.is_file() and path.suffix.lower() not in ARTICLE_SUFFIXES:
            raise UsageError(f"{path}: not a guide or article (expected {', '.join(ARTICLE_SUFFIXES)})")
    forget = {Path(p).expanduser().resolve() for p in args.forget}
    approved = approved_file(args.settings)
    inputs: dict[Path, Path] = {}
    for path in [GUIDES_DIR, *recorded_inputs(args.settings.kb_path), *named, approved]:
        key = path.resolve()
        if key in forget or key in inputs or (key == approved.resolve() and not path.exists()):
            continue  # no approved proposals (any more): nothing to say
        if not path.exists():
            print(f"gemini-kb: {path} was ingested before but is gone; leaving it out", file=sys.stderr)
            continue
        inputs[key] = path
    return list(inputs.values()), named


def cmd_ingest(args: argparse.Namespace) -> int:
    if args.check or args.dry_run:
        return _ingest(args)
    from ingest.build import kb_lock

    with kb_lock(args.settings.kb_path):  # the inputs the last build recorded are read under the lock too
        return _ingest(args)


def _ingest(args: argparse.Namespace) -> int:
    from ingest.build import build, load_inputs

    inputs, named = _ingest_inputs(args)
    if args.check:
        try:
            guides, _articles, _files = load_inputs(inputs, root=PROJECT_ROOT)
            problems = []
        except GuideError as exc:
            guides, problems = [], exc.problems
        if args.json:
            _print_json({"ok": not problems, "guides": len(guides), "problems": [p.__dict__ for p in problems]})
        else:
            for problem in problems:
                print(problem, file=sys.stderr)
            print(f"{len(guides)} guides valid, {len(problems)} problems", file=sys.stderr if problems else sys.stdout)
        return EXIT_FAIL if problems else EXIT_OK
    if args.dry_run:
        return _dry_run(inputs, named, as_json=args.json)
    if _refresh_approved(args.settings):  # the approved proposals, as the state store has them now
        inputs, named = _ingest_inputs(args)
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
        for warning in report.warnings:
            print(f"gemini-kb: {warning}", file=sys.stderr)
        articles = f", {report.articles} articles" if report.articles else ""
        articles += f", {report.approved} approved proposals" if report.approved else ""
        print(
            f"built {report.path}: {report.entries} entries, {report.signatures} signatures, "
            f"{report.sources} sources{articles}, {report.models} model records in {report.seconds:.2f}s"
        )
    named_files = {f.resolve() for f in source_files(named)}
    failed = [w for w in report.warnings if "not read" in w and any(str(n) in w for n in named_files)]
    return EXIT_FAIL if failed else EXIT_OK


def _refresh_approved(settings: Settings) -> bool:
    """Export the approved signature proposals from the state store (when there is one) to the file the build
    reads; False when there is no store to read (the file, if any, is used as it is)."""
    from bot.curation import open_curation

    if not settings.state_url and not settings.state_path.exists():
        return False
    try:
        curation = open_curation(settings)
    except StateError as exc:
        print(f"gemini-kb: approved proposals not refreshed: {exc}", file=sys.stderr)
        return False
    state = curation.state
    try:
        curation.export_approved(approved_file(settings))
    except state.errors as exc:  # type: ignore[union-attr]
        print(f"gemini-kb: approved proposals not refreshed: {str(exc).splitlines()[0]}", file=sys.stderr)
        return False
    finally:
        state.close()  # type: ignore[union-attr]
    return True


def _dry_run(inputs: list[Path], named: list[Path], *, as_json: bool) -> int:
    """What the named articles (or all recorded ones) would add, without writing anything."""
    from bot.render_text import article_plan_text
    from ingest.build import load_inputs, plan_articles

    guides, articles, _files = load_inputs(inputs, root=PROJECT_ROOT)
    if named:
        wanted = {f.resolve() for f in source_files(named)}
        articles = [a for a in articles if a.resolve() in wanted]
    if not articles:
        raise UsageError(
            "--dry-run needs an article (.html, .htm, .txt, .ipynb, .pdf, or a .md without a guide's front matter)"
        )
    planned = plan_articles(guides, articles, root=PROJECT_ROOT)
    if as_json:
        _print_json({"articles": [p.as_dict() for p in planned.plans], "warnings": planned.warnings})
    else:
        for warning in planned.warnings:
            print(f"gemini-kb: {warning}", file=sys.stderr)
        print("\n".join(article_plan_text(p) for p in planned.plans), end="")
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


def cmd_models(args: argparse.Namespace) -> int:
    """The model lifecycle table as stored in the knowledge base."""
    kb = open_from_args(args)
    rows = [m.as_dict() for m in kb.models.values()]
    if args.json:
        _print_json(rows)
        return EXIT_OK
    table = [(m.name, m.status, m.date or "-", m.replacement or "-", m.entry_id) for m in kb.models.values()]
    head = ("MODEL", "STATUS", "DATE", "REPLACEMENT", "ENTRY")
    widths = [max(len(r[i]) for r in [head, *table]) for i in range(4)]
    for row in [head, *table]:
        print("  ".join(f"{v:<{widths[i]}}" for i, v in enumerate(row[:4])) + "  " + row[4])
    return EXIT_OK


# -- wiring -------------------------------------------------------------------------------

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _register_core(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "ingest",
        help="build the knowledge base from kb/guides plus troubleshooting articles (.html, .htm, .txt, .md)",
        description="Build the knowledge base atomically from kb/guides, the articles and guides ingested before, "
        "and the PATHS given. An article's sections are matched to error families: their causes, steps, code and "
        "FAQ answers are attached with provenance, quoted error messages become signatures, and a section about "
        "an error no family covers becomes a new entry marked unreviewed. Ingesting an article again replaces what "
        "it added before. The previous knowledge base stays in place if the build fails.",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="article or guide files, or folders of them")
    p.add_argument("--check", action="store_true", help="validate guides without building; exit 1 on problems")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="show what the articles would add and where it would go, without writing anything",
    )
    p.add_argument(
        "--forget", action="append", default=[], metavar="PATH", help="drop an article ingested before (repeatable)"
    )
    p.add_argument("--json", action="store_true", help="print the summary (or the dry run) as JSON")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("list", help="the on-call quick reference: one row per entry")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="show one entry in full")
    p.add_argument("id", help="entry id, e.g. rate-limit-exceeded")
    p.add_argument("--json", action="store_true", help="print the entry as JSON")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("models", help="the model lifecycle table: retired, deprecated and active models")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.set_defaults(func=cmd_models)


def _registrars() -> list[Register]:
    """Subcommand groups; each module owns its parser and handler."""
    return [_register_core, ask.register, check_command.register, serve.register, curation_cli.register]


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
    try:
        settings: Settings = load_settings(dict(os.environ))  # the one place the environment is read
    except ConfigError as exc:
        print(f"gemini-kb: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.db:
        settings = dataclasses.replace(settings, kb_path=Path(args.db).expanduser())
    args.settings = settings
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"gemini-kb: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (KnowledgeBaseError, GuideError, StateError) as exc:
        print(f"gemini-kb: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
