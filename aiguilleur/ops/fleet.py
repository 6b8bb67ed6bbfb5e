"""The fleets of the operations centre: their world, their problems, their re-plans.

* :func:`fleet_world` draws the fleet world of a crisis on a road extract
  (depots, hospitals, substations and shops with their needs; scarce fuel
  allocated by priority; fuel tankers and repair crews) and solves the first
  plans, as one ``fleet_initialised`` event: the log carries the plans, so
  folding never re-runs the router.
* :class:`FleetModel` is what the responder needs beside the state: the road
  graph (checked against the hash the log recorded), travel matrices for a
  set of closures (cached), snapping of new places.
* :func:`replan_fleet` answers a logistics event: it rebuilds the problem the
  plan in force was made for (its basis: closures, depots, vehicles and
  orders at adoption) and the events since (new matrices, depots down,
  breakdowns, new or urgent orders, cancellations, supply), re-allocates
  scarce fuel by priority, and re-plans from where the vehicles are with
  :func:`aiguilleur.logistics.routing.replan` (frozen prefixes, never worse
  than repairing the plan). The answer is an ``adopt_routes`` action with
  what it leaves undelivered and why.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from aiguilleur.errors import ValidationError
from aiguilleur.logistics.roads import (
    RoadClosure,
    RoadGraph,
    Slowdown,
    apply_disruption,
    bundled_road_graph,
    snap,
    travel_matrices,
)
from aiguilleur.logistics.routing import (
    DepotDown,
    MatrixChange,
    PlannedRoute,
    RoutingProblem,
    SolveSettings,
    UrgentOrders,
    VehicleBreakdown,
    check_plan,
    replan,
    route_schedule,
    solve,
)
from aiguilleur.ops import events as ev

__all__ = [
    "BUNDLED_ROADS",
    "FleetModel",
    "FleetReplan",
    "fleet_world",
    "replan_fleet",
    "roads_sha256",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

BUNDLED_ROADS = "bundled:monaco"
SHIFT_S = 10 * 3600
TANKERS = 4
TANKER_L = 4000
CREWS = 2
UNREACHABLE_S = 10**7
PENALTY_BY_PRIORITY = {1: 10**7, 2: 10**6}
DEFAULT_PENALTY = 50_000


def roads_sha256() -> str:
    """SHA-256 of the bundled road extract's file."""
    from importlib.resources import files

    from aiguilleur.logistics import roads as _roads

    data = files("aiguilleur.data").joinpath("roads", _roads._BUNDLED).read_bytes()
    return hashlib.sha256(data).hexdigest()


def _int_matrix(m: FloatArray) -> IntArray:
    return np.where(np.isfinite(m), np.rint(m), UNREACHABLE_S).astype(np.int64)


# -- the world -----------------------------------------------------------------------------------


