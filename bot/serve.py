"""`gemini-kb serve` (Socket Mode, HTTP behind waitress, or the local console), and the commands that open
the state store for operators: `gemini-kb stats` and `gemini-kb state migrate|export`.

The store is chosen once from the settings (`bot.state.open_state`): GEMINI_KB_STATE_URL (PostgreSQL,
shared by replicas) when set, else the SQLite file GEMINI_KB_STATE_DB."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import logging
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from bot.cli_errors import UsageError, open_from_args
from bot.http_server import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_THREADS, HttpServer, WSGIApp
from kb.schema import connect_ro

if TYPE_CHECKING:
    from bot.state import StateSummary

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
__all__ = ["HttpServer", "make_wsgi"]


# -- HTTP mode ----------------------------------------------------------------------------


def health(kb_path: Path, *, entries: int) -> tuple[bool, dict[str, object]]:
    """Whether the knowledge base is loaded and its file still readable."""
    try:
        conn = connect_ro(kb_path)
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return False, {"ok": False, "kb_loaded": False, "error": f"knowledge base unreadable: {exc}"}
    ok = entries > 0
    return ok, {
        "ok": ok,
        "kb_loaded": ok,
        "entries": entries,
        "kb_version": meta.get("input_hash", "")[:12],
        "kb_built_at": meta.get("built_at"),
    }


def _refuse(start_response: Callable, status: str, data: bytes) -> Iterable[bytes]:
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def malformed(body: bytes, content_type: str) -> str | None:
    """Why a Slack request body cannot be handled (not the JSON object or form Slack sends), or None."""
    try:
        text = body.decode("utf-8")
        if "json" in content_type:
            data = json.loads(text)
        else:
            form = dict(parse_qsl(text, keep_blank_values=True))
            if "payload" not in form:
                return None if form else "an empty form"
            data = json.loads(form["payload"])
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return f"not {'JSON' if 'json' in content_type else 'a form'}: {type(exc).__name__}"
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not an object"
    for name in ("event", "user", "container", "channel"):
        if name in data and data[name] is not None and not isinstance(data[name], dict):
            return f"{name!r} is a {type(data[name]).__name__}, not an object"
    return None


def make_wsgi(bot) -> WSGIApp:
    """Slack's events at /slack/events (signed requests only, via bolt) and /healthz."""
    from slack_bolt.adapter.wsgi import SlackRequestHandler
    from slack_sdk.signature import SignatureVerifier

    slack = SlackRequestHandler(bot.app, path=EVENTS_PATH)
    verifier = SignatureVerifier(bot.settings.signing_secret) if bot.settings.signing_secret else None

    def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            ok, data = health(bot.kb.path, entries=len(bot.kb.entries))
            data.update(bot.state.health())  # a degraded state store keeps the replica in service (200)
            body = json.dumps(data).encode()
            start_response(
                "200 OK" if ok else "503 Service Unavailable",
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(body))),
                    ("Cache-Control", "no-store"),
                ],
            )
            return [body]
        if verifier is not None and environ.get("PATH_INFO") == EVENTS_PATH:
            # Verify before bolt parses anything: a malformed body or timestamp from an unsigned request
            # must get a 401, not a 500 and a traceback in the log.
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            try:
                valid = verifier.is_valid(
                    body=body,
                    timestamp=environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP"),
                    signature=environ.get("HTTP_X_SLACK_SIGNATURE"),
                )
            except (ValueError, TypeError, OverflowError):  # a timestamp that is not a whole number
                valid = False
            if not valid:
                return _refuse(start_response, "401 Unauthorized", b'{"error": "invalid request"}')
            problem = malformed(body, environ.get("CONTENT_TYPE") or "")
            if problem:  # signed, so from Slack or someone holding the secret: say so in one line, no traceback
                log.warning("refused a signed request to %s: %s", EVENTS_PATH, problem)
                return _refuse(start_response, "400 Bad Request", b'{"error": "malformed request"}')
        return slack(environ, start_response)

    return application


