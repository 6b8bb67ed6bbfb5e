"""An independent feasibility checker for routing plans (private).

It shares no code with PyVRP: loads, arrival times with waiting and service,
shift windows and lengths, coverage (every order served once or dropped) and
the cost are recomputed here from the raw matrices of the
:class:`RoutingProblem`.

Timing convention (the one PyVRP uses, restated): a vehicle leaves its start
depot at a time in the intersection of its shift window and the depot's
opening hours; service at an order starts at ``max(arrival, tw_early)`` and
must start no later than ``tw_late``; the vehicle is back at its end depot
before both its shift end and the depot's closing time; the route duration is
``end - start`` with the start pushed as late as it can go without delaying
the end, and must not exceed the vehicle type's maximum duration.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aiguilleur.logistics._vrp_problem import PlannedRoute, RoutingProblem

__all__ = ["CheckReport", "RouteSchedule", "check_plan", "route_schedule"]

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class RouteSchedule:
    """The recomputed schedule of one route.

    ``arrival_s`` and ``service_start_s`` have one entry per stop;
    ``load_before`` is the load on board when leaving the depot (the sum of the
    route's demands), ``load_after`` what remains after each stop.
    """

    start_s: int
    end_s: int
    arrival_s: IntArray
    service_start_s: IntArray
    load_before: int
    load_after: IntArray
    distance: int
    duration: int
    cost: int
    violations: tuple[str, ...]


def route_schedule(
    problem: RoutingProblem, route: PlannedRoute, *, capacity: int | None = None
) -> RouteSchedule:
    """Recompute the schedule, load and cost of one route and list what it violates."""
    p = problem
    k = route.vehicle_type
    who = route.vehicle or f"vehicle type {p.vehicle_type_id[k]}"
    orders = route.orders
    viol: list[str] = []
    if len(orders) and (orders.min() < 0 or orders.max() >= p.n_orders):
        return RouteSchedule(
            0, 0, orders * 0, orders * 0, 0, orders * 0, 0, 0, 0, (f"{who}: unknown order index",)
        )
    sd = int(p.a("vehicle_start_depot")[k])
    ed = int(p.a("vehicle_end_depot")[k])
    locs = np.concatenate(
        ([p.depot_location[sd]], p.order_location[orders], [p.depot_location[ed]])
    ).astype(np.int64)
    legs_t = p.duration_s[locs[:-1], locs[1:]]
    legs_d = p.distance_m[locs[:-1], locs[1:]]
    distance = int(legs_d.sum())
    early = p.a("order_tw_early_s")[orders]
    late = p.a("order_tw_late_s")[orders]
    service = p.a("order_service_s")[orders]
    dem = p.order_demand[orders]

    cap = int(p.vehicle_capacity[k]) if capacity is None else capacity
    load0 = int(dem.sum())
    load_after = load0 - np.cumsum(dem)
    if load0 > cap:
        viol.append(f"{who}: load {load0} exceeds capacity {cap}")

    start_lo = max(int(p.a("vehicle_tw_early_s")[k]), int(p.a("depot_tw_early_s")[sd]))
    start_hi = min(int(p.a("vehicle_tw_late_s")[k]), int(p.a("depot_tw_late_s")[sd]))
    if route.start_s is not None:
        if not start_lo <= route.start_s <= start_hi:
            viol.append(f"{who}: leaves at {route.start_s}, outside [{start_lo}, {start_hi}]")
        start_lo = start_hi = int(route.start_s)
    if start_lo > start_hi:
        viol.append(f"{who}: no start time within the shift and the depot's hours")

    # Forward pass from the earliest start: earliest arrival and service start.
    n = len(orders)
    arrival = np.zeros(n, np.int64)
    begin = np.zeros(n, np.int64)
    t = start_lo
    for i in range(n):
        a = t + int(legs_t[i])
        b = max(a, int(early[i]))
        arrival[i], begin[i] = a, b
        if b > late[i]:
            viol.append(
                f"{who}: order {p.order_id[orders[i]]} served at {b}, "
                f"after its window closes at {int(late[i])}"
            )
        t = b + int(service[i])
    end = max(t + int(legs_t[n]), int(p.a("depot_tw_early_s")[ed]))
    end_hi = min(int(p.a("vehicle_tw_late_s")[k]), int(p.a("depot_tw_late_s")[ed]))
    if end > end_hi:
        viol.append(f"{who}: back at {end}, after the shift or depot closes at {end_hi}")

    # Backward pass: the latest start that keeps every window and the same end.
    latest = end
    for i in range(n - 1, -1, -1):
        latest = min(int(late[i]), latest - int(legs_t[i + 1]) - int(service[i]))
    start = max(start_lo, min(start_hi, latest - int(legs_t[0])))
    if route.start_s is None and n:
        # Re-run forward from that start: the arrivals a dispatcher would see.
        t = start
        for i in range(n):
            arrival[i] = t + int(legs_t[i])
            begin[i] = max(arrival[i], int(early[i]))
            t = int(begin[i]) + int(service[i])
    if n == 0:
        start, end = start_lo, start_lo
    duration = end - start
    max_dur = int(p.a("vehicle_max_duration_s")[k])
    if duration > max_dur:
        viol.append(f"{who}: route lasts {duration}, longer than the shift length {max_dur}")
    cost = 0
    if n:
        cost = (
            int(p.a("vehicle_fixed_cost")[k])
            + int(p.a("vehicle_unit_distance_cost")[k]) * distance
            + int(p.a("vehicle_unit_duration_cost")[k]) * duration
        )
    else:
        distance = duration = 0
    return RouteSchedule(
        start_s=int(start),
        end_s=int(end),
        arrival_s=arrival,
        service_start_s=begin,
        load_before=load0,
        load_after=load_after.astype(np.int64),
        distance=distance,
        duration=int(duration),
        cost=int(cost),
        violations=tuple(viol),
    )


@dataclass(frozen=True, eq=False)
class CheckReport:
    """What the independent checker found.

    ``feasible`` is true when every route keeps every constraint, no vehicle
    type is used more often than it exists, and every order is served exactly
    once or dropped. ``required_dropped`` lists required orders that were
    dropped (a plan may still have to be used when the fleet cannot serve
    everyone; the caller decides). ``objective`` is the routing cost plus the
    penalties of every dropped order, in integer cost units.
    """

    feasible: bool
    violations: tuple[str, ...]
    objective: int
    route_cost: int
    penalty: int
    distance: int
    duration: int
    required_dropped: tuple[int, ...]
    schedules: tuple[RouteSchedule, ...]


def check_plan(
    problem: RoutingProblem,
    routes: Iterable[PlannedRoute],
    dropped: Mapping[int, str] | Iterable[int] = (),
    *,
    capacities: Mapping[int, int] | None = None,
) -> CheckReport:
    """Check a plan against ``problem`` without trusting whoever made it.

    Parameters
    ----------
    problem
        The problem the plan claims to solve.
    routes
        The routes, one per vehicle used.
    dropped
        Orders deliberately not served (with reasons, or just their indices).
    capacities
        Per-route capacity overrides by route position (a vehicle already on the
        road carries less than its nominal capacity).
    """
    routes = tuple(routes)
    dropped_idx = sorted(int(i) for i in dropped)
    viol: list[str] = []
    scheds = []
    for j, r in enumerate(routes):
        if not 0 <= r.vehicle_type < len(problem.vehicle_count):
            viol.append(f"route {j}: unknown vehicle type {r.vehicle_type}")
            continue
        cap = None if capacities is None else capacities.get(j)
        s = route_schedule(problem, r, capacity=cap)
        scheds.append(s)
        viol.extend(s.violations)
    used = np.bincount(
        [
            r.vehicle_type
            for r in routes
            if len(r.orders) and 0 <= r.vehicle_type < len(problem.vehicle_count)
        ],
        minlength=len(problem.vehicle_count),
    )
    for k in np.flatnonzero(used > problem.vehicle_count):
        viol.append(
            f"vehicle type {problem.vehicle_type_id[k]}: {int(used[k])} routes, "
            f"only {int(problem.vehicle_count[k])} vehicles"
        )
    seen = np.zeros(problem.n_orders, np.int64)
    for r in routes:
        o = r.orders[(r.orders >= 0) & (r.orders < problem.n_orders)]
        np.add.at(seen, o, 1)
    d = np.array([i for i in dropped_idx if 0 <= i < problem.n_orders], np.int64)
    if len(d) != len(dropped_idx):
        viol.append("dropped: unknown order index")
    np.add.at(seen, d, 1)
    for i in np.flatnonzero(seen > 1)[:5]:
        viol.append(f"order {problem.order_id[i]} is served or dropped {int(seen[i])} times")
    for i in np.flatnonzero(seen == 0)[:5]:
        viol.append(f"order {problem.order_id[i]} is neither served nor dropped")
    req = problem.a("order_required")
    required_dropped = tuple(int(i) for i in d if req[i])
    penalty = int(problem.a("order_penalty")[d].sum()) if len(d) else 0
    route_cost = sum(s.cost for s in scheds)
    return CheckReport(
        feasible=not viol,
        violations=tuple(viol),
        objective=route_cost + penalty,
        route_cost=route_cost,
        penalty=penalty,
        distance=sum(s.distance for s in scheds),
        duration=sum(s.duration for s in scheds),
        required_dropped=required_dropped,
        schedules=tuple(scheds),
    )