def fleet_world(
    *,
    seed: int = 1,
    shift_start: datetime,
    event_id: str = "world:fleet",
    time_limit_s: float = 2.0,
    graph: RoadGraph | None = None,
    tankers: int = TANKERS,
    crews: int = CREWS,
) -> ev.FleetInitialised:
    """The fleet world of a crisis on the bundled road extract, with its first plans.

    Fuel tankers (``tankers`` of 4,000 L) carry the scarce fuel, allocated by
    priority (hospitals, then substations, then shops), from the fuel depot;
    repair crews (``crews``) visit the substations from their base. Everything is drawn from
    ``seed`` (:func:`aiguilleur.logistics.scenario.crisis_scenario`).
    """
    from aiguilleur.logistics.scenario import crisis_scenario, fuel_orders
    from aiguilleur.ops.world import check_world_time

    check_world_time(shift_start, "shift_start")
    g = bundled_road_graph() if graph is None else graph
    sc = crisis_scenario(g, seed=seed)
    sites = [
        ev.SiteSpec(site=s.site_id, kind=s.kind, name=s.name, lat=s.lat, lon=s.lon, node=s.node)
        for s in sc.sites
    ]
    tm = travel_matrices(g, sc.nodes)
    _alloc, orders = fuel_orders(sc, cost=tm.duration_s[0, 2:], tanker_l=TANKER_L)
    tanker_orders = [
        ev.OrderSpec(
            order=o.order_id.replace(">", "-"),
            site=o.point,
            quantity=float(round(o.quantity)),
            priority=o.priority,
            window_open_s=int(o.window_open_s),
            window_close_s=int(min(o.window_close_s, SHIFT_S))
            if math.isfinite(o.window_close_s)
            else SHIFT_S,
            service_s=round(o.service_s),
            required=o.priority < 3,
            penalty=0 if o.priority < 3 else DEFAULT_PENALTY,
        )
        for o in orders
    ]
    crew_orders = [
        ev.OrderSpec(
            order=f"repair-{p.site_id}",
            site=p.site_id,
            quantity=1.0,
            priority=p.priority,
            window_open_s=int(p.window_s[0]),
            window_close_s=int(min(p.window_s[1], SHIFT_S)),
            service_s=round(p.service_s),
            required=True,
            penalty=0,
        )
        for p in sc.points
        if p.needs_crew
    ]
    specs = {
        "tankers": ("fuel-depot", "tanker", tankers, TANKER_L, "L", tanker_orders),
        "crews": ("crew-depot", "crew", crews, max(len(crew_orders), 1), "visits", crew_orders),
    }
    fleets = []
    site_ids = [s.site for s in sites]
    depot_site = {"tankers": sc.fuel_depot.site_id, "crews": sc.crew_depot.site_id}
    for name, (_, vtype, n_veh, cap, unit, ords) in specs.items():
        spec = ev.FleetSpec(
            fleet=name,
            depot=depot_site[name],
            vehicle_type=vtype,
            vehicles=n_veh,
            capacity=cap,
            unit=unit,
            orders=ords,
            routes=[],
        )
        problem, _ = _problem_from(
            spec.model_dump(mode="json"),
            [o.model_dump(mode="json") for o in ords],
            site_ids,
            tm.duration_s,
            tm.distance_m,
            SHIFT_S,
        )
        routes: list[ev.RoutePlan] = []
        dropped: dict[str, str] = {}
        if problem.n_orders:
            sol = solve(problem, SolveSettings(time_limit_s=time_limit_s, seed=seed, workers=1))
            routes = _route_plans(problem, sol.routes)
            dropped = {problem.order_id[i]: why for i, why in sol.dropped.items()}
        fleets.append(spec.model_copy(update={"routes": routes, "dropped": dropped}))
    return ev.FleetInitialised(
        id=event_id,
        occurred_at=shift_start,
        source="aiguilleur:world",
        roads=BUNDLED_ROADS,
        roads_sha256=roads_sha256(),
        shift_start=shift_start,
        shift_s=SHIFT_S,
        sites=sites,
        fleets=fleets,
        supply={sc.fuel_depot.site_id: float(sc.fuel_supply_l)},
    )


def _route_plans(problem: RoutingProblem, routes: Sequence[PlannedRoute]) -> list[ev.RoutePlan]:
    out = []
    for r in routes:
        if len(r.orders) == 0:
            continue
        s = route_schedule(problem, r)
        out.append(
            ev.RoutePlan(
                vehicle=r.vehicle or f"{problem.vehicle_type_id[r.vehicle_type]}#0",
                vehicle_type=problem.vehicle_type_id[r.vehicle_type],
                orders=[problem.order_id[int(i)] for i in r.orders],
                start_s=int(s.start_s if r.start_s is None else r.start_s),
            )
        )
    return out


# -- problems from the state --------------------------------------------------------------


