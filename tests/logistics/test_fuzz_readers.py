"""Fuzzing every logistics reader: a valid value or an AiguilleurError, never another exception.

Readers: VRPLIB and Solomon text, aiguilleur's routing JSON (problems, events,
plans), orders CSV, road files (saved ``.npz`` graphs, GraphML, ``.poly``).
Each example is small and bounded in time. A last property solves random
small problems and checks every plan with the independent checker.
"""

from __future__ import annotations

import copy
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiguilleur.errors import AiguilleurError
from aiguilleur.logistics import roads
from aiguilleur.logistics._osm import read_graphml, read_poly
from aiguilleur.logistics._vrp_io import plan_from_dict, problem_from_dict
from aiguilleur.logistics.routing import (
    RoutingProblem,
    SolveSettings,
    check_plan,
    read_event,
    read_instance,
    read_problem_json,
    read_vrplib,
    solve,
)

FUZZ = settings(
    max_examples=60,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

TINY_VRP = (
    "NAME : tiny\nTYPE : CVRP\nDIMENSION : 6\nEDGE_WEIGHT_TYPE : EUC_2D\nCAPACITY : 10\n"
    "NODE_COORD_SECTION\n1 0 0\n2 0 10\n3 10 0\n4 10 10\n5 5 5\n6 -5 -5\n"
    "DEMAND_SECTION\n1 0\n2 3\n3 4\n4 5\n5 7\n6 2\nDEPOT_SECTION\n1\n-1\nEOF\n"
)
TINY_SOLOMON = (
    "C101\n\nVEHICLE\nNUMBER     CAPACITY\n  25         200\n\nCUSTOMER\n"
    "CUST NO.  XCOORD.   YCOORD.    DEMAND   READY TIME  DUE DATE   SERVICE TIME\n\n"
    "    0      40         50          0          0       1236          0\n"
    "    1      45         68         10        912        967         90\n"
    "    2      45         70         30        825        870         90\n"
    "    3      42         66         10         65        146         90\n"
)
BASE_DOC: dict[str, Any] = {
    "name": "fuzz",
    "matrices": {
        "duration_s": [[0, 60, 90, 120], [60, 0, 50, 80], [90, 50, 0, 40], [120, 80, 40, 0]],
        "distance_m": [
            [0, 600, 900, 1200],
            [600, 0, 500, 800],
            [900, 500, 0, 400],
            [1200] * 3 + [0],
        ],
    },
    "depots": [{"id": "d", "location": 0, "open_s": 0, "close_s": 10000}],
    "vehicle_types": [{"id": "v", "count": 2, "capacity": 10, "shift_end_s": 9000}],
    "orders": [
        {"id": "a", "location": 1, "demand": 3, "window_s": [0, 5000]},
        {"id": "b", "location": 2, "demand": 4, "service_s": 30},
        {"id": "c", "location": 3, "demand": 5, "penalty": 2.5},
    ],
}
BASE_DOC["matrices"]["distance_m"][3] = [1200, 800, 400, 0]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4)
    ),
    max_leaves=12,
)


def _write(text: str | bytes, name: str) -> Path:
    d = Path(tempfile.mkdtemp(prefix="aig-fuzz-"))
    p = d / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


def _bounded(fn: Any, *args: Any, seconds: float = 1.5) -> Any:
    """Call ``fn``: an AiguilleurError is an accepted answer; so is a value. Time is bounded."""
    t0 = time.monotonic()
    try:
        out = fn(*args)
    except AiguilleurError as e:
        msg = str(e)
        assert "\n" not in msg.strip() or len(msg.splitlines()) == 1, msg
        assert "Traceback" not in msg
        out = None
    assert time.monotonic() - t0 < seconds, f"{fn.__name__} took {time.monotonic() - t0:.1f} s"
    return out


# -- text mutations -------------------------------------------------------------------------

_TOKENS = st.sampled_from(
    ["-1", "0", "2.5", "nan", "inf", "1e30", "abc", "", ":", "EOF", "-", "99999999999", "\x00"]
)


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["drop", "dup", "token", "swap"]))
        if op == "drop" and len(lines) > 1:
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "token":
            parts = lines[i].split()
            tok = draw(_TOKENS)
            if parts:
                parts[draw(st.integers(0, len(parts) - 1))] = tok
            else:
                parts = [tok]
            lines[i] = " ".join(parts)
        else:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines) + "\n"


def _valid_problem(p: Any) -> None:
    if p is not None:
        assert isinstance(p, RoutingProblem)
        assert (p.order_demand >= 0).all() and (p.vehicle_capacity >= 0).all()
        assert (p.a("order_tw_late_s") >= p.a("order_tw_early_s")).all()


@FUZZ
@given(mutated(TINY_VRP))
def test_vrplib_reader_never_crashes(text: str) -> None:
    _valid_problem(_bounded(read_vrplib, _write(text, "x.vrp")))


@FUZZ
@given(mutated(TINY_SOLOMON))
def test_solomon_reader_never_crashes(text: str) -> None:
    _valid_problem(_bounded(read_vrplib, _write(text, "x.txt")))


