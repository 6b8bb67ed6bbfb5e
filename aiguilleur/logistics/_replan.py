"""Re-planning mid-execution after a disruption (private; see :func:`replan`).

The model, stated once:

* **What is frozen.** At time ``at_s`` every stop a vehicle has already left
  for is committed: stops served, the stop it is waiting or serving at, and
  the stop it is driving to (a vehicle on the road finishes its leg, on the
  travel time it was given when it left). A vehicle is free again at the last
  committed stop, once its service there ends.
* **What a vehicle carries.** Goods are one fungible commodity (fuel, water,
  generators of one kind): a vehicle on the road can deliver what it still
  has on board (its planned load minus what it delivered, unless the caller
  says otherwise) to any order, without reloading. A vehicle that has
  finished its stops is back at its end depot at the planned time and can
  start a new trip there with a full load, within its shift. A vehicle not yet
  departed, or not used by the plan, starts from its depot, full, no earlier
  than ``at_s``.
* **Events.** :class:`MatrixChange` (road closure or slowdown, as the new
  travel matrices: the roads module's ``update_matrices`` computes them),
  :class:`DepotDown` (vehicles parked there are unavailable, vehicles due
  back there go to the nearest open depot), :class:`VehicleBreakdown` (the
  vehicle stops where it is; the orders it had not started serving become
  open orders for the rest of the fleet, served from depot stock or spare
  load on board: its own cargo is not transferred), :class:`UrgentOrders`
  (new orders, usually with tight windows and a high priority).
* **Repair baseline.** The surviving plan (each vehicle keeps its remaining
  stops in order), minus stops that became infeasible, plus cheapest feasible
  insertion of every open order (highest priority first). The re-optimised
  plan is a PyVRP search warm-started from this repair, on every core, within
  the deadline; the better of the two (by the independent checker's
  objective) is returned, so the answer is never worse than the repair.
* **Drops.** Required orders become optional at a very large penalty (scaled
  by priority), so a plan is always returned; a required order still left out
  is reported with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from aiguilleur.errors import ValidationError
from aiguilleur.logistics._vrp_check import check_plan, route_schedule
from aiguilleur.logistics._vrp_problem import (
    UNBOUNDED,
    PlannedRoute,
    RoutingProblem,
    RoutingSolution,
)
from aiguilleur.logistics._vrp_repair import repair_plan
from aiguilleur.logistics._vrp_solve import (
    MAX_WORKERS,
    _subset,
    check_search_limits,
    finish,
    from_pyvrp_routes,
    run_searches,
    unservable_orders,
)

__all__ = [
    "DepotDown",
    "Event",
    "MatrixChange",
    "ReplanResult",
    "UrgentOrders",
    "VehicleBreakdown",
    "VehicleChange",
    "replan",
    "replan_limits",
]

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class MatrixChange:
    """A road closure or slowdown, as the travel matrices in force from now on."""

    duration_s: IntArray
    distance_m: IntArray
    reason: str = "road closure"


@dataclass(frozen=True)
class DepotDown:
    """Depot ``depot`` (index) is out of service from now on."""

    depot: int
    reason: str = "depot outage"


@dataclass(frozen=True)
class VehicleBreakdown:
    """Vehicle ``vehicle`` (its name in the plan) stops where it is."""

    vehicle: str
    reason: str = "vehicle broke down"


@dataclass(frozen=True, eq=False)
class UrgentOrders:
    """New orders, indexed like the problem's (``location`` are matrix rows).

    ``penalty`` ``None`` entries (or the whole field ``None``) mark required orders.
    """

    order_id: tuple[str, ...]
    location: IntArray
    demand: IntArray
    tw_early_s: IntArray
    tw_late_s: IntArray
    service_s: IntArray | None = None
    priority: IntArray | None = None
    penalty: tuple[int | None, ...] | None = None

    def __post_init__(self) -> None:
        n = len(self.order_id)
        for nm in ("location", "demand", "tw_early_s", "tw_late_s", "service_s", "priority"):
            v = getattr(self, nm)
            a = np.zeros(n, np.int64) if v is None else np.asarray(v, np.int64).reshape(-1)
            if a.shape != (n,):
                raise ValidationError(f"urgent orders: {nm} needs {n} values", "urgent order")
            object.__setattr__(self, nm, a)
        if self.penalty is not None and len(self.penalty) != n:
            raise ValidationError(f"urgent orders: penalty needs {n} values", "urgent order")
        bad = np.flatnonzero(self.tw_late_s < self.tw_early_s)
        if len(bad):
            i = int(bad[0])
            raise ValidationError(
                f"urgent order {self.order_id[i]!r}: time window closes before it opens",
                "urgent order",
                i,
            )


Event = MatrixChange | DepotDown | VehicleBreakdown | UrgentOrders


@dataclass(frozen=True, eq=False)
class VehicleChange:
    """What a re-plan changed for one vehicle (order ids)."""

    vehicle: str
    status: str
    served: tuple[str, ...]
    before: tuple[str, ...]
    after: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class ReplanResult:
    """The outcome of :func:`replan`.

    ``problem`` is the problem after the events (new matrices, urgent orders
    appended); ``routes`` are full routes in its indices (committed stops
    first); ``residual`` is the problem that was searched (vehicles starting
    where they are free) and ``solution`` the plan on it, checked
    independently; ``repair`` is the repair baseline on the same residual.
    ``delay_s`` maps order ids to the change of their planned service start
    (new minus old; orders served in both plans). ``status`` / ``ok`` say
    whether the re-plan met what was asked; ``dropped_required`` names the
    required orders it leaves out.
    """

    problem: RoutingProblem
    routes: tuple[PlannedRoute, ...]
    residual: RoutingProblem
    solution: RoutingSolution
    repair: RoutingSolution
    dropped: dict[str, str]
    changes: tuple[VehicleChange, ...]
    delay_s: dict[str, int]
    time_s: float
    feasible: bool
    notes: tuple[str, ...] = field(default=())

    @property
    def dropped_required(self) -> dict[str, str]:
        """Required orders (of the problem after the events) left out, with the reason."""
        req = dict(zip(self.problem.order_id, self.problem.a("order_required"), strict=True))
        return {o: why for o, why in self.dropped.items() if req.get(o, False)}

    @property
    def status(self) -> str:
        """``feasible``, ``partial`` (required orders dropped) or ``infeasible``."""
        if not self.feasible:
            return "infeasible"
        return "partial" if self.dropped_required else "feasible"

    @property
    def ok(self) -> bool:
        """True when every route keeps every constraint and every required order is served."""
        from aiguilleur.status import is_ok

        return is_ok(self.status)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (the ``routes replan --json`` output)."""
        unit = self.residual.cost_unit
        own = check_plan(self.residual, self.solution.routes, self.solution.dropped)
        rep = check_plan(self.residual, self.repair.routes, self.repair.dropped)
        return {
            "status": self.status,
            "ok": self.ok,
            "dropped_required": self.dropped_required,
            "feasible": self.ok,  # every required order served, by valid routes
            "routes_valid": self.feasible,
            "cost": round(own.route_cost * unit, 6),
            "repair_cost": round(rep.route_cost * unit, 6),
            "objective": self.solution.cost,
            "repair_objective": self.repair.cost,
            "time_s": self.time_s,
            "vehicles": sum(1 for c in self.changes if c.after),
            "dropped": self.dropped,
            "changes": [
                {
                    "vehicle": c.vehicle,
                    "status": c.status,
                    "served": list(c.served),
                    "before": list(c.before),
                    "after": list(c.after),
                    "added": list(c.added),
                    "removed": list(c.removed),
                }
                for c in self.changes
            ],
            "delay_s": self.delay_s,
            "notes": list(self.notes),
        }


