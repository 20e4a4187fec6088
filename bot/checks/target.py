"""Which URLs and addresses a check may reach: https only, public addresses unless explicitly allowed.

The checks run on the bot's host at a user's request, so without this rule `/gemini-check endpoint`
would probe the network around the bot (SSRF): loopback, private ranges, link-local and the cloud
metadata service are refused unless `GEMINI_CHECK_ALLOW_PRIVATE=1` (tests, corporate gateways).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from kb.settings import DEFAULT_BASE_URL

# Names that reach the host itself or the cloud metadata service whatever they resolve to.
REFUSED_NAMES = ("localhost", "localhost.localdomain", "metadata", "metadata.google.internal", "instance-data")
REFUSED_SUFFIXES = (".localhost", ".internal", ".local")


class TargetRefused(ValueError):
    """The URL or an address it resolves to is outside what checks may reach; the message says why."""


@dataclass(frozen=True)
class Target:
    """A parsed API base URL."""

    url: str  # scheme://host[:port][/prefix], no trailing slash
    scheme: str
    host: str  # without brackets for IPv6
    port: int
    prefix: str  # path before /v1beta, usually ""

    @property
    def is_default(self) -> bool:
        return self.host == urlsplit(DEFAULT_BASE_URL).hostname


def parse_target(url: str, *, allow_private: bool, allow_http: bool = False) -> Target:
    """Parse and vet a base URL before anything is sent; raise TargetRefused with the reason."""
    raw = (url or "").strip()
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"not a valid URL: {raw!r} ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not parts.hostname:
        raise TargetRefused(f"not an https URL: {raw!r} (expected e.g. {DEFAULT_BASE_URL})")
    if parts.username or parts.password:
        raise TargetRefused("credentials in the URL are not accepted")
    if parts.query or parts.fragment:
        raise TargetRefused(f"the base URL must not carry a query or fragment: {raw!r}")
    host = parts.hostname.lower().rstrip(".")
    literal = _literal_ip(host)
    if not allow_private:
        if host in REFUSED_NAMES or host.endswith(REFUSED_SUFFIXES):
            raise TargetRefused(_refusal(host, "a local or metadata host name"))
        if literal is not None:
            refuse_address(host, literal, allow_private=False)
    if scheme == "http" and not (allow_http and allow_private and _private(host, literal)):
        # An API key must never cross a network in clear; plain http only reaches an allowed local gateway.
        raise TargetRefused(f"only https URLs are checked: {raw!r}")
    prefix = parts.path.rstrip("/")
    netloc = f"[{host}]" if ":" in host else host
    default_port = 443 if scheme == "https" else 80
    port = port or default_port
    base = f"{scheme}://{netloc}{'' if port == default_port else f':{port}'}{prefix}"
    return Target(url=base, scheme=scheme, host=host, port=port, prefix=prefix)


def refuse_address(host: str, address: str, *, allow_private: bool) -> None:
    """Raise TargetRefused when `address` (what `host` resolved to) is not a public internet address."""
    if allow_private:
        return
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not ip.is_global or ip.is_multicast:
        resolved = str(ip) != host
        raise TargetRefused(_refusal(host, f"{_kind(ip)} address" + (f" {ip}" if resolved else ""), resolved=resolved))


def _kind(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if ip.is_loopback:
        return "a loopback"
    if ip.is_link_local:
        return "a link-local (cloud metadata)" if str(ip) == "169.254.169.254" else "a link-local"
    if ip.is_private:
        return "a private"
    return "a non-public"


def _refusal(host: str, what: str, *, resolved: bool = False) -> str:
    via = f"{host} resolves to " if resolved else f"{host} is "
    return f"refused: {via}{what}; set GEMINI_CHECK_ALLOW_PRIVATE=1 to allow it"


def _literal_ip(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def _private(host: str, literal: str | None) -> bool:
    if literal is None:
        return host in REFUSED_NAMES or host.endswith(REFUSED_SUFFIXES)
    try:
        refuse_address(host, literal, allow_private=False)
    except TargetRefused:
        return True
    return False
