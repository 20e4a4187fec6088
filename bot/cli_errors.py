"""What every `gemini-kb` subcommand module shares: the usage error and the exit statuses."""

from __future__ import annotations

import argparse
import json
import sys

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad usage: printed to stderr, exit status 2."""


def print_json(data: object) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def open_from_args(args: argparse.Namespace):
    """The knowledge base named by --db / GEMINI_KB_DB: the start-up step builds it when missing or stale."""
    from ingest.bootstrap import open_or_build

    return open_or_build(args.settings.kb_path)
