"""Logging for the bot: one `configure_logging()` for every entry point.

Every record that reaches a root handler is redacted first (message, arguments, exception and
stack text, `extra` fields) with the rules of `kb.redact` in their strict form (any long random-looking
token too), so a key pasted into Slack cannot reach the log through a library's debug line or a traceback.
`LOG_FORMAT=json` writes one JSON object per line; otherwise the plain text format.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from typing import IO

from kb.redact import redact as _redact

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("text", "json")
# Attributes every LogRecord has; anything else on a record came in through `extra=`.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_DONE = "_gemini_kb_redacted"


def redact(text: str) -> tuple[str, list[str]]:
    """`kb.redact.redact` in its strict form: a log line needs no opaque token, so any long random-looking
    one goes too (the decoded forms, `%`-escapes included, are searched by `kb.redact` itself)."""
    return _redact(text, strict=True)


def _clean(value: object) -> object:
    """A redacted copy of `value` (strings, and the strings inside lists, tuples and dicts)."""
    if isinstance(value, str):
        return redact(value)[0]
    if isinstance(value, list | tuple):
        return type(value)(_clean(v) for v in value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


class RedactingFilter(logging.Filter):
    """Rewrite a record with its secrets replaced; never drops a record.

    The message is formatted here (arguments of any type included) and redacted as a whole, so a
    secret split across the format string and an argument is still caught. The exception is
    formatted into `exc_text` and redacted; formatters use `exc_text` when it is set.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _DONE, False):  # a record passes each root handler: redact it once
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep what there is, still redacted
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact(message)[0], None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)[0]
        if record.stack_info:
            record.stack_info = redact(record.stack_info)[0]
        for name, value in list(record.__dict__.items()):
            if name not in _STANDARD:
                setattr(record, name, _clean(value))
        setattr(record, _DONE, True)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, then any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_") and name not in data:
                data[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exc"] = record.exc_text
        if record.stack_info:
            data["stack"] = record.stack_info
        return json.dumps(data, ensure_ascii=False, default=str)


def configure_logging(
    *,
    level: str | int | None = None,
    fmt: str | None = None,
    stream: IO[str] | None = None,
    default_level: str = "INFO",
    env: dict[str, str] | None = None,
) -> logging.Handler:
    """Send log records to `stream` (standard error) in `fmt` (LOG_FORMAT: text or json) at `level`
    (LOG_LEVEL, else `default_level`), with every root handler redacting secrets.

    Calling it again replaces the handler it installed before. Returns the handler.
    """
    env = dict(os.environ) if env is None else env
    level = level or (env.get("LOG_LEVEL") or "").strip() or default_level
    fmt = (fmt or (env.get("LOG_FORMAT") or "").strip() or "text").lower()
    if fmt not in FORMATS:
        raise ValueError(f"LOG_FORMAT={fmt!r}: expected one of {', '.join(FORMATS)}")
    if isinstance(level, str):
        name = level.strip().upper()
        if not isinstance(logging.getLevelName(name), int):
            raise ValueError(f"LOG_LEVEL={level!r}: expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
        level = name
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_gemini_kb", False)]:
        root.removeHandler(old)
        old.close()
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler._gemini_kb = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    for each in root.handlers:  # also handlers installed by others (a test runner, a platform agent)
        if not any(isinstance(f, RedactingFilter) for f in each.filters):
            each.addFilter(RedactingFilter())
    return handler
