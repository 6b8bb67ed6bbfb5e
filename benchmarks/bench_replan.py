"""Re-planning mid-execution: how fast a feasible plan comes back, and how good it is.

Two scenarios, each compared with a from-scratch solve of the same residual
problem (the vehicles where they are at that moment, the orders still open)
given a long wall time (``--scratch``, 60 s by default):

1. **Road closure on the bundled road extract** (Monaco and the communes
   around it, OpenStreetMap): 200 stops snapped to the road graph, travel
   matrices by many-to-many Dijkstra, a plan, then at mid-shift every street
   within ``--radius`` metres of a busy point is closed. The matrices are
   updated incrementally (``roads.update_matrices``), then :func:`replan`
   runs with a 2 s deadline (matrix update included) and a 10 s one.
2. **X-n1001-k43 with 10 % of its arcs 5x slower** (CVRPLIB, best-known
   solution as the plan being executed, objective = travel time): at 30 % of
   the longest route, 10 % of the arcs (random, seed) take five times longer;
   :func:`replan` with a 5 s deadline.

Every plan is re-checked by the independent checker; the gap is
``(replan objective - scratch objective) / scratch objective`` on the same
residual problem (negative: the re-plan is better).

Run from the repository root::

    nice -n 10 .venv/bin/python benchmarks/bench_replan.py
    .venv/bin/python benchmarks/bench_replan.py --scratch 10 --only roads
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from aiguilleur.logistics.routing import (
    MatrixChange,
    PlannedRoute,
    RoutingProblem,
    SolveSettings,
    check_plan,
    read_vrplib,
    replan,
    route_schedule,
    solve,
)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / ".." / "shared" / "data"
UNREACHABLE_S = 10_000_000  # a closed-off pair: a huge travel time the search avoids


def _report(label: str, res, scratch_obj: int | None) -> None:  # type: ignore[no-untyped-def]
    rep = check_plan(res.residual, res.solution.routes, res.solution.dropped)
    gap = (
        ""
        if scratch_obj is None
        else f"  gap to scratch {100 * (rep.objective - scratch_obj) / scratch_obj:+.2f} %"
    )
    print(
        f"  {label:<22} {res.time_s:6.2f} s  feasible {rep.feasible!s:5}"
        f"  objective {rep.objective:>12,}"
        f"  (repair {res.repair.objective:>12,})  dropped {len(res.dropped)}{gap}",
        flush=True,
    )


def roads_scenario(args: argparse.Namespace) -> None:
    from aiguilleur.logistics import roads

    rng = np.random.default_rng(args.seed)
    graph = roads.bundled_road_graph()
    nodes = rng.choice(graph.n_nodes, 201, replace=False)
    # The depot: the node nearest the middle of the extract.
    mid_lat, mid_lon = float(np.median(graph.lat)), float(np.median(graph.lon))
    nodes[0] = int(roads.snap(graph, [mid_lat], [mid_lon])[0])
    t0 = time.perf_counter()
    tm = roads.travel_matrices(graph, nodes)
    t_mat = time.perf_counter() - t0
    n = 200
    dur = np.rint(np.nan_to_num(tm.duration_s, posinf=UNREACHABLE_S)).astype(np.int64)
    dist = np.rint(np.nan_to_num(tm.distance_m, posinf=UNREACHABLE_S)).astype(np.int64)
    shift0 = 8 * 3600
    early = shift0 + rng.integers(0, 5 * 3600, n)
    has_window = rng.random(n) < 0.5
    problem = RoutingProblem(
        name="monaco-200",
        duration_s=dur,
        distance_m=dist,
        depot_location=np.array([0]),
        order_location=np.arange(1, n + 1),
        order_demand=rng.integers(1, 10, n),
        order_service_s=np.full(n, 300),
        order_tw_early_s=np.where(has_window, early, 0),
        order_tw_late_s=np.where(has_window, early + 2 * 3600, 10**9),
        vehicle_count=np.array([14]),
        vehicle_capacity=np.array([100]),
        vehicle_tw_early_s=np.array([shift0]),
        vehicle_tw_late_s=np.array([shift0 + 12 * 3600]),
        vehicle_max_duration_s=np.array([10 * 3600]),
        vehicle_fixed_cost=np.array([0]),
        vehicle_unit_distance_cost=np.array([1]),
        vehicle_unit_duration_cost=np.array([1]),
        location_lonlat=np.stack([graph.lon[nodes], graph.lat[nodes]], axis=1),
    )
    print(
        f"roads: {graph.n_nodes} nodes, 200 stops, matrices in {t_mat:.2f} s; "
        f"planning {args.plan:g} s"
    )
    plan = solve(problem, SolveSettings(time_limit_s=args.plan, seed=args.seed))
    assert plan.feasible, plan.violations
    routes = list(plan.routes)
    ends = [route_schedule(problem, r).end_s for r in routes]
    starts = [route_schedule(problem, r).start_s for r in routes]
    at = int(np.median(starts) + 0.4 * (np.median(ends) - np.median(starts)))
    # Close the streets around the busiest stop still ahead of some vehicle.
    counts = np.bincount(
        problem.order_location[np.concatenate([r.orders for r in routes])], minlength=n + 1
    )
    hot = int(nodes[int(np.argmax(counts))])
    closure = roads.RoadClosure.around(
        float(graph.lat[hot]), float(graph.lon[hot]), args.radius, "crisis"
    )
    for deadline in (2.0, 10.0):
        t0 = time.perf_counter()
        tm2 = roads.update_matrices(graph, tm, closure)
        t_upd = time.perf_counter() - t0
        d2 = np.rint(np.nan_to_num(tm2.duration_s, posinf=UNREACHABLE_S)).astype(np.int64)
        m2 = np.rint(np.nan_to_num(tm2.distance_m, posinf=UNREACHABLE_S)).astype(np.int64)
        res = replan(
            problem,
            routes,
            at,
            [MatrixChange(d2, m2, "closure")],
            deadline_s=deadline - t_upd,
            seed=args.seed,
        )
        if deadline == 2.0:
            changed = int((d2 != dur).sum())
            print(
                f"  closure: {len(roads.affected_edges(graph, closure))} edges, "
                f"{changed} matrix entries changed, "
                f"matrix update {t_upd:.3f} s; re-plan at t={at} s"
            )
            scratch = solve(res.residual, SolveSettings(time_limit_s=args.scratch, seed=args.seed))
            scratch_obj = check_plan(res.residual, scratch.routes, scratch.dropped).objective
            print(f"  {'from scratch':<22} {scratch.time_s:6.2f} s  objective {scratch_obj:>12,}")
        print(f"  (re-plan wall incl. matrix update: {t_upd + res.time_s:.2f} s)")
        _report(f"re-plan {deadline:g} s", res, scratch_obj)


def x1001_scenario(args: argparse.Namespace) -> None:
    d = args.data / "cvrplib" / "X"
    problem = read_vrplib(d / "X-n1001-k43.vrp")
    # Objective = travel time, so that slower arcs matter.
    problem = problem.replace(
        vehicle_unit_distance_cost=np.array([0]), vehicle_unit_duration_cost=np.array([1])
    )
    routes = []
    for k, line in enumerate((d / "X-n1001-k43.sol").read_text().splitlines()):
        if line.lower().startswith("route"):
            ids = np.array([int(x) for x in line.split(":", 1)[1].split()]) - 1
            routes.append(PlannedRoute(0, ids, f"v#{k}"))
    rep = check_plan(problem, routes)
    assert rep.feasible
    at = int(0.3 * max(route_schedule(problem, r).end_s for r in routes))
    rng = np.random.default_rng(args.seed)
    dur = problem.duration_s.copy()
    slow = rng.random(dur.shape) < 0.10
    np.fill_diagonal(slow, False)
    dur[slow] *= 5
    print(
        f"X-n1001-k43: best-known plan ({len(routes)} routes, cost {rep.objective}), "
        f"10 % of arcs x5 at t={at}"
    )
    res = replan(
        problem,
        routes,
        at,
        [MatrixChange(dur, problem.distance_m, "slowdown x5")],
        deadline_s=5.0,
        seed=args.seed,
    )
    scratch = solve(res.residual, SolveSettings(time_limit_s=args.scratch, seed=args.seed))
    scratch_obj = check_plan(res.residual, scratch.routes, scratch.dropped).objective
    print(f"  {'from scratch':<22} {scratch.time_s:6.2f} s  objective {scratch_obj:>12,}")
    _report("re-plan 5 s", res, scratch_obj)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=SHARED, help="the shared data folder")
    ap.add_argument(
        "--scratch", type=float, default=60.0, help="wall seconds of the from-scratch solve"
    )
    ap.add_argument(
        "--plan", type=float, default=10.0, help="wall seconds to make the initial plan (roads)"
    )
    ap.add_argument("--radius", type=float, default=250.0, help="closure radius in metres (roads)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", choices=["roads", "x1001"])
    args = ap.parse_args(argv)
    print(f"# {os.cpu_count()} cores, load average {os.getloadavg()}")
    if args.only in (None, "roads"):
        roads_scenario(args)
    if args.only in (None, "x1001"):
        if not (args.data / "cvrplib" / "X" / "X-n1001-k43.vrp").exists():
            print("X-n1001-k43 not found under --data; skipped", file=sys.stderr)
        else:
            x1001_scenario(args)
    print(f"# load average at end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