@FUZZ
@given(st.binary(max_size=300))
def test_instance_reader_on_random_bytes(data: bytes) -> None:
    _valid_problem(_bounded(read_instance, _write(data, "x.vrp")))
    _valid_problem(_bounded(read_problem_json, _write(data, "x.json")))


# -- JSON: problems, events, plans ------------------------------------------------------------


@st.composite
def mutated_doc(draw: st.DrawFn) -> dict[str, Any]:
    doc = copy.deepcopy(BASE_DOC)
    for _ in range(draw(st.integers(1, 3))):
        section = draw(st.sampled_from(["depots", "vehicle_types", "orders", "matrices", "top"]))
        value = draw(json_values)
        if section == "top":
            doc[draw(st.sampled_from(["name", "travel", "locations", "orders"]))] = value
        elif section == "matrices":
            if not isinstance(doc.get("matrices"), dict):
                continue
            key = draw(st.sampled_from(["duration_s", "distance_m"]))
            m = doc["matrices"].get(key)
            whole = isinstance(m, list) and all(isinstance(r, list) and len(r) == 4 for r in m)
            if whole and len(m) == 4 and draw(st.booleans()):
                m[draw(st.integers(0, 3))][draw(st.integers(0, 3))] = value
            else:
                doc["matrices"][key] = value
        else:
            recs = doc.get(section)
            if not isinstance(recs, list) or not recs:
                continue
            rec = recs[draw(st.integers(0, len(recs) - 1))]
            keys = sorted({*rec, "id", "location", "lat", "lon", "count", "capacity", "demand"})
            rec[draw(st.sampled_from(keys))] = value
    return doc


@FUZZ
@given(mutated_doc())
def test_problem_json_never_crashes(doc: dict[str, Any]) -> None:
    _valid_problem(_bounded(problem_from_dict, doc, "fuzz.json"))
    # and through the file reader (JSON text, NaN and Infinity included)
    _valid_problem(_bounded(read_problem_json, _write(json.dumps(doc), "fuzz.json")))


PROBLEM = problem_from_dict(BASE_DOC, "base.json")


@st.composite
def event_docs(draw: st.DrawFn) -> Any:
    kind = draw(
        st.sampled_from(
            ["slowdown", "closure", "matrices", "depot_outage", "breakdown", "urgent_orders", "x"]
        )
    )
    ev: dict[str, Any] = {"type": kind}
    keys = {
        "slowdown": ["factor", "arcs", "locations"],
        "closure": ["arcs", "locations"],
        "matrices": ["duration_s", "distance_m"],
        "depot_outage": ["depot"],
        "breakdown": ["vehicle"],
        "urgent_orders": ["orders"],
        "x": ["y"],
    }[kind]
    for k in keys:
        if draw(st.booleans()):
            ev[k] = draw(json_values)
    if kind == "urgent_orders" and draw(st.booleans()):
        rec = {"id": "u1", "location": 2, "demand": 1, "window_s": [0, 100]}
        rec[
            draw(st.sampled_from(["id", "location", "demand", "window_s", "priority", "penalty"]))
        ] = draw(json_values)
        ev["orders"] = [rec]
    return draw(st.sampled_from([ev, {"events": [ev]}, [ev], draw(json_values)]))


@FUZZ
@given(event_docs())
def test_event_reader_never_crashes(doc: Any) -> None:
    out = _bounded(read_event, _write(json.dumps(doc), "event.json"), PROBLEM)
    if out is not None:
        assert isinstance(out, list) and out


@st.composite
def plan_docs(draw: st.DrawFn) -> Any:
    doc: dict[str, Any] = {
        "instance": "base.json",
        "routes": [
            {"vehicle": "v#0", "vehicle_type": "v", "start_s": 0, "orders": ["a", "b"]},
            {"vehicle": "v#1", "vehicle_type": "v", "orders": ["c"]},
        ],
        "dropped": {},
    }
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["route", "top"]))
        if where == "top":
            doc[draw(st.sampled_from(["routes", "dropped"]))] = draw(json_values)
        elif isinstance(doc["routes"], list) and doc["routes"]:
            r = doc["routes"][draw(st.integers(0, len(doc["routes"]) - 1))]
            if isinstance(r, dict):
                key = draw(st.sampled_from(["vehicle", "vehicle_type", "start_s", "orders"]))
                r[key] = draw(json_values | st.sampled_from(["v#5", "a", "ghost", "v"]))
    return doc


@FUZZ
@given(plan_docs())
def test_plan_reader_never_crashes(doc: Any) -> None:
    out = _bounded(plan_from_dict, PROBLEM, doc, "plan.json")
    if out is not None:
        routes, dropped = out
        served = [int(o) for r in routes for o in r.orders]
        assert len(served) == len(set(served))  # an order is served once
        assert not set(served) & set(dropped)


# -- orders CSV ----------------------------------------------------------------------------

