"""Re-planning mid-execution: frozen prefixes, events, repair baseline, feasibility."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiguilleur.errors import CaseFormatError, ValidationError
from aiguilleur.logistics.routing import (
    DepotDown,
    PlannedRoute,
    ReplanResult,
    RoutingProblem,
    SolveSettings,
    UrgentOrders,
    VehicleBreakdown,
    check_plan,
    read_event,
    read_plan,
    replan,
    route_schedule,
    slow_arcs,
    solve,
)
from tests.conftest import REPO_ROOT
from tests.logistics.test_routing import random_problem

EXAMPLES = REPO_ROOT / "aiguilleur" / "data" / "routing"


def _committed(problem: RoutingProblem, route: PlannedRoute, at_s: int, broken: bool) -> list[int]:
    """Stops the vehicle has left for by ``at_s`` (served once their service started, if broken)."""
    s = route_schedule(problem, route)
    if broken:
        return [int(o) for o, t in zip(route.orders, s.service_start_s, strict=True) if t <= at_s]
    svc = problem.a("order_service_s")[route.orders]
    leave_for = np.concatenate(([s.start_s], s.service_start_s[:-1] + svc[:-1]))
    return [int(o) for o, t in zip(route.orders, leave_for, strict=True) if t <= at_s]


def _assert_sound(
    problem: RoutingProblem,
    routes: list[PlannedRoute],
    at_s: int,
    res: ReplanResult,
    broken: set[str],
) -> None:
    # The searched plan keeps every constraint (independent checker) and beats or ties the repair.
    rep = check_plan(res.residual, res.solution.routes, res.solution.dropped)
    assert rep.feasible, rep.violations
    assert res.feasible
    assert res.solution.objective <= res.repair.objective
    assert check_plan(res.residual, res.repair.routes, res.repair.dropped).feasible
    # Nothing is scheduled in the past.
    for r in res.solution.routes:
        assert (route_schedule(res.residual, r).service_start_s >= at_s).all()
    # Every order of the problem after the events: served once, or dropped with a reason.
    ids = res.problem.order_id
    served = [ids[o] for r in res.routes for o in r.orders]
    assert len(served) == len(set(served))
    assert set(served).isdisjoint(res.dropped)
    assert set(served) | set(res.dropped) == set(ids)
    assert all(res.dropped.values())
    # Committed stops stay first, in order, on the same vehicle.
    new = {r.vehicle: [int(o) for o in r.orders] for r in res.routes}
    for r in routes:
        prefix = _committed(problem, r, at_s, r.vehicle in broken)
        assert new.get(r.vehicle, [])[: len(prefix)] == prefix
        if r.vehicle in broken:
            assert new.get(r.vehicle, []) == prefix


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 5000),
    frac=st.floats(0.0, 0.9),
    slow=st.booleans(),
    breakdown=st.booleans(),
    outage=st.booleans(),
    urgent=st.integers(0, 3),
)
def test_every_replanned_plan_is_sound(
    seed: int, frac: float, slow: bool, breakdown: bool, outage: bool, urgent: int
) -> None:
    p = random_problem(seed, n_orders=14)
    plan = solve(p, SolveSettings(time_limit_s=0.2, workers=1, seed=seed))
    routes = list(plan.routes)
    if not routes:
        return
    ends = [route_schedule(p, r).end_s for r in routes]
    at = int(frac * max(ends))
    rng = np.random.default_rng(seed)
    events: list = []
    if slow:
        events.append(slow_arcs(p, rng.integers(0, p.n_locations, (40, 2)), 3.0))
    broken: set[str] = set()
    if breakdown:
        broken = {routes[int(rng.integers(len(routes)))].vehicle}
        events.append(VehicleBreakdown(next(iter(broken))))
    if outage:
        events.append(DepotDown(1))
    if urgent:
        loc = rng.integers(0, p.n_locations, urgent)
        events.append(
            UrgentOrders(
                tuple(f"u{i}" for i in range(urgent)),
                loc,
                rng.integers(1, 8, urgent),
                np.full(urgent, at),
                np.full(urgent, at + 300),
                priority=np.full(urgent, 3),
            )
        )
    res = replan(p, routes, at, events, deadline_s=0.4, workers=1, seed=seed)
    _assert_sound(p, routes, at, res, broken)
    if outage:
        # No vehicle leaves the closed depot, and none is sent back to it.
        rs = res.residual
        for r in res.solution.routes:
            if len(r.orders):
                assert int(rs.a("vehicle_end_depot")[r.vehicle_type]) != 1 or p.n_depots == 1
                sd = int(rs.a("vehicle_start_depot")[r.vehicle_type])
                assert sd != 1


def test_replan_without_events_is_no_worse_than_the_plan() -> None:
    p = random_problem(21, n_orders=20)
    plan = solve(p, SolveSettings(time_limit_s=0.5, workers=1))
    res = replan(p, list(plan.routes), 0, (), deadline_s=0.5, workers=1)
    _assert_sound(p, list(plan.routes), 0, res, set())
    # At time 0 nothing is committed: the residual is the original problem with a drop penalty.
    kept = check_plan(res.residual, res.solution.routes, res.solution.dropped)
    assert kept.route_cost <= check_plan(p, plan.routes, plan.dropped).route_cost


def _example() -> tuple[RoutingProblem, list[PlannedRoute]]:
    p, routes, _ = read_plan(EXAMPLES / "monaco_fuel_plan.json")
    return p, routes


def test_breakdown_closure_and_urgent_order_on_the_example() -> None:
    p, routes = _example()
    events = read_event(EXAMPLES / "event_mixed.json", p)
    at = 36000
    res = replan(p, routes, at, events, deadline_s=1.0, workers=1)
    _assert_sound(p, routes, at, res, {"tanker#0"})
    ids = res.problem.order_id
    assert "field-hospital" in ids
    # The urgent order is served inside its window (or dropped with a reason).
    for r in res.solution.routes:
        s = route_schedule(res.residual, r)
        for o, t in zip(r.orders, s.service_start_s, strict=True):
            if res.residual.order_id[o] == "field-hospital":
                assert 39600 <= t <= 43200
                break
    assert "field-hospital" not in res.dropped
    broken = next(c for c in res.changes if c.vehicle == "tanker#0")
    assert broken.status == "broken" and broken.after == broken.served
    summary = res.summary()
    assert {"feasible", "cost", "repair_cost", "changes", "delay_s", "dropped"} <= set(summary)
    json.dumps(summary)


def test_depot_outage_sends_vehicles_elsewhere() -> None:
    p, routes = _example()
    res = replan(p, routes, 30000, [DepotDown(1)], deadline_s=0.6, workers=1)
    _assert_sound(p, routes, 30000, res, set())
    for r in res.solution.routes:
        assert int(res.residual.a("vehicle_end_depot")[r.vehicle_type]) == 0


def test_replan_bad_events(tmp_path: Path) -> None:
    p, routes = _example()
    with pytest.raises(ValidationError, match="no vehicle named 'truck#9'"):
        replan(p, routes, 30000, [VehicleBreakdown("truck#9")], deadline_s=0.3, workers=1)
    f = tmp_path / "ev.json"
    f.write_text(json.dumps({"type": "meteor"}))
    with pytest.raises(CaseFormatError, match=r"events\[0\]: unknown type 'meteor'"):
        read_event(f, p)
    f.write_text(
        json.dumps(
            {"type": "urgent_orders", "orders": [{"id": "x", "location": 3, "window_s": [10, 5]}]}
        )
    )
    with pytest.raises(CaseFormatError, match="time window closes before it opens"):
        read_event(f, p)
    f.write_text(json.dumps({"type": "depot_outage", "depot": "atlantis"}))
    with pytest.raises(CaseFormatError, match="unknown depot 'atlantis'"):
        read_event(f, p)
    f.write_text("{not json")
    with pytest.raises(CaseFormatError, match="not valid JSON"):
        read_event(f, p)


def test_closure_matrix_is_a_real_detour() -> None:
    p = random_problem(2)
    ch = slow_arcs(p, np.array([[2, 5], [5, 2]]), 1.0, closed=True)
    # The closed arc now costs the best path through another location, never less than before.
    via = p.duration_s[2, :] + p.duration_s[:, 5]
    via[[2, 5]] = 10**9
    assert ch.duration_s[2, 5] == max(p.duration_s[2, 5], via.min())
    assert (ch.duration_s >= p.duration_s).all()
