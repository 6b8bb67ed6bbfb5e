"""Routing: readers, the independent checker, solve, against references.

References: PyVRP's own evaluation of the same routes (for the checker),
brute-force optima on tiny instances, CVRPLIB's and the Solomon set's
best-known solutions (``.sol`` files re-evaluated by our checker must cost
exactly the published value).
"""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiguilleur.errors import CaseFormatError, ValidationError
from aiguilleur.logistics.routing import (
    PlannedRoute,
    RoutingProblem,
    SolveSettings,
    check_plan,
    read_instance,
    read_problem_json,
    read_vrplib,
    solve,
    unservable_orders,
)
from tests.conftest import REPO_ROOT

SHARED = REPO_ROOT.parent / "shared" / "data"
CVRPLIB = SHARED / "cvrplib"
SOLOMON = SHARED / "solomon"
EXAMPLES = REPO_ROOT / "aiguilleur" / "data" / "routing"
needs_cvrplib = pytest.mark.skipif(
    not (CVRPLIB / "X").is_dir(), reason="CVRPLIB X set not available in ../shared/data/cvrplib"
)
needs_solomon = pytest.mark.skipif(
    not (SOLOMON / "instances").is_dir(),
    reason="Solomon set not available in ../shared/data/solomon",
)


def random_problem(
    seed: int,
    n_orders: int = 12,
    n_depots: int = 2,
    n_types: int = 2,
    windows: bool = True,
    optional: bool = True,
) -> RoutingProblem:
    """A small random instance: Euclidean-ish integer matrices, windows, mixed fleet."""
    rng = np.random.default_rng(seed)
    n_loc = n_depots + n_orders
    xy = rng.uniform(0, 100, (n_loc, 2))
    d = np.rint(np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))).astype(np.int64)
    dur = d + rng.integers(0, 3, d.shape)  # asymmetric travel times
    np.fill_diagonal(dur, 0)
    horizon = 1000
    if windows:
        e = rng.integers(0, horizon // 2, n_orders)
        lt = e + rng.integers(60, horizon // 2, n_orders)
    else:
        e, lt = np.zeros(n_orders, np.int64), np.full(n_orders, horizon, np.int64)
    req = np.ones(n_orders, bool) if not optional else rng.random(n_orders) < 0.7
    return RoutingProblem(
        name=f"random-{seed}",
        duration_s=dur,
        distance_m=d,
        depot_location=np.arange(n_depots),
        depot_tw_early_s=np.zeros(n_depots, np.int64),
        depot_tw_late_s=np.full(n_depots, horizon + 200, np.int64),
        order_location=np.arange(n_depots, n_loc),
        order_demand=rng.integers(1, 10, n_orders),
        order_service_s=rng.integers(0, 20, n_orders),
        order_tw_early_s=e,
        order_tw_late_s=lt,
        order_required=req,
        order_penalty=np.where(req, 0, rng.integers(20, 300, n_orders)),
        order_priority=rng.integers(0, 3, n_orders),
        vehicle_count=rng.integers(2, 4, n_types),
        vehicle_capacity=rng.integers(20, 40, n_types),
        vehicle_start_depot=rng.integers(0, n_depots, n_types),
        vehicle_end_depot=rng.integers(0, n_depots, n_types),
        vehicle_tw_early_s=rng.integers(0, 50, n_types),
        vehicle_tw_late_s=np.full(n_types, horizon + 100, np.int64),
        vehicle_max_duration_s=rng.integers(500, 1100, n_types),
        vehicle_fixed_cost=rng.integers(0, 50, n_types),
        vehicle_unit_distance_cost=rng.integers(1, 4, n_types),
        vehicle_unit_duration_cost=rng.integers(0, 2, n_types),
    )


def _pyvrp_solution(problem: RoutingProblem, routes: list[PlannedRoute]):  # type: ignore[no-untyped-def]
    import pyvrp

    data = problem.to_pyvrp()
    tmap = {int(k): j for j, k in enumerate(problem.pyvrp_type_index())}
    return pyvrp.Solution(
        data,
        [
            pyvrp.Route(
                data,
                [pyvrp.Activity(pyvrp.ActivityType.CLIENT, int(c)) for c in r.orders],
                tmap[r.vehicle_type],
            )
            for r in routes
        ],
    )


# -- the checker against PyVRP's evaluation ------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), windows=st.booleans())
def test_checker_agrees_with_pyvrp_route_by_route(seed: int, windows: bool) -> None:
    p = random_problem(seed, windows=windows)
    p = p.replace(vehicle_max_duration_s=p.a("vehicle_max_duration_s") * 2)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(p.n_orders)[: rng.integers(1, p.n_orders + 1)]
    parts = [x for x in np.array_split(perm, 2) if len(x)]
    routes = [PlannedRoute(k % len(p.vehicle_count), part) for k, part in enumerate(parts)]
    dropped = [i for i in range(p.n_orders) if i not in set(perm.tolist())]
    rep = check_plan(p, routes, dropped)
    sol = _pyvrp_solution(p, routes)
    for r, s in zip(sol.routes(), rep.schedules, strict=True):
        assert r.distance() == s.distance
        ok_pyvrp = r.time_warp() == 0 and not r.has_excess_load()
        assert ok_pyvrp == (not s.violations), s.violations
        if ok_pyvrp:
            assert r.duration() == s.duration
            assert r.start_time() == s.start_s
    if sol.is_feasible():
        assert rep.feasible
        cost = sol.distance_cost() + sol.duration_cost() + sol.fixed_vehicle_cost()
        assert rep.objective == cost + sol.uncollected_prizes()


def test_checker_finds_each_violation() -> None:
    p = random_problem(3, windows=False, optional=False)
    p = p.replace(vehicle_capacity=np.array([1000, 1000]), vehicle_count=np.array([2, 2]))
    all_orders = np.arange(p.n_orders)
    ok = check_plan(p, [PlannedRoute(0, all_orders[:6]), PlannedRoute(1, all_orders[6:])])
    assert ok.feasible, ok.violations
    # capacity
    small = p.replace(vehicle_capacity=np.array([5, 1000]))
    rep = check_plan(small, [PlannedRoute(0, all_orders[:6]), PlannedRoute(1, all_orders[6:])])
    assert any("exceeds capacity" in v for v in rep.violations)
    # a window that closes before the vehicle can get there
    late = p.a("order_tw_late_s").copy()
    late[all_orders[5]] = 0
    rep = check_plan(
        p.replace(order_tw_late_s=late),
        [PlannedRoute(0, all_orders[:6]), PlannedRoute(1, all_orders[6:])],
    )
    assert any("after its window closes" in v for v in rep.violations)
    # shift length
    short = p.replace(vehicle_max_duration_s=np.array([10, 10]))
    rep = check_plan(short, [PlannedRoute(0, all_orders[:6]), PlannedRoute(1, all_orders[6:])])
    assert any("longer than the shift length" in v for v in rep.violations)
    # served twice, missing, too many vehicles
    rep = check_plan(p, [PlannedRoute(0, all_orders[:7]), PlannedRoute(1, all_orders[6:-1])])
    assert any("2 times" in v for v in rep.violations)
    assert any("neither served nor dropped" in v for v in rep.violations)
    rep = check_plan(
        p, [PlannedRoute(0, [o]) for o in all_orders[:3]] + [PlannedRoute(1, all_orders[3:])]
    )
    assert any("only 2 vehicles" in v for v in rep.violations)
    # dropping a required order is allowed but reported
    rep = check_plan(
        p, [PlannedRoute(0, all_orders[1:6]), PlannedRoute(1, all_orders[6:])], {0: "no room"}
    )
    assert rep.feasible and rep.required_dropped == (0,)


# -- solve against brute force ---------------------------------------------------------------


def _brute_force(p: RoutingProblem) -> int:
    """Optimal cost over every assignment of orders to vehicles and every order within routes."""
    best = None
    vehicles = [k for k in range(len(p.vehicle_count)) for _ in range(int(p.vehicle_count[k]))]
    n = p.n_orders
    for assign in itertools.product(range(len(vehicles)), repeat=n):
        groups = [[i for i in range(n) if assign[i] == v] for v in range(len(vehicles))]
        total = 0
        for v, g in enumerate(groups):
            if not g:
                continue
            best_route = None
            for perm in itertools.permutations(g):
                rep = check_plan(
                    p,
                    [PlannedRoute(vehicles[v], np.array(perm))],
                    [i for i in range(n) if i not in perm],
                )
                if not rep.schedules[0].violations:
                    c = rep.schedules[0].cost
                    best_route = c if best_route is None else min(best_route, c)
            if best_route is None:
                total = -1
                break
            total += best_route
        if total >= 0:
            best = total if best is None else min(best, total)
    assert best is not None
    return best


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_solve_matches_brute_force_optimum(seed: int) -> None:
    p = random_problem(seed, n_orders=5, n_depots=1, n_types=2, windows=True, optional=False)
    p = p.replace(
        vehicle_count=np.array([1, 1]),
        vehicle_capacity=np.array([25, 40]),
        vehicle_max_duration_s=np.array([5000, 5000]),
        order_tw_late_s=p.a("order_tw_late_s") + 300,
    )
    sol = solve(p, SolveSettings(time_limit_s=0.5, workers=1))
    assert sol.feasible, sol.violations
    assert sol.objective == _brute_force(p)


def test_solve_two_workers_feasible_and_checked() -> None:
    p = random_problem(11, n_orders=30)
    sol = solve(p, SolveSettings(time_limit_s=1.5, workers=2))
    assert sol.time_s < 2.5
    rep = check_plan(p, sol.routes, sol.dropped)
    assert rep.feasible and rep.objective == sol.objective
    # This fleet cannot carry every required order: some are dropped, with the reason.
    short = [i for i, why in sol.dropped.items() if p.a("order_required")[i]]
    assert all(sol.dropped[i] == "the fleet could not serve it" for i in short)
    assert sol.feasible == (not short)


def test_prize_collecting_when_the_fleet_is_too_small() -> None:
    p = random_problem(5, n_orders=20, optional=False)
    penalty = np.full(p.n_orders, 50)
    p = p.replace(
        vehicle_count=np.array([1, 0]),
        order_required=np.zeros(p.n_orders, bool),
        order_penalty=penalty,
    )
    sol = solve(p, SolveSettings(time_limit_s=0.5, workers=1))
    assert sol.feasible
    assert 0 < len(sol.dropped) < p.n_orders
    assert all(r.vehicle_type == 0 for r in sol.routes)
    assert sol.objective == check_plan(p, sol.routes, sol.dropped).objective


def test_cheaper_vehicle_type_is_preferred() -> None:
    p = random_problem(8, n_orders=10, n_depots=1, windows=False, optional=False)
    p = p.replace(
        vehicle_count=np.array([3, 3]),
        vehicle_capacity=np.array([100, 100]),
        vehicle_unit_distance_cost=np.array([5, 1]),
        vehicle_unit_duration_cost=np.array([0, 0]),
        vehicle_fixed_cost=np.array([0, 0]),
        vehicle_start_depot=np.array([0, 0]),
        vehicle_end_depot=np.array([0, 0]),
        vehicle_max_duration_s=np.array([100000, 100000]),
    )
    sol = solve(p, SolveSettings(time_limit_s=0.5, workers=1))
    assert sol.feasible and {r.vehicle_type for r in sol.routes} == {1}


def test_unservable_orders_are_dropped_with_the_reason() -> None:
    p = random_problem(4, n_orders=8, optional=False)
    demand = p.order_demand.copy()
    demand[2] = 10_000
    early = p.a("order_tw_early_s").copy()
    late = p.a("order_tw_late_s").copy()
    early[5], late[5] = 5_000, 5_001  # after every shift
    p = p.replace(order_demand=demand, order_tw_early_s=early, order_tw_late_s=late)
    why = unservable_orders(p)
    assert set(why) == {2, 5}
    assert "exceeds every vehicle's capacity" in why[2]
    sol = solve(p, SolveSettings(time_limit_s=0.3, workers=1))
    assert sol.dropped[2] == why[2] and sol.dropped[5] == why[5]


def test_problem_validation_names_the_record() -> None:
    p = random_problem(1)
    late = p.a("order_tw_late_s").copy()
    late[3] = p.a("order_tw_early_s")[3] - 1
    with pytest.raises(
        ValidationError, match=r"order 'o3' \(row 3\): time window closes before it opens"
    ):
        p.replace(order_tw_late_s=late)
    with pytest.raises(ValidationError, match="location outside"):
        p.replace(order_location=p.order_location + 100)
    with pytest.raises(ValidationError, match="shape"):
        p.replace(distance_m=p.distance_m[:-1])


# -- readers and the published best-known solutions -------------------------------------------


def _read_sol(path: Path) -> list[list[int]]:
    routes = []
    for line in path.read_text().splitlines():
        if line.lower().startswith("route"):
            routes.append([int(x) for x in line.split(":", 1)[1].split()])
    return routes


@needs_cvrplib
@pytest.mark.parametrize("name", ["X-n101-k25", "X-n157-k13", "X-n502-k39"])
def test_cvrplib_best_known_solutions_check_at_their_cost(name: str) -> None:
    bks = {
        r["instance"]: int(r["bks"])
        for r in csv.DictReader((CVRPLIB / "bks.csv").read_text().splitlines())
    }
    p = read_vrplib(CVRPLIB / "X" / f"{name}.vrp")
    routes = [PlannedRoute(0, np.array(r) - 1) for r in _read_sol(CVRPLIB / "X" / f"{name}.sol")]
    rep = check_plan(p, routes)
    assert rep.feasible, rep.violations
    assert rep.objective == bks[name]


@needs_solomon
@pytest.mark.parametrize("name", ["C101", "R105", "RC208", "R211"])
def test_solomon_trunc1_solutions_check_at_their_cost(name: str) -> None:
    bks = {
        r["instance"]: float(r["trunc1_distance"])
        for r in csv.DictReader((SOLOMON / "bks.csv").read_text().splitlines())
    }
    p = read_vrplib(SOLOMON / "instances" / f"{name}.txt")
    routes = [
        PlannedRoute(0, np.array(r) - 1)
        for r in _read_sol(SOLOMON / "solutions" / f"{name}.trunc1.sol")
    ]
    rep = check_plan(p, routes)
    assert rep.feasible, rep.violations
    assert rep.objective * p.cost_unit == pytest.approx(bks[name], abs=1e-6)


@needs_cvrplib
def test_solve_x_n101_close_to_best_known() -> None:
    p = read_vrplib(CVRPLIB / "X" / "X-n101-k25.vrp")
    sol = solve(p, SolveSettings(time_limit_s=3.0, seed=1))
    assert sol.feasible and not sol.dropped
    assert sol.cost <= 27591 * 1.03
    assert sorted(o for r in sol.route_lists() for o in r) == list(range(1, 101))


def _vrp_text(demand_of_5: int = 7, drop_section: str | None = None) -> str:
    lines = [
        "NAME : tiny",
        "TYPE : CVRP",
        "DIMENSION : 5",
        "EDGE_WEIGHT_TYPE : EUC_2D",
        "CAPACITY : 10",
        "NODE_COORD_SECTION",
        "1 0 0",
        "2 0 10",
        "3 10 0",
        "4 10 10",
        "5 5 5",
        "DEMAND_SECTION",
        "1 0",
        "2 3",
        "3 4",
        "4 5",
        f"5 {demand_of_5}",
        "DEPOT_SECTION",
        "1",
        "-1",
        "EOF",
    ]
    if drop_section:
        i = lines.index(drop_section)
        j = i + 1
        while j < len(lines) and lines[j][0].isdigit():
            j += 1
        del lines[i:j]
    return "\n".join(lines) + "\n"


def test_vrplib_bad_input(tmp_path: Path) -> None:
    f = tmp_path / "tiny.vrp"
    f.write_text(_vrp_text())
    p = read_instance(f)
    assert p.n_orders == 4 and p.distance_m[0, 4] == 7  # nint(7.07)
    f.write_text(_vrp_text(demand_of_5=11))
    with pytest.raises(
        CaseFormatError, match=r"tiny.vrp:17: node 5: demand 11 exceeds the vehicle capacity 10"
    ):
        read_instance(f)
    f.write_text(_vrp_text(drop_section="DEMAND_SECTION"))
    with pytest.raises(CaseFormatError, match="missing DEMAND_SECTION"):
        read_instance(f)
    with pytest.raises(CaseFormatError, match="no such file"):
        read_instance(tmp_path / "nope.vrp")


def test_solomon_bad_window(tmp_path: Path) -> None:
    text = (
        "BAD\n\nVEHICLE\nNUMBER     CAPACITY\n  2         50\n\nCUSTOMER\n"
        "CUST NO.  XCOORD.   YCOORD.    DEMAND   READY TIME  DUE DATE   SERVICE   TIME\n\n"
        "    0      40         50          0          0       1236          0\n"
        "    1      45         68         10        912        967         90\n"
        "    2      45         70         30        825        800         90\n"
    )
    f = tmp_path / "bad.txt"
    f.write_text(text)
    with pytest.raises(
        CaseFormatError, match=r"bad.txt:12: customer 2: time window closes before it opens"
    ):
        read_instance(f)


def test_json_example_and_csv_variant_agree() -> None:
    a = read_problem_json(EXAMPLES / "monaco_fuel.json")
    b = read_problem_json(EXAMPLES / "monaco_fuel_csv.json")
    assert a.order_id == b.order_id
    np.testing.assert_array_equal(a.duration_s, b.duration_s)
    np.testing.assert_array_equal(a.order_penalty, b.order_penalty)
    np.testing.assert_array_equal(a.order_required, b.order_required)
    assert a.n_depots == 2 and a.vehicle_type_id == ("tanker", "van")
    sol = solve(a, SolveSettings(time_limit_s=0.5, workers=1))
    assert sol.feasible, sol.violations
    assert all(a.order_required[i] is np.False_ or not a.order_required[i] for i in sol.dropped)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            lambda d: d["orders"][2].update(window_s=[5000, 4000]),
            r"orders\[2\] 'telecom-hub': time window closes",
        ),
        (lambda d: d["vehicle_types"][0].update(start_depot="nowhere"), "unknown depot 'nowhere'"),
        (
            lambda d: d["orders"][0].pop("lat"),
            r"orders\[0\] 'hospital-pasteur': needs 'location' or 'lat' and 'lon'",
        ),
        (lambda d: d["orders"][1].update(demand="lots"), "field 'demand' must be a number"),
        (lambda d: d.pop("vehicle_types"), "missing 'vehicle_types'"),
    ],
)
def test_json_bad_input(tmp_path: Path, patch, message: str) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads((EXAMPLES / "monaco_fuel.json").read_text())
    patch(doc)
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(doc))
    with pytest.raises(CaseFormatError, match=message):
        read_problem_json(f)