CSV = "id,location,demand,service_s,tw_early_s,tw_late_s,priority,penalty\na,1,3,0,0,5000,1,\n"


@FUZZ
@given(mutated(CSV.replace(",", " , ")))
def test_orders_csv_never_crashes(text: str) -> None:
    d = _write(text.replace(" , ", ","), "orders.csv").parent
    doc = copy.deepcopy(BASE_DOC)
    doc["orders"] = "orders.csv"
    (d / "p.json").write_text(json.dumps(doc))
    _valid_problem(_bounded(read_problem_json, d / "p.json"))


# -- road files ----------------------------------------------------------------------------


def _small_graph_npz() -> bytes:
    g = roads.bundled_road_graph()
    d = Path(tempfile.mkdtemp(prefix="aig-fuzz-"))
    roads.save_road_graph(g, d / "g.npz")
    return (d / "g.npz").read_bytes()


NPZ = _small_graph_npz()


@FUZZ
@given(st.integers(0, len(NPZ) - 1), st.binary(min_size=1, max_size=64), st.booleans())
def test_road_graph_npz_never_crashes(at: int, junk: bytes, truncate: bool) -> None:
    data = NPZ[:at] if truncate else NPZ[:at] + junk + NPZ[at + len(junk) :]
    p = _write(data, "g.npz")
    out = _bounded(roads.load_road_graph, p, seconds=5.0)
    if out is not None:
        assert out.tail.shape == out.head.shape


GRAPHML = (
    '<?xml version="1.0"?><graphml xmlns="http://graphml.graphdrawing.org/xmlns">'
    '<key id="d4" for="node" attr.name="y"/><key id="d5" for="node" attr.name="x"/>'
    '<key id="d9" for="edge" attr.name="highway"/><key id="d10" for="edge" attr.name="length"/>'
    '<graph edgedefault="directed"><node id="1"><data key="d4">43.7</data>'
    '<data key="d5">7.4</data></node><node id="2"><data key="d4">43.71</data>'
    '<data key="d5">7.41</data></node><edge source="1" target="2">'
    '<data key="d9">primary</data><data key="d10">1300.5</data></edge>'
    '<edge source="2" target="1"><data key="d9">primary</data></edge></graph></graphml>'
)


@FUZZ
@given(mutated(GRAPHML.replace("><", ">\n<")))
def test_graphml_never_crashes(text: str) -> None:
    _bounded(read_graphml, _write(text, "g.graphml"))


@FUZZ
@given(mutated("area\n1\n7.4 43.7\n7.5 43.7\n7.5 43.8\nEND\nEND\n"))
def test_poly_never_crashes(text: str) -> None:
    out = _bounded(read_poly, _write(text, "a.poly"))
    if out is not None:
        assert len(out) >= 3


# -- solved plans are sound ------------------------------------------------------------------


@st.composite
def small_problems(draw: st.DrawFn) -> RoutingProblem:
    n = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    xy = rng.uniform(0, 100, size=(n + 1, 2))
    d = np.rint(np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))).astype(np.int64)
    early = rng.integers(0, 200, n)
    late = early + rng.integers(0, 300, n)
    return RoutingProblem(
        name="fuzz",
        duration_s=d,
        distance_m=d,
        depot_location=np.array([0]),
        order_location=np.arange(1, n + 1),
        order_demand=rng.integers(0, 12, n),
        order_tw_early_s=early,
        order_tw_late_s=late,
        order_service_s=rng.integers(0, 20, n),
        order_required=rng.random(n) < 0.7,
        order_penalty=rng.integers(0, 500, n),
        vehicle_count=np.array([draw(st.integers(0, 3))]),
        vehicle_capacity=np.array([draw(st.integers(0, 15))]),
        vehicle_tw_late_s=np.array([draw(st.integers(100, 2000))]),
    )


@settings(max_examples=15, deadline=2000)
@given(small_problems())
def test_every_solved_route_is_feasible_and_every_order_accounted(p: RoutingProblem) -> None:
    sol = solve(p, SolveSettings(time_limit_s=0.1, workers=1))
    served = [int(o) for r in sol.routes for o in r.orders]
    assert len(served) == len(set(served))
    assert set(served) | set(sol.dropped) == set(range(p.n_orders))
    assert not set(served) & set(sol.dropped)
    rep = check_plan(p, list(sol.routes), sol.dropped)
    route_viol = [v for v in rep.violations if not v.startswith("required order")]
    assert not route_viol, route_viol
    req = p.a("order_required")
    assert set(sol.dropped_required) == {i for i in sol.dropped if req[i]}
    assert sol.ok == (sol.status in ("optimal", "feasible"))
    assert sol.ok == (not sol.dropped_required and sol.feasible)


def test_fuzz_helpers_detect_other_exceptions() -> None:
    """The harness itself lets a non-AiguilleurError through (so the tests can fail)."""

    def boom(_: Any) -> None:
        raise KeyError("x")

    try:
        _bounded(boom, None)
    except KeyError:
        return
    raise AssertionError("_bounded swallowed a KeyError")
