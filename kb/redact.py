"""Find and redact secrets (API keys, OAuth tokens, Slack tokens) in text.

A table of named rules; `redact` returns the clean text and the kinds found so
the caller can tell the poster to rotate what leaked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class SecretRule:
    """A named secret pattern; group 1, when present, is kept (a header or parameter name)."""

    name: str
    pattern: re.Pattern[str]


def _rule(name: str, pattern: str, flags: int = 0) -> SecretRule:
    return SecretRule(name, re.compile(pattern, flags))


RULES: tuple[SecretRule, ...] = (
    _rule(
        "private-key", r"-----BEGIN [A-Z ]{0,30}PRIVATE KEY-----[\s\S]{0,8000}?-----END [A-Z ]{0,30}PRIVATE KEY-----"
    ),
    # Standard keys (`AIza` + 35) and the auth keys AI Studio issues since 2026 (`AQ.` + about 50).
    _rule("google-api-key", r"AIza[0-9A-Za-z_\-]{30,40}|\bAQ\.[0-9A-Za-z_\-]{40,80}"),
    _rule("google-oauth-token", r"ya29\.[0-9A-Za-z_\-.~+/]{10,2000}"),
    _rule("slack-token", r"xox[abposre]-[0-9A-Za-z\-]{10,300}"),
    _rule("slack-app-token", r"xapp-[0-9]-[0-9A-Za-z\-]{10,300}"),
    _rule("openai-key", r"\bsk-(?:proj-|ant-)?[0-9A-Za-z_\-]{20,300}"),
    _rule("github-token", r"\bgh[pousr]_[0-9A-Za-z]{30,255}"),
    _rule("bearer-token", r"(?i)(bearer\s{1,5})[0-9A-Za-z\-._~+/]{12,4000}=*"),
    _rule("api-key-header", r"(?i)(x-goog-api-key[\"']?\s{0,5}[:=]\s{0,5}[\"']?)[^\s\"',;]{8,300}"),
    _rule("api-key-param", r"(?i)([?&](?:key|api_key|apikey)=)[^&\s\"'#]{8,300}"),
    _rule("api-key-assignment", r"(?i)((?:gemini|google)_api_key[\"']?\s{0,5}[:=]\s{0,5}[\"']?)[^\s\"',;]{8,300}"),
)


def _replacement(name: str):
    def sub(match: re.Match[str]) -> str:
        prefix = match.group(1) if match.re.groups else ""
        return f"{prefix}[REDACTED {name}]"

    return sub


def redact(text: str) -> tuple[str, list[str]]:
    """Return `text` with secrets replaced and the sorted kinds of secret found."""
    found: set[str] = set()
    for rule in RULES:
        text, count = rule.pattern.subn(_replacement(rule.name), text)
        if count:
            found.add(rule.name)
    return text, sorted(found)


def mask(secret: str) -> str:
    """Show a secret as its first four and last three characters (`AIza…k3Q`, `AQ.A…Q2x`)."""
    secret = secret.strip()
    if len(secret) <= 10:
        return "…" * bool(secret)
    return f"{secret[:4]}…{secret[-3:]}"


def scrub(text: str, secrets: tuple[str | None, ...] | list[str | None] = (), *, redact_rest: bool = True) -> str:
    """`text` with each given secret (a key typed into a command) replaced by its mask and, unless
    `redact_rest` is False, any other secret-shaped string redacted. The one key scrubber: check results,
    reports, Slack messages and console output all go through it."""
    for secret in secrets:
        if secret and text:
            text = text.replace(secret, mask(secret))
    return redact(text)[0] if redact_rest and text else text
