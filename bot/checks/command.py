"""`gemini-kb check [key [KEY] | endpoint [URL] | model NAME]`: a thin adapter over `run_checks`."""

from __future__ import annotations

import argparse
import json
import os
import sys

from bot.checks.target import BASE_URL_ENV, DEFAULT_BASE_URL, TargetRefused, allow_private_from_env, parse_target

KEY_ENVS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 120.0
EXIT_OK, EXIT_FAIL = 0, 1


def configured_key(env: dict[str, str] | None = None) -> str | None:
    """The key from GEMINI_API_KEY, else GOOGLE_API_KEY (the order google-genai documents)."""
    env = dict(os.environ) if env is None else env
    return next((env[name].strip() for name in KEY_ENVS if env.get(name, "").strip()), None)


def _plan(args: argparse.Namespace) -> tuple[list[str], str | None, str | None, str | None]:
    """(kinds, key, base URL, model) from the arguments; UsageError when they make no sense."""
    from bot.cli import UsageError

    what, arg = args.what, args.arg
    base_url = args.base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    key, model = configured_key(), None
    if what is None:
        return ["key", "endpoint"], key, base_url, None
    if what == "key":
        if arg == "-":
            arg = sys.stdin.readline().strip() or None
        return ["key"], arg or key, base_url, None
    if what == "endpoint":
        return ["endpoint"], None, arg or base_url, None
    if what == "model":
        if not arg:
            raise UsageError("check model needs a model name, e.g. 'gemini-kb check model gemini-2.5-flash'")
        model = arg
        return ["model"], key, base_url, model
    raise UsageError(f"unknown check {what!r}: choose key, endpoint or model (or none for key + endpoint)")


def cmd_check(args: argparse.Namespace) -> int:
    # google-genai takes about a second to import: only `check` pays for it, not every gemini-kb command.
    from bot.checks.render import report_text
    from bot.checks.runner import run_checks
    from bot.cli import UsageError, open_from_args

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
        allow_private=allow_private_from_env(),
    )
    if args.json:
        json.dump(report.as_dict(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(report_text(report))
    return EXIT_OK if report.ok else EXIT_FAIL


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "check",
        help="check an API key, the endpoint, or a model",
        description="Check the Gemini API from here: 'key [KEY]' lists models with the key, 'endpoint [URL]' "
        "tests DNS, TCP, TLS and HTTP, 'model NAME' gets a model. Without a subcommand: key and endpoint. "
        "The key comes from the argument ('-' reads it from standard input), else GEMINI_API_KEY, else "
        "GOOGLE_API_KEY; it is shown masked only. Exit status: 0 all passed, 1 a check failed, 2 bad usage.",
    )
    p.add_argument("what", nargs="?", metavar="{key,endpoint,model}", help="which check (default: key and endpoint)")
    p.add_argument("arg", nargs="?", metavar="KEY|URL|NAME", help="the key, endpoint URL or model name")
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
