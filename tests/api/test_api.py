"""The REST API through FastAPI's test client: auth, limits, errors, and the operator's loop."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from tests.api.conftest import OP, OPERATOR, VIEW, VIEWER, make_app
from tests.ops.conftest import at


def trip(branch: int, minutes: float = 10.0, eid: str | None = None) -> dict[str, Any]:
    return {
        "id": eid or f"trip-{branch}-{minutes}",
        "type": "branch_trip",
        "occurred_at": at(minutes),
        "source": "scada:test",
        "branch": f"branch:{branch}",
    }


WRITES = [
    ("post", "/events", trip(1)),
    ("post", "/proposals/P1-grid/approve", None),
    ("post", "/proposals/P1-grid/reject", None),
    ("post", "/alarms/A1-1/ack", None),
]
READS = [
    "/state",
    "/grid/geometry",
    "/grid/loading",
    "/contingencies",
    "/proposals",
    "/alarms",
    "/forecasts",
    "/routes",
    "/roads",
    "/feed",
    "/feed/head",
    "/whoami",
]


# -- auth ---------------------------------------------------------------------------------


def test_health_needs_no_token(client: Any) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["last_seq"] == 2
    assert r.json()["responder"] == "off"


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_every_write_refuses_a_missing_token_and_a_viewer(
    client: Any, method: str, path: str, body: Any
) -> None:
    r = client.request(method, path, json=body)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["field"] == "authorization"
    r = client.request(
        method, path, json=body, headers={"Authorization": "Bearer not-a-known-token-at-all"}
    )
    assert r.status_code == 401
    r = client.request(method, path, json=body, headers=VIEW)
    assert r.status_code == 403, r.text
    assert "viewer" in r.json()["error"]
    # nothing was written by the refused requests
    assert client.get("/state", headers=VIEW).json()["last_seq"] == 2


@pytest.mark.parametrize("path", READS)
def test_reads_need_a_token_by_default(client: Any, path: str) -> None:
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Basic abc"}).status_code == 401
    assert client.get(path, headers=VIEW).status_code == 200
    assert client.get(path, headers=OP).status_code == 200


def test_open_reads_is_a_setting_writes_still_need_an_operator(centre: Any) -> None:
    from fastapi.testclient import TestClient

    with TestClient(make_app(centre, read_requires_token=False)) as c:
        assert c.get("/state").status_code == 200
        assert c.get("/whoami").json() == {"name": None, "role": None}
        assert c.post("/events", json=trip(1)).status_code == 401


def test_whoami_names_the_holder_not_the_token(client: Any) -> None:
    assert client.get("/whoami", headers=OP).json() == {"name": "alice", "role": "operator"}
    assert client.get("/whoami", headers=VIEW).json() == {"name": "bob", "role": "viewer"}


def test_tokens_never_appear_in_responses_or_logs(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bodies = []
    for h in (OP, VIEW, {"Authorization": f"Bearer {OPERATOR}x"}):
        for p in READS:
            bodies.append(client.get(p, headers=h).text)
        bodies.append(client.post("/events", json=trip(1), headers=h).text)
        bodies.append(client.post("/alarms/nope/ack", headers=h).text)
    text = "\n".join(bodies) + "\n".join(r.getMessage() for r in caplog.records)
    for tok in (OPERATOR, VIEWER):
        assert tok not in text
        assert tok[:12] not in text


# -- limits -------------------------------------------------------------------------------


def test_body_size_limit_is_413(centre: Any) -> None:
    from fastapi.testclient import TestClient

    with TestClient(make_app(centre, max_body_bytes=2000)) as c:
        big = [trip(1, eid=f"e{k}") for k in range(40)]
        r = c.post("/events", json=big, headers=OP)
        assert r.status_code == 413
        assert r.json()["field"] == "body"

        # a streamed body without Content-Length is counted as it arrives
        def chunks() -> Any:
            for _ in range(10):
                yield b" " * 500

        r = c.post("/events", content=chunks(), headers={**OP, "Content-Type": "application/json"})
        assert r.status_code == 413
        assert c.get("/state", headers=VIEW).json()["last_seq"] == 2


def test_batch_limit_is_413(centre: Any) -> None:
    from fastapi.testclient import TestClient

    with TestClient(make_app(centre, max_batch=3)) as c:
        r = c.post("/events", json=[trip(1, eid=f"e{k}") for k in range(4)], headers=OP)
        assert r.status_code == 413


def test_rate_limit_per_token_is_429_with_retry_after(centre: Any) -> None:
    from fastapi.testclient import TestClient

    with TestClient(make_app(centre, rate_per_s=0.5, burst=3)) as c:
        codes = [c.get("/state", headers=VIEW).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = c.get("/state", headers=VIEW)
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        # another token has its own bucket
        assert c.get("/state", headers=OP).status_code == 200


def test_cors_is_closed_by_default_and_opened_by_setting(centre: Any) -> None:
    from fastapi.testclient import TestClient

    pre = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    with TestClient(make_app(centre)) as c:
        r = c.options("/events", headers=pre)
        assert "access-control-allow-origin" not in r.headers
        r = c.get("/state", headers={**VIEW, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers
    with TestClient(make_app(centre, cors_origins=("https://console.example",))) as c:
        r = c.options(
            "/events",
            headers={"Origin": "https://console.example", "Access-Control-Request-Method": "POST"},
        )
        assert r.headers["access-control-allow-origin"] == "https://console.example"
        r = c.options("/events", headers=pre)
        assert r.headers.get("access-control-allow-origin") != "https://evil.example"


# -- events -------------------------------------------------------------------------------


def test_post_one_event_then_again_is_idempotent(client: Any) -> None:
    r = client.post("/events", json=trip(1), headers=OP)
    assert r.status_code == 202, r.text
    d = r.json()
    assert d["results"] == [{"id": "trip-1-10.0", "seq": 3, "duplicate": False, "error": None}]
    assert d["stored"] == 1 and d["last_seq"] == 3
    r = client.post("/events", json=trip(1), headers=OP)
    assert r.status_code == 202
    assert r.json()["results"][0] == {
        "id": "trip-1-10.0",
        "seq": 3,
        "duplicate": True,
        "error": None,
    }
    assert client.get("/state", headers=VIEW).json()["last_seq"] == 3


def test_a_batch_gets_consecutive_sequence_numbers(client: Any) -> None:
    batch = [trip(b, eid=f"t{b}") for b in (1, 2, 3)]
    r = client.post("/events", json=batch, headers=OP)
    assert r.status_code == 202
    assert [x["seq"] for x in r.json()["results"]] == [3, 4, 5]
    st = client.get("/state", headers=VIEW).json()
    assert st["grid"]["branches_out"] == ["branch:1", "branch:2", "branch:3"]


def test_a_partly_refused_batch_is_422_naming_the_item_and_field(client: Any) -> None:
    bad = {**trip(2, eid="bad"), "branch": "branch:999"}
    r = client.post("/events", json=[trip(1, eid="good"), bad], headers=OP)
    assert r.status_code == 422
    d = r.json()
    assert d["field"] == "[1]"
    assert "branch:999" in d["error"]
    assert d["results"][0]["seq"] == 3 and d["results"][1]["seq"] is None
    assert "branch" in d["results"][1]["error"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "non-empty array"),
        (b"42", "event object"),
        (b'{"id": "x", "type": "branch_trip"}', "missing"),
        (
            b'{"id": "x", "type": "no_such_type", "occurred_at": "2026-01-15T05:00:00Z", '
            b'"source": "s"}',
            "unknown event type",
        ),
        (
            b'{"id":"x","type":"load_change","occurred_at":"2026-01-15T05:00:00Z","source":"s","bus":"bus:1","p_kw":3}',
            "unknown field",
        ),
        (b"[NaN]", "not valid JSON"),
    ],
)
def test_bad_events_are_4xx_with_the_reason_never_a_traceback(
    client: Any, body: bytes, needle: str
) -> None:
    r = client.post("/events", content=body, headers={**OP, "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert needle in r.text
    assert "Traceback" not in r.text and 'File "' not in r.text


def test_bad_query_parameters_are_422_naming_them(client: Any) -> None:
    r = client.get("/proposals?status=maybe", headers=VIEW)
    assert r.status_code == 422 and r.json()["field"] == "status"
    r = client.get("/feed?since=1.2", headers=VIEW)
    assert r.status_code == 422 and r.json()["field"] == "since"
    r = client.get("/alarms?limit=0", headers=VIEW)
    assert r.status_code == 422 and r.json()["field"] == "limit"


def test_unknown_paths_are_json_404(client: Any) -> None:
    r = client.get("/nope", headers=VIEW)
    assert r.status_code == 404
    assert r.json()["error"]


# -- the operator's loop ------------------------------------------------------------------


def test_trip_alarm_proposal_approve_changes_the_state(client: Any, centre: Any) -> None:
    before = client.get("/state", headers=VIEW).json()
    assert client.post("/events", json=trip(1), headers=OP).status_code == 202
    centre.respond()  # the responder thread's job, run here for a deterministic test
    alarms = client.get("/alarms?unacknowledged=true", headers=VIEW).json()["alarms"]
    new = [a for a in alarms if a["seq"] == 3]
    assert new, alarms
    assert {"severity", "time_to_act_s", "text", "acknowledged"} <= set(new[0])
    props = client.get("/proposals?status=pending", headers=VIEW).json()["proposals"]
    assert [p["id"] for p in props] == ["P3-grid"]
    p = client.get("/proposals/P3-grid", headers=VIEW).json()
    assert p["explanation"] and p["actions"] and "cost_eur_per_h" in p["summary"]
    r = client.post("/proposals/P3-grid/approve", headers=OP)
    assert r.status_code == 202, r.text
    assert r.json()["seq"] == 4
    p = client.get("/proposals/P3-grid", headers=VIEW).json()
    assert p["status"] == "approved" and p["decision"]["operator"] == "alice"
    after = client.get("/state", headers=VIEW).json()
    assert after["grid"]["version"] > before["grid"]["version"]
    assert after["state_hash"] != before["state_hash"]
    # decided once: a second approval or a rejection is a conflict
    assert client.post("/proposals/P3-grid/approve", headers=OP).status_code == 409
    assert client.post("/proposals/P3-grid/reject", headers=OP).status_code == 409
    assert client.post("/proposals/P999-grid/approve", headers=OP).status_code == 404
    assert client.get("/proposals/P999-grid", headers=VIEW).status_code == 404


def test_reject_with_a_reason(client: Any, centre: Any) -> None:
    client.post("/events", json=trip(1), headers=OP)
    centre.respond()
    r = client.post("/proposals/P3-grid/reject", json={"reason": "field crew on site"}, headers=OP)
    assert r.status_code == 202
    p = client.get("/proposals/P3-grid", headers=VIEW).json()
    assert p["status"] == "rejected"
    r = client.post("/proposals/P3-grid/reject", json={"reason": "x", "extra": 1}, headers=OP)
    assert r.status_code == 422


def test_acknowledge_an_alarm_once(client: Any, centre: Any) -> None:
    client.post("/events", json=trip(1), headers=OP)
    centre.respond()
    aid = client.get("/alarms", headers=VIEW).json()["alarms"][-1]["id"]
    r = client.post(f"/alarms/{aid}/ack", headers=OP)
    assert r.status_code == 202
    a = next(x for x in client.get("/alarms", headers=VIEW).json()["alarms"] if x["id"] == aid)
    assert a["acknowledged"] and a["ack"]["operator"] == "alice"
    assert client.post(f"/alarms/{aid}/ack", headers=OP).status_code == 409
    assert client.post("/alarms/A999-1/ack", headers=OP).status_code == 404
    open_ids = {
        x["id"] for x in client.get("/alarms?unacknowledged=true", headers=VIEW).json()["alarms"]
    }
    assert aid not in open_ids


def test_views_of_the_grid_fleets_and_forecasts(client: Any) -> None:
    g = client.get("/grid/geometry", headers=VIEW).json()
    assert g["n_bus"] == 14 and len(g["x"]) == 14 and len(g["branch_from"]) == 20
    assert all(0.0 <= v <= 1.0 for v in g["x"] + g["y"])
    ld = client.get("/grid/loading", headers=VIEW).json()
    assert ld["converged"] and len(ld["base_loading_pct"]) == 20
    assert ld["out_of_service"] == []
    client.post("/events", json=trip(3), headers=OP)
    ld = client.get("/grid/loading", headers=VIEW).json()
    assert ld["out_of_service"] == [2] and ld["base_loading_pct"][2] == 0.0
    r = client.get("/routes", headers=VIEW)
    assert r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    kinds = {f["properties"]["feature"] for f in fc["features"]}
    assert {"route", "vehicle", "depot"} <= kinds
    assert "OpenStreetMap" in fc["attribution"]
    f = client.get("/forecasts", headers=VIEW).json()
    assert f["forecasts"] == {}
    fe = {
        "id": "fc1",
        "type": "forecast_issued",
        "occurred_at": at(1),
        "source": "forecaster",
        "start": at(0),
        "p10_mw": [200, 210],
        "p50_mw": [250, 260],
        "p90_mw": [300, 320],
    }
    assert client.post("/events", json=fe, headers=OP).status_code == 202
    f = client.get("/forecasts", headers=VIEW).json()["forecasts"]["load"]
    assert f["p90_mw"] == [300, 320] and len(f["time"]) == 2


def test_openapi_is_published_with_the_event_schema(client: Any) -> None:
    d = client.get("/openapi.json").json()
    assert d["openapi"].startswith("3.1")
    for p in (
        "/events",
        "/state",
        "/contingencies",
        "/proposals",
        "/alarms",
        "/forecasts",
        "/routes",
        "/healthz",
    ):
        assert p in d["paths"]
    assert "BranchTrip" in d["components"]["schemas"]
    assert "$defs" not in json.dumps(d)


def test_dashboard_is_served_offline(client: Any) -> None:
    r = client.get("/", follow_redirects=False)
    assert r.status_code in (302, 307) and r.headers["location"] == "/ui/"
    r = client.get("/ui/")
    assert r.status_code == 200 and '<canvas id="grid"' in r.text
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    for asset in ("/ui/app.js", "/ui/style.css"):
        t = client.get(asset).text
        assert "http://" not in t and "https://" not in t, asset
    assert "https://" not in r.text and "http://" not in r.text


@pytest.mark.parametrize(
    "path",
    [
        "/ui/../app.py",
        "/ui/%2e%2e/app.py",
        "/ui/..%2f..%2fpyproject.toml",
        "/ui/static/../../app.py",
    ],
)
def test_no_file_outside_the_dashboard_is_served(client: Any, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert "import" not in r.text and "[project]" not in r.text


def test_routes_follow_positions_and_closures(client: Any) -> None:
    def feats(kind: str) -> list[dict[str, Any]]:
        fc = client.get("/routes", headers=VIEW).json()
        return [f for f in fc["features"] if f["properties"]["feature"] == kind]

    before = feats("route")
    v = feats("vehicle")[0]["properties"]["vehicle"]
    ping = {
        "id": "gps-1",
        "type": "vehicle_position",
        "occurred_at": at(3),
        "source": "gps",
        "vehicle": v,
        "lat": 43.74,
        "lon": 7.42,
    }
    assert client.post("/events", json=ping, headers=OP).status_code == 202
    moved = next(f for f in feats("vehicle") if f["properties"]["vehicle"] == v)
    assert moved["properties"]["reported"] and moved["geometry"]["coordinates"] == [7.42, 43.74]
    assert feats("route") == before  # a GPS ping does not redraw the routes
    flood = {
        "id": "flood-1",
        "type": "road_closure",
        "occurred_at": at(4),
        "source": "police",
        "closure": "flood-1",
        "area": {"center_lat": 43.7416, "center_lon": 7.419, "radius_m": 150},
    }
    assert client.post("/events", json=flood, headers=OP).status_code == 202
    (closed,) = feats("closure")
    assert closed["geometry"]["type"] == "MultiLineString" and closed["geometry"]["coordinates"]
    assert closed["properties"]["closures"] == ["flood-1"]
