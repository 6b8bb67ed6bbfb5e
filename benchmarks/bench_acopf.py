"""AC optimal power flow: aiguilleur on the shared PGLib cases, against the references.

For each case: read the MATPOWER file (not timed), then time ``ac_opf`` from
its default (flat) start: model build plus IPOPT solve, as ``time_s``
reports it. Printed beside it: the objective gap to PGLib-OPF's published AC
objective and PGLib's published PowerModels + IPOPT (HSL ma27) time
(``reference.csv``: ``ac_objective``, ``ac_time_s``).

With ``--pandapower`` the anchor runs too, in a child process with a time
limit per case: pandapower's ``runopp`` (PYPOWER's interior point) on a net
built by :func:`aiguilleur.grid.pandapower_io.to_pandapower` from the same
case, set up to solve the same problem as far as pandapower can express it:

* apparent-power (MVA) branch limits on ``rate_a`` (``OPF_FLOW_LIM=0``; its
  default, 2, limits currents), ``max_loading_percent = 100`` with
  ``max_i_ka``/``sn_mva`` derived from ``rate_a``;
* a free slack voltage (``ext_grid.controllable = True``; by default it is
  held at its set-point);
* not expressible: the angle-difference limits (pandapower drops them; on
  these cases they rarely bind, the objective gap shows where they do).

pandapower 3.5.6 cannot run MVA limits with SciPy >= 1.14 as shipped (its
PYPOWER Hessian calls the removed sparse ``.H``): the child process restores
``.H`` first. numba is not installed (pandapower's OPF does not use it).

Timed for pandapower: the ``runopp`` call (its own conversion to PYPOWER's
format included, the net build excluded). With ``--repeat N`` both tools
solve each case N times (pandapower from a flat start every time) and the
best time of each is compared: on a shared 2-core machine single runs of
0.05-1 s move by up to a factor of 2.

``--outage`` re-solves one case (default case1888_rte) after a single branch
outage, cold (flat start) and warm (from the pre-outage optimum, primal and
dual), and prints both times and the ratio, for the ``--outages`` most loaded
non-bridge branches at the optimum whose outage leaves a feasible problem.

Run from the repository root::

    .venv/bin/python benchmarks/bench_acopf.py
    .venv/bin/python benchmarks/bench_acopf.py --max-buses 10000      # case8387_pegase too
    .venv/bin/python benchmarks/bench_acopf.py --cases case118_ieee case1354_pegase
    .venv/bin/python benchmarks/bench_acopf.py --pandapower --pp-max-buses 3000 --pp-time-limit 300
    .venv/bin/python benchmarks/bench_acopf.py --max-buses 300 --pandapower --repeat 5
    .venv/bin/python benchmarks/bench_acopf.py --cases case1888_rte --outage case1888_rte
"""

from __future__ import annotations

import argparse
import csv
import math
import multiprocessing as mp
import os
import platform
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from aiguilleur.grid.acopf import ACOPFOptions, ACOPFResult, ac_opf
from aiguilleur.grid.matpower import read_matpower
from aiguilleur.grid.network import Network
from aiguilleur.grid.sensitivity import bridges

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / ".." / "shared" / "data" / "pglib-opf"


def buses_of(path: Path) -> int:
    m = re.search(r"case(\d+)", path.stem)
    return int(m.group(1)) if m else 0


def case_files(cases_dir: Path, names: list[str] | None, max_buses: int) -> list[Path]:
    """The requested cases (every case of ``cases_dir`` up to ``max_buses``), smallest first."""
    from bench_dcopf import case_files as all_cases  # same folder: the DC-OPF benchmark's rule

    files = all_cases(cases_dir, names)
    if names:
        return files
    files = [p for p in files if buses_of(p) <= max_buses]
    if not files:
        sys.exit(f"no case in {cases_dir} up to {max_buses} buses; pass --cases-dir or --cases")
    return files


