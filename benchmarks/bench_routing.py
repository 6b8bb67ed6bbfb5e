"""Routing quality at equal wall time: aiguilleur, plain PyVRP and OR-Tools, side by side.

For every instance (CVRPLIB X dev set and/or the 56 Solomon instances) the
three solvers run one after the other on the same instance with the same wall
time (interleaved, so a change of machine load hits all three alike):

* ``aiguilleur``: :func:`aiguilleur.logistics.routing.solve` (PyVRP's ILS in
  one process per core, diversified, with an exchange of the best solution);
* ``pyvrp``: ``pyvrp.solve(data, MaxRuntime(T), seed)``, one core, defaults;
* ``ortools`` (``--ortools``): OR-Tools routing, path-cheapest-arc start and
  guided local search, time limit T.

Every solution is re-checked by aiguilleur's independent checker (capacity,
windows, coverage, cost from the raw matrices) and its cost is compared to the
best-known value: CVRPLIB X with rounded Euclidean distances (``bks.csv``);
Solomon with the "trunc1" convention (every edge truncated to one decimal,
distance only, ``trunc1_distance`` in ``bks.csv``), which is the convention
our integer model solves exactly (x10).

Run from the repository root::

    nice -n 10 .venv/bin/python benchmarks/bench_routing.py --set x --time-limit 10 --ortools
    nice -n 10 .venv/bin/python benchmarks/bench_routing.py --set solomon --time-limit 10
    .venv/bin/python benchmarks/bench_routing.py --set x --instances X-n101-k25 --time-limit 5
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from aiguilleur.logistics.routing import (
    PlannedRoute,
    RoutingProblem,
    SolveSettings,
    check_plan,
    read_vrplib,
    solve,
)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / ".." / "shared" / "data"


def run_pyvrp(problem: RoutingProblem, t: float, seed: int) -> tuple[list[PlannedRoute], float]:
    import pyvrp
    from pyvrp.stop import MaxRuntime

    logging.getLogger("pyvrp").setLevel(logging.WARNING)
    t0 = time.perf_counter()
    data = problem.to_pyvrp()
    res = pyvrp.solve(data, MaxRuntime(t), seed=seed, collect_stats=False)
    wall = time.perf_counter() - t0
    tmap = problem.pyvrp_type_index()
    routes = [
        PlannedRoute(
            int(tmap[r.vehicle_type()]), np.array([a.idx for a in r if a.is_client()], np.int64)
        )
        for r in res.best.routes()
    ]
    return routes, wall


def run_ortools(problem: RoutingProblem, t: float, seed: int) -> tuple[list[PlannedRoute], float]:
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    t0 = time.perf_counter()
    p = problem
    assert p.n_depots == 1 and len(p.vehicle_count) == 1
    # Node 0 = depot, node i + 1 = order i.
    locs = np.concatenate(([p.depot_location[0]], p.order_location))
    dist = p.distance_m[np.ix_(locs, locs)]
    dur = p.duration_s[np.ix_(locs, locs)]
    n = len(locs)
    k = int(p.vehicle_count[0])
    if p.meta.get("format") == "vrplib":  # unlimited fleet: the name's k plus slack
        m = re.search(r"-k(\d+)", p.name)
        k = min(k, int(int(m.group(1)) * 1.15) + 3) if m else k
    manager = pywrapcp.RoutingIndexManager(n, k, 0)
    routing = pywrapcp.RoutingModel(manager)
    arc = routing.RegisterTransitMatrix(dist.astype(int).tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(arc)
    demand = [0, *(int(q) for q in p.order_demand)]
    dem = routing.RegisterUnaryTransitVector(demand)
    routing.AddDimensionWithVehicleCapacity(dem, 0, [int(p.vehicle_capacity[0])] * k, True, "load")
    if p.a("order_tw_late_s").max() < 10**15:
        svc = np.concatenate(([0], p.a("order_service_s")))
        tmat = (dur + svc[:, None]).astype(int).tolist()
        tcb = routing.RegisterTransitMatrix(tmat)
        horizon = int(p.a("depot_tw_late_s")[0])
        routing.AddDimension(tcb, horizon, horizon, False, "time")
        td = routing.GetDimensionOrDie("time")
        e = np.concatenate(([p.a("depot_tw_early_s")[0]], p.a("order_tw_early_s")))
        lt = np.concatenate(([horizon], p.a("order_tw_late_s")))
        for i in range(1, n):
            td.CumulVar(manager.NodeToIndex(i)).SetRange(int(e[i]), int(lt[i]))
        for v in range(k):
            td.CumulVar(routing.Start(v)).SetRange(int(e[0]), horizon)
            td.CumulVar(routing.End(v)).SetRange(int(e[0]), horizon)
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    remaining = max(t - (time.perf_counter() - t0), 0.5)
    params.time_limit.FromMilliseconds(int(remaining * 1000))
    sol = routing.SolveWithParameters(params)
    wall = time.perf_counter() - t0
    routes: list[PlannedRoute] = []
    if sol is None:
        return routes, wall
    for v in range(k):
        idx = routing.Start(v)
        seq = []
        idx = sol.Value(routing.NextVar(idx))
        while not routing.IsEnd(idx):
            seq.append(manager.IndexToNode(idx) - 1)
            idx = sol.Value(routing.NextVar(idx))
        if seq:
            routes.append(PlannedRoute(0, np.array(seq, np.int64)))
    return routes, wall


def gap(cost: float, bks: float) -> float:
    return 100.0 * (cost - bks) / bks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--set", choices=["x", "solomon", "both"], default="x")
    ap.add_argument("--data", type=Path, default=SHARED, help="the shared data folder")
    ap.add_argument("--instances", nargs="*", help="instance names (default: all of the set)")
    ap.add_argument(
        "--time-limit", type=float, default=10.0, help="wall seconds per solver and instance"
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ortools", action="store_true", help="also run OR-Tools")
    ap.add_argument("--no-pyvrp", action="store_true", help="skip plain PyVRP")
    ap.add_argument("--csv", type=Path, help="write the rows to this CSV file too")
    args = ap.parse_args(argv)

    jobs: list[tuple[str, Path, float]] = []
    if args.set in ("x", "both"):
        d = args.data / "cvrplib"
        bks = {r["instance"]: float(r["bks"]) for r in csv.DictReader((d / "bks.csv").open())}
        for f in sorted(
            (d / "X").glob("*.vrp"), key=lambda f: int(re.findall(r"n(\d+)", f.stem)[0])
        ):
            jobs.append((f.stem, f, bks[f.stem]))
    if args.set in ("solomon", "both"):
        d = args.data / "solomon"
        bks = {
            r["instance"]: float(r["trunc1_distance"])
            for r in csv.DictReader((d / "bks.csv").open())
        }
        for f in sorted((d / "instances").glob("*.txt")):
            jobs.append((f.stem, f, bks[f.stem]))
    if args.instances:
        jobs = [j for j in jobs if j[0] in set(args.instances)]
    if not jobs:
        print("no instances found (check --data / --instances)", file=sys.stderr)
        return 2
    solvers = (
        ["aiguilleur"]
        + ([] if args.no_pyvrp else ["pyvrp"])
        + (["ortools"] if args.ortools else [])
    )
    print(
        f"# {len(jobs)} instances, {args.time_limit:g} s wall per solver, seed {args.seed}, "
        f"{os.cpu_count()} cores, load average at start {os.getloadavg()}"
    )
    head = (
        f"{'instance':<14}{'bks':>10}"
        + "".join(f"{s + ' gap%':>16}{'t':>6}" for s in solvers)
        + "  ok"
    )
    print(head)
    gaps: dict[str, list[float]] = {s: [] for s in solvers}
    rows: list[dict[str, Any]] = []
    for name, f, best in jobs:
        problem = read_vrplib(f)
        line = f"{name:<14}{best:>10.1f}"
        ok = True
        row: dict[str, Any] = {"instance": name, "bks": best}
        for s in solvers:
            t0 = time.perf_counter()
            if s == "aiguilleur":
                sol = solve(problem, SolveSettings(time_limit_s=args.time_limit, seed=args.seed))
                routes, wall = list(sol.routes), time.perf_counter() - t0
            elif s == "pyvrp":
                routes, wall = run_pyvrp(problem, args.time_limit, args.seed)
            else:
                routes, wall = run_ortools(problem, args.time_limit, args.seed)
            served = {int(o) for r in routes for o in r.orders}
            missing = [i for i in range(problem.n_orders) if i not in served]
            rep = check_plan(problem, routes, missing)
            cost = rep.objective * problem.cost_unit
            feasible = rep.feasible and not missing
            ok &= feasible
            g = gap(cost, best) if feasible else math.nan
            gaps[s].append(g)
            line += (
                f"{g:>15.2f}{'' if feasible else '!'}{wall:>6.1f}"
                if feasible
                else f"{'infeasible':>16}{wall:>6.1f}"
            )
            row[f"{s}_cost"] = round(cost, 3)
            row[f"{s}_gap_pct"] = round(g, 3)
            row[f"{s}_time_s"] = round(wall, 2)
            row[f"{s}_feasible"] = feasible
        print(line + ("  yes" if ok else "  NO"), flush=True)
        rows.append(row)
    means = "".join(f"{np.nanmean(gaps[s]):>15.2f} {'':>6}" for s in solvers)
    print(f"{'mean':<14}{'':>10}{means}")
    print(f"# load average at end {os.getloadavg()}")
    if args.csv:
        with args.csv.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
