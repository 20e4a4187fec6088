"""The endpoint check against local TLS servers: trusted, self-signed, foreign CA, wrong host, proxies, SSRF."""

from __future__ import annotations

import gc
import os
import socket
import ssl
import threading
import time

import pytest

from bot.checks.certificate import certificate_notes
from bot.checks.endpoint import api_answer, check_endpoint
from bot.checks.runner import run_checks
from bot.checks.target import TargetRefused, parse_target
from tests.gemini_stub import HOST, PROXY_VARS, ConnectProxy, GeminiStub, TestPKI, closed_port_url

TIMEOUT = 1.0
PHASES = ["endpoint.proxy", "endpoint.dns", "endpoint.tcp", "endpoint.tls", "endpoint.http"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return TestPKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture(autouse=True)
def _trust_test_ca(monkeypatch: pytest.MonkeyPatch, pki: TestPKI) -> None:
    """The test CA is this process's whole trust store, as SSL_CERT_FILE makes it for google-genai too."""
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_file))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def trusted(pki: TestPKI):
    with GeminiStub(tls=pki.trusted()) as server:
        yield server


def endpoint(kb, url: str, *, allow_private: bool = True, timeout: float = TIMEOUT):
    results = check_endpoint(url, timeout=timeout, kb=kb, allow_private=allow_private)
    return results, {r.name: r for r in results}


def test_trusted_endpoint_passes_every_phase_with_timings(kb, trusted):
    results, by_name = endpoint(kb, trusted.url)
    assert [r.name for r in results] == PHASES
    assert all(r.ok for r in results), [r.detail for r in results if not r.ok]
    assert all(r.latency_ms is not None for r in results[1:])
    tls = by_name["endpoint.tls"]
    assert "gemini-kb Test Root CA" in tls.data["certificate"]["issuer"]
    assert tls.data["certificate"]["days_left"] > 0 and tls.data["interception"] is False
    http = by_name["endpoint.http"]
    assert http.data["status"] == 403 and "PERMISSION_DENIED" in http.detail  # the API's own keyless answer
    assert trusted.seen[-1].behaviour is None  # no key was sent


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        ("self_signed", "self-signed certificate"),
        ("untrusted_ca", "Example Corp TLS Inspection"),
        ("wrong_host", "api.example.test"),
    ],
)
def test_bad_certificates_fail_in_the_tls_phase(kb, pki, make, expected):
    with GeminiStub(tls=getattr(pki, make)()) as server:
        results, by_name = endpoint(kb, server.url)
    assert [r.name for r in results] == PHASES[:4]
    tls = by_name["endpoint.tls"]
    assert not tls.ok and tls.entry_id == "tls-or-proxy-error"
    assert expected in tls.detail
    assert tls.data["interception"] is (make != "wrong_host")
    if make != "wrong_host":
        assert "interception" in tls.detail


def test_refused_connection_fails_in_the_tcp_phase(kb):
    results, _by_name = endpoint(kb, closed_port_url())
    assert results[-1].name == "endpoint.tcp" and not results[-1].ok
    assert results[-1].entry_id == "dns-or-connect-failure"


