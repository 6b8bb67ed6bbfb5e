"""The event vocabulary: every type validates, errors name the field, any input is safe."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiguilleur.errors import ValidationError
from aiguilleur.ops import events as ev
from tests.ops.conftest import at, case14_genesis

BASE = {"occurred_at": "2026-01-15T05:00:00+00:00", "source": "test"}

EXAMPLES: dict[str, dict[str, Any]] = {
    "branch_trip": {"branch": "branch:3"},
    "branch_restore": {"branch": "branch:3"},
    "gen_trip": {"gen": "gen:2"},
    "gen_restore": {"gen": "gen:2"},
    "gen_derate": {"gen": "gen:1", "pmax_mw": 100.0},
    "load_change": {"bus": "bus:4", "p_mw": 50.0},
    "load_scale": {"factor": 1.05, "area": 1},
    "renewable_update": {"gen": "gen:3", "available_mw": 12.5},
    "rating_change": {"branch": "branch:1", "rate_a_mva": 150.0},
    "telemetry": {
        "readings": [
            {"element": "bus:1", "quantity": "vm", "value": 1.02, "unit": "pu", "sigma": 0.004},
            {"element": "branch:2", "quantity": "p_from", "value": 70.0, "unit": "MW"},
        ]
    },
    "forecast_issued": {
        "start": "2026-01-15T06:00:00+00:00",
        "p10_mw": [90.0, 95.0],
        "p50_mw": [100.0, 101.0],
        "p90_mw": [110.0, 111.0],
    },
    "health_reading": {"asset": "GT-1", "cycle": 3, "sensors": {"s2": 642.1, "s3": 1580.0}},
    "asset_registered": {"asset": "TR-7", "element": "branch:7"},
    "road_closure": {
        "closure": "flood-1",
        "area": {"center_lat": 43.74, "center_lon": 7.42, "radius_m": 150},
    },
    "road_slowdown": {"closure": "snow", "area": {"edges": [1, 2, 3]}, "factor": 2.0},
    "road_reopening": {"closure": "flood-1"},
    "depot_outage": {"depot": "fuel-depot", "stock_lost": 500},
    "depot_restored": {"depot": "fuel-depot"},
    "vehicle_position": {"vehicle": "tanker#0", "lat": 43.73, "lon": 7.42},
    "vehicle_breakdown": {"vehicle": "tanker#0"},
    "order_created": {
        "order": "o-1",
        "fleet": "tankers",
        "lat": 43.73,
        "lon": 7.42,
        "quantity": 500,
    },
    "order_cancelled": {"order": "o-1"},
    "order_urgent": {"order": "o-1"},
    "proposal_approved": {
        "proposal": "P3-grid",
        "operator": "alice",
        "actions": [{"kind": "set_dispatch", "gen": "gen:1", "pg_mw": 120.0}],
    },
    "proposal_rejected": {"proposal": "P3-grid", "operator": "alice"},
    "proposal_amended": {
        "proposal": "P3-grid",
        "operator": "alice",
        "actions": [{"kind": "shed_load", "bus": "bus:4", "shed_mw": 5.0}],
    },
    "alarm_acknowledged": {"alarm": "A3-1", "operator": "alice"},
    "grid_initialised": {
        k: v
        for k, v in case14_genesis().items()
        if k not in ("id", "type", "occurred_at", "source")
    },
    "fleet_initialised": {
        "roads": "bundled:monaco",
        "roads_sha256": "0" * 64,
        "shift_start": "2026-01-15T05:00:00+00:00",
        "shift_s": 36000,
        "sites": [],
        "fleets": [],
    },
}


def doc(t: str, **over: Any) -> dict[str, Any]:
    return {"id": f"e-{t}", "type": t, **BASE, **EXAMPLES[t], **over}


def test_every_type_has_an_example_that_validates() -> None:
    assert set(EXAMPLES) == set(ev.EVENT_TYPES)
    for t in ev.EVENT_TYPES:
        e = ev.parse_event(doc(t))
        assert e.type == t
        # canonical JSON round-trips to the same event
        again = ev.parse_event_json(ev.event_to_json(e))
        assert ev.event_to_json(again) == ev.event_to_json(e)


def test_every_type_is_folded_by_a_handler() -> None:
    from aiguilleur.ops.state import Folder

    assert all(hasattr(Folder, f"_on_{t}") for t in ev.EVENT_TYPES)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (doc("branch_trip", branch="branch:0"), "branch"),
        (doc("branch_trip", branch="gen:3"), "branch"),
        (doc("load_change", p_kw=3.0), "p_kw"),
        (doc("gen_derate", pmax_mw=-1.0), "pmax_mw"),
        ({**doc("branch_trip"), "occurred_at": "2026-01-15T05:00:00"}, "occurred_at"),
        ({**doc("branch_trip"), "id": "bad id with spaces"}, "id"),
        (doc("load_scale", factor=0.0), "factor"),
        (doc("vehicle_position", lat=500.0), "lat"),
        (doc("forecast_issued", p10_mw=[200.0, 95.0]), "p10"),
        (doc("order_created", quantity=float("nan")), "quantity"),
    ],
)
def test_errors_name_the_field(bad: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        ev.parse_event(bad)


def test_wrong_unit_and_wrong_element_kind_in_readings() -> None:
    r = {"element": "bus:1", "quantity": "vm", "value": 400.0, "unit": "kV"}
    with pytest.raises(ValidationError, match=r"readings\[0\].*pu"):
        ev.parse_event(doc("telemetry", readings=[r]))
    r = {"element": "bus:1", "quantity": "p_from", "value": 4.0, "unit": "MW"}
    with pytest.raises(ValidationError, match="branch"):
        ev.parse_event(doc("telemetry", readings=[r]))


def test_unknown_type_lists_the_vocabulary() -> None:
    with pytest.raises(ValidationError, match=r"unknown event type 'nope'.*branch_trip"):
        ev.parse_event({"id": "x", "type": "nope", **BASE})


def test_json_limits() -> None:
    with pytest.raises(ValidationError, match="nested deeper"):
        ev.parse_event_json("[" * 10_000 + "]" * 10_000)
    with pytest.raises(ValidationError, match="not valid JSON"):
        ev.parse_event_json('{"id": ')
    with pytest.raises(ValidationError, match="NaN"):
        ev.parse_event_json('{"id": "a", "value": NaN}')
    with pytest.raises(ValidationError, match="UTF-8"):
        ev.parse_event_json(b"\xff\xfe{}")


def test_elements_are_checked_against_the_network() -> None:
    from aiguilleur.data import bundled_case_path
    from aiguilleur.grid import read_matpower

    net = read_matpower(bundled_case_path("case14"))
    assert ev.element_row("bus:14", net) == ("bus", 13)
    assert ev.element_row("branch:20", net) == ("branch", 19)
    for bad, msg in (("bus:99", "no bus 99"), ("branch:21", "20 branch rows"), ("gen:6", "5 gen")):
        with pytest.raises(ValidationError, match=msg):
            ev.element_row(bad, net)
    e = ev.parse_event(
        doc(
            "telemetry",
            readings=[{"element": "bus:99", "quantity": "vm", "value": 1.0, "unit": "pu"}],
        )
    )
    with pytest.raises(ValidationError, match=r"readings\[0\].element: bus:99"):
        ev.check_event(e, net)
    with pytest.raises(ValidationError, match="no grid is initialised"):
        ev.check_event(ev.parse_event(doc("branch_trip")), None)


def test_leaf_outages_map_from_the_vocabulary() -> None:
    from aiguilleur.data import bundled_case_path
    from aiguilleur.grid import read_matpower
    from aiguilleur.grid.redispatch import Outage

    net = read_matpower(bundled_case_path("case14"))
    assert ev.grid_outages(ev.parse_event(doc("branch_trip")), net) == [Outage("branch", 2)]
    assert ev.grid_outages(ev.parse_event(doc("gen_trip")), net) == [Outage("gen", 1)]
    assert ev.outage_ref("generator", 1) == "gen:2"
    assert ev.grid_outages(ev.parse_event(doc("load_scale")), net) == []


def test_json_schema_covers_every_type() -> None:
    schema = ev.event_json_schema()
    text = json.dumps(schema)
    for t in ev.EVENT_TYPES:
        assert f'"{t}"' in text
    assert schema["title"] == "aiguilleur event"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=5),
    max_leaves=20,
)


@settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(ev.EVENT_TYPES),
    st.dictionaries(
        st.sampled_from(
            [
                "id",
                "source",
                "occurred_at",
                "branch",
                "gen",
                "bus",
                "readings",
                "factor",
                "actions",
                "area",
                "p_mw",
                "order",
                "x",
            ]
        ),
        json_values,
        max_size=6,
    ),
)
def test_any_input_is_an_event_or_a_validation_error(t: str, junk: dict[str, Any]) -> None:
    d = {"id": "x1", "type": t, **BASE, **EXAMPLES[t], **junk}
    try:
        e = ev.parse_event(d)
    except ValidationError as err:
        assert "\n" not in str(err) and len(str(err)) < 600
    else:
        assert e.type == t


@settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_any_bytes_are_an_event_or_a_validation_error(raw: bytes | str) -> None:
    with pytest.raises(ValidationError):
        ev.parse_event_json(raw)


def test_at_helper_is_aware() -> None:
    assert at(5).endswith("+00:00")


def test_leaf_disruptions_map_both_ways() -> None:
    from datetime import UTC, datetime

    from aiguilleur.grid.redispatch import Outage
    from aiguilleur.logistics.roads import RoadClosure as LeafClosure
    from aiguilleur.logistics.roads import Slowdown as LeafSlowdown

    when = datetime(2026, 1, 15, 6, tzinfo=UTC)
    leaf = LeafClosure(center_latlon=(43.74, 7.42), radius_m=150.0, reason="flood")
    e = ev.disruption_event(leaf, closure="f1", event_id="x1", at=when, source="t")
    assert e.type == "road_closure" and ev.road_disruption(e) == leaf
    slow = LeafSlowdown(factor=2.5, edges=(3, 4), reason="snow")
    e2 = ev.disruption_event(slow, closure="s1", event_id="x2", at=when, source="t")
    assert e2.type == "road_slowdown" and ev.road_disruption(e2) == slow
    trip = ev.outage_event(Outage("gen", 4), event_id="x3", at=when, source="t")
    assert trip.type == "gen_trip" and trip.gen == "gen:5"
    with pytest.raises(ValidationError):
        ev.road_disruption(trip)
