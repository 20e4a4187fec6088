"""The proxy in force for a target (the variables httpx2 reads) and an HTTP CONNECT tunnel through it."""

from __future__ import annotations

import base64
import socket
import time
import urllib.request
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from bot.checks.target import Target

MAX_HEAD = 64 * 1024
USER_AGENT = "gemini-kb-check/0.1"


class TunnelError(Exception):
    """The proxy did not open a tunnel: a detail for people and an error text for the matcher."""

    def __init__(self, detail: str, error_text: str):
        super().__init__(detail)
        self.detail = detail
        self.error_text = error_text


@dataclass(frozen=True)
class Proxy:
    """The proxy google-genai's HTTP client would use for the target, from the environment."""

    url: str | None  # None: direct
    source: str  # which variable decided
    host: str = ""
    port: int = 0
    auth: str | None = None  # "user:password", never shown

    def shown(self) -> str:
        """The proxy URL with its password replaced by ***."""
        if not self.url:
            return "direct"
        parts = urlsplit(self.url)
        user = f"{unquote(parts.username)}:***@" if parts.username else ""
        return f"{parts.scheme}://{user}{parts.hostname}:{self.port}"

    def describe(self) -> str:
        """One line for the report."""
        if self.url is None:
            return f"direct connection ({self.source})"
        return f"through {self.shown()} (from {self.source}); the phases below test the proxy path"


def proxy_for(target: Target) -> Proxy:
    """The proxy in force for `target`, from HTTPS_PROXY / ALL_PROXY / NO_PROXY (urllib's reading, as httpx2's)."""
    proxies = urllib.request.getproxies()
    if proxies.get("no") and urllib.request.proxy_bypass_environment(target.host, proxies):
        return Proxy(None, f"NO_PROXY={proxies['no']} covers {target.host}")
    for key in (target.scheme, "all"):
        if proxies.get(key):
            url = proxies[key] if "://" in proxies[key] else f"http://{proxies[key]}"
            parts = urlsplit(url)
            auth = f"{unquote(parts.username)}:{unquote(parts.password or '')}" if parts.username else None
            default = 443 if parts.scheme == "https" else 1080 if parts.scheme.startswith("socks") else 80
            return Proxy(url, f"{key.upper()}_PROXY", parts.hostname or "", parts.port or default, auth)
    return Proxy(None, "no HTTPS_PROXY / ALL_PROXY in the environment")


def open_tunnel(sock: socket.socket, proxy: Proxy, target: Target, timeout: float) -> str:
    """Send CONNECT over `sock` (connected to the proxy) as httpx does; return the authority or raise TunnelError."""
    if not (proxy.url or "").startswith("http://"):
        raise TunnelError(
            f"tunnel: {proxy.shown()} is not an http:// proxy; this check only tests HTTP CONNECT proxies",
            f"ProxyError: Unable to connect to proxy {proxy.shown()}: unsupported proxy scheme",
        )
    authority = f"[{target.host}]:{target.port}" if ":" in target.host else f"{target.host}:{target.port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}", f"User-Agent: {USER_AGENT}"]
    if proxy.auth:
        lines.append("Proxy-Authorization: Basic " + base64.b64encode(proxy.auth.encode()).decode())
    try:
        sock.settimeout(timeout)
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = _read_head(sock, time.perf_counter() + timeout)
    except TimeoutError as exc:
        raise TunnelError(
            f"tunnel: the proxy did not answer CONNECT within {timeout:g} s",
            "ProxyError: Tunnel connection failed: proxy timed out",
        ) from exc
    except OSError as exc:
        raise TunnelError(
            f"tunnel: the proxy dropped the connection: {exc}", f"ProxyError: Unable to connect to proxy: {exc}"
        ) from exc
    status_line = head.split("\r\n", 1)[0]
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or parts[1] != "200":
        reason = status_line.removeprefix("HTTP/1.1 ").removeprefix("HTTP/1.0 ")
        raise TunnelError(
            f"tunnel: the proxy refused CONNECT {authority}: {status_line}",
            f"ProxyError: Tunnel connection failed: {reason}",
        )
    return authority


def _read_head(sock: socket.socket, deadline: float) -> str:
    """Read up to the blank line after the headers (the proxy sends no body on success)."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < MAX_HEAD:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise TimeoutError("no complete answer in time")
        sock.settimeout(remaining)
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode("latin-1")
