"""Fixtures of the console tests: a small world (case14 and the fleets) in a SQLite store,
copied for each test, and an app over it with an operator's and a viewer's token."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_MISSING = [m for m in ("fastapi", "uvicorn", "httpx2") if importlib.util.find_spec(m) is None]
API_REASON = (
    f"{', '.join(_MISSING)} not installed: pip install 'aiguilleur[api]' "
    "(and httpx2 for the test client)"
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without the api extra, every console test is skipped with the reason."""
    if not _MISSING:
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.skip(reason=API_REASON))


OPERATOR = "op-token-for-tests-0123456789"
VIEWER = "viewer-token-for-tests-0123456789"
OP = {"Authorization": f"Bearer {OPERATOR}"}
VIEW = {"Authorization": f"Bearer {VIEWER}"}


@pytest.fixture(scope="session")
def base_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the case14 grid and the fleets, answered once by the responder."""
    from aiguilleur.ops.centre import OpsCentre
    from aiguilleur.ops.fleet import fleet_world
    from aiguilleur.ops.store import open_store
    from tests.ops.conftest import T0, case14_genesis

    path = tmp_path_factory.mktemp("api") / "base.db"
    with OpsCentre(open_store(f"sqlite:///{path}", create=True)) as c:
        res = c.ingest([case14_genesis(), fleet_world(seed=1, shift_start=T0)])
        assert all(r.ok for r in res), res
        c.respond()
    return path


@pytest.fixture
def centre(base_store: Path, tmp_path: Path) -> Iterator[Any]:
    from aiguilleur.ops.centre import OpsCentre
    from aiguilleur.ops.store import open_store

    p = tmp_path / "ops.db"
    shutil.copy(base_store, p)
    c = OpsCentre(open_store(f"sqlite:///{p}"))
    try:
        yield c
    finally:
        c.close()


def make_app(centre: Any, **kw: Any) -> Any:
    from aiguilleur.api import ApiOptions, Tokens, create_app

    tokens = Tokens.from_pairs([("operator", "alice", OPERATOR), ("viewer", "bob", VIEWER)])
    return create_app(centre, ApiOptions(tokens=tokens, **kw))


@pytest.fixture
def client(centre: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(make_app(centre), raise_server_exceptions=False) as c:
        yield c
