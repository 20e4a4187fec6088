"""A local stand-in for the Gemini API: a real HTTP(S) server on 127.0.0.1 answering with real error bodies.

The behaviour is chosen by the API key (`stub_key("invalid")` -> 400 API_KEY_INVALID), so any
test can drive the real `google-genai` client at it through `base_url`:

    with GeminiStub() as stub:
        client = genai.Client(api_key=stub_key("valid"), http_options=types.HttpOptions(base_url=stub.url))

`TestPKI` makes the certificates for the TLS variants (trusted, self-signed, untrusted CA, wrong host).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import select
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import trustme

HOST = "127.0.0.1"
KEY_PREFIX = "AIzaStub"
KEY_LENGTH = 39  # the length of a real Google API key
BEHAVIOURS = ("valid", "invalid", "disabled", "quota", "overloaded", "slow")
MAX_LIFETIME_S = 120.0  # a forgotten stub stops by itself
# Cleared by tests so the developer's own proxy settings cannot reroute 127.0.0.1 traffic.
PROXY_VARS = tuple(v for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy") for v in (name, name.upper()))


def stub_key(behaviour: str) -> str:
    """A key shaped like a real one (`AIza` + 35 chars) that selects `behaviour`."""
    if behaviour not in BEHAVIOURS:
        raise ValueError(f"unknown stub behaviour {behaviour!r}; one of {', '.join(BEHAVIOURS)}")
    head = f"{KEY_PREFIX}{behaviour.capitalize()}_"
    return head + "0" * (KEY_LENGTH - len(head) - 3) + "k3Q"


def behaviour_of(key: str | None) -> str | None:
    """The behaviour a key selects; None for no key, 'invalid' for any key the stub did not issue."""
    if not key:
        return None
    match = re.fullmatch(rf"{KEY_PREFIX}([A-Za-z]+)_[A-Za-z0-9]+", key)
    name = match.group(1).lower() if match else "invalid"
    return name if name in BEHAVIOURS else "invalid"


def _model(name: str, display: str, in_limit: int, out_limit: int, methods: list[str], **extra: object) -> dict:
    return {
        "name": f"models/{name}",
        "version": "001",
        "displayName": display,
        "description": f"Stand-in for {display}",
        "inputTokenLimit": in_limit,
        "outputTokenLimit": out_limit,
        "supportedGenerationMethods": methods,
        **extra,
    }


_GENERATE = ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"]
MODELS: list[dict] = [
    _model(
        "gemini-2.5-flash",
        "Gemini 2.5 Flash",
        1_048_576,
        65_536,
        _GENERATE,
        temperature=1,
        topP=0.95,
        topK=64,
        maxTemperature=2,
        thinking=True,
    ),
    _model(
        "gemini-2.5-pro",
        "Gemini 2.5 Pro",
        1_048_576,
        65_536,
        _GENERATE,
        temperature=1,
        topP=0.95,
        topK=64,
        maxTemperature=2,
        thinking=True,
    ),
    _model(
        "gemini-2.5-flash-lite",
        "Gemini 2.5 Flash-Lite",
        1_048_576,
        65_536,
        _GENERATE,
        temperature=1,
        topP=0.95,
        topK=64,
        maxTemperature=2,
        thinking=True,
    ),
    _model(
        "gemini-2.0-flash",
        "Gemini 2.0 Flash",
        1_048_576,
        8_192,
        _GENERATE,
        temperature=1,
        topP=0.95,
        topK=40,
        maxTemperature=2,
    ),
    _model(
        "gemini-embedding-001",
        "Gemini Embedding 001",
        2_048,
        1,
        ["embedContent", "countTextTokens", "countTokens", "asyncBatchEmbedContent"],
    ),
]


def _error(code: int, status: str, message: str, details: list[dict] | None = None) -> dict:
    body: dict = {"code": code, "message": message, "status": status}
    if details is not None:
        body["details"] = details
    return {"error": body}


def _error_info(reason: str, **metadata: str) -> dict:
    return {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com", **metadata},
    }


KEY_INVALID_MESSAGE = "API key not valid. Please pass a valid API key."
PROJECT = "123456789012"
ACTIVATION_URL = (
    f"https://console.developers.google.com/apis/api/generativelanguage.googleapis.com/overview?project={PROJECT}"
)
NO_KEY = _error(
    403,
    "PERMISSION_DENIED",
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API.",
)
KEY_INVALID = _error(
    400,
    "INVALID_ARGUMENT",
    KEY_INVALID_MESSAGE,
    [
        _error_info("API_KEY_INVALID"),
        {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": KEY_INVALID_MESSAGE},
    ],
)
SERVICE_DISABLED = _error(
    403,
    "PERMISSION_DENIED",
    f"Generative Language API has not been used in project {PROJECT} before or it is disabled. Enable it by "
    f"visiting {ACTIVATION_URL} then retry. If you enabled this API recently, wait a few minutes for the action "
    "to propagate to our systems and retry.",
    [
        _error_info(
            "SERVICE_DISABLED",
            consumer=f"projects/{PROJECT}",
            activationUrl=ACTIVATION_URL,
            serviceTitle="Generative Language API",
            containerInfo=PROJECT,
        ),
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [{"description": "Google developers console API activation", "url": ACTIVATION_URL}],
        },
    ],
)
QUOTA_METRIC = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
RATE_LIMITED = _error(
    429,
    "RESOURCE_EXHAUSTED",
    "You exceeded your current quota, please check your plan and billing details. For more information on this "
    "error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, head to: "
    f"https://ai.dev/rate-limit. \n* Quota exceeded for metric: {QUOTA_METRIC}, limit: 10, model: gemini-2.5-flash"
    "\nPlease retry in 27.83s.",
    [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": QUOTA_METRIC,
                    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
                    "quotaValue": "10",
                }
            ],
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "27s"},
    ],
)
OVERLOADED = _error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
NOT_FOUND_PAGE = (
    "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not Found)!!1</title>\n"
    "  <p><b>404.</b> <ins>That's an error.</ins>\n  <p>The requested URL was not found on this server."
    "  <ins>That's all we know.</ins>\n"
)
FAILURES: dict[str, dict] = {
    "invalid": KEY_INVALID,
    "disabled": SERVICE_DISABLED,
    "quota": RATE_LIMITED,
    "overloaded": OVERLOADED,
}


def model_not_found(name: str, method: str = "get") -> dict:
    """The 404 body the API returns for a model it does not know."""
    return _error(
        404,
        "NOT_FOUND",
        f"models/{name} is not found for API version v1beta, or is not supported for {method}. "
        "Call ListModels to see the list of available models and their supported methods.",
    )


@dataclass(frozen=True)
class Seen:
    """One request the stub answered (the key itself is not kept, only what it selected)."""

    method: str
    path: str
    behaviour: str | None
    api_client: str
    page_token: str = ""  # ListModels: the pageToken asked for ("" for the first page)


@dataclass
class _State:
    models: list[dict]
    slow_seconds: float
    page_cap: int = 1000  # ListModels serves at most this many per page, whatever pageSize asks (as the API may)
    stopping: threading.Event = field(default_factory=threading.Event)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server_version = "ESF"  # what Google's front end calls itself
    sys_version = ""
    protocol_version = "HTTP/1.1"
    state: _State  # set on the per-server subclass

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        return

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _send(self, status: int, body: dict | str, content_type: str = "application/json; charset=UTF-8") -> None:
        data = (json.dumps(body, indent=2) if isinstance(body, dict) else body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Vary", "Origin, X-Origin, Referer")
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 1_000_000))
        key = self.headers.get("x-goog-api-key") or (query.get("key") or [None])[0]
        behaviour = behaviour_of(key)
        with self.state.lock:
            token = (query.get("pageToken") or [""])[0]
            self.state.seen.append(Seen(method, url.path, behaviour, self.headers.get("x-goog-api-client", ""), token))
        found = re.fullmatch(r"/v1beta/models(?:/([A-Za-z0-9.\-_]+)(?::([A-Za-z]+))?)?", url.path)
        if not found:
            self._send(404, NOT_FOUND_PAGE, "text/html; charset=UTF-8")
            return
        if behaviour is None:
            self._send(403, NO_KEY)
            return
        if behaviour == "slow":
            self.state.stopping.wait(self.state.slow_seconds)
        elif behaviour in FAILURES:
            self._send(FAILURES[behaviour]["error"]["code"], FAILURES[behaviour])
            return
        name, action = found.group(1), found.group(2)
        if name is None and method == "GET":
            self._list(query)
        elif name is not None:
            self._model_call(method, name, action)
        else:
            self._send(404, NOT_FOUND_PAGE, "text/html; charset=UTF-8")

    def _list(self, query: dict[str, list[str]]) -> None:
        """`GET /v1beta/models`: `{"models": [...], "nextPageToken": "..."}`; the token is opaque (here the
        base64 of the last name served, as the API's tokens are base64) and absent on the last page."""
        size = max(1, min(1000, self.state.page_cap, int((query.get("pageSize") or ["50"])[0])))
        token = (query.get("pageToken") or [""])[0]
        names = [m["name"] for m in self.state.models]
        try:
            after = base64.urlsafe_b64decode(token.encode()).decode() if token else None
            start = names.index(after) + 1 if after else 0
        except (ValueError, UnicodeDecodeError):
            self._send(400, _error(400, "INVALID_ARGUMENT", "Invalid page token."))
            return
        page = self.state.models[start : start + size]
        body: dict = {"models": page}
        if start + size < len(self.state.models):
            body["nextPageToken"] = base64.urlsafe_b64encode(page[-1]["name"].encode()).decode()
        self._send(200, body)

    def _model_call(self, method: str, name: str, action: str | None) -> None:
        model = next((m for m in self.state.models if m["name"] == f"models/{name}"), None)
        if model is None:
            self._send(404, model_not_found(name, action or "get"))
        elif method == "GET" and action is None:
            self._send(200, model)
        elif method == "POST" and action == "countTokens":
            self._send(200, {"totalTokens": 2, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 2}]})
        elif method == "POST" and action == "generateContent":
            self._send(
                200,
                {
                    "candidates": [
                        {"content": {"parts": [{"text": "pong"}], "role": "model"}, "finishReason": "STOP", "index": 0}
                    ],
                    "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 1, "totalTokenCount": 3},
                    "modelVersion": name,
                },
            )
        else:
            self._send(404, model_not_found(name, action or method.lower()))


