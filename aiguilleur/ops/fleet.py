"""The logistics half of the demo: fuel tankers and repair crews re-routed after a flood.

On the bundled road extract (Monaco and the communes around it, OpenStreetMap):
a crisis scenario places a fuel depot, a repair base and demand points
(hospitals, substations, shops); the scarce fuel is allocated by priority;
the tankers and the crews get their routes; then a main road floods while
they drive, and both fleets are re-planned from where they are, with the
travel matrices updated for the closure. Everything is drawn on one map.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from aiguilleur.logistics.roads import (
    ATTRIBUTION,
    RoadGraph,
    TravelMatrices,
    affected_edges,
    apply_disruption,
    bundled_road_graph,
    route_geometry,
    routes_geojson,
    travel_matrices,
    update_matrices,
)
from aiguilleur.logistics.routing import (
    MatrixChange,
    PlannedRoute,
    ReplanResult,
    RoutingProblem,
    RoutingSolution,
    SolveSettings,
    replan,
    solve,
)
from aiguilleur.logistics.scenario import CrisisScenario, crisis_scenario, fuel_orders

__all__ = ["FleetDemoResult", "FleetPlan", "run_fleet_demo", "svg_fleet_map"]

IntArray = npt.NDArray[np.int64]

TANKERS = 4
TANKER_L = 4000
CREWS = 2
SHIFT_S = 10 * 3600
# cut-off pairs after a closure: a travel time no plan will take
_UNREACHABLE_S = 10**7


@dataclass(frozen=True)
class FleetPlan:
    """One fleet's plan before and after the closure, as site sequences and figures.

    ``cost_before`` is the whole first plan's distance cost (metres driven);
    ``cost_after`` that of what remains to drive from the closure on, and
    ``repair_cost_after`` the same for the repair baseline (the old plan
    patched), which the re-plan must never be worse than.
    """

    fleet: str
    orders: int
    vehicles_used: int
    cost_before: float
    feasible_before: bool
    dropped_before: dict[str, str]
    cost_after: float
    repair_cost_after: float
    feasible_after: bool
    dropped_after: dict[str, str]
    changed_vehicles: int
    max_delay_s: int
    replan_s: float
    routes_before: tuple[tuple[int, ...], ...]  # site indices, depot first and last
    routes_after: tuple[tuple[int, ...], ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class FleetDemoResult:
    """What the fleet part of the demo did (see :func:`run_fleet_demo`)."""

    scenario: CrisisScenario
    graph_nodes: int
    graph_edges: int
    fuel_supply_l: float
    fuel_need_l: float
    fuel_shortfall_by_priority: dict[int, float]
    closure_reason: str
    closure_at_s: float
    closed_edges: int
    matrix_update_s: float
    fleets: tuple[FleetPlan, ...]
    geojson: dict[str, Any]
    map_svg: str
    attribution: str
    time_s: float


def _int_matrix(m: npt.NDArray[np.float64]) -> IntArray:
    return np.where(np.isfinite(m), np.rint(m), _UNREACHABLE_S).astype(np.int64)


def _problem(
    name: str,
    tm: TravelMatrices,
    depot_site: int,
    order_site: list[int],
    demand: list[int],
    service: list[int],
    windows: list[tuple[float, float]],
    required: list[bool],
    penalty: list[int],
    priority: list[int],
    ids: list[str],
    vehicles: int,
    capacity: int,
    depot_id: str,
    lonlat: npt.NDArray[np.float64],
) -> RoutingProblem:
    n = len(order_site)
    late = [min(w[1], SHIFT_S) if np.isfinite(w[1]) else SHIFT_S for w in windows]
    return RoutingProblem(
        name=name,
        duration_s=_int_matrix(tm.duration_s),
        distance_m=_int_matrix(tm.distance_m),
        depot_location=np.array([depot_site], dtype=np.int64),
        order_location=np.array(order_site, dtype=np.int64),
        order_demand=np.array(demand, dtype=np.int64),
        vehicle_count=np.array([vehicles], dtype=np.int64),
        vehicle_capacity=np.array([capacity], dtype=np.int64),
        order_service_s=np.array(service, dtype=np.int64),
        order_tw_early_s=np.array([int(w[0]) for w in windows], dtype=np.int64),
        order_tw_late_s=np.array([int(v) for v in late], dtype=np.int64),
        order_required=np.array(required, dtype=bool),
        order_penalty=np.array(penalty, dtype=np.int64),
        order_priority=np.array(priority, dtype=np.int64),
        vehicle_tw_early_s=np.array([0], dtype=np.int64),
        vehicle_tw_late_s=np.array([SHIFT_S], dtype=np.int64),
        vehicle_unit_distance_cost=np.array([1], dtype=np.int64),
        vehicle_unit_duration_cost=np.array([0], dtype=np.int64),
        order_id=tuple(ids) if n else (),
        depot_id=(depot_id,),
        vehicle_type_id=(name,),
        location_lonlat=lonlat,
        cost_unit=1.0,
        source="aiguilleur demo",
    )


def _sequences(problem: RoutingProblem, routes: tuple[PlannedRoute, ...]) -> list[tuple[int, ...]]:
    depot = int(problem.depot_location[0])
    out = []
    for r in routes:
        if len(r.orders) == 0:
            continue
        locs = [int(problem.order_location[o]) for o in r.orders]
        out.append((depot, *locs, depot))
    return out


def _fleet(
    name: str,
    problem: RoutingProblem,
    new: TravelMatrices,
    at_s: float,
    reason: str,
    time_limit_s: float,
    deadline_s: float,
    seed: int,
) -> tuple[FleetPlan, RoutingSolution, ReplanResult]:
    sol = solve(problem, SolveSettings(time_limit_s=time_limit_s, seed=seed, workers=1))
    change = MatrixChange(_int_matrix(new.duration_s), _int_matrix(new.distance_m), reason)
    t = time.perf_counter()
    rp = replan(problem, sol.routes, int(at_s), change, deadline_s=deadline_s, seed=seed, workers=1)
    replan_s = time.perf_counter() - t
    ids = problem.order_id
    summ = rp.summary()
    plan = FleetPlan(
        fleet=name,
        orders=problem.n_orders,
        vehicles_used=sum(1 for r in sol.routes if len(r.orders)),
        cost_before=float(sol.cost),
        feasible_before=bool(sol.feasible),
        dropped_before={ids[i] if ids else str(i): why for i, why in sol.dropped.items()},
        cost_after=float(summ["cost"]),
        repair_cost_after=float(summ["repair_cost"]),
        feasible_after=bool(rp.feasible),
        dropped_after=dict(rp.dropped),
        changed_vehicles=sum(1 for c in rp.changes if tuple(c.before) != tuple(c.after)),
        max_delay_s=max((int(v) for v in rp.delay_s.values()), default=0),
        replan_s=replan_s,
        routes_before=tuple(_sequences(problem, sol.routes)),
        routes_after=tuple(_sequences(rp.problem, rp.routes)),
        notes=tuple(rp.notes),
    )
    return plan, sol, rp


def run_fleet_demo(
    *,
    seed: int = 1,
    time_limit_s: float = 3.0,
    replan_deadline_s: float = 2.0,
    graph: RoadGraph | None = None,
) -> FleetDemoResult:
    """Plan the tankers and the crews of a crisis, flood a road, re-plan both fleets.

    Parameters
    ----------
    seed
        Scenario and search seed (the run is reproducible for a seed).
    time_limit_s
        Search time of each fleet's first plan.
    replan_deadline_s
        Deadline of each re-plan after the closure.
    graph
        The road graph (the bundled extract by default).
    """
    t0 = time.perf_counter()
    g = bundled_road_graph() if graph is None else graph
    sc = crisis_scenario(g, seed=seed)
    sites = sc.sites
    nodes = sc.nodes
    lonlat = np.array([[s.lon, s.lat] for s in sites], dtype=np.float64)
    tm = travel_matrices(g, nodes)
    site_of = {s.site_id: i for i, s in enumerate(sites)}

    # scarce fuel shared by priority, then tanker orders for what was allocated
    alloc, orders = fuel_orders(sc, cost=tm.duration_s[0, 2:], tanker_l=TANKER_L)
    fuel = _problem(
        "tanker",
        tm,
        0,
        [site_of[o.point] for o in orders],
        [round(o.quantity) for o in orders],
        [round(o.service_s) for o in orders],
        [(o.window_open_s, o.window_close_s) for o in orders],
        [o.priority < 3 for o in orders],
        [{1: 10**7, 2: 10**6}.get(o.priority, 50_000) for o in orders],
        [o.priority for o in orders],
        [o.order_id for o in orders],
        TANKERS,
        TANKER_L,
        sc.fuel_depot.site_id,
        lonlat,
    )
    crew_pts = [p for p in sc.points if p.needs_crew]
    crews = _problem(
        "crew",
        tm,
        1,
        [site_of[p.site_id] for p in crew_pts],
        [1] * len(crew_pts),
        [round(p.service_s) for p in crew_pts],
        [p.window_s for p in crew_pts],
        [True] * len(crew_pts),
        [10**6] * len(crew_pts),
        [p.priority for p in crew_pts],
        [f"repair-{p.site_id}" for p in crew_pts],
        CREWS,
        len(crew_pts) or 1,
        sc.crew_depot.site_id,
        lonlat,
    )

    # the flood: matrices updated for what the closure can change
    t = time.perf_counter()
    new_tm = update_matrices(g, tm, sc.closure)
    upd_s = time.perf_counter() - t
    closed = affected_edges(g, sc.closure)
    reason = getattr(sc.closure, "reason", "") or "flooded road"

    plans = []
    for name, prob in (("tankers", fuel), ("repair crews", crews)):
        if prob.n_orders == 0:
            continue
        plan, _, _ = _fleet(
            name, prob, new_tm, sc.closure_at_s, reason, time_limit_s, replan_deadline_s, seed
        )
        plans.append(plan)

    g_after = apply_disruption(g, sc.closure)
    feats: list[dict[str, Any]] = []
    for plan in plans:
        for when, seqs, graph_ in (
            ("before", plan.routes_before, g),
            ("after", plan.routes_after, g_after),
        ):
            node_seqs = [[int(nodes[s]) for s in seq] for seq in seqs]
            props = [{"fleet": plan.fleet, "plan": when} for _ in node_seqs]
            fc = routes_geojson(graph_, node_seqs, properties=props, with_stops=False)
            feats.extend(fc["features"])
    geo = {"type": "FeatureCollection", "features": feats, "attribution": ATTRIBUTION}
    need = float(sum(p.fuel_l for p in sc.points))
    short = {int(k): float(v) for k, v in _shortfall_by_class(alloc).items()}
    result = FleetDemoResult(
        scenario=sc,
        graph_nodes=int(g.n_nodes),
        graph_edges=int(g.n_edges),
        fuel_supply_l=float(sc.fuel_supply_l),
        fuel_need_l=need,
        fuel_shortfall_by_priority=short,
        closure_reason=reason,
        closure_at_s=float(sc.closure_at_s),
        closed_edges=int(np.size(closed)),
        matrix_update_s=upd_s,
        fleets=tuple(plans),
        geojson=geo,
        map_svg="",
        attribution=ATTRIBUTION,
        time_s=0.0,
    )
    svg = svg_fleet_map(g, g_after, result, nodes)
    from dataclasses import replace

    return replace(result, map_svg=svg, time_s=time.perf_counter() - t0)


def _shortfall_by_class(alloc: Any) -> dict[int, float]:
    by = getattr(alloc, "shortfall_by_class", None)
    if by is None:
        return {}
    if isinstance(by, dict):
        return {int(k): float(v) for k, v in by.items()}
    try:  # a pandas Series or similar
        return {int(k): float(v) for k, v in dict(by).items()}
    except (TypeError, ValueError):
        return {}


_FLEET_COLOURS = {"tankers": ("#9cb3cf", "#1f5a9e"), "repair crews": ("#f0c08a", "#c0611a")}


def svg_fleet_map(
    before: RoadGraph,
    after: RoadGraph,
    r: FleetDemoResult,
    nodes: IntArray,
    width: int = 900,
    height: int = 560,
) -> str:
    """Streets, the flooded edges, routes before (pale) and after (strong) the closure, sites."""
    lon, lat = np.asarray(before.lon), np.asarray(before.lat)
    kx = np.cos(np.radians(float(lat.mean())))
    x0, x1 = float(lon.min()), float(lon.max())
    y0, y1 = float(lat.min()), float(lat.max())
    pad = 12.0
    s = min((width - 2 * pad) / ((x1 - x0) * kx or 1.0), (height - 2 * pad) / ((y1 - y0) or 1.0))

    def px(lo: float, la: float) -> tuple[float, float]:
        return pad + (lo - x0) * kx * s, height - pad - (la - y0) * s

    tail, head = np.asarray(before.tail), np.asarray(before.head)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="fleet map" '
        'font-family="system-ui, sans-serif">',
        '<rect width="100%" height="100%" fill="#fbfbf8"/>',
        '<g stroke="#d5d5d0" stroke-width="0.8">',
    ]
    for a, b in zip(tail.tolist(), head.tolist(), strict=True):
        (xa, ya), (xb, yb) = px(lon[a], lat[a]), px(lon[b], lat[b])
        parts.append(f'<line x1="{xa:.1f}" y1="{ya:.1f}" x2="{xb:.1f}" y2="{yb:.1f}"/>')
    parts.append("</g>")
    closed = np.flatnonzero(np.asarray(after.closed))
    parts.append('<g stroke="#c0262d" stroke-width="5" stroke-linecap="round">')
    for e in np.asarray(closed).tolist():
        (xa, ya), (xb, yb) = px(lon[tail[e]], lat[tail[e]]), px(lon[head[e]], lat[head[e]])
        parts.append(f'<line x1="{xa:.1f}" y1="{ya:.1f}" x2="{xb:.1f}" y2="{yb:.1f}"/>')
    parts.append("</g>")
    for plan in r.fleets:
        pale, strong = _FLEET_COLOURS.get(plan.fleet, ("#bbb", "#333"))
        for seqs, graph_, colour, w, dash in (
            (plan.routes_before, before, pale, 4.0, ' stroke-dasharray="6 4"'),
            (plan.routes_after, after, strong, 2.2, ""),
        ):
            for seq in seqs:
                try:
                    pts = route_geometry(graph_, [int(nodes[i]) for i in seq])
                except Exception:  # a leg cut off by the flood: drawn straight, dotted
                    pts = [(float(lon[nodes[i]]), float(lat[nodes[i]])) for i in seq]
                d = " ".join(f"{a:.1f},{b:.1f}" for a, b in (px(p[0], p[1]) for p in pts))
                parts.append(
                    f'<polyline points="{d}" fill="none" stroke="{colour}" stroke-width="{w}" '
                    f'stroke-linejoin="round" opacity="0.9"{dash}/>'
                )
    colours = {"hospital": "#c0262d", "substation": "#7a4fb0", "shop": "#5a8f3c"}
    for site in r.scenario.points:
        x, y = px(site.lon, site.lat)
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colours.get(site.kind, "#444")}" '
            f'stroke="#fff"><title>{site.name}</title></circle>'
        )
    for site, label in ((r.scenario.fuel_depot, "F"), (r.scenario.crew_depot, "R")):
        x, y = px(site.lon, site.lat)
        parts.append(
            f'<rect x="{x - 7:.1f}" y="{y - 7:.1f}" width="14" height="14" fill="#222"/>'
            f'<text x="{x:.1f}" y="{y + 4:.1f}" font-size="10" fill="#fff" '
            f'text-anchor="middle">{label}</text>'
        )
    legend = [
        ("#1f5a9e", "tankers after the flood (dashed pale: before)"),
        ("#c0611a", "repair crews after the flood (dashed pale: before)"),
        ("#c0262d", "flooded road; red dots hospitals"),
        ("#7a4fb0", "substations (need a crew)"),
        ("#5a8f3c", "shops"),
    ]
    for i, (c, text) in enumerate(legend):
        y = 18 + 16 * i
        parts.append(
            f'<rect x="{width - 300}" y="{y - 9}" width="12" height="10" fill="{c}"/>'
            f'<text x="{width - 283}" y="{y}" font-size="11" fill="#333">{text}</text>'
        )
    parts.append(
        f'<text x="{pad}" y="{height - 4}" font-size="10" fill="#666">Map data {ATTRIBUTION}'
        "</text></svg>"
    )
    return "".join(parts)
