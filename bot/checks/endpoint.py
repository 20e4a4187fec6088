"""The endpoint check: DNS, TCP, TLS and one HTTP round trip to the API, each phase timed and bounded.

The HTTP request travels over the very socket whose address was resolved and vetted, so a DNS
answer cannot change between the address check and the request. Trust is decided the way
google-genai decides it (SSL_CERT_FILE / SSL_CERT_DIR, else httpx2's default context), so a
pass here means the SDK will trust the same certificate.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from bot.checks.certificate import certificate_line, certificate_notes, describe_certificate, verify_failure
from bot.checks.explain import failed, ms_since
from bot.checks.proxy import USER_AGENT, Proxy, TunnelError, open_tunnel, proxy_for
from bot.checks.result import CheckResult
from bot.checks.target import Target, TargetRefused, parse_target, refuse_address
from kb.store import KnowledgeBase

T = TypeVar("T")
PROBE_PATH = "/v1beta/models"  # without a key the real API answers 403 PERMISSION_DENIED in JSON
MAX_BODY = 64 * 1024
MAX_HEAD = 64 * 1024
PHASES = 5  # dns, tcp, tunnel, tls, http: the whole check ends within PHASES x the timeout


class PhaseTimeout(Exception):
    """A phase did not finish within its time budget."""


@dataclass
class _Run:
    """State shared by the phases of one endpoint check."""

    target: Target
    timeout: float
    kb: KnowledgeBase | None
    results: list[CheckResult] = field(default_factory=list)
    deadline: float = 0.0  # the whole check's end (perf_counter); no phase runs past it

    def __post_init__(self) -> None:
        self.deadline = self.deadline or time.perf_counter() + PHASES * self.timeout

    def left(self) -> float:
        """The time a phase starting now may take: its own timeout, cut to what is left of the whole."""
        return max(0.001, min(self.timeout, self.deadline - time.perf_counter()))

    def phase(self, name: str) -> str:
        return f"endpoint.{name}"

    def fail(self, name: str, start: float, detail: str, error_text: str, **data: object) -> None:
        context = f"Gemini endpoint check of {self.target.shown}, {name} phase: "
        self.results.append(
            failed(
                self.phase(name),
                detail,
                context + error_text,
                self.kb,
                latency_ms=ms_since(start, time.perf_counter()),
                data=dict(data),
            )
        )

    def ok(self, name: str, start: float, detail: str, **data: object) -> None:
        self.results.append(
            CheckResult(self.phase(name), True, ms_since(start, time.perf_counter()), detail, data=dict(data))
        )


def check_endpoint(url: str, *, timeout: float, kb: KnowledgeBase | None, allow_private: bool) -> list[CheckResult]:
    """Probe `url` phase by phase; stop at the first failed phase. One result per phase that ran."""
    try:
        target = parse_target(url, allow_private=allow_private)
    except TargetRefused as exc:
        return [CheckResult("endpoint", False, 0.0, str(exc), data={"url": url})]
    run = _Run(target, timeout, kb)
    proxy = proxy_for(target)
    shown = {"proxy": proxy.shown(), "source": proxy.source}
    run.results.append(CheckResult(run.phase("proxy"), True, None, proxy.describe(), data=shown))
    via_proxy = proxy.url is not None
    host, port = (proxy.host, proxy.port) if via_proxy else (target.host, target.port)
    if via_proxy and not allow_private and not _target_resolves_publicly(run):
        return run.results

    addresses = _dns(run, host, port, vet=not via_proxy, allow_private=allow_private)
    if addresses is None:
        return run.results
    sock = _tcp(run, host, addresses)
    if sock is None:
        return run.results
    try:
        if via_proxy and not _tunnel(run, sock, proxy):
            return run.results
        tls = _tls(run, sock, proxy)
        if tls is None:
            return run.results
        sock = tls
        _http(run, tls)
    finally:
        sock.close()
    return run.results


# -- phases -------------------------------------------------------------------------------


def _tunnel(run: _Run, sock: socket.socket, proxy: Proxy) -> bool:
    start = time.perf_counter()
    try:
        authority = open_tunnel(sock, proxy, run.target, run.left())
    except TunnelError as exc:
        run.fail("tunnel", start, exc.detail, exc.error_text)
        return False
    run.ok("tunnel", start, f"the proxy opened a tunnel to {authority}")
    return True


def _bounded(func: Callable[[], T], timeout: float) -> T:
    """Run a blocking call with no timeout of its own (getaddrinfo) in a daemon thread, bounded."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = func()
        except BaseException as exc:  # handed back to the caller below
            box["error"] = exc

    worker = threading.Thread(target=run, daemon=True, name="endpoint-dns")
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise PhaseTimeout()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def _target_resolves_publicly(run: _Run) -> bool:
    """Behind a proxy the proxy resolves the name, so a name this host resolves to a private address (a hosts
    file entry, split DNS) is refused here first. A name this host cannot resolve is left to the proxy."""
    start = time.perf_counter()
    host = run.target.host
    try:
        infos = _bounded(lambda: socket.getaddrinfo(host, run.target.port, type=socket.SOCK_STREAM), run.left())
    except (PhaseTimeout, OSError, UnicodeError):
        return True
    try:
        for *_rest, sockaddr in infos:
            refuse_address(host, sockaddr[0], allow_private=False)
    except TargetRefused as exc:
        run.results.append(CheckResult(run.phase("dns"), False, ms_since(start, time.perf_counter()), str(exc)))
        return False
    return True


