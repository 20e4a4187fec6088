"""Which URLs and addresses a check may reach: https only, public addresses unless explicitly allowed.

The checks run on the bot's host at a user's request, so without this rule `/gemini-check endpoint`
would probe the network around the bot (SSRF): loopback, private ranges, link-local and the cloud
metadata service are refused unless `GEMINI_CHECK_ALLOW_PRIVATE=1` (tests, corporate gateways).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from kb.redact import redact
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
    def shown(self) -> str:
        """The URL as reports, logs and the state show it: a token in its path is redacted."""
        return redact(self.url, strict=True)[0]

    @property
    def shown_prefix(self) -> str:
        return redact(self.prefix, strict=True)[0]

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
    host = canonical_host(parts.hostname)
    if host is None:
        raise TargetRefused("not a valid host name in the URL")
    literal = _literal_ip(host)
    if not allow_private:
        if host in REFUSED_NAMES or host.endswith(REFUSED_SUFFIXES):
            raise TargetRefused(_refusal(host, "a local or metadata host name"))
        if literal is None and "." not in host:  # an intranet or hosts-file name, which a proxy would resolve
            raise TargetRefused(_refusal(host, "a single-label (local network) host name"))
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
    for ip in [ipaddress.ip_address(address.split("%", 1)[0]), *embedded_ipv4(address)]:
        if not ip.is_global or ip.is_multicast:
            resolved = str(ip) != host
            what = f"{_kind(ip)} address" + (f" {ip}" if resolved else "")
            raise TargetRefused(_refusal(host, what, resolved=resolved))


# IPv6 prefixes whose addresses carry an IPv4 address that a gateway (NAT64, 6to4, the kernel) may reach:
# the IPv4 address must be public too.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def embedded_ipv4(address: str) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address stands for: mapped, compatible, NAT64, 6to4, Teredo."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    last32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    found = [a for a in (ip.ipv4_mapped, ip.sixtofour) if a is not None]
    if ip.teredo:
        found += list(ip.teredo)
    if any(ip in net for net in _NAT64) or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        found.append(last32)
    return found


def canonical_host(hostname: str) -> str | None:
    """The host as resolvers and proxies read it: IDNA (Unicode digits and dots folded to ASCII), lower case,
    and an IPv4 address in any form `inet_aton` accepts (`127.1`, `2130706433`, `0x7f000001`, `0177.0.0.1`)
    as its dotted quad. None when it is not a valid host name."""
    host = hostname.strip().rstrip(".")
    if ":" in host:  # an IPv6 literal
        return host.lower()
    try:
        host = host.encode("idna").decode("ascii").lower().rstrip(".")
    except UnicodeError:
        return None
    if host and all(c in "0123456789abcdefx." for c in host) and any(c.isdigit() for c in host):
        try:
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            pass
    return host or None


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