def _problem_from(
    fleet: Mapping[str, Any],
    orders: Sequence[Mapping[str, Any]],
    site_ids: Sequence[str],
    duration_s: FloatArray,
    distance_m: FloatArray,
    shift_s: int,
) -> tuple[RoutingProblem, list[str]]:
    """One fleet's routing problem on the locations ``site_ids`` (matrix rows)."""
    loc = {s: i for i, s in enumerate(site_ids)}
    ords = sorted(orders, key=lambda o: o["order"])
    ids = [str(o["order"]) for o in ords]
    n = len(ords)
    cap = int(fleet["capacity"])

    def penalty(o: Mapping[str, Any]) -> int:
        if o["required"]:
            return PENALTY_BY_PRIORITY.get(int(o["priority"]), 10**6)
        return int(o["penalty"]) or DEFAULT_PENALTY

    problem = RoutingProblem(
        name=str(fleet.get("fleet", fleet.get("vehicle_type", "fleet"))),
        duration_s=_int_matrix(duration_s),
        distance_m=_int_matrix(distance_m),
        depot_location=np.array([loc[fleet["depot"]]], dtype=np.int64),
        order_location=np.array([loc[o["site"]] for o in ords], dtype=np.int64),
        order_demand=np.array([min(round(float(o["quantity"])), cap) for o in ords], np.int64),
        vehicle_count=np.array([int(fleet["vehicles"])], dtype=np.int64),
        vehicle_capacity=np.array([cap], dtype=np.int64),
        order_service_s=np.array([int(o["service_s"]) for o in ords], dtype=np.int64),
        order_tw_early_s=np.array([int(o["window_open_s"]) for o in ords], dtype=np.int64),
        order_tw_late_s=np.array(
            [max(int(o["window_close_s"]), int(o["window_open_s"])) for o in ords], np.int64
        ),
        order_required=np.array([bool(o["required"]) for o in ords], dtype=bool),
        order_penalty=np.array([penalty(o) for o in ords], dtype=np.int64),
        order_priority=np.array([int(o["priority"]) for o in ords], dtype=np.int64),
        vehicle_tw_early_s=np.array([0], dtype=np.int64),
        vehicle_tw_late_s=np.array([shift_s], dtype=np.int64),
        vehicle_unit_distance_cost=np.array([1], dtype=np.int64),
        vehicle_unit_duration_cost=np.array([0], dtype=np.int64),
        order_id=tuple(ids) if n else (),
        depot_id=(str(fleet["depot"]),),
        vehicle_type_id=(str(fleet["vehicle_type"]),),
        cost_unit=1.0,
        source="aiguilleur ops",
    )
    return problem, ids


def _disruption(rec: Mapping[str, Any]) -> RoadClosure | Slowdown:
    """The roads leaf's disruption of a closure record of the state (via the vocabulary)."""
    doc: dict[str, Any] = {
        "id": "x",
        "occurred_at": rec.get("since") or "1970-01-01T00:00:00+00:00",
        "source": "state",
        "closure": "x",
        "area": dict(rec["area"]),
        "reason": str(rec.get("reason", "")),
    }
    if rec["kind"] == "slowdown":
        e = ev.parse_event({**doc, "type": "road_slowdown", "factor": float(rec["factor"])})
    else:
        e = ev.parse_event({**doc, "type": "road_closure"})
    out: RoadClosure | Slowdown = ev.road_disruption(e)
    return out


@dataclass
class FleetModel:
    """The road graph of a fleet world and the matrices of closure sets (cached; thread-safe)."""

    graph: RoadGraph
    sha256: str
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _graphs: dict[str, RoadGraph] = field(default_factory=dict, repr=False)
    _mats: dict[tuple[str, tuple[int, ...]], tuple[FloatArray, FloatArray]] = field(
        default_factory=dict, repr=False
    )
    _snaps: dict[tuple[float, float], int] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, roads: str, sha256: str) -> FleetModel:
        if roads != BUNDLED_ROADS:
            raise ValidationError(f"roads {roads!r}: only {BUNDLED_ROADS!r} is known")
        got = roads_sha256()
        if got != sha256:
            raise ValidationError(
                f"roads {roads}: content hash {got[:12]}... differs from the log's {sha256[:12]}..."
            )
        return cls(bundled_road_graph(), sha256)

    def snap(self, lat: float, lon: float) -> int:
        """The road node of a place (within 500 m of a road of the extract, else an error)."""
        key = (round(lat, 7), round(lon, 7))
        with self._lock:
            hit = self._snaps.get(key)
        if hit is not None:
            return hit
        node = int(snap(self.graph, [lat], [lon])[0])
        with self._lock:
            self._snaps[key] = node
        return node

    @staticmethod
    def closure_key(closures: Mapping[str, Mapping[str, Any]]) -> str:
        items = sorted((k, str(v.get("since", ""))) for k, v in closures.items())
        return ";".join(f"{k}@{s}" for k, s in items)

    def disrupted(self, closures: Mapping[str, Mapping[str, Any]]) -> RoadGraph:
        key = self.closure_key(closures)
        with self._lock:
            g = self._graphs.get(key)
        if g is not None:
            return g
        g = self.graph
        for k in sorted(closures):
            g = apply_disruption(g, _disruption(closures[k]))
        with self._lock:
            self._graphs[key] = g
        return g

    def closed_edges(self, closures: Mapping[str, Mapping[str, Any]]) -> IntArray:
        return np.flatnonzero(np.asarray(self.disrupted(closures).closed)).astype(np.int64)

    def matrices(
        self, closures: Mapping[str, Mapping[str, Any]], nodes: Sequence[int]
    ) -> tuple[FloatArray, FloatArray]:
        key = (self.closure_key(closures), tuple(int(n) for n in nodes))
        with self._lock:
            hit = self._mats.get(key)
        if hit is not None:
            return hit
        tm = travel_matrices(self.disrupted(closures), np.asarray(nodes, dtype=np.int64))
        out = (np.asarray(tm.duration_s), np.asarray(tm.distance_m))
        with self._lock:
            self._mats[key] = out
        return out

    def node_of(self, site: Mapping[str, Any]) -> int:
        n = int(site.get("node", -1))
        return n if n >= 0 else self.snap(float(site["lat"]), float(site["lon"]))