def _dns(run: _Run, host: str, port: int, *, vet: bool, allow_private: bool) -> list[tuple[int, tuple]] | None:
    start = time.perf_counter()
    try:
        infos = _bounded(lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM), run.left())
    except PhaseTimeout:
        run.fail(
            "dns",
            start,
            f"dns: no answer for {host} within {run.timeout:g} s",
            f"ConnectTimeout: DNS lookup of {host} timed out (EAI_AGAIN)",
        )
        return None
    except (socket.gaierror, UnicodeError, OSError) as exc:
        run.fail("dns", start, f"dns: {host} does not resolve: {exc}", f"{type(exc).__name__}: {exc}")
        return None
    addresses = list(dict.fromkeys((family, sockaddr) for family, _t, _p, _c, sockaddr in infos))
    if vet:
        try:
            for _family, sockaddr in addresses:
                refuse_address(host, sockaddr[0], allow_private=allow_private)
        except TargetRefused as exc:
            run.results.append(CheckResult(run.phase("dns"), False, ms_since(start, time.perf_counter()), str(exc)))
            return None
    shown = ", ".join(sockaddr[0] for _f, sockaddr in addresses[:4])
    more = f" (+{len(addresses) - 4} more)" if len(addresses) > 4 else ""
    run.ok("dns", start, f"{host} -> {shown}{more}", addresses=[sockaddr[0] for _f, sockaddr in addresses])
    return addresses


def _tcp(run: _Run, host: str, addresses: list[tuple[int, tuple]]) -> socket.socket | None:
    start = time.perf_counter()
    deadline = start + run.left()
    errors: list[str] = []
    last: OSError | None = None
    for family, sockaddr in addresses:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            break
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(remaining)
        try:
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            last = exc
            errors.append(f"{sockaddr[0]}: {'timed out' if isinstance(exc, TimeoutError) else exc}")
            continue
        run.ok("tcp", start, f"connected to {_hostport(sockaddr)}", address=sockaddr[0], tried=errors)
        return sock
    if last is None or isinstance(last, TimeoutError):
        run.fail(
            "tcp",
            start,
            f"tcp: no connection to {host} within {run.timeout:g} s ({'; '.join(errors) or 'no time left'})",
            f"ConnectTimeout: connection to {host} timed out",
            tried=errors,
        )
    else:
        run.fail(
            "tcp", start, f"tcp: cannot connect to {host}: {'; '.join(errors)}", f"ConnectError: {last}", tried=errors
        )
    return None


def trust_context() -> tuple[ssl.SSLContext, str]:
    """The verifying context google-genai (with httpx2) would build, and where its trust comes from."""
    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if cafile or capath:
        where = " ".join(f"{k}={v}" for k, v in (("SSL_CERT_FILE", cafile), ("SSL_CERT_DIR", capath)) if v)
        return ssl.create_default_context(cafile=cafile, capath=capath), where
    import httpx2

    return httpx2.create_ssl_context(), "the system trust store"


def _tls(run: _Run, sock: socket.socket, proxy: Proxy) -> ssl.SSLSocket | None:
    start = time.perf_counter()
    host = run.target.host
    try:
        ctx, trust = trust_context()
    except (ssl.SSLError, OSError) as exc:
        run.fail("tls", start, f"tls: cannot load the trust store: {exc}", f"SSLError: {exc}")
        return None
    sock.settimeout(run.left())  # CPython bounds the whole handshake by it, not each read
    family, peer = sock.family, sock.getpeername()
    try:
        tls = ctx.wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        cert = _peek_certificate(run, family, peer, proxy)
        detail, interception = verify_failure(exc, cert, host, trust)
        run.fail(
            "tls",
            start,
            detail,
            f"SSLCertVerificationError: {exc}",
            certificate=cert,
            trust=trust,
            interception=interception,
        )
        return None
    except TimeoutError:
        run.fail(
            "tls",
            start,
            f"tls: no TLS handshake with {host} within {run.timeout:g} s",
            f"ConnectTimeout: TLS handshake with {host} timed out",
        )
        return None
    except (ssl.SSLError, OSError) as exc:
        run.fail("tls", start, f"tls: handshake with {host} failed: {exc}", f"SSLError: {exc}", trust=trust)
        return None
    cert = describe_certificate(tls.getpeercert(binary_form=True) or b"")
    notes = certificate_notes(cert, run.target)
    detail = f"{tls.version()}, {certificate_line(cert)}; trusted by {trust}"
    run.ok(
        "tls",
        start,
        "; ".join([detail, *notes]),
        certificate=cert,
        trust=trust,
        interception=any("interception" in n for n in notes),
    )
    return tls


