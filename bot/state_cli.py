"""`gemini-kb state migrate` and `gemini-kb state export --jsonl`: the state store for operators.

Both work on whichever back end the settings name (GEMINI_KB_STATE_URL, else GEMINI_KB_STATE_DB).
"""

from __future__ import annotations

import argparse
import json
import sys

from bot.state_base import EXPORT_KINDS, StateBase
from bot.state_migrations import StateError

EXIT_OK, EXIT_FAIL = 0, 1


def _open(args: argparse.Namespace, *, create: bool) -> StateBase:
    """The configured store (migrated on open); StateError when it cannot be used."""
    settings = args.settings
    if settings.state_url:
        from bot.state_postgres import PostgresState

        return PostgresState(settings.state_url)
    from bot.state import StateDB

    if not create and not settings.state_path.exists():
        raise StateError(f"no state database at {settings.state_path} (GEMINI_KB_STATE_DB)")
    state = StateDB(settings.state_path)
    if not state.persistent:
        state.close()
        raise StateError(f"the state database {settings.state_path} cannot be opened (see the line above)")
    return state


def cmd_migrate(args: argparse.Namespace) -> int:
    state = _open(args, create=True)
    try:
        report = state.migration
        assert report is not None  # every back end migrates on open
        where = state.describe()
    finally:
        state.close()
    if args.json:
        print(json.dumps({"store": where, **report.__dict__}))
    elif report.applied:
        applied = ", ".join(map(str, report.applied))
        print(f"{where}: schema version {report.before} -> {report.after} (applied {applied})")
    else:
        print(f"{where}: already at schema version {report.after}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    kinds = tuple(args.kind or EXPORT_KINDS)
    state = _open(args, create=False)
    try:
        for row in state.export(kinds, days=args.days):
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    except state.errors as exc:
        raise StateError(f"export from {state.describe()} failed: {str(exc).splitlines()[0]}") from exc
    finally:
        state.close()
    return EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "state",
        help="the run-time state store (SQLite file or PostgreSQL): migrate it, export what it recorded",
        description="Works on GEMINI_KB_STATE_URL (postgresql://...) when set, else on the SQLite file "
        "GEMINI_KB_STATE_DB. Everything stored is already redacted.",
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    m = verbs.add_parser("migrate", help="apply the schema migrations this version needs (start-up does it too)")
    m.add_argument("--json", action="store_true", help="print one JSON object")
    m.set_defaults(func=cmd_migrate)
    e = verbs.add_parser("export", help="feedback, misses (pastes with no match) and checks as JSON lines")
    e.add_argument("--jsonl", action="store_true", default=True, help="one JSON object per line (the only format)")
    e.add_argument("--kind", action="append", choices=EXPORT_KINDS, help="only these kinds (repeatable)")
    e.add_argument("--days", type=int, default=None, help="only the last N days (default: everything)")
    e.set_defaults(func=cmd_export)
