"""The part of Slack's app manifest format (manifest version 1) that bot/manifest.yaml uses, as a JSON Schema.

Written for this project from Slack's app manifest reference (docs.slack.dev/reference/app-manifest) and the
field limits the Slack SDK's manifest types document: required fields, types, lengths, list sizes, and no
unknown keys where a typo would otherwise pass silently (Slack rejects unknown keys when the app is created).
"""

from __future__ import annotations

_TEXT = {"type": "string", "minLength": 1}


def _text(max_length: int) -> dict:
    return {**_TEXT, "maxLength": max_length}


_HTTPS = {"type": "string", "pattern": r"^https://"}

SHORTCUT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "type", "callback_id", "description"],
    "properties": {
        "name": _text(255),
        "type": {"enum": ["message", "global"]},
        "callback_id": {**_text(255), "pattern": r"^[A-Za-z0-9_.\-]+$"},
        "description": _text(150),
    },
}

SLASH_COMMAND = {
    "type": "object",
    "additionalProperties": False,
    "required": ["command", "description"],
    "properties": {
        "command": {"type": "string", "pattern": r"^/[a-z0-9_\-]{1,31}$"},
        "description": _text(2000),
        "usage_hint": _text(1000),
        "should_escape": {"type": "boolean"},
        "url": _HTTPS,
    },
}

SCOPE = {"type": "string", "pattern": r"^[a-z_]+(\.[a-z_]+)*(:[a-z_]+(\.[a-z_]+)*)?$"}

MANIFEST_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["display_information"],
    "properties": {
        "_metadata": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"major_version": {"enum": [1, 2]}, "minor_version": {"type": "integer", "minimum": 0}},
        },
        "display_information": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {
                "name": _text(35),
                "description": _text(140),
                "long_description": {"type": "string", "minLength": 174, "maxLength": 4000},
                "background_color": {"type": "string", "pattern": r"^#([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$"},
            },
        },
        "features": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "app_home": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "home_tab_enabled": {"type": "boolean"},
                        "messages_tab_enabled": {"type": "boolean"},
                        "messages_tab_read_only_enabled": {"type": "boolean"},
                    },
                },
                "bot_user": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["display_name"],
                    "properties": {
                        "display_name": {"type": "string", "pattern": r"^[a-z0-9\-_.]{1,80}$"},
                        "always_online": {"type": "boolean"},
                    },
                },
                "shortcuts": {"type": "array", "maxItems": 10, "items": SHORTCUT},
                "slash_commands": {"type": "array", "maxItems": 50, "items": SLASH_COMMAND},
                "unfurl_domains": {"type": "array", "maxItems": 5, "items": _TEXT},
            },
        },
        "oauth_config": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "redirect_urls": {"type": "array", "maxItems": 1000, "items": _HTTPS},
                "scopes": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "bot": {"type": "array", "maxItems": 255, "uniqueItems": True, "items": SCOPE},
                        "user": {"type": "array", "maxItems": 255, "uniqueItems": True, "items": SCOPE},
                    },
                },
                "token_management_enabled": {"type": "boolean"},
            },
        },
        "settings": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "allowed_ip_address_ranges": {"type": "array", "maxItems": 50, "items": _TEXT},
                "event_subscriptions": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "request_url": _HTTPS,
                        "bot_events": {
                            "type": "array",
                            "maxItems": 100,
                            "uniqueItems": True,
                            "items": {"type": "string", "pattern": r"^[a-z_]+(\.[a-z_]+)?$"},
                        },
                        "user_events": {"type": "array", "maxItems": 100, "uniqueItems": True, "items": _TEXT},
                    },
                },
                "incoming_webhooks": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"incoming_webhooks_enabled": {"type": "boolean"}},
                },
                "interactivity": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["is_enabled"],
                    "properties": {
                        "is_enabled": {"type": "boolean"},
                        "request_url": _HTTPS,
                        "message_menu_options_url": _HTTPS,
                    },
                },
                "org_deploy_enabled": {"type": "boolean"},
                "socket_mode_enabled": {"type": "boolean"},
                "token_rotation_enabled": {"type": "boolean"},
            },
        },
    },
}
