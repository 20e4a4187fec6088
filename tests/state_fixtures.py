"""Fixtures for the state tests: a throw-away PostgreSQL cluster per session, and stores on either back end.

`make_state` is parametrised over both back ends, so the same test runs on SQLite and PostgreSQL; each
call returns another store ("replica") on the same fresh database. The PostgreSQL cases are skipped,
with the reason, only where the server binaries are missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.state import StateBase, StateDB
from tests.pg_cluster import Cluster, missing_reason, running_cluster

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> str:
    return pg_cluster.create_database()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def state_target(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the stores of one test live: a SQLite path or a PostgreSQL URL."""
    if backend == "postgresql":
        return request.getfixturevalue("pg_cluster").create_database()
    return str(tmp_path / "state.sqlite")


@pytest.fixture
def make_state(backend: str, state_target: str) -> Iterator[Callable[..., StateBase]]:
    """Call it once per replica: every store it returns shares one database."""
    stores: list[StateBase] = []

    def make(**options: object) -> StateBase:
        if backend == "postgresql":
            from bot.state_postgres import PostgresState

            store: StateBase = PostgresState(state_target, **options)  # type: ignore[arg-type]
        else:
            # A generous lock wait: the racing tests count memory fallbacks, which a slow shared machine
            # must not cause (the lock behaviour itself has its own test).
            options.setdefault("busy_timeout", 10.0)
            store = StateDB(Path(state_target), **options)  # type: ignore[arg-type]
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()
