"""A throw-away PostgreSQL cluster for the tests: its own folder, a free port on 127.0.0.1, stopped at the end.

`initdb` refuses to run as root, so when the tests run as root the cluster belongs to the `postgres` system
user (the folder is made for it and removed afterwards).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BIN_DIRS = (Path("/usr/lib/postgresql/15/bin"), Path("/usr/local/bin"), Path("/usr/bin"))


def pg_bin(name: str) -> Path | None:
    """Where a server binary is, or None."""
    for folder in BIN_DIRS:
        if (folder / name).is_file():
            return folder / name
    found = shutil.which(name)
    return Path(found) if found else None


def missing_reason() -> str | None:
    """Why a cluster cannot be started here, or None when it can."""
    for name in ("initdb", "pg_ctl", "postgres"):
        if pg_bin(name) is None:
            return f"PostgreSQL server binary {name!r} not found (install postgresql-15)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to own the cluster"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Cluster:
    """A running cluster: where it listens and how to reach it."""

    folder: Path
    port: int
    run_as: list[str]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run pg_ctl on this cluster (stop, start, restart)."""
        cmd = [*self.run_as, str(pg_bin("pg_ctl")), "-D", str(self.folder / "data"), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=check)

    def create_database(self) -> str:
        """A new, empty database on this cluster; its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url.rsplit("/", 1)[0] + "/" + name

    def start(self) -> None:
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off"
        self.pg_ctl("-w", "-l", str(self.folder / "server.log"), "-o", opts, "start")

    def stop(self) -> None:
        self.pg_ctl("-w", "-m", "fast", "stop", check=False)


@contextmanager
def running_cluster() -> Iterator[Cluster]:
    """Start a fresh cluster, yield it, stop and remove it whatever happens."""
    folder = Path(tempfile.mkdtemp(prefix="gemini-kb-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    cluster = Cluster(folder=folder, port=_free_port(), run_as=run_as)
    try:
        subprocess.run(
            [*run_as, str(pg_bin("initdb")), "-D", str(folder / "data"), "-U", "postgres", "-A", "trust", "-E", "UTF8"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
