"""The subcommand groups beyond the knowledge-base core, each owned by its module."""

from __future__ import annotations

from bot import ask

REGISTRARS = [ask.register]
