"""Hostile requests to the console: every one is a 4xx JSON body naming the field (never a
5xx, never a changed state), from a hostile round through the API."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import OP, OPERATOR, VIEW, make_app

GOOD = {
    "id": "h-1",
    "type": "branch_trip",
    "occurred_at": "2026-01-15T06:00:00+00:00",
    "source": "t",
    "branch": "branch:3",
}
JSON = {**OP, "Content-Type": "application/json"}
DECISION = {k: v for k, v in GOOD.items() if k != "branch"} | {
    "type": "proposal_rejected",
    "proposal": "PZ",
}


@pytest.fixture(scope="module")
def world(base_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from aiguilleur.ops.centre import OpsCentre
    from aiguilleur.ops.feed import FeedHub
    from aiguilleur.ops.store import open_store

    p = tmp_path_factory.mktemp("hostile-api") / "ops.db"
    shutil.copy(base_store, p)
    c = OpsCentre(open_store(f"sqlite:///{p}"))
    hub = FeedHub(c).start()
    app = make_app(c, rate_per_s=0, heartbeat_s=0.3)
    app.state.console.hub = hub
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client, c
    finally:
        hub.stop()
        c.close()


CASES: list[tuple[str, str, str, dict[str, Any], int, str]] = [
    # label, method, url, request keywords, status, field
    ("no body", "post", "/events", {"headers": JSON}, 422, "body"),
    ("text/plain", "post", "/events", {"headers": {**OP, "Content-Type": "text/plain"},
     "content": json.dumps(GOOD)}, 415, "content-type"),
    ("form", "post", "/events", {"headers": {**OP, "Content-Type":
     "application/x-www-form-urlencoded"}, "content": "a=1"}, 415, "content-type"),
    ("deep", "post", "/events", {"headers": JSON, "content": "[" * 100_000}, 422, "body"),
    ("NaN", "post", "/events", {"headers": JSON, "content": json.dumps(
     {**GOOD, "factor": float("nan"), "type": "load_scale"})}, 422, "body"),
    ("not UTF-8", "post", "/events", {"headers": JSON, "content": b'{"id": "\xff"}'}, 422, "body"),
    ("a number", "post", "/events", {"headers": OP, "json": 5}, 422, "body"),
    ("empty list", "post", "/events", {"headers": OP, "json": []}, 422, "body"),
    ("list of numbers", "post", "/events", {"headers": OP, "json": [1, 2]}, 422, "[0]"),
    ("list of nulls", "post", "/events", {"headers": OP, "json": [None]}, 422, "[0]"),
    ("list of JSON text", "post", "/events", {"headers": OP, "json": [json.dumps(GOOD)]}, 422,
     "[0]"),
    ("unknown branch", "post", "/events", {"headers": OP, "json": {**GOOD, "branch":
     "branch:999"}}, 422, "[0]"),
    ("naive time", "post", "/events", {"headers": OP, "json": {**GOOD, "occurred_at":
     "2026-01-15T06:00:00"}}, 422, "[0]"),
    ("unknown field", "post", "/events", {"headers": OP, "json": {**GOOD, "rating": 1}}, 422,
     "[0]"),
    ("huge id", "post", "/events", {"headers": OP, "json": {**GOOD, "id": "x" * 100_000}}, 422,
     "[0]"),
    ("second decision", "post", "/events", {"headers": OP, "json": [
     {**DECISION, "id": "r1", "operator": "a"}, {**DECISION, "id": "r2", "operator": "b"}]},
     422, "[1]"),
    ("too large", "post", "/events", {"headers": {**JSON, "Content-Length": str(10**9)},
     "content": b"{}"}, 413, "body"),
    ("content-length junk", "post", "/events", {"headers": {**JSON, "Content-Length": "abc"},
     "content": b"{}"}, 400, "content-length"),
    ("viewer writes", "post", "/events", {"headers": VIEW, "json": GOOD}, 403, "authorization"),
    ("no token", "get", "/state", {}, 401, "authorization"),
    ("basic auth", "get", "/state", {"headers": {"Authorization": "Basic eDp5"}}, 401,
     "authorization"),
    ("since -1", "get", "/feed?since=-1", {"headers": OP}, 422, "since"),
    ("since junk", "get", "/feed?since=abc", {"headers": OP}, 422, "since"),
    ("since 1e3", "get", "/feed?since=1e3", {"headers": OP}, 422, "since"),
    ("since ahead", "get", "/feed?since=999999", {"headers": OP}, 422, "since"),
    ("since cursor ahead", "get", "/feed?since=999.0.0", {"headers": OP}, 422, "since"),
    ("limit 10**12", "get", "/feed?limit=1000000000000", {"headers": OP}, 422, "limit"),
    ("limit 0", "get", "/feed?limit=0", {"headers": OP}, 422, "limit"),
    ("limit float", "get", "/feed?limit=1.5", {"headers": OP}, 422, "limit"),
    ("alarms limit", "get", "/alarms?limit=1000000000000", {"headers": OP}, 422, "limit"),
    ("proposals limit", "get", "/proposals?limit=-1", {"headers": OP}, 422, "limit"),
    ("status junk", "get", "/proposals?status=junk", {"headers": OP}, 422, "status"),
    ("bool junk", "get", "/alarms?unacknowledged=maybe", {"headers": OP}, 422,
     "unacknowledged"),
    ("long id", "get", "/proposals/" + "a" * 300, {"headers": OP}, 422, "pid"),
    ("unknown proposal", "get", "/proposals/nope", {"headers": OP}, 404, "id"),
    ("approve unknown", "post", "/proposals/nope/approve", {"headers": OP}, 404, "id"),
    ("approve control chars", "post", "/proposals/%00%01/approve", {"headers": OP}, 404, "id"),
    ("reject body junk", "post", "/proposals/nope/reject", {"headers": JSON, "content": "junk"},
     422, "body"),
    ("reject body list", "post", "/proposals/nope/reject", {"headers": OP, "json": [1]},
     422, "body"),
    ("reject long reason", "post", "/proposals/nope/reject", {"headers": OP,
     "json": {"reason": "x" * 100_000}}, 422, "reason"),
    ("ack unknown", "post", "/alarms/nope/ack", {"headers": OP}, 404, "id"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("label", "method", "url", "kw", "status", "field"), CASES, ids=[c[0] for c in CASES]
)
def test_hostile_requests_are_4xx_naming_the_field(
    world: Any, label: str, method: str, url: str, kw: dict[str, Any], status: int, field: str
) -> None:
    client, centre = world
    before = centre.state().state_hash
    r = getattr(client, method)(url, **kw)
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["field"] == field, body
    assert "\n" not in body["error"] and len(body["error"]) < 700
    for leak in ("Traceback", "recursion", "codec", "positional argument"):
        assert leak not in body["error"], body["error"]
    if label != "second decision":  # its first item is stored, as documented
        assert centre.state().state_hash == before


@pytest.mark.parametrize(
    ("since", "first", "status", "needle"),
    [
        ("abc", {"token": OPERATOR}, 422, "since"),
        ("-1", {"token": OPERATOR}, 422, "since"),
        ("1e5", {"token": OPERATOR}, 422, "since"),
        ("99999999999999999999", {"token": OPERATOR}, 422, "since"),
        ("9999.0.0", {"token": OPERATOR}, 422, "ahead of this log"),
        ("%00", {"token": OPERATOR}, 422, "since"),
        ("", "not json", 401, "token"),
        ("", b"\xff\xfe", 401, "token"),
        ("", {"token": 5}, 401, "authorization"),
        ("", {"token": "t" * 100_000}, 401, "token"),
    ],
)
def test_stream_refuses_bad_cursors_and_first_messages(
    world: Any, since: str, first: Any, status: int, needle: str
) -> None:
    client, _ = world
    url = f"/stream?since={since}" if since else "/stream"
    with client.websocket_connect(url) as ws:
        if isinstance(first, bytes):
            ws.send_bytes(first)
        elif isinstance(first, str):
            ws.send_text(first)
        else:
            ws.send_text(json.dumps(first))
        m = ws.receive_json()
    assert m["type"] == "error" and m["status"] == status and needle in m["error"], m
