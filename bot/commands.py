"""The subcommand groups beyond the knowledge-base core, each owned by its module."""

from __future__ import annotations

from bot import ask, serve, state_cli
from bot.checks import command as check_command

REGISTRARS = [ask.register, check_command.register, serve.register, state_cli.register]