# -- the vehicles' state at ``at_s`` -------------------------------------------------------


@dataclass
class _Vehicle:
    name: str
    vtype: int
    status: str  # "moving", "returning", "idle", "unused", "broken", "unavailable"
    committed: list[int]
    remaining: list[int]  # planned, not committed (original order indices)
    loc: int = 0
    free_s: int = 0
    capacity: int = 0
    shift_end_s: int = UNBOUNDED
    start_depot: int = 0
    end_depot: int = 0
    fixed: bool = True  # starting time fixed at free_s (on the road)


def _vehicle_states(
    problem: RoutingProblem,
    routes: Sequence[PlannedRoute],
    at_s: int,
    broken: set[str],
    down_depots: set[int],
    on_board: dict[str, int],
) -> list[_Vehicle]:
    p = problem
    out: list[_Vehicle] = []
    used = np.zeros(len(p.vehicle_count), np.int64)
    names = set()
    for r in routes:
        k = r.vehicle_type
        used[k] += 1
        names.add(r.vehicle)
        sch = route_schedule(p, r)
        orders = [int(o) for o in r.orders]
        svc = p.a("order_service_s")[r.orders]
        depart_prev = (
            np.concatenate(([sch.start_s], sch.service_start_s[:-1] + svc[:-1]))
            if len(orders)
            else np.zeros(0)
        )
        shift_end = min(
            int(p.a("vehicle_tw_late_s")[k]), sch.start_s + int(p.a("vehicle_max_duration_s")[k])
        )
        sd, ed = int(p.a("vehicle_start_depot")[k]), int(p.a("vehicle_end_depot")[k])
        if not orders or at_s < sch.start_s:
            status = "unavailable" if sd in down_depots else "idle"
            if r.vehicle in broken:
                status = "broken"
            out.append(
                _Vehicle(
                    r.vehicle,
                    k,
                    status,
                    [],
                    orders,
                    int(p.depot_location[sd]),
                    max(at_s, int(p.a("vehicle_tw_early_s")[k])),
                    int(p.vehicle_capacity[k]),
                    int(p.a("vehicle_tw_late_s")[k]),
                    sd,
                    ed,
                    fixed=False,
                )
            )
            continue
        if r.vehicle in broken:
            done = int((sch.service_start_s <= at_s).sum())
            out.append(_Vehicle(r.vehicle, k, "broken", orders[:done], orders[done:]))
            continue
        n_commit = int((depart_prev <= at_s).sum())
        committed, remaining = orders[:n_commit], orders[n_commit:]
        if remaining:
            c = n_commit - 1
            free = int(sch.service_start_s[c] + svc[c])
            load = on_board.get(r.vehicle, sch.load_before) - int(p.order_demand[committed].sum())
            out.append(
                _Vehicle(
                    r.vehicle,
                    k,
                    "moving",
                    committed,
                    remaining,
                    int(p.order_location[committed[-1]]),
                    max(free, at_s),
                    max(load, 0),
                    shift_end,
                    sd,
                    ed,
                )
            )
        else:
            status = "unavailable" if ed in down_depots else "returning"
            out.append(
                _Vehicle(
                    r.vehicle,
                    k,
                    status,
                    committed,
                    [],
                    int(p.depot_location[ed]),
                    max(sch.end_s, at_s),
                    int(p.vehicle_capacity[k]),
                    shift_end,
                    ed,
                    ed,
                )
            )
    for k in range(len(p.vehicle_count)):
        sd = int(p.a("vehicle_start_depot")[k])
        n_free = int(p.vehicle_count[k] - used[k])
        j = 0
        for _ in range(max(n_free, 0)):
            while f"{p.vehicle_type_id[k]}#{j}" in names:
                j += 1
            name = f"{p.vehicle_type_id[k]}#{j}"
            names.add(name)
            status = "unavailable" if sd in down_depots else "unused"
            if name in broken:
                status = "broken"
            out.append(
                _Vehicle(
                    name,
                    k,
                    status,
                    [],
                    [],
                    int(p.depot_location[sd]),
                    max(at_s, int(p.a("vehicle_tw_early_s")[k])),
                    int(p.vehicle_capacity[k]),
                    int(p.a("vehicle_tw_late_s")[k]),
                    sd,
                    int(p.a("vehicle_end_depot")[k]),
                    fixed=False,
                )
            )
    unknown = broken - {v.name for v in out}
    if unknown:
        raise ValidationError(
            f"breakdown: no vehicle named {sorted(unknown)[0]!r} in the plan or fleet", "vehicle"
        )
    return out