def test_json_order_above_every_capacity_is_dropped_with_reason(tmp_path: Path) -> None:
    doc = json.loads((EXAMPLES / "monaco_fuel.json").read_text())
    doc["orders"][4]["demand"] = 50_000
    f = tmp_path / "big.json"
    f.write_text(json.dumps(doc))
    p = read_problem_json(f)
    sol = solve(p, SolveSettings(time_limit_s=0.3, workers=1))
    assert "exceeds every vehicle's capacity" in sol.dropped[4]


def test_csv_bad_number_names_the_line(tmp_path: Path) -> None:
    doc = json.loads((EXAMPLES / "monaco_fuel_csv.json").read_text())
    rows = (EXAMPLES / "monaco_fuel_orders.csv").read_text().splitlines()
    cells = rows[3].split(",")
    cells[3] = "a lot"
    rows[3] = ",".join(cells)
    (tmp_path / "monaco_fuel_orders.csv").write_text("\n".join(rows) + "\n")
    f = tmp_path / "p.json"
    f.write_text(json.dumps(doc))
    with pytest.raises(
        CaseFormatError, match=r"monaco_fuel_orders.csv:4: field 'demand' must be a number"
    ):
        read_problem_json(f)


def test_large_instance_uses_savings_and_sector_rounds() -> None:
    from aiguilleur.logistics._vrp_solve import run_searches, savings_routes

    rng = np.random.default_rng(7)
    n = 220
    xy = rng.uniform(0, 1000, (n + 1, 2))
    d = np.rint(np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))).astype(np.int64)
    p = RoutingProblem(
        name="cvrp-220",
        duration_s=d,
        distance_m=d,
        depot_location=np.array([0]),
        order_location=np.arange(1, n + 1),
        order_demand=rng.integers(1, 20, n),
        vehicle_count=np.array([n]),
        vehicle_capacity=np.array([100]),
        location_lonlat=xy,
    )
    data = p.to_pyvrp()
    start = savings_routes(data)
    assert start is not None
    start_routes = [PlannedRoute(0, np.array(r)) for _, r in start]
    start_cost = check_plan(p, start_routes).objective
    assert check_plan(p, start_routes).feasible
    best, _ = run_searches(data, 4.0, workers=2, decompose=True)
    routes = [PlannedRoute(0, np.array(r)) for _, r in best]
    rep = check_plan(p, routes)
    assert rep.feasible, rep.violations
    assert rep.objective < start_cost  # the sector rounds improved on the savings start


def test_json_on_the_bundled_road_extract(tmp_path: Path) -> None:
    p = read_problem_json(EXAMPLES / "monaco_fuel_roads.json")
    assert (p.duration_s != p.duration_s.T).any()  # one-way streets
    assert len(p.meta["road_nodes"]) == p.n_locations
    doc = json.loads((EXAMPLES / "monaco_fuel_roads.json").read_text())
    doc["orders"][5]["lat"] = 43.60  # in the sea, far from every road of the extract
    f = tmp_path / "sea.json"
    f.write_text(json.dumps(doc))
    with pytest.raises(
        CaseFormatError, match=r"orders\[5\] 'shelter-1': .*outside the road extract"
    ):
        read_problem_json(f)