# -- serve ------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.logs import configure_logging
    from bot.state import open_state

    config = args.settings.bot
    if args.no_console and not config.bot_token and not args.http:
        raise UsageError(
            "no SLACK_BOT_TOKEN: set SLACK_BOT_TOKEN and SLACK_APP_TOKEN (Socket Mode), or SLACK_BOT_TOKEN and "
            "SLACK_SIGNING_SECRET with `serve --http`; see docs/slack-setup.md"
        )
    use_console = args.console or (not config.bot_token and not args.http)
    # The console's standard output is the answer; only warnings go to stderr unless asked.
    try:  # LOG_LEVEL, LOG_FORMAT (text or json); every record is redacted (bot/logs.py)
        configure_logging(
            level=args.settings.log_level,
            fmt=args.settings.log_format,
            default_level="WARNING" if use_console else "INFO",
            env={},
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if args.http and not config.bot_token:
        raise UsageError("--http needs SLACK_BOT_TOKEN (and SLACK_SIGNING_SECRET); without them, run the console")
    if not use_console:
        if args.http and not config.signing_secret:
            raise UsageError("--http needs SLACK_SIGNING_SECRET to verify that requests come from Slack")
        if not args.http and not config.app_token:
            raise UsageError(
                "SLACK_BOT_TOKEN is set but SLACK_APP_TOKEN is not: set SLACK_APP_TOKEN (xapp-...) for Socket Mode, "
                "or pass --http to serve Slack's HTTP events"
            )
        _check_token_shapes(config, socket_mode=not args.http)
    port = _port(args) if args.http else 0
    kb = open_from_args(args)
    state = open_state(args.settings)
    if use_console:
        why = "--console" if args.console else "no SLACK_BOT_TOKEN set, so not the Slack bot"
        return _console(kb, state, config, why)
    if args.http:
        return _serve_http(kb, state, config, args, port)
    return _serve_socket(kb, state, config, args)


def _check_token_shapes(config, *, socket_mode: bool) -> None:
    """Catch swapped or mistyped tokens before Slack is asked (no token value is ever printed)."""
    if (config.bot_token or "").startswith("xapp-"):
        raise UsageError("SLACK_BOT_TOKEN holds an app-level token (xapp-...): swapped with SLACK_APP_TOKEN?")
    if socket_mode and not (config.app_token or "").startswith("xapp-"):
        swapped = " (it holds a bot token: swapped with SLACK_BOT_TOKEN?)" if config.app_token.startswith("xox") else ""
        raise UsageError(f"SLACK_APP_TOKEN does not look like an app-level token (xapp-...){swapped}")


def _port(args: argparse.Namespace) -> int:
    """--port, else PORT (read by the settings), else 3000; a port out of range is a usage error."""
    port = args.port if args.port is not None else (args.settings.port or DEFAULT_PORT)
    if not 1 <= port <= 65535:
        source = "--port" if args.port is not None else "PORT"
        raise UsageError(f"{source} {port} is out of range: expected 1 to 65535")
    return port


def _build(kb, state, config):
    from http.client import HTTPException

    from slack_bolt.error import BoltError
    from slack_sdk.errors import SlackApiError

    from bot.app import build_app

    try:
        return build_app(config, kb, state)
    except (BoltError, SlackApiError) as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise UsageError(f"Slack rejected SLACK_BOT_TOKEN ({first}); see docs/slack-setup.md") from None
    except (OSError, HTTPException) as exc:
        why = getattr(exc, "reason", None) or exc
        raise UsageError(f"Slack is unreachable at start-up ({str(why)[:200] or type(exc).__name__})") from None


def _exit_on_sigterm() -> None:
    """SIGTERM unwinds the main thread like Ctrl-C: stop taking work, drain, exit 0. Installing a handler
    also matters as PID 1 in a container, where a signal without one is ignored."""

    def handler(signum, frame) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, handler)


def _shutdown(bot, health) -> int:
    """Drain the jobs in flight (bounded), then exit even if a listener is still stuck in a Slack call."""
    if health is not None:
        health.stop()
    left = bot.work.in_flight()
    drained = bot.close()
    log.info("stopped: %d jobs were in flight, %s", left, "all finished" if drained else "the rest released")
    if not drained:  # a listener thread would hold the interpreter's exit; its job is safe in the store
        logging.shutdown()
        sys.stdout.flush()
        os._exit(0)
    return 0