# -- replan ------------------------------------------------------------------------------


def _split_events(events: Event | Sequence[Event]) -> list[Event]:
    if isinstance(events, MatrixChange | DepotDown | VehicleBreakdown | UrgentOrders):
        return [events]
    return list(events)


def replan(
    problem: RoutingProblem,
    routes: Sequence[PlannedRoute],
    at_s: int,
    events: Event | Sequence[Event] = (),
    *,
    deadline_s: float = 10.0,
    seed: int = 1,
    workers: int = 0,
    on_board: dict[str, int] | None = None,
) -> ReplanResult:
    """Re-plan a fleet in the middle of its plan after ``events`` (see the module docstring).

    Parameters
    ----------
    problem
        The problem the plan was made for.
    routes
        The plan being executed (vehicle names, departure times when known).
    at_s
        The time now, in the problem's time unit.
    events
        What happened: matrix changes, depot outages, breakdowns, urgent orders.
    deadline_s
        Wall time for the whole re-plan; the repair baseline alone is returned
        when nothing better is found in time.
    seed, workers
        Seed and parallel searches of the re-optimisation (``workers=0``: one per core).
    on_board
        Load on board per vehicle name when it left the depot, if not its planned load.
    """
    t0 = time.perf_counter()
    replan_limits(at_s, deadline_s, seed, workers)
    if not isinstance(problem, RoutingProblem):
        raise ValidationError(f"problem: expected a RoutingProblem, got {type(problem).__name__}")
    if not all(isinstance(r, PlannedRoute) for r in routes):
        raise ValidationError("routes: expected PlannedRoute values")
    at_s = int(at_s)
    evs = _split_events(events)
    p = problem
    dur, dist = p.duration_s, p.distance_m
    down: set[int] = set()
    broken: set[str] = set()
    urgent: list[UrgentOrders] = []
    notes: list[str] = []
    for ev in evs:
        if isinstance(ev, MatrixChange):
            dur, dist = np.asarray(ev.duration_s, np.int64), np.asarray(ev.distance_m, np.int64)
            if dur.shape != p.duration_s.shape or dist.shape != p.distance_m.shape:
                raise ValidationError(
                    f"{ev.reason}: new matrices must be {p.duration_s.shape}", "event"
                )
            notes.append(f"{ev.reason}: new travel matrices")
        elif isinstance(ev, DepotDown) or type(ev).__name__ == "DepotOutage":
            # (the roads module's DepotOutage is accepted too: a depot index or id)
            d = getattr(ev, "depot", None)
            if isinstance(d, str) and d in p.depot_id:
                d = p.depot_id.index(d)
            if not isinstance(d, int | np.integer) or not 0 <= int(d) < p.n_depots:
                raise ValidationError(f"depot outage: no depot {d!r}", "event")
            down.add(int(d))
            notes.append(
                f"{getattr(ev, 'reason', '') or 'depot outage'}: "
                f"depot {p.depot_id[int(d)]} out of service"
            )
        elif isinstance(ev, VehicleBreakdown):
            broken.add(ev.vehicle)
            notes.append(f"{ev.reason}: {ev.vehicle}")
        elif isinstance(ev, UrgentOrders):
            urgent.append(ev)
            notes.append(f"{len(ev.order_id)} urgent orders")
        else:  # pragma: no cover - typing guards this
            raise ValidationError(f"unknown event {ev!r}", "event")
    if len(down) == p.n_depots:
        notes.append(
            "every depot is out of service: vehicles on the road end at their current depot"
        )
    names = [r.vehicle for r in routes]
    if len(set(names)) != len(names) or any(not n for n in names):
        raise ValidationError("plan: every route needs a distinct vehicle name", "route")
    plan_check = check_plan(p, routes, {})
    if any("vehicle type" in v and "routes" in v for v in plan_check.violations):
        raise ValidationError("plan: more routes than vehicles of a type", "route")

    # The problem after the events: new matrices, urgent orders appended.
    ext = p
    if urgent or dur is not p.duration_s:
        ids = list(p.order_id)
        cols: dict[str, list[Any]] = {
            "order_location": [p.order_location],
            "order_demand": [p.order_demand],
            "order_service_s": [p.a("order_service_s")],
            "order_tw_early_s": [p.a("order_tw_early_s")],
            "order_tw_late_s": [p.a("order_tw_late_s")],
            "order_required": [p.a("order_required")],
            "order_penalty": [p.a("order_penalty")],
            "order_priority": [p.a("order_priority")],
        }
        for u in urgent:
            pen = u.penalty or (None,) * len(u.order_id)
            cols["order_location"].append(u.location)
            cols["order_demand"].append(u.demand)
            cols["order_service_s"].append(u.service_s)
            cols["order_tw_early_s"].append(u.tw_early_s)
            cols["order_tw_late_s"].append(u.tw_late_s)
            cols["order_required"].append(np.array([x is None for x in pen], bool))
            cols["order_penalty"].append(np.array([0 if x is None else x for x in pen], np.int64))
            cols["order_priority"].append(u.priority)
            ids.extend(u.order_id)
        ext = p.replace(
            duration_s=dur,
            distance_m=dist,
            order_id=tuple(ids),
            **{k: np.concatenate(v) for k, v in cols.items()},
        )

    veh = _vehicle_states(p, routes, int(at_s), broken, down, on_board or {})
    open_depots = [d for d in range(p.n_depots) if d not in down] or list(range(p.n_depots))
    for v in veh:
        if v.end_depot in down and open_depots:
            loc = int(p.depot_location[v.end_depot])
            v.end_depot = min(open_depots, key=lambda d: int(dur[loc, p.depot_location[d]]))

    # Residual problem: one vehicle type per vehicle with a state, then the unused fleet.
    active = [v for v in veh if v.status in ("moving", "returning", "idle")]
    unused = [v for v in veh if v.status == "unused"]
    committed = {o for v in veh for o in v.committed}
    open_orders = np.array([i for i in range(ext.n_orders) if i not in committed], np.int64)
    if len(open_orders) == 0:
        open_orders = np.zeros(0, np.int64)
    pos = {int(o): j for j, o in enumerate(open_orders)}
    depot_loc = list(ext.depot_location)
    depot_e = list(ext.a("depot_tw_early_s"))
    depot_l = list(ext.a("depot_tw_late_s"))
    V: dict[str, list[int]] = {
        k: [] for k in ("count", "cap", "sd", "ed", "e", "l", "fc", "ud", "ut")
    }
    vt_names: list[str] = []
    members: list[list[_Vehicle]] = []

    def add_type(vs: list[_Vehicle]) -> None:
        v = vs[0]
        k = v.vtype
        if v.fixed:
            depot_loc.append(v.loc)
            depot_e.append(v.free_s)
            depot_l.append(v.free_s)
            sd = len(depot_loc) - 1
        else:
            sd = v.start_depot
        V["count"].append(len(vs))
        V["cap"].append(v.capacity)
        V["sd"].append(sd)
        V["ed"].append(v.end_depot)
        V["e"].append(v.free_s)
        V["l"].append(max(v.shift_end_s, v.free_s))
        fixed_paid = v.status in ("moving", "returning")
        V["fc"].append(0 if fixed_paid else int(p.a("vehicle_fixed_cost")[k]))
        V["ud"].append(int(p.a("vehicle_unit_distance_cost")[k]))
        V["ut"].append(int(p.a("vehicle_unit_duration_cost")[k]))
        vt_names.append(v.name if len(vs) == 1 else f"{p.vehicle_type_id[k]} (unused)")
        members.append(vs)

    for v in active:
        add_type([v])
    by_type: dict[int, list[_Vehicle]] = {}
    for v in unused:
        by_type.setdefault(v.vtype, []).append(v)
    for vs in by_type.values():
        add_type(vs)

    req = ext.a("order_required")[open_orders]
    prio = ext.a("order_priority")[open_orders]
    big = _big_penalty(ext)
    scaled = np.minimum(big * (1 + np.clip(prio, 0, 1000)), UNBOUNDED // max(4 * len(prio), 1))
    penalty = np.where(req, scaled, ext.a("order_penalty")[open_orders])
    n_types = len(V["count"])
    res = ext.replace(
        name=f"{p.name} re-plan at {at_s}",
        depot_location=np.array(depot_loc, np.int64),
        depot_tw_early_s=np.array(depot_e, np.int64),
        depot_tw_late_s=np.array(depot_l, np.int64),
        depot_id=tuple(ext.depot_id) + tuple(f"at:{vs[0].name}" for vs in members if vs[0].fixed),
        order_location=ext.order_location[open_orders],
        order_demand=ext.order_demand[open_orders],
        order_service_s=ext.a("order_service_s")[open_orders],
        order_tw_early_s=ext.a("order_tw_early_s")[open_orders],
        order_tw_late_s=ext.a("order_tw_late_s")[open_orders],
        order_required=np.zeros(len(open_orders), bool),
        order_penalty=penalty.astype(np.int64),
        order_priority=prio,
        order_id=tuple(ext.order_id[i] for i in open_orders),
        vehicle_count=np.array(V["count"] or [0], np.int64),
        vehicle_capacity=np.array(V["cap"] or [0], np.int64),
        vehicle_start_depot=np.array(V["sd"] or [0], np.int64),
        vehicle_end_depot=np.array(V["ed"] or [0], np.int64),
        vehicle_tw_early_s=np.array(V["e"] or [0], np.int64),
        vehicle_tw_late_s=np.array(V["l"] or [0], np.int64),
        vehicle_max_duration_s=np.full(max(n_types, 1), UNBOUNDED, np.int64),
        vehicle_fixed_cost=np.array(V["fc"] or [0], np.int64),
        vehicle_unit_distance_cost=np.array(V["ud"] or [1], np.int64),
        vehicle_unit_duration_cost=np.array(V["ut"] or [0], np.int64),
        vehicle_type_id=tuple(vt_names) or ("none",),
    )
    # Not-yet-departed vehicles keep their shift-length limit.
    md = res.a("vehicle_max_duration_s").copy()
    for j, vs in enumerate(members):
        if not vs[0].fixed:
            md[j] = int(p.a("vehicle_max_duration_s")[vs[0].vtype])
    res = res.replace(vehicle_max_duration_s=md)

    # Orders no vehicle can reach any more (closed off, window passed): dropped up front.
    unreachable: dict[int, str] = {}
    gone = unservable_orders(res)
    if gone:
        keep = np.array([i for i in range(res.n_orders) if i not in gone], np.int64)
        unreachable = {int(open_orders[i]): why for i, why in gone.items()}
        res = _subset(res, keep)
        open_orders = open_orders[keep]
        pos = {int(o): j for j, o in enumerate(open_orders)}

    # Repair baseline.
    init = [
        PlannedRoute(
            j, np.array([pos[o] for o in vs[0].remaining if o in pos], np.int64), vs[0].name
        )
        for j, vs in enumerate(members)
        if len(vs) == 1
    ]
    rep_planned, _ = repair_plan(res, init)
    rep_planned = _rename(rep_planned, members)
    rep_sol = _finish_residual(res, rep_planned, time.perf_counter() - t0, "repair")

    # Re-optimise, warm-started from the repair.
    best_sol = rep_sol
    budget = deadline_s - (time.perf_counter() - t0) - 0.05
    if budget > 0.2 and res.n_orders and res.n_vehicles:
        data = res.to_pyvrp()
        tmap = {int(k): j for j, k in enumerate(res.pyvrp_type_index())}
        init_pv = [
            (tmap[r.vehicle_type], [int(o) for o in r.orders]) for r in rep_planned if len(r.orders)
        ]
        best, iters = run_searches(
            data, budget, seed=seed, workers=_workers(workers), exchanges=0, init=init_pv
        )
        planned = from_pyvrp_routes(res, best, np.arange(res.n_orders, dtype=np.int64))
        planned = _rename(planned, members)
        sol = _finish_residual(res, planned, time.perf_counter() - t0, "PyVRP from repair", iters)
        if sol.feasible and (not best_sol.feasible or sol.objective < best_sol.objective):
            best_sol = sol
    return _assemble(
        p,
        ext,
        res,
        veh,
        members,
        open_orders,
        routes,
        best_sol,
        rep_sol,
        at_s,
        t0,
        notes,
        unreachable,
    )


def replan_limits(at_s: Any, deadline_s: Any, seed: Any, workers: Any) -> None:
    """Check the time now and the limits of a re-plan before any work (``ValidationError``).

    ``at_s`` is a whole number in ``0..10**12`` (the problem's time unit); the
    deadline, seed and workers follow :class:`SolveSettings`' stated maxima.
    """
    whole = isinstance(at_s, int | np.integer) or (
        isinstance(at_s, float | np.floating) and float(at_s).is_integer()
    )
    if isinstance(at_s, bool) or not whole or not 0 <= at_s <= MAX_AT_S:
        raise ValidationError(
            f"at: the time now must be a whole number in 0..{MAX_AT_S:,}, got {at_s!r}"
        )
    check_search_limits(deadline_s, seed, workers, "deadline_s")


MAX_AT_S = 10**12


def _workers(w: int) -> int:
    import os

    return max(1, min(w or len(os.sched_getaffinity(0)), MAX_WORKERS))


def _big_penalty(p: RoutingProblem) -> int:
    """A drop penalty larger than any detour: a required order is dropped only if it cannot fit."""
    arc = int(p.distance_m.max()) * int(p.a("vehicle_unit_distance_cost").max()) + int(
        p.duration_s.max()
    ) * int(p.a("vehicle_unit_duration_cost").max())
    return int(
        min(
            4 * (arc + int(p.a("vehicle_fixed_cost").max()) + 1) * 10,
            UNBOUNDED // max(4 * p.n_orders, 1),
        )
    )


def _rename(planned: list[PlannedRoute], members: list[list[_Vehicle]]) -> list[PlannedRoute]:
    used: dict[int, int] = {}
    out = []
    for r in planned:
        n = used.get(r.vehicle_type, 0)
        used[r.vehicle_type] = n + 1
        out.append(PlannedRoute(r.vehicle_type, r.orders, members[r.vehicle_type][n].name))
    return out


def _finish_residual(
    res: RoutingProblem, planned: list[PlannedRoute], time_s: float, solver: str, iters: int = 0
) -> RoutingSolution:
    served = {int(o) for r in planned for o in r.orders}
    dropped = {i: "" for i in range(res.n_orders) if i not in served}
    return finish(res, [r for r in planned if len(r.orders)], dropped, time_s, solver, iters)


def _assemble(
    p: RoutingProblem,
    ext: RoutingProblem,
    res: RoutingProblem,
    veh: list[_Vehicle],
    members: list[list[_Vehicle]],
    open_orders: IntArray,
    old_routes: Sequence[PlannedRoute],
    sol: RoutingSolution,
    rep: RoutingSolution,
    at_s: int,
    t0: float,
    notes: list[str],
    unreachable: dict[int, str],
) -> ReplanResult:
    new_tail = {r.vehicle: [int(open_orders[o]) for o in r.orders] for r in sol.routes}
    new_sched = {r.vehicle: route_schedule(res, r) for r in sol.routes}
    old_sched = {r.vehicle: route_schedule(p, r) for r in old_routes}
    old_orders = {r.vehicle: [int(o) for o in r.orders] for r in old_routes}
    by_name = {v.name: v for v in veh}
    full: list[PlannedRoute] = []
    changes = []
    for v in veh:
        after = v.committed + new_tail.get(v.name, [])
        before = old_orders.get(v.name, [])
        if after:
            start = old_sched[v.name].start_s if v.committed else new_sched[v.name].start_s
            full.append(PlannedRoute(v.vtype, np.asarray(after, np.int64), v.name, start))
        if not before and not after and v.status in ("unused", "unavailable"):
            continue
        ids = ext.order_id
        changes.append(
            VehicleChange(
                vehicle=v.name,
                status=v.status,
                served=tuple(ids[o] for o in v.committed),
                before=tuple(ids[o] for o in before),
                after=tuple(ids[o] for o in after),
                added=tuple(ids[o] for o in after if o not in before),
                removed=tuple(ids[o] for o in before if o not in after),
            )
        )
    # Delays: planned service start, new minus old, for orders served in both plans.
    old_start: dict[int, int] = {}
    for name, s in old_sched.items():
        for o, t in zip(old_orders[name], s.service_start_s, strict=True):
            old_start[o] = int(t)
    delay: dict[str, int] = {}
    for name, s in new_sched.items():
        for o, t in zip(new_tail[name], s.service_start_s, strict=True):
            if o in old_start:
                delay[ext.order_id[o]] = int(t) - old_start[o]
    dropped: dict[str, str] = {
        ext.order_id[o]: f"{why} (after the disruption)" for o, why in unreachable.items()
    }
    served_new = {o for t in new_tail.values() for o in t}
    broken_orders = {o for v in veh if v.status == "broken" for o in v.remaining}
    for o in open_orders:
        o = int(o)
        if o in served_new:
            continue
        why = "the fleet could not serve it after the disruption"
        if o < p.n_orders and not ext.a("order_required")[o]:
            why = "not worth its penalty after the disruption"
        if o in broken_orders:
            why += " (its vehicle broke down)"
        dropped[ext.order_id[o]] = why
    del by_name
    return ReplanResult(
        problem=ext,
        routes=tuple(full),
        residual=res,
        solution=sol,
        repair=rep,
        dropped=dropped,
        changes=tuple(changes),
        delay_s=delay,
        time_s=time.perf_counter() - t0,
        feasible=sol.feasible,
        notes=tuple(notes),
    )
