"""DC N-1 screening of every branch: aiguilleur against lightsim2grid's DC contingency analysis.

Same input for both: a PGLib-OPF case at the *scaled dispatch* (stored set-points
scaled to the load), one slack at aiguilleur's reference bus, MATPOWER's DC model
(susceptance 1/(x tap), phase shifts as injections), rating A on |P|.

aiguilleur
    ``screen_n1(net, ContingencyOptions(ac_verify=False))``: LODF columns by blocks
    on one factorisation of the reduced susceptance matrix, timed end to end (base
    DC power flow, model compilation and bridge search included).
lightsim2grid
    ``ContingencyAnalysisCPP`` with ``DC_KLU`` (a DC power flow per outage on the
    modified susceptance matrix, in C++), ``nb_thread = --threads``; timed:
    ``compute()`` plus ``compute_power_flows()`` (MW at the origin of every branch).
    With ``--with-lightsim-lodf``, also ``LSGrid.get_lodf()`` (the dense LODF matrix,
    no screening) for reference.

Both see the same outages: every in-service branch whose loss does not split the
grid. The (outage, overloaded branch) pairs are compared. One aiguilleur run is
then profiled with cProfile (top functions by cumulative time).

Usage::

    .venv/bin/python benchmarks/bench_dc_screen.py --case pglib_opf_case8387_pegase
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TOL_PU = 1e-8


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--cases-dir", type=Path, default=REPO.parent / "shared/data/pglib-opf/cases")
    p.add_argument("--case", default="pglib_opf_case8387_pegase")
    p.add_argument("--rating", default="a", choices=["a", "b", "c"])
    p.add_argument("--repeat", type=int, default=3, help="timed runs per tool (best kept)")
    p.add_argument("--threads", type=int, default=1, help="lightsim2grid nb_thread")
    p.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="OpenBLAS threads for numpy/scipy (default: --threads), set before numpy loads",
    )
    p.add_argument("--skip-lightsim", action="store_true")
    p.add_argument("--with-lightsim-lodf", action="store_true", help="also time LSGrid.get_lodf()")
    p.add_argument("--no-profile", action="store_true")
    p.add_argument("--top", type=int, default=10, help="profile lines printed")
    a = p.parse_args()
    if a.blas_threads is None:
        a.blas_threads = a.threads
    return a


ARGS = _args() if __name__ == "__main__" else None
if ARGS is not None:
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.blas_threads)

import numpy as np  # noqa: E402

sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_contingency import (  # noqa: E402
    _aig_pairs,
    _aligned,
    _compare,
    _lightsim_grid_matpower,
    _rate,
    code_snapshot,
)

from aiguilleur.grid import (  # noqa: E402
    ContingencyOptions,
    Network,
    ac_power_flow,
    dc_power_flow,
    read_matpower,
    scaled_dispatch,
    screen_n1,
)

Pairs = set[tuple[int, int]]


def run_aiguilleur(net: Network, opts: ContingencyOptions, repeat: int) -> tuple[Any, float]:
    best, res = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        r = screen_n1(net, opts)
        dt = time.perf_counter() - t
        if dt < best:
            best, res = dt, r
    return res, best


def run_lightsim(
    net: Network, outages: Any, args: argparse.Namespace, rate: Any
) -> tuple[float, str, Pairs, dict[tuple[int, int], float]]:
    import lightsim2grid
    from lightsim2grid.algorithm import AlgorithmType
    from lightsim2grid.contingencyAnalysis import ContingencyAnalysisCPP

    base_ac = ac_power_flow(net)  # only to read aiguilleur's reference bus
    grid, _, br_map = _lightsim_grid_matpower(_aligned(net, base_ac))
    if AlgorithmType.DC_KLU not in grid.available_default_algorithms():
        raise SystemExit("lightsim2grid was built without KLU")
    v = grid.dc_pf(np.ones(grid.total_bus(), dtype=complex), 30, TOL_PU)
    if v.size == 0:
        raise SystemExit("lightsim2grid: base-case DC power flow failed")
    p_ls = np.empty(net.n_branch)
    p_ls[br_map] = np.concatenate([grid.get_line_res1()[0], grid.get_trafo_res1()[0]])
    dcb = dc_power_flow(net)
    dp = float(np.max(np.abs(p_ls - dcb.p_mw)))
    print(
        f"  lightsim2grid {lightsim2grid.__version__} DC base case vs aiguilleur dc_power_flow: "
        f"max |dP| {dp:.2e} MW"
    )
    ls_of_aig = np.empty(net.n_branch, dtype=np.int64)
    ls_of_aig[br_map] = np.arange(net.n_branch)
    best, detail = np.inf, ""
    pairs: Pairs = set()
    loads: dict[tuple[int, int], float] = {}
    n_bad = 0
    for rep in range(args.repeat):
        ca = ContingencyAnalysisCPP(grid)
        ca.change_algorithm(AlgorithmType.DC_KLU)
        ca.nb_thread = args.threads
        ca.add_multiple_n1([int(x) for x in ls_of_aig[outages]])
        t = time.perf_counter()
        ca.compute(v, 30, TOL_PU)
        t1 = time.perf_counter()
        pf = ca.compute_power_flows()
        t2 = time.perf_counter()
        if t2 - t < best:
            best = t2 - t
            detail = (
                f"DC_KLU, nb_thread={args.threads}; compute {t1 - t:.3f} s + power flows "
                f"{t2 - t1:.3f} s"
            )
        if rep == 0:  # every run gives the same flows: read the first one only
            conv = np.asarray(ca.converged_mask(), dtype=bool)
            n_bad = int((~conv).sum())
            order = [int(d[0]) for d in ca.my_defaults()]
            for row, ls_k in enumerate(order):
                if not conv[row]:
                    continue
                k = int(br_map[ls_k])
                p = np.empty(net.n_branch)
                p[br_map] = pf[row]
                load = np.abs(p) / rate * 100.0
                load[k] = 0.0
                for b in np.flatnonzero(load > 100.0):
                    pairs.add((k, int(b)))
                    loads[(k, int(b))] = float(load[b])
        del pf, ca
    detail += f"; {n_bad} not converged"
    if args.with_lightsim_lodf:
        t = time.perf_counter()
        lodf = grid.get_lodf()
        detail += f"; LSGrid.get_lodf() {time.perf_counter() - t:.3f} s ({lodf.shape})"
        del lodf
    return best, detail, pairs, loads


def main(args: argparse.Namespace) -> None:
    net = scaled_dispatch(read_matpower(args.cases_dir / f"{args.case}.m"))
    print(
        f"case {args.case}: {net.n_bus} buses, {net.n_branch} branches; operating point "
        f"scaled_dispatch; rating {args.rating.upper()} on |P| (DC)"
    )
    print(
        f"threads: lightsim2grid nb_thread={args.threads}; OpenBLAS/OMP threads="
        f"{args.blas_threads}; {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.2f} at start"
    )
    print(f"code: {code_snapshot()}")
    opts = ContingencyOptions(rating=args.rating, ac_verify=False)
    screen_n1(net, opts)  # warm-up (first-call costs), not timed
    res, t_aig = run_aiguilleur(net, opts, args.repeat)
    br = np.flatnonzero(res.kind == "branch")
    isl = br[res.status[br] == "islanding"]
    outages = res.element[br[res.status[br] != "islanding"]].astype(np.int64)
    pairs = _aig_pairs(res)
    setup = res.time_s - sum(res.stages_s.values())
    stages = ", ".join(f"{k} {v:.3f} s" for k, v in res.stages_s.items())
    print(
        f"outages: {outages.size} non-islanding screened, {isl.size} islanding reported apart; "
        f"base overloads (N-0): {res.base_overloaded.size}"
    )
    print(
        f"aiguilleur screen_n1(ac_verify=False): best of {args.repeat} {t_aig:.3f} s "
        f"(this run {res.time_s:.3f} s: {stages}, setup (DCModel.build, bridges) {setup:.3f} s); "
        f"overload {res.count('overload')}, secure {res.count('secure')}"
    )
    rows = [("aiguilleur screen_n1 DC", outages.size, t_aig, len(pairs), "reference", "")]
    if not args.skip_lightsim:
        t_ls, detail, ls_pairs, loads = run_lightsim(net, outages, args, _rate(net, args.rating))
        rows.append(
            (
                "lightsim2grid ContingencyAnalysisCPP DC",
                outages.size,
                t_ls,
                len(ls_pairs),
                _compare("lightsim2grid", ls_pairs, pairs, loads),
                detail,
            )
        )
    print()
    head = (
        f"{'tool':40s} {'outages':>7s} {'time_s':>8s} {'ms/outage':>9s} {'vs aig':>7s} "
        f"{'violations':>10s}  agreement"
    )
    print(head)
    print("-" * len(head))
    for name, n, t, v, agree, _ in rows:
        print(
            f"{name:40s} {n:7d} {t:8.3f} {t / max(n, 1) * 1e3:9.4f} {t / t_aig:6.2f}x "
            f"{v:10d}  {agree}"
        )
    for name, *_, detail in rows:
        if detail:
            print(f"{name}: {detail}")
    print(f"target: under 2 s for aiguilleur; got {t_aig:.3f} s")

    if not args.no_profile:
        prof = cProfile.Profile()
        prof.enable()
        screen_n1(net, opts)
        prof.disable()
        out = io.StringIO()
        st = pstats.Stats(prof, stream=out).strip_dirs().sort_stats("cumulative")
        st.print_stats(args.top + 6)  # the first few are the call itself and its wrappers
        print()
        print(f"cProfile of one screen_n1(ac_verify=False), by cumulative time (top {args.top}):")
        print(out.getvalue())
        out = io.StringIO()
        pstats.Stats(prof, stream=out).strip_dirs().sort_stats("tottime").print_stats(args.top)
        print(f"... and by own time (top {args.top}):")
        print(out.getvalue())
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    assert ARGS is not None
    main(ARGS)