class _Server(ThreadingHTTPServer):
    """Threads per connection; the TLS handshake happens in the connection's thread, not in accept."""

    daemon_threads = True
    tls: ssl.SSLContext | None = None

    def finish_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return  # the client refused our certificate: that is the scenario, not an error
            try:
                super().finish_request(request, client_address)
            finally:
                request.close()
            return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        return  # clients that hang up mid-answer (timeouts) are expected here


class GeminiStub:
    """The stand-in server: `with GeminiStub() as stub: ... stub.url ...`; HTTPS when given a TLS context."""

    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None = None,
        slow_seconds: float = 3.0,
        models: list[dict] | None = None,
        lifetime: float = MAX_LIFETIME_S,
        page_cap: int = 1000,
    ):
        self.state = _State(
            models=list(MODELS if models is None else models), slow_seconds=slow_seconds, page_cap=page_cap
        )
        handler = type("StubHandler", (_Handler,), {"state": self.state})
        self._server = _Server((HOST, 0), handler)
        self._server.tls = tls
        self.port = self._server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://{HOST}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True

    @property
    def seen(self) -> list[Seen]:
        with self.state.lock:
            return list(self.state.seen)

    def start(self) -> GeminiStub:
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        self._timer.cancel()
        self.state.stopping.set()  # release slow answers at once
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> GeminiStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _ProxyHandler(socketserver.BaseRequestHandler):
    """CONNECT only; pipes bytes between the client and a 127.0.0.1 target."""

    proxy: ConnectProxy

    def handle(self) -> None:
        self.request.settimeout(5)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 16_384:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            head += chunk
        lines = head.decode("latin-1").split("\r\n")
        method, authority = [*lines[0].split(" "), "", ""][:2]
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        self.proxy.seen.append(f"{method} {authority}")
        host, _, port = authority.rpartition(":")
        if self.proxy.auth and headers.get("Proxy-Authorization") != self.proxy.expected:
            self.request.sendall(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="stub"\r\nContent-Length: 0\r\n\r\n'
            )
            return
        if method != "CONNECT" or host != HOST:
            self.request.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        with socket.create_connection((host, int(port)), timeout=5) as upstream:
            self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self._pipe(upstream)

    def _pipe(self, upstream: socket.socket) -> None:
        ends = [self.request, upstream]
        while not self.proxy.stopping.is_set():
            ready, _, _ = select.select(ends, [], [], 0.1)
            for end in ready:
                data = end.recv(65536)
                if not data:
                    return
                (upstream if end is self.request else self.request).sendall(data)