# -- re-planning ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FleetReplan:
    """One fleet's answer to what changed since its plan was adopted."""

    fleet: str
    action: ev.AdoptRoutes
    changed_vehicles: int
    undelivered: dict[str, str]
    undelivered_required: tuple[str, ...]
    cost_before_m: float
    cost_after_m: float
    repair_cost_m: float
    max_delay_s: int
    feasible: bool
    notes: tuple[str, ...]
    reasons: tuple[str, ...]
    time_s: float
    explanation: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.feasible and not self.undelivered_required

    def to_dict(self) -> dict[str, Any]:
        return {
            "fleet": self.fleet,
            "ok": self.ok,
            "feasible": self.feasible,
            "changed_vehicles": self.changed_vehicles,
            "undelivered": dict(self.undelivered),
            "undelivered_required": list(self.undelivered_required),
            "plan_cost_m": self.cost_before_m,
            "cost_after_m": self.cost_after_m,
            "repair_cost_m": self.repair_cost_m,
            "max_delay_s": self.max_delay_s,
            "notes": list(self.notes),
            "reasons": list(self.reasons),
            "time_s": self.time_s,
            "explanation": list(self.explanation),
        }


def _fleet_orders(
    orders: Mapping[str, Mapping[str, Any]], fleet: str
) -> dict[str, Mapping[str, Any]]:
    return {k: v for k, v in orders.items() if v["fleet"] == fleet and v.get("status") == "open"}