def test_unresolvable_host_fails_in_the_dns_phase(kb, monkeypatch):
    def nxdomain(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", nxdomain)  # hermetic: no query leaves the machine
    results, _ = endpoint(kb, "https://gemini-kb-test.invalid")
    assert results[-1].name == "endpoint.dns" and not results[-1].ok
    assert results[-1].entry_id == "dns-or-connect-failure"


def test_silent_server_times_out_in_the_tls_phase_naming_it(kb):
    with socket.create_server((HOST, 0)) as silent:  # accepts TCP (backlog) but never speaks TLS
        port = silent.getsockname()[1]
        _results, by_name = endpoint(kb, f"https://{HOST}:{port}", timeout=0.3)
    tls = by_name["endpoint.tls"]
    assert not tls.ok and tls.detail.startswith("tls: no TLS handshake") and "0.3 s" in tls.detail
    assert tls.latency_ms < 1000


def test_non_api_answer_fails_in_the_http_phase(kb, trusted):
    _results, by_name = endpoint(kb, trusted.url + "/portal")  # the stub answers an HTML 404 there
    http = by_name["endpoint.http"]
    assert not http.ok and "not a Gemini API answer" in http.detail and "text/html" in http.detail


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/",
        "https://10.1.2.3",
        "https://169.254.169.254/computeMetadata/v1",
        "https://[::1]:8443",
        "https://[::ffff:127.0.0.1]",
        "https://metadata.google.internal",
        "https://localhost:9000",
    ],
)
def test_private_and_metadata_targets_are_refused_without_the_allow_setting(kb, url):
    results, _ = endpoint(kb, url, allow_private=False, timeout=5.0)
    assert len(results) == 1 and not results[0].ok
    assert results[0].detail.startswith("refused:") and "GEMINI_CHECK_ALLOW_PRIVATE=1" in results[0].detail
    assert results[0].latency_ms == 0.0  # refused before any packet was sent


def test_names_resolving_to_private_addresses_are_refused_after_dns(kb, trusted, monkeypatch):
    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda host, *a, **k: real(HOST if host == "api.example.test" else host, *a, **k)
    )
    results, by_name = endpoint(kb, "https://api.example.test", allow_private=False)
    assert [r.name for r in results] == ["endpoint.proxy", "endpoint.dns"]
    assert "resolves to a loopback address 127.0.0.1" in by_name["endpoint.dns"].detail


@pytest.mark.parametrize("url", ["http://generativelanguage.googleapis.com", "ftp://x.example", "not a url", ""])
def test_only_https_urls_are_checked(url):
    with pytest.raises(TargetRefused):
        parse_target(url, allow_private=True)


def test_proxy_in_force_is_reported_and_used_for_the_tunnel(kb, trusted, monkeypatch):
    with ConnectProxy(auth="alice:s3cret") as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url("alice:s3cret"))
        results, by_name = endpoint(kb, trusted.url)
    assert [r.name for r in results] == [*PHASES[:3], "endpoint.tunnel", *PHASES[3:]]
    assert all(r.ok for r in results), [r.detail for r in results if not r.ok]
    assert by_name["endpoint.proxy"].data["proxy"] == f"http://alice:***@{HOST}:{proxy.port}"
    assert "s3cret" not in str([r.detail for r in results]) and proxy.seen == [f"CONNECT {HOST}:{trusted.port}"]


def test_proxy_asking_for_credentials_is_a_proxy_error(kb, trusted, monkeypatch):
    with ConnectProxy(auth="alice:s3cret") as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url())
        _results, by_name = endpoint(kb, trusted.url)
    tunnel = by_name["endpoint.tunnel"]
    assert not tunnel.ok and "407 Proxy Authentication Required" in tunnel.detail
    assert tunnel.entry_id == "tls-or-proxy-error"


