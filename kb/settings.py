"""The one typed settings object, read once at start-up from the environment the caller gives.

`load_settings(env)` reads nothing but `env` (XDG_*, HOME, GEMINI_*, SLACK_*, LOG_*, PORT): the entry
points pass `os.environ`, tests pass a dict. Secrets stay out of every repr.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
GUIDES_DIR = PACKAGE_DIR / "guides"
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
BASE_URL_ENV = "GEMINI_BASE_URL"
ALLOW_PRIVATE_ENV = "GEMINI_CHECK_ALLOW_PRIVATE"
KEY_ENVS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")  # the order google-genai documents
ONCALL_GROUP = re.compile(r"S[A-Z0-9]{2,30}")  # a Slack user group id (S0123ABC)
MAINTAINER_ID = re.compile(r"[UWS][A-Z0-9]{2,30}")  # a Slack user (U…, W…) or user group (S…) id


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class ChannelMode(StrEnum):
    """Which un-addressed channel messages get an answer (mentions and DMs always do)."""

    ERRORS = "errors"  # confident match and the message looks like an error (default)
    CONFIDENT = "confident"  # any confident match
    MENTIONS = "mentions"  # none: only mentions and DMs


@dataclass(frozen=True)
class BotSettings:
    """The bot's and the checks' part of the settings."""

    bot_token: str | None = field(default=None, repr=False)
    app_token: str | None = field(default=None, repr=False)
    signing_secret: str = field(default="", repr=False)
    api_url: str | None = None  # Slack Web API base URL (tests, enterprise proxies)
    channel_mode: ChannelMode = ChannelMode.ERRORS
    check_timeout: float = 5.0  # per network step of a check
    checks_per_minute: int = 5  # per user
    checks_global_per_minute: int = 30  # all users together (what the team key can be made to spend); 0: no limit
    team_key: str | None = field(default=None, repr=False)  # the Gemini key checks use by default
    base_url: str = DEFAULT_BASE_URL  # the Gemini API the checks reach (GEMINI_BASE_URL)
    allow_private: bool = False  # GEMINI_CHECK_ALLOW_PRIVATE: checks may reach loopback and private hosts
    # GEMINI_KB_MAINTAINERS: Slack user ids (U…, W…) and/or user group ids (S…) who curate in App Home.
    maintainers: tuple[str, ...] = ()
    digest_every: float = 3600.0  # GEMINI_KB_DIGEST_EVERY: seconds between digest rounds; 0 = no digest thread
    oncall_group: str | None = None  # GEMINI_KB_ONCALL_GROUP: the Slack user group an "Escalate" click mentions


@dataclass(frozen=True)
class Settings:
    """Everything the CLI and the bot read from the environment."""

    kb_path: Path
    state_path: Path
    # GEMINI_KB_STATE_URL: PostgreSQL shared by every replica; None = the SQLite file at state_path.
    # Out of the repr: the URL may carry a password.
    state_url: str | None = field(default=None, repr=False)
    bot: BotSettings = BotSettings()
    port: int | None = None  # PORT, for `serve --http`
    host: str | None = None  # GEMINI_KB_HOST: the address `serve --http` binds (None: 127.0.0.1)
    health_file: Path | None = None  # GEMINI_KB_HEALTH_FILE: rewritten by the running bot (bot/health_file.py)
    # GEMINI_KB_APPROVED: the approved signature proposals `gemini-kb ingest` builds from (JSON lines);
    # None = approved-signatures.jsonl beside the SQLite state file.
    approved_path: Path | None = None
    log_level: str | None = None
    log_format: str | None = None


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = (env.get(name) or "").strip()
    return value or None


def _home(env: Mapping[str, str], xdg: str, fallback: str) -> Path:
    base = _get(env, xdg)
    if base:
        return Path(base) / "gemini-kb"
    home = Path(env["HOME"]) if _get(env, "HOME") else Path.home()
    return home / fallback / "gemini-kb"


def configured_key(env: Mapping[str, str]) -> str | None:
    """The key from GEMINI_API_KEY, else GOOGLE_API_KEY."""
    return next((env[name].strip() for name in KEY_ENVS if (env.get(name) or "").strip()), None)


def allow_private_from(env: Mapping[str, str]) -> bool:
    """Whether `GEMINI_CHECK_ALLOW_PRIVATE` permits private, loopback and link-local targets."""
    return (env.get(ALLOW_PRIVATE_ENV) or "").strip().lower() in ("1", "true", "yes", "on")


def load_bot_settings(env: Mapping[str, str]) -> BotSettings:
    """Read SLACK_*, GEMINI_KB_* and the checks' GEMINI_* variables (see docs/slack-setup.md)."""
    mode = (_get(env, "GEMINI_KB_CHANNEL_MODE") or ChannelMode.ERRORS.value).lower()
    if mode not in {m.value for m in ChannelMode}:
        choices = ", ".join(m.value for m in ChannelMode)
        raise ConfigError(f"GEMINI_KB_CHANNEL_MODE={mode!r}: expected one of {choices}")
    try:
        timeout = float(_get(env, "GEMINI_KB_CHECK_TIMEOUT") or 5.0)
        per_minute = int(_get(env, "GEMINI_KB_CHECKS_PER_MINUTE") or 5)
        global_per_minute = int(_get(env, "GEMINI_KB_CHECKS_GLOBAL_PER_MINUTE") or 30)
    except ValueError as exc:
        raise ConfigError(
            f"GEMINI_KB_CHECK_TIMEOUT / GEMINI_KB_CHECKS_PER_MINUTE / GEMINI_KB_CHECKS_GLOBAL_PER_MINUTE: {exc}"
        ) from exc
    if not 0 < timeout <= 60:
        raise ConfigError("GEMINI_KB_CHECK_TIMEOUT must be between 0 and 60 seconds")
    if global_per_minute < 0:
        raise ConfigError("GEMINI_KB_CHECKS_GLOBAL_PER_MINUTE must be 0 (no limit) or more")
    maintainers = tuple(m.strip() for m in (_get(env, "GEMINI_KB_MAINTAINERS") or "").split(",") if m.strip())
    if bad := [m for m in maintainers if not MAINTAINER_ID.fullmatch(m)]:
        raise ConfigError(f"GEMINI_KB_MAINTAINERS: {', '.join(bad)} is not a Slack user id (U…, W…) or group id (S…)")
    try:
        digest_every = float(_get(env, "GEMINI_KB_DIGEST_EVERY") or 3600.0)
    except ValueError as exc:
        raise ConfigError(f"GEMINI_KB_DIGEST_EVERY: {exc}") from exc
    if digest_every < 0:
        raise ConfigError("GEMINI_KB_DIGEST_EVERY must be 0 (no digests) or more seconds")
    oncall = _get(env, "GEMINI_KB_ONCALL_GROUP")
    if oncall and not ONCALL_GROUP.fullmatch(oncall):
        raise ConfigError(f"GEMINI_KB_ONCALL_GROUP={oncall!r}: expected a Slack user group id such as S0123ABC")
    return BotSettings(
        bot_token=_get(env, "SLACK_BOT_TOKEN"),
        app_token=_get(env, "SLACK_APP_TOKEN"),
        signing_secret=_get(env, "SLACK_SIGNING_SECRET") or "",
        api_url=_get(env, "SLACK_API_URL"),
        channel_mode=ChannelMode(mode),
        check_timeout=timeout,
        checks_per_minute=per_minute,
        checks_global_per_minute=global_per_minute,
        team_key=configured_key(env),
        base_url=_get(env, BASE_URL_ENV) or DEFAULT_BASE_URL,
        allow_private=allow_private_from(env),
        maintainers=maintainers,
        digest_every=digest_every,
        oncall_group=oncall,
    )


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from `env` alone (None: this process's environment, for scripts). Raises ConfigError
    when a value is malformed (see `load_bot_settings`)."""
    env = os.environ if env is None else env
    kb_path = _get(env, "GEMINI_KB_DB") or str(_home(env, "XDG_CACHE_HOME", ".cache") / "kb.sqlite")
    state_path = _get(env, "GEMINI_KB_STATE_DB") or str(_home(env, "XDG_DATA_HOME", ".local/share") / "state.sqlite")
    port = _get(env, "PORT")
    try:
        port_number = int(port) if port else None
    except ValueError as exc:
        raise ConfigError(f"PORT={port!r}: expected a port number") from exc
    if port_number is not None and not 1 <= port_number <= 65535:
        raise ConfigError(f"PORT={port_number} is out of range: expected 1 to 65535")
    return Settings(
        kb_path=Path(kb_path).expanduser(),
        state_path=Path(state_path).expanduser(),
        state_url=_get(env, "GEMINI_KB_STATE_URL"),
        bot=load_bot_settings(env),
        port=port_number,
        host=_get(env, "GEMINI_KB_HOST"),
        health_file=Path(health).expanduser() if (health := _get(env, "GEMINI_KB_HEALTH_FILE")) else None,
        log_level=_get(env, "LOG_LEVEL"),
        log_format=_get(env, "LOG_FORMAT"),
        approved_path=Path(approved).expanduser() if (approved := _get(env, "GEMINI_KB_APPROVED")) else None,
    )


def approved_file(settings: Settings) -> Path:
    """Where the approved signature proposals are exported for the build."""
    return settings.approved_path or settings.state_path.parent / "approved-signatures.jsonl"
