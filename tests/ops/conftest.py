"""Fixtures of the operations-centre tests: small worlds, stores (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

T0 = datetime(2026, 1, 15, 5, 0, tzinfo=UTC)
PG_URL = os.environ.get("AIGUILLEUR_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def case14_genesis(event_id: str = "world:grid") -> dict[str, Any]:
    """A grid_initialised event for the bundled case14 at its stored set-points (no solver)."""
    from aiguilleur.data import bundled_case_path
    from aiguilleur.grid import read_matpower, scaled_dispatch

    p = bundled_case_path("case14")
    net = scaled_dispatch(read_matpower(p))
    return {
        "id": event_id,
        "type": "grid_initialised",
        "occurred_at": T0.isoformat(),
        "source": "test",
        "case": "case14",
        "case_sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
        "pg_mw": [float(x) for x in net.gen.pg_mw],
        "vg_pu": [float(x) for x in net.gen.vg_pu],
        "assets": {"GT-1": "gen:2"},
    }


def postgres_reason() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when they can."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]')"
    dsn = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(dsn, connect_timeout=2) as c:
            c.execute("select 1")
    except Exception as e:  # any failure to reach the server means: skip
        return f"no PostgreSQL server at {PG_URL.split('@')[-1]} ({type(e).__name__})"
    return None


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL on a fresh schema (dropped afterwards); skips without a server."""
    why = postgres_reason()
    if why is not None:
        pytest.skip(why)
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    dsn = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(f"create schema {schema}")
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute(f"drop schema {schema} cascade")


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """Every store implementation in turn (the conformance suite)."""
    if request.param == "memory":
        yield "memory://"
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ops.db'}"
    else:
        yield request.getfixturevalue("pg_url")
