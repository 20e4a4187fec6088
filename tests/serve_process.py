"""`gemini-kb serve` as a real subprocess for kill, SIGTERM and start-up tests (binds 127.0.0.1 only)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What the `gemini-kb` console script runs (`python -m bot.cli` would load bot.cli twice: __main__ and bot.cli)
ENTRY = "import sys; from bot.cli import main; sys.exit(main(sys.argv[1:]))"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_env(kb_path: Path, state_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a bot process, without the caller's secrets; `extra` adds or overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GEMINI_API", "GOOGLE_API"))}
    env.update(GEMINI_KB_DB=str(kb_path), GEMINI_KB_STATE_DB=str(state_path), LOG_LEVEL="INFO", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


class ServeProcess:
    """One `python -m bot.cli serve ...` process; its stderr is collected in `log_lines`."""

    def __init__(self, args: list[str], env: dict[str, str], *, prefix: list[str] | None = None):
        self.proc = subprocess.Popen(
            [*(prefix or []), sys.executable, "-c", ENTRY, "serve", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.log_lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log_lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self.log_lines)

    def wait_http(self, port: int, timeout: float = 60) -> None:
        problem = wait_healthy(port, self.proc, timeout)
        if problem:
            raise AssertionError(f"{problem}: {self.log}")

    def bot_pid(self) -> int:
        """The bot's process id (the child of a `prefix` such as `unshare --fork`, else the process itself)."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        if children.exists():
            for pid in children.read_text().split():
                return int(pid)
        return self.proc.pid

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(2)
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 60) -> str | None:
    """Wait until `serve --http` on `port` answers /healthz with 200; None when it does, else what went wrong."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"serve exited with {proc.returncode}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return None
        except OSError:
            time.sleep(0.05)
    return f"serve --http not ready within {timeout} s"