def references(path: Path) -> dict[str, tuple[float, str]]:
    """``case -> (ac_objective, ac_time_s)`` of PGLib-OPF's table (typical set)."""
    if not path.is_file():
        return {}
    with path.open(newline="") as fh:
        return {
            r["case"]: (float(r["ac_objective"]), r["ac_time_s"].strip())
            for r in csv.DictReader(fh)
            if r["set"] == "typ"
        }


# -- pandapower, in a child process with a time limit ------------------------------------


def _pp_worker(path: str, repeat: int, queue: Any) -> None:
    import logging

    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    import pandapower as pp
    import scipy.sparse as sp

    from aiguilleur.grid.pandapower_io import to_pandapower

    # pandapower 3.5.6's PYPOWER Hessian of MVA flow limits (OPF_FLOW_LIM=0) calls the
    # sparse ``.H`` (conjugate transpose) that SciPy 1.14 removed; put it back.
    for cls in (sp.csr_matrix, sp.csc_matrix, sp.coo_matrix, sp.lil_matrix, sp.dia_matrix):
        if not hasattr(cls, "H"):
            cls.H = property(lambda self: self.conj().T)  # type: ignore[attr-defined]

    net = read_matpower(path)
    pp_net = to_pandapower(net)
    pp_net.ext_grid["controllable"] = True  # free slack voltage, within the bus limits
    best = (math.inf, math.inf)
    status, cost = "not run", float("nan")
    for _ in range(repeat):  # each run from a flat start on the same net: best time kept
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            pp.runopp(pp_net, OPF_FLOW_LIM=0, calculate_voltage_angles=True, init="flat")
            ok = bool(pp_net.get("OPF_converged", False))
            cost = float(pp_net.res_cost) if ok else float("nan")
            status = "optimal" if ok else "not converged"
        except Exception as e:  # pandapower raises OPFNotConverged and the like
            status, cost = f"failed ({type(e).__name__})", float("nan")
        best = min(best, (time.perf_counter() - t0, time.process_time() - c0))
        if status != "optimal":
            break
    queue.put((status, cost, best[0], best[1]))


def run_pandapower(
    path: Path, time_limit_s: float, repeat: int = 1
) -> tuple[str, float, float, float]:
    """Status, objective, best wall and CPU seconds of ``runopp`` over ``repeat`` runs.

    NaN CPU when killed; the time limit covers all the runs.
    """
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_pp_worker, args=(str(path), repeat, queue))
    t0 = time.perf_counter()
    proc.start()
    proc.join(time_limit_s)
    if proc.is_alive():
        proc.terminate()
        proc.join()
        return f"timeout > {time_limit_s:g} s", math.nan, time.perf_counter() - t0, math.nan
    if proc.exitcode != 0 or queue.empty():
        return f"crashed (exit {proc.exitcode})", math.nan, time.perf_counter() - t0, math.nan
    status, cost, t, cpu = queue.get()
    return str(status), float(cost), float(t), float(cpu)


# -- the alternative binding: a casadi SX graph ------------------------------------------


def _dm(mat: Any) -> Any:
    import casadi as ca

    m = mat.tocsc()
    m.sort_indices()
    sp_ = ca.Sparsity(m.shape[0], m.shape[1], m.indptr.tolist(), m.indices.tolist())
    return ca.DM(sp_, m.data)


