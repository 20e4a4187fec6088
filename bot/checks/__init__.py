"""On-demand checks of an API key, the endpoint and a model; shared by the CLI and the bot."""

from bot.checks.result import CheckReport, CheckResult

__all__ = ["CheckReport", "CheckResult"]