def replan_fleet(
    fs: Any,
    fleet: str,
    at_s: int,
    model: FleetModel,
    *,
    deadline_s: float = 2.0,
    seed: int = 1,
    workers: int = 1,
) -> FleetReplan | None:
    """Re-plan ``fleet`` at ``at_s`` for everything that changed since its plan's basis.

    Returns ``None`` when nothing relevant to this fleet changed.
    """
    t0 = time.perf_counter()
    plan = fs.plans[fleet]
    basis = plan["basis"]
    spec = fs.fleets[fleet]
    now_orders = _fleet_orders(fs.orders, fleet)
    old_orders = _fleet_orders(basis["orders"], fleet)
    reasons: list[str] = []
    # the locations: every site known now, in a stable order (depots of the fleets first)
    site_ids = sorted(
        fs.sites, key=lambda s: (fs.sites[s]["kind"] not in ("fuel_depot", "crew_depot"), s)
    )
    nodes = [model.node_of(fs.sites[s]) for s in site_ids]
    if basis["closures"] != dict(fs.closures):
        reasons.append("road closures changed")
    dur0, dist0 = model.matrices(basis["closures"], nodes)
    dur1, dist1 = model.matrices(fs.closures, nodes)
    # orders: the plan's problem had the basis orders (still open ones only: a cancelled
    # order is taken out of the plan); new and urgent orders come as urgent events
    cancelled = sorted(set(old_orders) - set(now_orders))
    new_ids = sorted(set(now_orders) - set(old_orders))
    urgent_ids = sorted(
        o
        for o in set(now_orders) & set(old_orders)
        if now_orders[o]["priority"] != old_orders[o]["priority"]
        or now_orders[o]["window_close_s"] != old_orders[o]["window_close_s"]
        or now_orders[o]["required"] != old_orders[o]["required"]
    )
    if cancelled:
        reasons.append(f"{len(cancelled)} order(s) cancelled")
    if new_ids:
        reasons.append(f"{len(new_ids)} new order(s)")
    if urgent_ids:
        reasons.append(f"{len(urgent_ids)} order(s) made urgent")
    keep_old = {k: v for k, v in old_orders.items() if k in now_orders and k not in urgent_ids}
    down_now = set(fs.depots_down)
    down_then = set(basis["depots_down"])
    broken_now = {v for v, r in fs.vehicles.items() if r.get("broken") and r.get("fleet") == fleet}
    broken_then = set(basis["broken"]) & broken_now
    depot = spec["depot"]
    events: list[Any] = []
    if not np.array_equal(_int_matrix(dur0), _int_matrix(dur1)):
        events.append(MatrixChange(_int_matrix(dur1), _int_matrix(dist1), "road closures"))
    if depot in down_now and depot not in down_then:
        events.append(DepotDown(0, f"depot {depot} out of service"))
        reasons.append(f"depot {depot} out of service")
    for v in sorted(broken_now - broken_then):
        events.append(VehicleBreakdown(v, f"{v} broke down"))
        reasons.append(f"{v} broke down")
    extra = new_ids + urgent_ids
    # scarce supply: new fuel orders share what is left with the open ones, by priority
    quantities: dict[str, float] = {}
    supply_changed = float(fs.supply.get(depot, 0.0)) != float(
        basis.get("supply", {}).get(depot, fs.supply.get(depot, 0.0))
    )
    if supply_changed:
        reasons.append(f"fuel stock at {depot} changed")
    # with the depot down nothing more can be loaded: the re-plan shares what is on board
    # (orders by priority); with it up, what is left in stock is re-allocated
    if (extra or supply_changed) and depot in fs.supply and depot not in down_now:
        quantities = _reallocate(fs, fleet, now_orders, plan, keep_old, site_ids, dur1, at_s)
        if quantities:
            reasons.append("fuel re-allocated by priority")
    if not events and not extra and not cancelled and not quantities:
        return None
    # orders whose share of the fuel shrank keep their place in the plan with less on
    # board; those left with nothing are taken out like cancelled ones
    planned = [
        {**o, "quantity": quantities.get(k, float(o["quantity"]))}
        for k, o in sorted(keep_old.items())
        if quantities.get(k, 1.0) >= 1.0
    ]
    problem, _ = _problem_from({**spec, "fleet": fleet}, planned, site_ids, dur0, dist0, fs.shift_s)
    oidx = {o: i for i, o in enumerate(problem.order_id)}
    routes = []
    for r in plan["routes"]:
        ords = [oidx[o] for o in r["orders"] if o in oidx]
        routes.append(
            PlannedRoute(
                vehicle_type=0,
                orders=np.array(ords, dtype=np.int64),
                vehicle=r["vehicle"],
                start_s=r.get("start_s"),
            )
        )
    if extra:
        loc = {s: i for i, s in enumerate(site_ids)}
        cap = int(spec["capacity"])
        xs = [now_orders[o] for o in extra]
        qty = [quantities.get(o["order"], float(o["quantity"])) for o in xs]
        keep = [i for i, q in enumerate(qty) if q >= 1.0]
        xs = [xs[i] for i in keep]
        qty = [qty[i] for i in keep]
        if xs:
            events.append(
                UrgentOrders(
                    order_id=tuple(str(o["order"]) for o in xs),
                    location=np.array([loc[o["site"]] for o in xs], np.int64),
                    demand=np.array([min(round(q), cap) for q in qty], np.int64),
                    tw_early_s=np.array([max(int(o["window_open_s"]), at_s) for o in xs], np.int64),
                    tw_late_s=np.array([max(int(o["window_close_s"]), at_s) for o in xs], np.int64),
                    service_s=np.array([int(o["service_s"]) for o in xs], np.int64),
                    priority=np.array([int(o["priority"]) for o in xs], np.int64),
                    penalty=tuple(
                        None if o["required"] else int(o["penalty"]) or DEFAULT_PENALTY for o in xs
                    ),
                )
            )
    rp = replan(problem, routes, at_s, events, deadline_s=deadline_s, seed=seed, workers=workers)
    summ = rp.summary()
    new_routes = _route_plans(rp.problem, rp.routes)
    dropped = dict(rp.dropped)
    unallocated = {o: "no fuel allocated (supply short)" for o, q in quantities.items() if q < 1.0}
    dropped.update(unallocated)
    required = tuple(
        sorted(
            o
            for o in dropped
            if o in now_orders and now_orders[o]["required"] and o not in unallocated
        )
    )
    before = check_plan(problem, routes, {})
    changed = sum(1 for c in rp.changes if tuple(c.before) != tuple(c.after))
    expl = [
        f"{fleet}: re-planned at {at_s // 3600}:{(at_s % 3600) // 60:02d} ({'; '.join(reasons)})"
    ]
    for c in rp.changes:
        if tuple(c.before) != tuple(c.after):
            expl.append(
                f"{c.vehicle} ({c.status}): {' > '.join(c.after) or 'no more stops'}"
                + (f"; takes {', '.join(c.added)}" if c.added else "")
                + (f"; gives up {', '.join(c.removed)}" if c.removed else "")
            )
    for o, why in sorted(dropped.items()):
        expl.append(f"undelivered {o}: {why}")
    action = ev.AdoptRoutes(
        fleet=fleet,
        at_s=at_s,
        routes=new_routes,
        dropped=dropped,
        quantities={k: float(v) for k, v in quantities.items()},
    )
    return FleetReplan(
        fleet=fleet,
        action=action,
        changed_vehicles=changed,
        undelivered=dropped,
        undelivered_required=required,
        cost_before_m=float(before.route_cost * problem.cost_unit),
        cost_after_m=float(summ["cost"]),
        repair_cost_m=float(summ["repair_cost"]),
        max_delay_s=max((int(v) for v in rp.delay_s.values()), default=0),
        feasible=bool(rp.feasible),
        notes=tuple(rp.notes),
        reasons=tuple(reasons),
        time_s=time.perf_counter() - t0,
        explanation=tuple(expl),
    )