def run_casadi_sx(net: Network) -> tuple[str, float, float, float, int]:
    """The same model as a casadi SX graph of vectorised expressions, casadi's AD derivatives.

    Returns status, objective, build seconds (graph + ``nlpsol``, which generates
    the derivatives), solve seconds and iterations, with the same IPOPT options.
    """
    import casadi as ca
    import scipy.sparse as sp

    from aiguilleur.grid._acopf_model import compile_model
    from aiguilleur.grid.acopf import _costs, _flat

    t0 = time.perf_counter()
    gens = np.flatnonzero(net.gen.in_service == 1).astype(np.int64)
    m = compile_model(net, *_costs(net, gens))
    nb, ng, nbr = m.n_bus, m.n_gen, m.f.size
    x = ca.SX.sym("x", m.n_x)
    va, vm = x[:nb], x[nb : 2 * nb]
    pg, qg = x[2 * nb : 2 * nb + ng], x[2 * nb + ng :]
    f, t = m.f.tolist(), m.t.tolist()
    vf, vt = vm[f], vm[t]
    d = va[f] - va[t]
    c, s = ca.cos(d), ca.sin(d)
    w = vf * vt
    q = []
    for k in range(4):
        ve = vf if k < 2 else vt
        al, be, a = (ca.DM(arr[k]) for arr in (m.coef_alpha, m.coef_beta, m.coef_a))
        q.append(a * ve * ve + w * (al * c + be * s))
    rows = np.arange(nbr)

    def inc(ends: Any) -> Any:
        return _dm(sp.csr_matrix((np.ones(nbr), (ends, rows)), shape=(nb, nbr)))

    cf, ct = inc(m.f), inc(m.t)
    cg = _dm(sp.csr_matrix((np.ones(ng), (m.gen_bus, np.arange(ng))), shape=(nb, ng)))
    vm2 = vm * vm
    p_bal = ca.mtimes(cf, q[0]) + ca.mtimes(ct, q[2]) + ca.DM(m.gs) * vm2 - ca.mtimes(cg, pg)
    q_bal = ca.mtimes(cf, q[1]) + ca.mtimes(ct, q[3]) - ca.DM(m.bs) * vm2 - ca.mtimes(cg, qg)
    p_bal += ca.DM(m.pd)
    q_bal += ca.DM(m.qd)
    lim = m.lim.tolist()
    bal = m.bal_bus.tolist()
    g = ca.vertcat(
        p_bal[bal],
        q_bal[bal],
        q[0][lim] ** 2 + q[1][lim] ** 2,
        q[2][lim] ** 2 + q[3][lim] ** 2,
        d[m.ang.tolist()],
    )
    obj = ca.sum1((ca.DM(m.c2) * pg + ca.DM(m.c1)) * pg) + float(np.sum(m.c0))
    ipopt = {"print_level": 0, "sb": "yes", "linear_solver": "mumps", "mumps_pivot_order": 0}
    solver = ca.nlpsol(
        "sx", "ipopt", {"x": x, "f": obj, "g": g}, {"print_time": False, "ipopt": ipopt}
    )
    t1 = time.perf_counter()
    sol = solver(x0=_flat(m), lbx=m.lbx, ubx=m.ubx, lbg=m.lbg, ubg=m.ubg)
    t2 = time.perf_counter()
    st = solver.stats()
    return str(st["return_status"]), float(sol["f"]), t1 - t0, t2 - t1, int(st["iter_count"])


def run_via_casadi(net: Network, opts: ACOPFOptions, start: str, repeat: int) -> tuple[float, int]:
    """Best total time and iterations of ``ac_opf`` with IPOPT reached through casadi's
    ``nlpsol`` (the fallback binding) instead of its C interface."""
    from aiguilleur.grid import _ipopt

    saved = list(_ipopt._LIB)
    _ipopt._LIB[:] = [None]  # as if the C interface could not be loaded
    try:
        runs = [ac_opf(net, opts, start=start) for _ in range(repeat)]  # type: ignore[arg-type]
    finally:
        _ipopt._LIB[:] = saved
    best = min(runs, key=lambda r: r.time_s)
    return best.time_s, best.iterations


# -- warm re-solve after an outage --------------------------------------------------------