def _serve_http(kb, state, config, args: argparse.Namespace, port: int) -> int:
    from bot.health_file import HealthFile

    bot = _build(kb, state, config)
    host = args.host or args.settings.host or DEFAULT_HOST
    try:
        server = HttpServer(make_wsgi(bot), host=host, port=port, threads=args.threads)
    except OSError as exc:
        bot.close(drain_s=0)
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    _exit_on_sigterm()
    health = HealthFile.maybe(
        args.settings.health_file,
        lambda: {"ok": len(bot.kb.entries) > 0, "mode": "http", "url": f"{server.url}{HEALTH_PATH}"},
    )
    print(f"gemini-kb: serving Slack events at {server.url}{EVENTS_PATH} ({len(kb.entries)} entries)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.stop()  # a request not yet acknowledged is resent by Slack, and recognised then
        code = _shutdown(bot, health)
    return code


def _serve_socket(kb, state, config, args: argparse.Namespace) -> int:
    from bot.health_file import HealthFile
    from bot.socket_mode import SocketMode, SocketModeError

    bot = _build(kb, state, config)
    _exit_on_sigterm()
    print(f"gemini-kb: connecting to Slack in Socket Mode ({len(kb.entries)} entries)", flush=True)
    socket_mode = SocketMode(bot.app, config.app_token, api_url=config.api_url)
    try:
        socket_mode.start()
    except SocketModeError as exc:
        bot.close(drain_s=0)
        raise UsageError(str(exc)) from None
    health = HealthFile.maybe(
        args.settings.health_file,
        lambda: {
            "ok": socket_mode.connected() and health_ok(bot),
            "mode": "socket",
            "connected": socket_mode.connected(),
        },
    )
    try:
        while True:
            time.sleep(3600)  # SIGTERM / Ctrl-C raise here
    except KeyboardInterrupt:
        pass
    finally:
        socket_mode.close()
        code = _shutdown(bot, health)
    return code


def health_ok(bot) -> bool:
    return health(bot.kb.path, entries=len(bot.kb.entries))[0]


def _console(kb, state, config, why: str = "") -> int:
    from bot.checker import Checker
    from bot.console import run_console
    from bot.service import AnswerService

    checker = Checker(
        kb,
        timeout=config.check_timeout,
        per_user_per_minute=0,
        team_key=config.team_key,
        base_url=config.base_url,
        allow_private=config.allow_private,
    )
    service = AnswerService(kb, state, checker, mode=config.channel_mode)
    try:
        return run_console(service, stdin=sys.stdin, stdout=sys.stdout, interactive=sys.stdin.isatty(), why=why)
    finally:
        service.close()


# -- stats ------------------------------------------------------------------------------


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def stats_text(s: StateSummary) -> str:
    out = [f"State database: {s.path} (last {s.days} days)"]
    out.append(f"Pastes answered or seen: {s.pastes} ({s.matched} matched, {s.unmatched} with no match)")
    if s.top_entries:
        out.append("Most frequent errors:")
        width = max(len(e) for e, _ in s.top_entries)
        out += [f"  {e:<{width}}  {n}" for e, n in s.top_entries]
    if s.feedback:
        out.append("Feedback:")
        for entry_id, verdicts in sorted(s.feedback.items()):
            out.append(f"  {entry_id}: " + ", ".join(f"{v.replace('_', ' ')} {n}" for v, n in sorted(verdicts.items())))
    out.append(f"Checks: {s.checks} run, {s.checks_failed} failed")
    out += [f"  {e}: {n}" for e, n in s.check_failures]
    if s.recent_unmatched:
        out.append("Recent pastes with no match (redacted):")
        for row in s.recent_unmatched:
            text = " ".join(str(row["text"] or "").split())
            text = text if len(text) <= 100 else text[:97] + "..."
            out.append(f"  {_when(float(row['at']))}  {row['source']:<7}  {text}")
    return "\n".join(out) + "\n"


def cmd_stats(args: argparse.Namespace) -> int:
    from bot.state import open_state  # sqlite-utils / psycopg: only the commands that open the state pay for it

    settings = args.settings
    path: Path = settings.state_path
    if not settings.state_url and not path.exists():
        if args.json:
            print(json.dumps({"path": str(path), "exists": False}))
        else:
            print(f"No state database yet at {path}: the bot records to it once it runs.")
        return 0
    state = open_state(settings)
    try:
        if not state.persistent:  # it fell back to an empty in-memory state: showing that would be a lie
            print(
                f"gemini-kb: cannot read the state database at {path} (read-only, locked or not a state database); "
                "nothing to show",
                file=sys.stderr,
            )
            return 1
        summary = state.summary(days=args.days, recent=args.recent)
    finally:
        state.close()
    if args.json:
        print(json.dumps({"exists": True, **summary.as_dict()}, indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(stats_text(summary))
    return 0


# -- state migrate / export -------------------------------------------------------------


def cmd_state_migrate(args: argparse.Namespace) -> int:
    from bot.state import open_state

    state = open_state(args.settings, strict=True)
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
    return 0


def cmd_state_export(args: argparse.Namespace) -> int:
    from bot.state import StateError, open_state
    from bot.state_base import EXPORT_KINDS

    kinds = tuple(args.kind or EXPORT_KINDS)
    state = open_state(args.settings, create=False, strict=True)
    try:
        for row in state.export(kinds, days=args.days):
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    except state.errors as exc:
        raise StateError(f"export from {state.describe()} failed: {str(exc).splitlines()[0]}") from exc
    finally:
        state.close()
    return 0


def _register_state(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from bot.state_base import EXPORT_KINDS

    p = sub.add_parser(
        "state",
        help="the run-time state store (SQLite file or PostgreSQL): migrate it, export what it recorded",
        description="Works on GEMINI_KB_STATE_URL (postgresql://...) when set, else on the SQLite file "
        "GEMINI_KB_STATE_DB. Everything stored is already redacted.",
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    m = verbs.add_parser("migrate", help="apply the schema migrations this version needs (start-up does it too)")
    m.add_argument("--json", action="store_true", help="print one JSON object")
    m.set_defaults(func=cmd_state_migrate)
    e = verbs.add_parser(
        "export", help="feedback, reasons (of a 👎), misses (pastes with no match) and checks as JSON lines"
    )
    e.add_argument("--jsonl", action="store_true", default=True, help="one JSON object per line (the only format)")
    e.add_argument("--kind", action="append", choices=EXPORT_KINDS, help="only these kinds (repeatable)")
    e.add_argument("--days", type=int, default=None, help="only the last N days (default: everything)")
    e.set_defaults(func=cmd_state_export)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve",
        help="run the Slack bot (Socket Mode or --http), or the local console without Slack tokens",
        description="Socket Mode when SLACK_APP_TOKEN is set; --http serves Slack's HTTP events at /slack/events "
        "(signed with SLACK_SIGNING_SECRET) and /healthz; without SLACK_BOT_TOKEN, a local console that "
        "answers pastes read from standard input (a paste ends at a blank line or end of input).",
    )
    p.add_argument("--http", action="store_true", help="serve Slack's HTTP events (production, behind a load balancer)")
    p.add_argument("--port", type=int, default=None, help=f"HTTP port (default $PORT or {DEFAULT_PORT})")
    p.add_argument(
        "--host",
        default=None,
        help=f"HTTP address to bind (default $GEMINI_KB_HOST or {DEFAULT_HOST}; the image sets 0.0.0.0)",
    )
    p.add_argument(
        "--threads", type=int, default=DEFAULT_THREADS, help=f"HTTP worker threads (default {DEFAULT_THREADS})"
    )
    p.add_argument("--console", action="store_true", help="run the local console even when Slack tokens are set")
    p.add_argument(
        "--no-console",
        action="store_true",
        help="exit with an error instead of starting the console when no Slack token is set (containers)",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("stats", help="what the bot has seen: frequent errors, unmatched pastes, feedback, checks")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--days", type=int, default=7, help="how far back to count (default 7)")
    p.add_argument("--recent", type=int, default=10, help="how many unmatched pastes to list (default 10)")
    p.set_defaults(func=cmd_stats)

    _register_state(sub)