class ConnectProxy:
    """An HTTP CONNECT proxy on 127.0.0.1 (what HTTPS_PROXY points at); with `auth` it wants Basic credentials."""

    def __init__(self, *, auth: str | None = None):
        import base64

        self.auth = auth
        self.expected = "Basic " + base64.b64encode(auth.encode()).decode() if auth else ""
        self.seen: list[str] = []
        self.stopping = threading.Event()
        handler = type("ProxyHandler", (_ProxyHandler,), {"proxy": self})
        self._server = socketserver.ThreadingTCPServer((HOST, 0), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, credentials: str | None = None) -> str:
        """The proxy URL, optionally with `user:password@`."""
        return f"http://{credentials + '@' if credentials else ''}{HOST}:{self.port}"

    def __enter__(self) -> ConnectProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()


def closed_port_url(scheme: str = "https") -> str:
    """A URL on 127.0.0.1 whose port was just bound and released: connecting is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    return f"{scheme}://{HOST}:{port}"


def _server_context(load: Callable[[ssl.SSLContext], None]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    load(ctx)
    return ctx


class TestPKI:
    """A test certificate authority and server certificates for each TLS scenario."""

    __test__ = False  # not a pytest test class

    def __init__(self, folder: Path):
        self.ca = trustme.CA(organization_name="gemini-kb Test Root CA")
        self.ca_file = folder / "test-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self._folder = folder

    def trusted(self) -> ssl.SSLContext:
        """A certificate for 127.0.0.1 and localhost issued by the test CA."""
        return _server_context(self.ca.issue_cert(HOST, "localhost").configure_cert)

    def wrong_host(self) -> ssl.SSLContext:
        """A certificate from the test CA for another host name."""
        return _server_context(self.ca.issue_cert("api.example.test").configure_cert)

    def untrusted_ca(self) -> ssl.SSLContext:
        """What a TLS-inspecting proxy presents: a valid-looking chain from a CA the client does not trust."""
        corp = trustme.CA(organization_name="Example Corp TLS Inspection")
        return _server_context(corp.issue_cert(HOST, "localhost").configure_cert)

    def self_signed(self) -> ssl.SSLContext:
        """A certificate that is its own issuer."""
        cert_file, key_file = _self_signed(self._folder, HOST)
        return _server_context(lambda ctx: ctx.load_cert_chain(cert_file, key_file))


def _self_signed(folder: Path, host: str) -> tuple[Path, Path]:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Self Signed Appliance"),
            x509.NameAttribute(NameOID.COMMON_NAME, host),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "self-signed.pem", folder / "self-signed.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file