def test_no_proxy_bypasses_the_proxy(kb, trusted, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", HOST)
    results, by_name = endpoint(kb, trusted.url)
    assert all(r.ok for r in results) and "NO_PROXY" in by_name["endpoint.proxy"].detail


@pytest.mark.parametrize(
    ("status", "body", "answered"),
    [
        (403, b'{"error": {"code": 403, "message": "Method doesn\'t allow", "status": "PERMISSION_DENIED"}}', True),
        (200, b'{"models": [{"name": "models/gemini-2.5-flash"}]}', True),
        (200, b"<html><title>Sign in to the guest Wi-Fi</title></html>", False),
        (502, b"Bad Gateway", False),
    ],
)
def test_api_answer_tells_the_api_from_anything_else(status, body, answered):
    assert api_answer(status, "application/json", body)[1] is answered


def test_trusted_but_foreign_issuer_for_google_is_flagged_as_interception():
    google = parse_target("https://generativelanguage.googleapis.com", allow_private=False)
    corp = {"issuer_org": "Example Corp TLS Inspection", "issuer": "O=Example Corp TLS Inspection", "days_left": 300}
    gts = {"issuer_org": "Google Trust Services", "issuer": "CN=WR2,O=Google Trust Services,C=US", "days_left": 60}
    assert any("likely TLS interception" in note for note in certificate_notes(corp, google))
    assert certificate_notes(gts, google) == []


class DripServer:
    """A TLS server on 127.0.0.1 that answers every request with a status line and then one header byte
    every 50 ms, for as long as the client keeps the connection; it records each connection the client closed."""

    def __init__(self, context):
        self._context = context
        self._listener = socket.create_server((HOST, 0))
        self.port = self._listener.getsockname()[1]
        self.closed_by_client = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def __enter__(self) -> DripServer:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        try:
            with self._context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(4096)
                tls.sendall(b"HTTP/1.1 200 OK\r\nX-Drip: ")
                deadline = time.monotonic() + 20  # stops by itself
                while time.monotonic() < deadline and not self._stop.is_set():
                    tls.sendall(b"a")
                    time.sleep(0.05)
        except (OSError, ssl.SSLError):
            with self._lock:
                self.closed_by_client += 1


def _open_fds() -> int:
    gc.collect()  # a finished thread's read-only knowledge-base connection closes when it is collected
    return len(os.listdir("/proc/self/fd"))


def test_a_server_dripping_its_answer_cannot_outlive_the_check(kb, pki):
    """Each check ends at its deadline and closes its socket: no thread and no socket is left behind."""
    with DripServer(pki.trusted()) as server:
        threads, fds = threading.active_count(), _open_fds()
        runs = 6
        for _ in range(runs):
            start = time.perf_counter()
            report = run_checks(
                ["endpoint"],
                key=None,
                base_url=f"https://{HOST}:{server.port}",
                model=None,
                timeout=0.3,
                deep=False,
                kb=kb,
                allow_private=True,
            )
            assert time.perf_counter() - start < 0.3 * 5 + 1
            http = report.results[-1]
            assert http.name == "endpoint.http" and not http.ok and "no answer" in http.detail
        for _ in range(40):
            if server.closed_by_client >= runs and threading.active_count() <= threads:
                break
            time.sleep(0.05)
        assert server.closed_by_client == runs
        assert threading.active_count() <= threads, [t.name for t in threading.enumerate()]
        assert _open_fds() <= fds


@pytest.mark.parametrize(
    "url",
    [
        "https://2130706433",
        "https://0x7f000001",
        "https://127.1",
        "https://0177.0.0.1",
        "https://\uff11\uff12\uff17.\uff10.\uff10.\uff11",  # full-width digits
        "https://127\u30020\u30020\u30021",  # ideographic full stops
        "https://[64:ff9b::a00:1]",  # NAT64 of 10.0.0.1
        "https://[64:ff9b::7f00:1]",
        "https://[2002:7f00:1::]",  # 6to4 of 127.0.0.1
        "https://[2002:a9fe:a9fe::]",  # 6to4 of the metadata service
        "https://[::127.0.0.1]",
        "https://intranet",
    ],
)
def test_other_spellings_of_private_addresses_are_refused_even_through_a_proxy(kb, monkeypatch, url):
    with pytest.raises(TargetRefused):
        parse_target(url, allow_private=False)
    with ConnectProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url())
        results, _ = endpoint(kb, url, allow_private=False)
    assert not results[-1].ok and "refused" in results[-1].detail and proxy.seen == []


def test_a_name_this_host_resolves_privately_is_refused_before_the_proxy(kb, trusted, monkeypatch):
    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda host, *a, **k: real(HOST if host == "api.example.test" else host, *a, **k)
    )
    with ConnectProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url())
        _results, by_name = endpoint(kb, "https://api.example.test", allow_private=False)
    assert "resolves to a loopback address 127.0.0.1" in by_name["endpoint.dns"].detail
    assert proxy.seen == []


def test_public_addresses_in_other_spellings_are_still_checked():
    assert parse_target("https://134744072", allow_private=False).host == "8.8.8.8"
    assert parse_target("https://[2001:4860:4860::8888]", allow_private=False).host == "2001:4860:4860::8888"
