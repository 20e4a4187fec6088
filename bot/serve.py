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
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli_errors import UsageError, open_from_args
from kb.schema import connect_ro

if TYPE_CHECKING:
    from bot.state import StateSummary

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
DEFAULT_PORT = 3000
DEFAULT_THREADS = 8

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


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
                data = b'{"error": "invalid request"}'
                start_response(
                    "401 Unauthorized", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
                )
                return [data]
        return slack(environ, start_response)

    return application


class HttpServer:
    """waitress (a production WSGI server with a thread pool) on one address; start/stop for tests."""

    def __init__(
        self, wsgi: WSGIApp, *, host: str = "0.0.0.0", port: int = DEFAULT_PORT, threads: int = DEFAULT_THREADS
    ):
        from waitress import create_server

        self._server = create_server(
            wsgi,
            host=host,
            port=port,
            threads=threads,
            ident="gemini-kb",
            asyncore_loop_timeout=0.2,  # how fast stop() is noticed
            max_request_body_size=1_048_576,  # Slack payloads are small; refuse floods early
        )
        self.host = host
        self.port = int(self._server.effective_port)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def serve_forever(self) -> None:
        self._server.run()

    def start(self) -> HttpServer:
        self._thread = threading.Thread(target=self.serve_forever, name="waitress", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close every socket from inside the server's own loop (closing them from here races its select)."""
        from waitress import wasyncore

        server = self._server
        if self._thread is not None and self._thread.is_alive():
            server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
            self._thread.join(5)
        else:
            wasyncore.close_all(server._map)
        server.task_dispatcher.shutdown(timeout=2)


# -- serve ------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.logs import configure_logging
    from bot.state import open_state

    config = args.settings.bot
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
    kb = open_from_args(args)
    state = open_state(args.settings)
    if use_console:
        why = "--console" if args.console else "no SLACK_BOT_TOKEN set, so not the Slack bot"
        return _console(kb, state, config, why)
    if args.http:
        return _serve_http(kb, state, config, args)
    return _serve_socket(kb, state, config)


def _build(kb, state, config):
    from slack_bolt.error import BoltError
    from slack_sdk.errors import SlackApiError

    from bot.app import build_app

    try:
        return build_app(config, kb, state)
    except (BoltError, SlackApiError) as exc:
        raise UsageError(f"Slack rejected SLACK_BOT_TOKEN or is unreachable ({exc}); see docs/slack-setup.md") from exc


def _serve_http(kb, state, config, args: argparse.Namespace) -> int:
    bot = _build(kb, state, config)
    port = args.port if args.port is not None else (args.settings.port or DEFAULT_PORT)
    server = HttpServer(make_wsgi(bot), host=args.host, port=port, threads=args.threads)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"gemini-kb: serving Slack events at {server.url}{EVENTS_PATH} ({len(kb.entries)} entries)", flush=True)
    try:
        server.serve_forever()
    finally:
        bot.close()
    return 0


def _serve_socket(kb, state, config) -> int:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    bot = _build(kb, state, config)
    print(f"gemini-kb: connecting to Slack in Socket Mode ({len(kb.entries)} entries)", flush=True)
    try:
        SocketModeHandler(bot.app, config.app_token).start()
    finally:
        bot.close()
    return 0


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
    p.add_argument("--host", default="0.0.0.0", help="HTTP address to bind (default 0.0.0.0)")
    p.add_argument(
        "--threads", type=int, default=DEFAULT_THREADS, help=f"HTTP worker threads (default {DEFAULT_THREADS})"
    )
    p.add_argument("--console", action="store_true", help="run the local console even when Slack tokens are set")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("stats", help="what the bot has seen: frequent errors, unmatched pastes, feedback, checks")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--days", type=int, default=7, help="how far back to count (default 7)")
    p.add_argument("--recent", type=int, default=10, help="how many unmatched pastes to list (default 10)")
    p.set_defaults(func=cmd_stats)

    _register_state(sub)
