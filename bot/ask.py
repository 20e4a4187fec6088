"""`gemini-kb ask`: look up a pasted error from the command line (one paste or JSON lines)."""

from __future__ import annotations

import argparse
import json
import sys

from bot.cli_errors import UsageError, open_from_args
from bot.render_text import answer_text
from kb.matcher import match

MAX_STDIN_BYTES = 1_000_000


def _read_stdin() -> str:
    data = sys.stdin.buffer.read(MAX_STDIN_BYTES)
    return data.decode("utf-8", errors="replace")


def cmd_ask(args: argparse.Namespace) -> int:
    if args.jsonl and args.text:
        raise UsageError("--jsonl reads JSON lines from standard input; give no TEXT with it")
    kb = open_from_args(args)
    if args.jsonl:
        return _ask_jsonl(kb, args.limit)
    if not args.text or args.text == ["-"]:
        if sys.stdin.isatty() and not args.text:
            raise UsageError("give the error text as an argument, or '-' to read it from standard input")
        text = _read_stdin()
    else:
        text = " ".join(args.text)
    if not text.strip():
        raise UsageError("the error text is empty")
    if args.explain:
        from kb.explain import explain, render

        data = explain(text, kb, limit=max(args.limit, 5))
        print(
            json.dumps(data, ensure_ascii=False, indent=2) if args.json else render(data), end="\n" if args.json else ""
        )
        return 0
    result = match(text, kb, limit=args.limit)
    if args.json:
        data = result.as_dict()
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        print(answer_text(result, kb), end="")
    return 0


def _ask_jsonl(kb, limit: int) -> int:
    """One answer object per input line, in order; a bad line gets an error object, not a crash."""
    for lineno, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            text = record["text"] if isinstance(record, dict) else None
            if not isinstance(text, str):
                raise ValueError('expected an object with a string "text" field')
        except (ValueError, KeyError) as exc:
            print(json.dumps({"line": lineno, "error": f"bad input line: {exc}"}), flush=True)
            continue
        print(json.dumps(match(text, kb, limit=limit).as_dict(), ensure_ascii=False), flush=True)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "ask",
        help="look up a pasted error",
        description="Match an error message, traceback or JSON error body against the knowledge base.",
    )
    p.add_argument("text", nargs="*", help="the error text, or '-' (or nothing) to read standard input")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--jsonl", action="store_true", help='read JSON lines with a "text" field, write one answer per line'
    )
    p.add_argument("--explain", action="store_true", help="show features, weights and the decision for the paste")
    p.add_argument("--limit", type=int, default=3, help="how many candidates to return (default 3)")
    p.set_defaults(func=cmd_ask)
