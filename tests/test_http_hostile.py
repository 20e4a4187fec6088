"""The HTTP server under hostile clients, on loopback: many idle sockets, requests trickled a byte at a time,
connections that never send anything; plus an idle server's CPU, the default address and the health file."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from bot.health_file import check
from bot.http_server import HttpServer
from bot.serve import make_wsgi
from tests.bot_harness import RATE_ERROR, SECRET, TOKEN, Running
from tests.serve_process import ServeProcess, free_port, serve_env
from tests.slack_stub import SlackStub, message_event


@contextmanager
def _sockets(count: int, port: int) -> Iterator[list[socket.socket]]:
    opened = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]
    try:
        yield opened
    finally:
        for s in opened:
            s.close()


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    """True when the server closes `sock` (EOF or reset) within `within` seconds."""
    sock.settimeout(within)
    try:
        return sock.recv(1024) == b"" or True  # data would be an error response, also a close
    except TimeoutError:
        return False
    except OSError:
        return True


def test_hundreds_of_idle_and_trickling_connections_do_not_lock_slack_out(running: Running):
    port = running.server.port
    stop = threading.Event()
    with _sockets(250, port) as idle, _sockets(100, port) as trickling:

        def trickle() -> None:
            for s in trickling:
                s.sendall(b"POST /slack/events HTTP/1.1\r\n")
            while not stop.wait(0.5):
                for s in trickling:
                    with suppress(OSError):
                        s.sendall(b"X")

        thread = threading.Thread(target=trickle, daemon=True)
        thread.start()
        try:
            time.sleep(0.5)
            assert len(idle) == 250
            with urllib.request.urlopen(f"{running.server.url}/healthz", timeout=5) as response:
                assert response.status == 200
            running.event(message_event(RATE_ERROR))  # asserts the 200 (the post's own timeout is 10 s)
            running.settle(1)
            assert len(running.messages()) == 1
        finally:
            stop.set()
            thread.join(5)


def test_a_trickled_request_and_a_silent_connection_are_cut_off(running: Running):
    server = HttpServer(make_wsgi(running.bot), host="127.0.0.1", port=0, threads=2, request_deadline=1, idle_s=1)
    server.start()
    try:
        with _sockets(2, server.port) as (trickler, silent):
            trickler.sendall(b"GET /healthz HTTP/1.1\r\n")
            started = time.monotonic()
            closed = False
            while time.monotonic() - started < 5 and not closed:
                try:
                    trickler.sendall(b"X")  # a byte every 0.2 s keeps waitress's idle timer from ever firing
                except OSError:
                    closed = True
                    break
                trickler.settimeout(0.2)
                try:
                    closed = trickler.recv(1024) == b""
                except TimeoutError:
                    pass
                except OSError:
                    closed = True
            assert closed, "a request trickled a byte at a time was never cut off"
            assert _closed_by_server(silent, within=4)
        with _sockets(1, server.port) as (keep_alive,):  # a served request, then silence: closed too
            keep_alive.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            keep_alive.settimeout(5)
            assert b"200 OK" in keep_alive.recv(65536)
            assert _closed_by_server(keep_alive, within=4)
    finally:
        server.stop()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_idle_http_server_sleeps_binds_loopback_and_keeps_a_health_file(kb_path: Path, tmp_path: Path):
    health = tmp_path / "health.json"
    with SlackStub(token=TOKEN) as slack:
        env = serve_env(
            kb_path,
            tmp_path / "state.sqlite",
            SLACK_BOT_TOKEN=TOKEN,
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=slack.api_url,
            GEMINI_KB_HEALTH_FILE=str(health),
        )
        port = free_port()
        proc = ServeProcess(["--http", "--port", str(port)], env)  # no --host: the default address
        try:
            proc.wait_http(port)
            assert f"http://127.0.0.1:{port}/slack/events" in proc.log
            with socket.socket() as probe:  # nothing on the other addresses of this host
                other = socket.gethostbyname(socket.gethostname())
                if other != "127.0.0.1":
                    assert probe.connect_ex((other, port)) != 0
            time.sleep(1)
            before = _cpu_seconds(proc.proc.pid)
            time.sleep(3)
            idle_cpu = _cpu_seconds(proc.proc.pid) - before
            assert idle_cpu < 0.5, f"an idle server used {idle_cpu:.2f} s of CPU in 3 s"
            ok, why = check(health)
            assert ok, why
            assert json.loads(health.read_text())["url"] == f"http://127.0.0.1:{port}/healthz"
            proc.proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0
            assert not health.exists() and not check(health)[0]
        finally:
            proc.stop()
