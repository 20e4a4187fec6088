"""Shared fixtures: the shipped knowledge base built once per session into a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.build import build
from kb.settings import GUIDES_DIR
from kb.store import PROJECT_ROOT, KnowledgeBase, open_kb


@pytest.fixture(scope="session")
def kb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly built knowledge-base file of the shipped guides."""
    path = tmp_path_factory.mktemp("kb") / "kb.sqlite"
    build([GUIDES_DIR], path, root=PROJECT_ROOT)
    return path


@pytest.fixture(scope="session")
def kb(kb_path: Path) -> KnowledgeBase:
    """The shipped knowledge base, opened read-only."""
    return open_kb(kb_path, auto_build=False)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test away from the user's real knowledge base and state files."""
    monkeypatch.setenv("GEMINI_KB_DB", str(tmp_path / "home-kb.sqlite"))
    monkeypatch.setenv("GEMINI_KB_STATE_DB", str(tmp_path / "home-state.sqlite"))
    for var in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"):
        monkeypatch.delenv(var, raising=False)
