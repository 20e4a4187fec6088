"""A health file the running bot refreshes, and the check a container HEALTHCHECK runs against it.

Socket Mode listens on no port, and a HEALTHCHECK cannot know which `--port` HTTP mode was given, so
`gemini-kb serve` writes `$GEMINI_KB_HEALTH_FILE` every few seconds: the time, whether it is healthy
(knowledge base readable; in Socket Mode, the WebSocket open) and, in HTTP mode, its /healthz URL.
`python -m bot.health_file` passes when the file is fresh and healthy and, in HTTP mode, /healthz
answers 200; it prints one line and exits 1 otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ENV = "GEMINI_KB_HEALTH_FILE"
REFRESH_S = 5.0
STALE_S = 30.0


class HealthFile:
    """Writes `probe()` (a dict with at least "ok") to `path` every REFRESH_S seconds until `stop`."""

    def __init__(self, path: Path, probe: Callable[[], dict[str, object]]):
        self.path, self.probe = path, probe
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health-file", daemon=True)

    @classmethod
    def maybe(cls, path: Path | None, probe: Callable[[], dict[str, object]]) -> HealthFile | None:
        """Started when a path is configured (GEMINI_KB_HEALTH_FILE), else None."""
        return cls(path, probe).start() if path is not None else None

    def start(self) -> HealthFile:
        self.write()
        self._thread.start()
        return self

    def write(self) -> None:
        try:
            data = {"at": time.time(), "pid": os.getpid(), **self.probe()}
        except Exception as exc:  # a probe that fails is an unhealthy bot, not a dead writer
            data = {"at": time.time(), "pid": os.getpid(), "ok": False, "error": type(exc).__name__}
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(data))
            tmp.replace(self.path)  # a reader never sees half a file
        except OSError:
            pass  # the HEALTHCHECK then reports the file stale, which is the truth

    def _run(self) -> None:
        while not self._stop.wait(REFRESH_S):
            self.write()

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.path.unlink()


def check(path: Path, *, now: float | None = None, timeout: float = 4.0) -> tuple[bool, str]:
    """(healthy, one line saying why)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return False, f"{path} does not exist: the bot is not running (or still starting)"
    except (OSError, ValueError) as exc:
        return False, f"{path} unreadable: {exc}"
    age = (time.time() if now is None else now) - float(data.get("at") or 0)
    if age > STALE_S:
        return False, f"{path} not refreshed for {age:.0f} s: the bot is stuck or gone"
    if not data.get("ok"):
        return False, f"unhealthy: {data.get('error') or data}"
    url = data.get("url")
    if url:
        try:
            with urllib.request.urlopen(str(url), timeout=timeout) as response:
                return response.status == 200, f"{url}: HTTP {response.status}"
        except OSError as exc:
            return False, f"{url}: {exc}"
    return True, "healthy"


def main() -> int:
    from kb.settings import ConfigError, load_settings

    try:
        path = load_settings().health_file
    except ConfigError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    if path is None:
        print(f"{ENV} is not set", file=sys.stderr)
        return 1
    ok, why = check(path)
    print(why, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
