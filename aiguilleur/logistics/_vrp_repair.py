"""Repairing a plan: drop the stops that break it, then insert open orders cheaply (private).

Used as the re-planning baseline (the current plan, repaired) and to turn an
infeasible search result (more required orders than the fleet can serve)
into a feasible plan that drops some of them with the reason.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from aiguilleur.logistics._vrp_check import route_schedule
from aiguilleur.logistics._vrp_problem import UNBOUNDED, PlannedRoute, RoutingProblem

__all__ = ["repair_plan"]

IntArray = npt.NDArray[np.int64]


def _arrays(
    p: RoutingProblem, k: int, orders: list[int]
) -> tuple[IntArray, IntArray, IntArray, int]:
    """Locations (depot, stops, depot), earliest departures, latest service starts, load."""
    sd, ed = int(p.a("vehicle_start_depot")[k]), int(p.a("vehicle_end_depot")[k])
    o = np.asarray(orders, np.int64)
    locs = np.concatenate(([p.depot_location[sd]], p.order_location[o], [p.depot_location[ed]]))
    locs = locs.astype(np.int64)
    T = p.duration_s
    e, lt, s = p.a("order_tw_early_s")[o], p.a("order_tw_late_s")[o], p.a("order_service_s")[o]
    n = len(o)
    dep = np.zeros(n + 1, np.int64)
    t = max(int(p.a("vehicle_tw_early_s")[k]), int(p.a("depot_tw_early_s")[sd]))
    dep[0] = t
    for i in range(n):
        t = max(t + int(T[locs[i], locs[i + 1]]), int(e[i])) + int(s[i])
        dep[i + 1] = t
    latest = np.zeros(n + 2, np.int64)  # latest service start per position (0 = depot)
    latest[n + 1] = min(int(p.a("vehicle_tw_late_s")[k]), int(p.a("depot_tw_late_s")[ed]))
    for i in range(n, 0, -1):
        step = int(T[locs[i], locs[i + 1]]) + int(s[i - 1])
        latest[i] = min(int(lt[i - 1]), int(latest[i + 1]) - step)
    latest[0] = UNBOUNDED
    return locs, dep, latest, int(p.order_demand[o].sum()) if n else 0


def repair_plan(
    problem: RoutingProblem,
    routes: list[PlannedRoute],
) -> tuple[list[PlannedRoute], list[int]]:
    """Make ``routes`` feasible and insert every order they leave out, cheapest first.

    Stops are removed from a route (the first one served late, else the last)
    until the checker accepts it. Then each open order, highest priority and
    earliest deadline first, goes where it adds the least cost among the
    feasible insertions (opening a spare vehicle when one is left), if that
    is cheaper than its penalty (required orders: always). Returns the routes
    and the orders left out.
    """
    p = problem
    work = [(r.vehicle_type, [int(o) for o in r.orders], r.vehicle) for r in routes]
    out: list[int] = []
    for _k, r, _name in work:
        while r:
            s = route_schedule(p, PlannedRoute(_k, np.asarray(r, np.int64)))
            if not s.violations:
                break
            late = np.flatnonzero(s.service_start_s > p.a("order_tw_late_s")[np.asarray(r)])
            out.append(r.pop(int(late[0]) if len(late) else len(r) - 1))
    assigned = {o for _, r, _ in work for o in r}
    pending = [i for i in range(p.n_orders) if i not in assigned]
    prio, late = p.a("order_priority"), p.a("order_tw_late_s")
    pending.sort(key=lambda i: (-int(prio[i]), int(late[i])))
    spare = p.vehicle_count.copy()
    for k, _r, _n in work:
        spare[k] -= 1
    # One empty route per vehicle type with a spare vehicle; more are opened as they fill.
    for kk in np.flatnonzero(spare > 0):
        work.append((int(kk), [], ""))
        spare[kk] -= 1
    T, D = p.duration_s, p.distance_m
    ud = p.a("vehicle_unit_distance_cost")
    ut = p.a("vehicle_unit_duration_cost")
    fc = p.a("vehicle_fixed_cost")
    cache = [_arrays(p, k, r) for k, r, _ in work]
    req, pen = p.a("order_required"), p.a("order_penalty")
    dropped: list[int] = []
    for u in pending:
        lu, eu, lateu = int(p.order_location[u]), int(p.a("order_tw_early_s")[u]), int(late[u])
        su, qu = int(p.a("order_service_s")[u]), int(p.order_demand[u])
        cands: list[tuple[int, int, int]] = []
        for j, (k, r, _) in enumerate(work):
            locs, dep, latest, load = cache[j]
            if load + qu > p.vehicle_capacity[k]:
                continue
            b = np.maximum(dep + T[locs[:-1], lu], eu)
            ok = (b <= lateu) & (b + su + T[lu, locs[1:]] <= latest[1:])
            if not ok.any():
                continue
            dd = D[locs[:-1], lu] + D[lu, locs[1:]] - D[locs[:-1], locs[1:]]
            dt = T[locs[:-1], lu] + T[lu, locs[1:]] - T[locs[:-1], locs[1:]] + su
            delta = ud[k] * dd + ut[k] * dt + (fc[k] if not r else 0)
            cands.extend((int(delta[q]), j, int(q)) for q in np.flatnonzero(ok))
        cands.sort()
        placed = False
        for delta, j, q in cands[:8]:
            if not req[u] and delta >= pen[u]:
                break
            k, r, name = work[j]
            trial = [*r[:q], u, *r[q:]]
            if route_schedule(p, PlannedRoute(k, np.asarray(trial, np.int64))).violations:
                continue
            was_empty = not r
            work[j] = (k, trial, name)
            cache[j] = _arrays(p, k, trial)
            if was_empty and spare[k] > 0:
                work.append((k, [], ""))
                cache.append(_arrays(p, k, []))
                spare[k] -= 1
            placed = True
            break
        if not placed:
            dropped.append(u)
    kept = [PlannedRoute(k, np.asarray(r, np.int64), name) for k, r, name in work if r or name]
    return kept, dropped
