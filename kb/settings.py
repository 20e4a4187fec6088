"""Configuration read once from the environment into one typed object."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
GUIDES_DIR = PACKAGE_DIR / "guides"


def _data_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "gemini-kb"


def _cache_home() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gemini-kb"


@dataclass(frozen=True)
class Settings:
    """Everything the CLI and the bot read from the environment."""

    kb_path: Path
    state_path: Path
    state_url: str | None = None  # PostgreSQL shared by every replica; None = the SQLite file
    guides_dir: Path = GUIDES_DIR


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Build settings from `env` (defaults to `os.environ`)."""
    env = dict(os.environ) if env is None else env
    kb_path = env.get("GEMINI_KB_DB") or str(_cache_home() / "kb.sqlite")
    state_path = env.get("GEMINI_KB_STATE_DB") or str(_data_home() / "state.sqlite")
    return Settings(
        kb_path=Path(kb_path).expanduser(),
        state_path=Path(state_path).expanduser(),
        state_url=env.get("GEMINI_KB_STATE_URL") or None,
    )