def _peek_certificate(run: _Run, family: int, sockaddr: tuple, proxy: Proxy) -> dict[str, object]:
    """Fetch the certificate again without verifying it (same address), only to say who issued it."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.socket(family, socket.SOCK_STREAM) as raw:
            raw.settimeout(run.left())
            raw.connect(sockaddr)
            if proxy.url:
                open_tunnel(raw, proxy, run.target, run.left())
            with ctx.wrap_socket(raw, server_hostname=run.target.host) as tls:
                return describe_certificate(tls.getpeercert(binary_form=True) or b"")
    except (OSError, ssl.SSLError, TunnelError):
        return {}


def _http(run: _Run, tls: ssl.SSLSocket) -> None:
    start = time.perf_counter()
    # One deadline for the request, the head and the body: a server that drips its answer byte by byte
    # cannot keep the check (and its socket) alive past it.
    deadline = start + run.left()
    target = run.target
    path = f"{target.prefix}{PROBE_PATH}"
    shown_path = f"{target.shown_prefix}{PROBE_PATH}"
    authority = target.host if target.port == 443 else f"{target.host}:{target.port}"
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: {USER_AGENT}\r\n"
        "Accept: application/json\r\nConnection: close\r\n\r\n"
    )
    try:
        tls.settimeout(max(0.001, deadline - time.perf_counter()))
        tls.sendall(request.encode())
        raw = _read_response(tls, deadline)
        response = http.client.HTTPResponse(_Recorded(raw), method="GET")  # type: ignore[arg-type]
        response.begin()
        try:
            body = response.read(MAX_BODY)
        except http.client.IncompleteRead as exc:  # cut at MAX_BODY: what arrived is enough to judge
            body = exc.partial
    except (TimeoutError, PhaseTimeout):
        run.fail(
            "http",
            start,
            f"http: no answer to GET {shown_path} within {run.timeout:g} s",
            f"ReadTimeout: The read operation timed out (GET {shown_path})",
        )
        return
    except (OSError, http.client.HTTPException) as exc:
        run.fail(
            "http",
            start,
            f"http: GET {shown_path} failed: {type(exc).__name__}: {exc}",
            f"{type(exc).__name__}: {exc}",
        )
        return
    verdict, answered = api_answer(response.status, response.getheader("Content-Type", ""), body)
    data = {"status": response.status, "server": response.getheader("Server", ""), "path": shown_path}
    if answered:
        run.ok("http", start, f"GET {shown_path} -> {verdict}", **data)
    else:
        run.fail(
            "http",
            start,
            f"http: GET {shown_path} -> {verdict}",
            f"HTTP {response.status} {response.reason} from {target.shown}{PROBE_PATH}: {verdict}",
            **data,
        )


class _Recorded:
    """A finished response held in memory, for http.client to parse (status, headers, chunks)."""

    def __init__(self, raw: bytes):
        self._raw = raw

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self._raw)


def _read_response(sock: ssl.SSLSocket, deadline: float) -> bytes:
    """The raw response, read until it is complete (by Content-Length, the last chunk or the end of the
    connection) or big enough to judge; PhaseTimeout at the deadline, whatever the server drips."""
    data = b""
    while len(data) < MAX_HEAD + MAX_BODY:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise PhaseTimeout()
        sock.settimeout(remaining)
        chunk = sock.recv(16384)
        if not chunk:
            break
        data += chunk
        if _complete(data):
            break
    return data


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    headers = head.lower()
    match = re.search(rb"\r\ncontent-length:[ \t]*(\d{1,12})", headers)
    if match:
        return len(body) >= int(match.group(1))
    if b"transfer-encoding: chunked" in headers:
        return body.endswith(b"0\r\n\r\n")
    return False


def api_answer(status: int, content_type: str, body: bytes) -> tuple[str, bool]:
    """Whether an answer to a keyless request came from the Gemini API itself, and a short verdict."""
    try:
        data = json.loads(body.decode("utf-8", errors="replace")) if body else None
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), int) and error.get("status"):
        message = str(error.get("message", ""))[:90]
        return f'{status} {error["status"]} in the API\'s own JSON ("{message}"): the API answered', True
    if status == 200 and isinstance(data, dict) and isinstance(data.get("models"), list):
        return f"200 with {len(data['models'])} models: the API answered (a gateway added a key?)", True
    kind = (content_type or "no content type").split(";")[0]
    first = body[:60].decode("utf-8", errors="replace").replace("\r", " ").replace("\n", " ").strip()
    return (
        f"{status} {kind} that is not a Gemini API answer ({first!r}): a proxy, captive portal, "
        "or a wrong base URL answered",
        False,
    )


def _hostport(sockaddr: tuple) -> str:
    host, port = sockaddr[0], sockaddr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
