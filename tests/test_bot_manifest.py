"""The app manifest asks for what the bot uses, and nothing it does not."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.chat_command import COMMAND

MANIFEST = Path(__file__).resolve().parent.parent / "bot" / "manifest.yaml"


def test_manifest_matches_what_the_bot_listens_to():
    manifest = yaml.safe_load(MANIFEST.read_text())
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == [COMMAND]
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert events == {
        "app_home_opened",
        "app_mention",
        "message.channels",
        "message.groups",
        "message.im",
        "message.mpim",
        "reaction_added",
    }
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert scopes == {
        "app_mentions:read",
        "channels:history",
        "groups:history",
        "im:history",
        "mpim:history",
        "chat:write",
        "commands",
        "reactions:read",
        "usergroups:read",
    }
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert 175 <= len(manifest["display_information"]["long_description"]) <= 4000
