"""Day-ahead security assessment: 1 and 2 workers (local pool, Ray) and a lightsim2grid loop.

What is timed
-------------
assessment
    ``assess_day_ahead`` end to end (forecast, one commitment per scenario, then for
    every hour of every scenario the AC power flow and the full AC-verified N-1
    screen), on ``--workers`` local worker processes and, with ``--ray``, on a local
    Ray runtime with the same number of CPUs. ``--full`` adds the preventive SCED
    and the Monte Carlo EENS to every hour (the default run is the issue's target:
    forecast, plan, AC N-1). The stages overlap: the forecast's two halves run as
    two tasks, the commitments as one task per scenario, and a scenario's points
    start as soon as its plan is in. Printed per run: the head (forecast, then the
    moment the last commitment came in), when the first point started and how long
    the points ran beside the commitments, the points' span, and the time the
    workers were idle (workers x wall - time inside the tasks).
anchor
    The same N-1 work written as a loop over lightsim2grid's
    ``ContingencyAnalysisCPP`` (NR with KLU, one thread): for each (hour, scenario)
    operating point of the assessment, build the grid from its matrices, solve the
    base case and every in-service branch outage. Compared with the sum of
    aiguilleur's per-point N-1 times measured inside its workers (same points), and
    the violation sets (branch above rate A after an outage, MVA at either end) are
    compared point by point. Single slack in both (``distributed_slack=False``).
per-task overhead
    A task that does nothing, ``--overhead-tasks`` times, through each executor:
    (wall time - time inside the tasks) / tasks.

Usage::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_dayahead.py --workers 1 2 --ray

Timing figures on a shared machine are noisy: the load average is printed with every
figure; run the 1- and 2-worker assessments back to back on a quiet machine.
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402


def nothing(shared: Any, item: int) -> int:
    return item


def _load() -> str:
    a, b, c = os.getloadavg()
    return f"load average {a:.2f} {b:.2f} {c:.2f}"


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--case", default="case1888", help="bundled case name or a MATPOWER file")
    p.add_argument("--history", default=None, help="load CSV (default: the bundled sample)")
    p.add_argument("--day", default="2014-02-20")
    p.add_argument("--scenarios", type=int, default=3)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--ray", action="store_true", help="also run on a local Ray runtime")
    p.add_argument("--full", action="store_true", help="preventive SCED and EENS too")
    p.add_argument("--skip-anchor", action="store_true")
    p.add_argument("--anchor-points", type=int, default=0, help="0: every (hour, scenario)")
    p.add_argument("--overhead-tasks", type=int, default=200)
    return p.parse_args()


def _options(args: argparse.Namespace) -> Any:
    from aiguilleur.ops.dayahead import DayAheadOptions

    return DayAheadOptions(
        scenarios=args.scenarios,
        distributed_slack=False,
        preventive=args.full,
        samples=64 if args.full else 0,
    )


def run_assessment(args: argparse.Namespace, ex: Any) -> Any:
    from aiguilleur.cli._common import _load_case
    from aiguilleur.forecast import read_series, sample_series
    from aiguilleur.ops.dayahead import assess_day_ahead

    net = _load_case(args.case)
    hist = (
        sample_series(impute=True)
        if args.history is None
        else read_series(args.history, "load", "T", impute=True)
    )
    before = _load()
    t = time.perf_counter()
    res = assess_day_ahead(net, hist, args.day, _options(args), executor=ex)
    wall = time.perf_counter() - t
    st = res.stage_s
    head = st["forecast"] + st["commitment"]
    n1 = sum(o.screen_s for o in res.outcomes)
    busy = sum(v.busy_s for v in res.stages.values())
    idle = ex.workers * wall - busy
    print(
        f"  {ex.kind} x{ex.workers}: {wall:.1f} s; head (forecast + commitments) "
        f"{head:.1f} s (forecast {st['forecast']:.1f} s on {res.stages['forecast'].tasks} "
        f"tasks, last commitment in at {head:.1f} s); first point submitted at "
        f"{st.get('first_point_at', math.nan):.1f} s (overlap with the commitments "
        f"{st.get('overlap', 0.0):.1f} s); points {st['hours']:.1f} s; {res.tasks} tasks, "
        f"up to {res.stages['hours'].batch_size} point(s) per task, retries "
        f"{sum(s.retries for s in res.stages.values())}; time inside the tasks {busy:.1f} s, "
        f"workers idle {idle:.1f} s of {ex.workers} x {wall:.1f} s; N-1 inside the workers "
        f"{n1:.1f} s over {len(res.outcomes)} points; status {res.status}; "
        f"{before} -> {_load()}",
        flush=True,
    )
    return res, wall


def overhead(ex: Any, n: int) -> float:
    ex.run(nothing, list(range(4)), None)  # warm: workers started
    r = ex.run(nothing, list(range(n)), {"payload": np.zeros(10)})
    return (r.stats.wall_s - r.stats.busy_s) / max(r.stats.tasks, 1)


def anchor(res: Any, points: int) -> None:
    """lightsim2grid's contingency analysis on the assessment's operating points."""
    from bench_contingency import _aligned, _lightsim_grid_matpower, _mva
    from lightsim2grid.algorithm import AlgorithmType
    from lightsim2grid.contingencyAnalysis import ContingencyAnalysisCPP

    from aiguilleur.grid import ac_power_flow

    pts = [(o.hour, o.scenario) for o in res.outcomes if o.status == "ok"]
    if points:
        pts = pts[:: max(1, len(pts) // points)][:points]
    total, ours, mism = 0.0, 0.0, 0
    for h, s in pts:
        net = res.operating_point(h, s)
        o = res.outcome(h, s)
        base = ac_power_flow(net)
        net_al = _aligned(net, base)
        rate = np.where(net.branch.rate_a_mva > 0, net.branch.rate_a_mva, np.inf)
        every = np.flatnonzero(net.branch.in_service == 1)
        t = time.perf_counter()
        grid, _bus_map, br_map = _lightsim_grid_matpower(net_al)
        grid.change_algorithm(AlgorithmType.NR_KLU)
        vdc = grid.dc_pf(np.ones(grid.total_bus(), dtype=complex), 30, 1e-8)
        v = grid.ac_pf(vdc, 30, 1e-8)
        ls_of_aig = np.empty(net.n_branch, dtype=np.int64)
        ls_of_aig[br_map] = np.arange(net.n_branch)
        ca = ContingencyAnalysisCPP(grid)
        ca.change_algorithm(AlgorithmType.NR_KLU)
        ca.nb_thread = 1
        ca.init_from_n_powerflow = True
        ca.add_multiple_n1([int(x) for x in ls_of_aig[every]])
        ca.compute(v, 30, 1e-8)
        br = ca.compute_branch_results()
        total += time.perf_counter() - t
        ours += o.screen_s
        # violation sets: new overloads after each outage, as the assessment counts them
        conv = np.asarray(ca.converged_mask(), dtype=bool)
        order = [int(d[0]) for d in ca.my_defaults()]
        s0 = np.maximum(base.s_from_mva, base.s_to_mva) / rate * 100.0
        theirs: set[tuple[int, int]] = set()
        for row, ls_k in enumerate(order):
            if not conv[row]:
                continue
            k = int(br_map[ls_k])
            sv = np.empty(net.n_branch)
            sv[br_map] = _mva(br[row, :, 0], br[row, :, 1], br[row, :, 2], br[row, :, 3])
            sv[k] = 0.0
            load = sv / rate * 100.0
            theirs |= {(k, int(b)) for b in np.flatnonzero((load > 100.0) & ~(s0 > 100.0))}
        mine = set(zip(o.pair_cont.tolist(), o.pair_branch.tolist(), strict=True))
        if mine != theirs:
            mism += 1
            print(f"    point ({h}, {s}): {len(mine ^ theirs)} pairs differ")
    print(
        f"  anchor lightsim2grid loop over {len(pts)} points: {total:.1f} s; aiguilleur's "
        f"N-1 on the same points {ours:.1f} s (ratio {total / max(ours, 1e-9):.2f}x); "
        f"violation sets identical on {len(pts) - mism} of {len(pts)} points; {_load()}",
        flush=True,
    )


def sizes(res: Any) -> None:
    from aiguilleur.ops._dayahead_work import HourItem

    c = res.commitment[0]
    item = HourItem(0, 0, 1.0, c.pg_mw[0], c.committed[0], c.renewable_mw[0])
    out = res.outcomes[0]
    print(
        f"  data sizes (pickled): network {len(pickle.dumps(res.net)) / 1e6:.2f} MB, one "
        f"(hour, scenario) item {len(pickle.dumps(item)) / 1e3:.1f} kB, one outcome "
        f"{len(pickle.dumps(out)) / 1e3:.1f} kB"
    )


def main() -> None:
    args = _args()
    from aiguilleur.ops.cluster import LocalExecutor, RayExecutor

    print(f"case {args.case}, day {args.day}, {args.scenarios} scenarios; {_load()}")
    walls: dict[str, float] = {}
    ref = None
    for w in args.workers:
        with LocalExecutor(w) as ex:
            oh = overhead(ex, args.overhead_tasks) * 1e3
            print(f"  per-task overhead, local pool x{w}: {oh:.2f} ms")
            res, wall = run_assessment(args, ex)
            walls[f"local x{w}"] = wall
            ref = res if ref is None else ref
    if args.ray:
        for w in args.workers:
            with RayExecutor("auto", w) as ex:
                oh = overhead(ex, args.overhead_tasks) * 1e3
                print(f"  per-task overhead, Ray x{w}: {oh:.2f} ms")
                _, wall = run_assessment(args, ex)
                walls[f"ray x{w}"] = wall
    for kind in ("local", "ray"):
        if f"{kind} x1" in walls and f"{kind} x2" in walls:
            ratio = walls[f"{kind} x1"] / walls[f"{kind} x2"]
            print(f"  speed-up {kind} 1 -> 2 workers: {ratio:.2f}x")
    assert ref is not None
    sizes(ref)
    if not args.skip_anchor:
        anchor(ref, args.anchor_points)


if __name__ == "__main__":
    main()