def outage_resolve(net: Network, opts: ACOPFOptions, count: int) -> None:
    """Cold and warm re-solves after the ``count`` most loaded feasible single outages."""
    base = ac_opf(net, opts)
    if base.status != "optimal":
        print(f"\n{net.name}: the base case is {base.status}; outage test skipped")
        return
    sf = np.hypot(base.pf_mw, base.qf_mvar)
    st = np.hypot(base.pt_mw, base.qt_mvar)
    with np.errstate(divide="ignore", invalid="ignore"):
        load = np.where(np.isfinite(base.rating_mva), np.maximum(sf, st) / base.rating_mva, 0.0)
    skip = set(bridges(net).tolist())
    print(
        f"\n{net.name}: single branch outages (most loaded non-bridge branches first), "
        f"base case {base.time_s:.2f} s / {base.iterations} it"
    )
    print(
        f"{'branch':>8}{'buses':>13}{'loading %':>10}{'cold it':>8}{'cold s':>8}"
        f"{'warm it':>8}{'warm s':>8}{'speed-up':>9}{'|obj diff| $/h':>16}"
    )
    ratios: list[float] = []
    tried = 0
    b = net.branch
    for k in np.argsort(-load):
        if len(ratios) >= count or tried >= 4 * count:
            break
        if int(k) in skip or b.in_service[k] != 1:
            continue
        tried += 1
        out = net.with_branch_status([int(k)], 0)
        cold = ac_opf(out, opts)
        ends = f"{int(b.from_bus_id[k])}-{int(b.to_bus_id[k])}"
        if cold.status != "optimal":
            print(f"{k + 1:>8}{ends:>13}{100 * load[k]:>10.1f}  cold: {cold.status}, skipped")
            continue
        warm = ac_opf(out, opts, start=base)
        diff = abs(warm.objective - cold.objective)
        ratio = cold.time_s / warm.time_s
        if warm.status == "optimal":
            ratios.append(ratio)
        print(
            f"{k + 1:>8}{ends:>13}{100 * load[k]:>10.1f}{cold.iterations:>8}{cold.time_s:>8.2f}"
            f"{warm.iterations:>8}{warm.time_s:>8.2f}{ratio:>8.1f}x{diff:>16.1e}"
            + ("" if warm.status == "optimal" else f"  warm: {warm.status}")
        )
    if ratios:
        print(
            f"warm start speed-up over {len(ratios)} outages: min {min(ratios):.1f}x, "
            f"median {float(np.median(ratios)):.1f}x"
        )