def _reallocate(
    fs: Any,
    fleet: str,
    now_orders: Mapping[str, Mapping[str, Any]],
    plan: Mapping[str, Any],
    keep_old: Mapping[str, Mapping[str, Any]],
    site_ids: Sequence[str],
    dur: FloatArray,
    at_s: int,
) -> dict[str, float]:
    """Fuel left at the depot shared among the orders not yet loaded, most urgent first.

    What is on the road (orders a vehicle has already left the depot for) is
    spent; the rest of the depot's stock is allocated over the other open
    orders by priority and, within a class, fair shares.
    """
    from aiguilleur.logistics.allocation import AllocationOptions, allocate

    spec = fs.fleets[fleet]
    depot = spec["depot"]
    supply = float(fs.supply.get(depot, 0.0))
    loaded: set[str] = set()
    for r in plan["routes"]:
        start = r.get("start_s")
        if start is not None and start <= at_s:
            loaded.update(o for o in r["orders"])
    spent = sum(float(keep_old[o]["quantity"]) for o in loaded if o in keep_old)
    # the initial plan's quantities already consumed the stock: count what is planned too
    open_ids = sorted(o for o in now_orders if o not in loaded)
    if not open_ids:
        return {}
    left = max(supply - spent, 0.0)
    loc = {s: i for i, s in enumerate(site_ids)}
    d = loc[depot]
    demand = [float(now_orders[o].get("need", now_orders[o]["quantity"])) for o in open_ids]
    cost = np.array([[dur[d, loc[now_orders[o]["site"]]] for o in open_ids]])
    cost = np.where(np.isfinite(cost), cost, 1e7)
    alloc = allocate(
        [left],
        demand,
        cost,
        priority=np.array([int(now_orders[o]["priority"]) for o in open_ids], np.int64),
        depot_ids=[depot],
        point_ids=open_ids,
        options=AllocationOptions(),
    )
    out = {}
    for o, q, want in zip(open_ids, alloc.delivered, demand, strict=True):
        if abs(float(q) - want) > 0.5:
            # a required order keeps at least what the router can carry to it (it may be
            # served from a tanker's spare load); the others get their share
            if now_orders[o]["required"] and q < 1.0:
                continue
            out[o] = float(round(q))
    return out
