"""`gemini-kb check [NAME [ARG]]`: a thin adapter over `run_checks`; the checks and their arguments come
from the registry (`bot.checks.registry`)."""

from __future__ import annotations

import argparse
import json
import sys

from bot.checks.registry import CHECKS, default_kinds
from bot.checks.target import TargetRefused, parse_target
from bot.cli_errors import EXIT_FAIL, EXIT_OK, UsageError, open_from_args
from kb.settings import BASE_URL_ENV, DEFAULT_BASE_URL

DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 120.0


def _plan(args: argparse.Namespace) -> tuple[list[str], str | None, str, str | None]:
    """(kinds, key, base URL, model) from the arguments; UsageError when they make no sense."""
    bot = args.settings.bot
    what, arg = args.what, args.arg
    base_url = args.base_url or bot.base_url
    if what is None:
        return list(default_kinds()), bot.team_key, base_url, None
    spec = CHECKS.get(what)
    if spec is None:
        names = ", ".join(CHECKS)
        raise UsageError(f"unknown check {what!r}: choose {names} (or none for key + endpoint)")
    if spec.arg_required and not arg:
        raise UsageError(f"check {spec.name} needs {spec.arg_help}")
    if arg and spec.arg is None:
        raise UsageError(f"check {spec.name} takes no argument")
    key = bot.team_key
    if spec.arg == "key":
        if arg == "-":
            arg = sys.stdin.readline().strip() or None
        key = arg or key
    elif spec.arg == "base_url":
        base_url = arg or base_url
    model = arg if spec.arg == "model" else None
    return [spec.name], (None if spec.name == "endpoint" else key), base_url, model


def cmd_check(args: argparse.Namespace) -> int:
    # google-genai takes about a second to import: only `check` pays for it, not every gemini-kb command.
    from bot.checks.render import report_text
    from bot.checks.runner import run_checks

    if not 0 < args.timeout <= MAX_TIMEOUT:
        raise UsageError(f"--timeout must be between 0 and {MAX_TIMEOUT:g} seconds")
    kinds, key, base_url, model = _plan(args)
    try:
        # Only the syntax is vetted here (exit 2); where the URL leads is the checks' business.
        parse_target(base_url, allow_private=True, allow_http="endpoint" not in kinds)
    except TargetRefused as exc:
        raise UsageError(str(exc)) from exc
    kb = open_from_args(args)
    report = run_checks(
        kinds,
        key=key,
        base_url=base_url,
        model=model,
        timeout=args.timeout,
        deep=args.deep,
        kb=kb,
        allow_private=args.settings.bot.allow_private,
    )
    if args.json:
        json.dump(report.as_dict(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(report_text(report))
    return EXIT_OK if report.ok else EXIT_FAIL


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    names = ",".join(CHECKS)
    args = "|".join(dict.fromkeys(s.arg_name for s in CHECKS.values() if s.arg))
    described = "; ".join(f"'{s.usage}': {s.help}" for s in CHECKS.values())
    p = sub.add_parser(
        "check",
        help="check an API key, the endpoint, a model, or the served models against the lifecycle table",
        description=f"Check the Gemini API from here. {described}. Without a subcommand: key and endpoint. "
        "The key comes from the argument ('-' reads it from standard input), else GEMINI_API_KEY, else "
        "GOOGLE_API_KEY; it is shown masked only. Exit status: 0 all passed, 1 a check failed, 2 bad usage.",
    )
    p.add_argument("what", nargs="?", metavar=f"{{{names}}}", help="which check (default: key and endpoint)")
    p.add_argument("arg", nargs="?", metavar=args, help="the key, endpoint URL or model name")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds allowed for each network step (default {DEFAULT_TIMEOUT:g})",
    )
    p.add_argument("--base-url", metavar="URL", help=f"API base URL (default: ${BASE_URL_ENV} or {DEFAULT_BASE_URL})")
    p.add_argument("--deep", action="store_true", help="model check: also count tokens to prove the key may call it")
    p.set_defaults(func=cmd_check)