def _positive_int(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text}")
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="*", help="case names (default: every shared case)")
    ap.add_argument("--cases-dir", type=Path, default=SHARED / "cases")
    ap.add_argument("--reference", type=Path, default=SHARED / "reference.csv")
    ap.add_argument("--max-buses", type=int, default=3100, help="largest case to run")
    ap.add_argument("--start", choices=["flat", "dc"], default="flat")
    ap.add_argument("--pandapower", action="store_true", help="also run pandapower's runopp")
    ap.add_argument(
        "--pp-max-buses", type=int, default=1400, help="largest case given to pandapower"
    )
    ap.add_argument(
        "--pp-time-limit", type=float, default=300.0, help="seconds per case for pandapower"
    )
    ap.add_argument(
        "--outage",
        nargs="?",
        const="case1888_rte",
        default=None,
        metavar="CASE",
        help="warm re-solve after a branch outage on CASE (default case1888_rte)",
    )
    ap.add_argument("--outages", type=int, default=5, help="how many outages to re-solve")
    ap.add_argument(
        "--repeat",
        type=_positive_int,
        default=1,
        help="solve each case this many times with each tool and keep the best time",
    )
    ap.add_argument(
        "--casadi",
        action="store_true",
        help="also time the same model through casadi's nlpsol instead of IPOPT's C interface",
    )
    ap.add_argument(
        "--sx",
        action="store_true",
        help="also solve each case as a casadi SX graph with casadi's own derivatives",
    )
    args = ap.parse_args()

    from importlib.metadata import version

    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"casadi {version('casadi')} (IPOPT + MUMPS), start={args.start}")
    refs = references(args.reference)
    opts = ACOPFOptions()
    # one-time process costs (importing casadi, loading IPOPT) are not a solve's
    from aiguilleur.data import bundled_case_path

    ac_opf(read_matpower(bundled_case_path("case14")), opts)

    header = (
        f"{'case':<22}{'buses':>6} {'status':<10}{'iter':>5}{'objective':>14}{'reference':>12}"
        f"{'gap %':>9}{'build s':>9}{'total s':>9}{'cpu s':>8}{'PGLib s':>9}"
    )
    if args.pandapower:
        header += (
            f"  {'pandapower':<20}{'pp s':>8}{'pp cpu s':>9}{'pp gap %':>10}"
            f"{'speed-up':>9}{'(cpu)':>8}"
        )
    if args.casadi:
        header += f"  {'casadi s':>9}{'it':>5}"
    if args.sx:
        header += f"  {'SX build s':>10}{'SX solve s':>11}{'SX it':>6}"
    print()
    print(header)
    print("-" * len(header))
    gaps: list[float] = []
    pp_fails: list[str] = []
    speedups: list[float] = []
    cpu_speedups: list[float] = []
    failures: list[str] = []
    for path in case_files(args.cases_dir, args.cases, args.max_buses):
        name = path.stem
        short = name.removeprefix("pglib_opf_")
        net = read_matpower(path)
        cpu = math.inf
        r: ACOPFResult | None = None
        for _ in range(args.repeat):
            c0 = time.process_time()
            run = ac_opf(net, opts, start=args.start)
            cpu = min(cpu, time.process_time() - c0)
            if r is None or run.time_s < r.time_s:
                r = run
        assert r is not None
        ref, ref_t = refs.get(name, (float("nan"), "-"))
        gap = (r.objective - ref) / ref * 100 if r.status == "optimal" else float("nan")
        if np.isfinite(gap):
            gaps.append(abs(gap))
        if r.status != "optimal":
            failures.append(short)
        line = (
            f"{short:<22}{net.n_bus:>6} {r.status:<10}{r.iterations:>5}{r.objective:>14.6g}"
            f"{ref:>12.5g}{gap:>+9.4f}{r.build_time_s:>9.3f}{r.time_s:>9.2f}{cpu:>8.2f}"
            f"{ref_t:>9}"
        )
        if args.pandapower:
            if net.n_bus <= args.pp_max_buses:
                st, cost, t, pcpu = run_pandapower(path, args.pp_time_limit, args.repeat)
                pgap = (cost - ref) / ref * 100 if np.isfinite(cost) else float("nan")
                if st == "optimal":
                    speedups.append(t / r.time_s)
                    cpu_speedups.append(pcpu / cpu)
                    line += (
                        f"  {st:<20}{t:>8.2f}{pcpu:>9.2f}{pgap:>+10.3f}{t / r.time_s:>8.1f}x"
                        f"{pcpu / cpu:>7.1f}x"
                    )
                else:
                    if r.status == "optimal":
                        pp_fails.append(short)
                    line += f"  {st:<20}{t:>8.2f}{pcpu:>9.2f}{'-':>10}{'-':>9}{'-':>8}"
            else:
                line += f"  {'(not run: size)':<20}"
        if args.casadi:
            ca_t, ca_it = run_via_casadi(net, opts, args.start, args.repeat)
            line += f"  {ca_t:>9.3f}{ca_it:>5}"
        if args.sx:
            sx_st, _, sx_build, sx_solve, sx_it = run_casadi_sx(net)
            line += f"  {sx_build:>10.2f}{sx_solve:>11.2f}{sx_it:>6}"
            if sx_st not in ("Solve_Succeeded", "Solved_To_Acceptable_Level"):
                line += f" ({sx_st})"
        print(line, flush=True)
    if gaps:
        print(
            f"\n{len(gaps)} optimal cases with a reference: largest |gap| {max(gaps):.4f} %, "
            f"{sum(g <= 0.05 for g in gaps)} within 0.05 %"
        )
    if failures:
        print(f"not optimal: {', '.join(failures)}")
    if args.pandapower:
        if speedups:
            print(
                f"speed-up over pandapower where it converges (wall): min {min(speedups):.1f}x, "
                f"median {float(np.median(speedups)):.1f}x; (CPU time): min "
                f"{min(cpu_speedups):.1f}x, median {float(np.median(cpu_speedups)):.1f}x"
            )
        print(
            "pandapower fails, aiguilleur does not: "
            + (", ".join(pp_fails) if pp_fails else "none")
        )
    if args.outage:
        paths = case_files(args.cases_dir, [args.outage], args.max_buses)
        outage_resolve(read_matpower(paths[0]), opts, args.outages)


if __name__ == "__main__":
    main()
