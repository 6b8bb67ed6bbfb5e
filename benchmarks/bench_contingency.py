"""AC N-1 contingency analysis: aiguilleur against lightsim2grid, pandapower and OpenLoadFlow.

Same input for every tool: a PGLib-OPF case at the *scaled dispatch* (the stored
generator set-points scaled to the load, :func:`aiguilleur.grid.scaled_dispatch`),
one slack at aiguilleur's reference bus, generator voltage set-points ``vg_pu``, no
reactive limits, a tolerance of 1e-8 pu, rating A (MVA at either end of a branch).
Outages: every in-service branch whose loss does not split the grid; the islanding
ones (bridges) are counted and reported apart, and no tool solves them.

Tools
-----
aiguilleur screened
    ``screen_n1(method="screened")``: DC screen by LODF, AC verification of the
    outages flagged within ``--margin-pct``, timed end to end (base power flow included).
aiguilleur full (``--with-full``)
    ``screen_n1(method="full")``: a warm-started Newton-Raphson per outage.
lightsim2grid
    ``ContingencyAnalysisCPP`` (C++, Newton-Raphson with KLU) on an ``LSGrid``,
    ``nb_thread = --threads``, every outage warm-started from the base case; timed:
    ``compute()`` (voltages) plus ``compute_branch_results()`` (P, Q at both ends,
    from which the MVA loadings come). The grid is loaded with
    ``lightsim2grid.network.init_from_matpower`` from the same matrices: its
    pandapower loader (``init_from_pandapower``) does not reproduce the admittance of
    transformers whose off-nominal ratio sits in the rated voltages (every tap != 1
    transformer of ``to_pandapower``'s net), see ``--lightsim-loader``.
pandapower
    ``runpp`` per outage (Newton-Raphson, numba on, lightsim2grid off,
    ``init="results"`` from the base case, same tolerance) on an evenly spaced sample
    of ``--pandapower-sample`` outages; its full time is extrapolated linearly.

OpenLoadFlow (pypowsybl)
    ``pypowsybl.security`` AC security analysis with the OpenLoadFlow provider on the
    network of ``aiguilleur.grid.powsybl_io.to_pypowsybl`` (rating A as permanent
    apparent-power limits at both ends), one contingency per studied outage,
    ``openloadflow_parameters`` (our reference bus as slack, no reactive limits, same
    tolerance). pypowsybl reports a post-outage violation that was already there
    before the outage only if it grew by more than ``flow_proportional_threshold``
    (10 % by default): the threshold is set to -1 so that every post-outage
    violation is reported, as aiguilleur counts them. Timed: ``run_ac`` end to end
    (network conversion inside pypowsybl included, building the pypowsybl network
    from ours not included). Skipped with a message when pypowsybl is missing
    (``--skip-olf`` skips it on purpose).

Every tool's base case is checked against aiguilleur's (voltages and branch flows)
before anything is timed; the violation sets, (outage, overloaded branch) pairs,
are compared with aiguilleur's and any mismatch is printed with examples.

Usage::

    .venv/bin/python benchmarks/bench_contingency.py --case pglib_opf_case1888_rte
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TOL_PU = 1e-8
MAX_ITER = 30


def code_snapshot() -> str:
    """Commit of the checkout and a digest of aiguilleur/grid as it is on disk (timed code)."""
    import hashlib
    import subprocess

    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=False,
        ).stdout.strip()  # fmt: skip
    except OSError:
        head = "?"
    h = hashlib.sha1()
    for f in sorted((REPO / "aiguilleur" / "grid").glob("*.py")):
        h.update(f.read_bytes())
    return f"HEAD {head or '?'}, aiguilleur/grid sources sha1 {h.hexdigest()[:10]}"


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--cases-dir", type=Path, default=REPO.parent / "shared/data/pglib-opf/cases")
    p.add_argument("--case", default="pglib_opf_case1888_rte")
    p.add_argument("--rating", default="a", choices=["a", "b", "c"])
    p.add_argument("--margin-pct", type=float, default=10.0)
    p.add_argument(
        "--load-scale",
        type=float,
        default=1.0,
        help="scale every load (P and Q) before balancing the dispatch; below 1 gives an "
        "operating point without base-case overloads, where the DC screen can skip outages",
    )
    p.add_argument("--with-full", action="store_true", help="also time screen_n1(method='full')")
    p.add_argument("--skip-lightsim", action="store_true")
    p.add_argument(
        "--all-branches",
        action="store_true",
        help="also time lightsim2grid on every in-service branch outage, islanding ones "
        "included (aiguilleur's screen always covers them all)",
    )
    p.add_argument("--skip-pandapower", action="store_true")
    p.add_argument("--skip-olf", action="store_true", help="skip OpenLoadFlow (pypowsybl)")
    p.add_argument("--pandapower-sample", type=int, default=300, help="outages run by pandapower")
    p.add_argument("--threads", type=int, default=1, help="lightsim2grid nb_thread")
    p.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="OpenBLAS threads for numpy/scipy (default: --threads), set before numpy loads",
    )
    p.add_argument("--repeat", type=int, default=2, help="timed runs per tool (best kept)")
    p.add_argument(
        "--lightsim-loader",
        default="matpower",
        choices=["matpower", "pandapower"],
        help="how the LSGrid is built (pandapower: init_from_pandapower(to_pandapower(net)))",
    )
    a = p.parse_args()
    if a.blas_threads is None:
        a.blas_threads = a.threads
    return a


ARGS = _args() if __name__ == "__main__" else None
if ARGS is not None:
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.blas_threads)
    os.environ.setdefault("NUMBA_NUM_THREADS", str(ARGS.blas_threads))

import numpy as np  # noqa: E402

sys.path.insert(0, str(REPO))
from aiguilleur.grid import (  # noqa: E402
    ContingencyOptions,
    ContingencyResult,
    Network,
    PowerFlowResult,
    ac_power_flow,
    read_matpower,
    scaled_dispatch,
    screen_n1,
)

Pairs = set[tuple[int, int]]


@dataclass
class Row:
    tool: str
    outages: int
    time_s: float
    violations: int | None = None
    agreement: str = ""
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# -- common input ------------------------------------------------------------------------


def _aligned(net: Network, base: PowerFlowResult) -> Network:
    """``net`` with aiguilleur's reference bus as the only type-3 bus.

    PGLib case1888_rte's reference bus has no generator: aiguilleur picks another
    bus; MATPOWER's rule (first PV bus) would pick a small unit elsewhere, a
    different operating point. The exported copies keep aiguilleur's choice.
    """
    ref = net.bus_index([i.ref_bus_id for i in base.islands if i.energised])
    bt = np.array(net.bus.bus_type)
    on = net.gen.in_service == 1
    has = np.bincount(net.gen_bus[on], minlength=net.n_bus) > 0
    old = bt == 3
    bt[old] = np.where(has[old], 2, 1)
    bt[ref] = 3
    return net.replace(bus=replace(net.bus, bus_type=bt))


def _mva(p1: Any, q1: Any, p2: Any, q2: Any) -> Any:
    return np.maximum(np.hypot(p1, q1), np.hypot(p2, q2))


def _rate(net: Network, rating: str) -> Any:
    r = net.branch.rating_mva(rating)
    return np.where(r > 0, r, np.inf)


def _pairs_from_loading(k: int, load_pct: Any) -> Pairs:
    over = np.flatnonzero(load_pct > 100.0)
    return {(k, int(b)) for b in over if b != k}


def _aig_pairs(res: ContingencyResult, outages: Any | None = None) -> Pairs:
    keep = None if outages is None else set(int(k) for k in outages)
    out: Pairs = set()
    for i in range(len(res)):
        if res.kind[i] != "branch" or res.status[i] == "islanding":
            continue
        k = int(res.element[i])
        if keep is not None and k not in keep:
            continue
        out |= {(k, int(b)) for b in res.overloaded[i]}
    return out


def _compare(name: str, mine: Pairs, ref: Pairs, loadings: dict[tuple[int, int], float]) -> str:
    only_mine, only_ref = mine - ref, ref - mine
    if not only_mine and not only_ref:
        return "identical"
    print(
        f"  MISMATCH {name}: {len(only_mine)} pairs only in {name}, "
        f"{len(only_ref)} only in aiguilleur"
    )
    for lab, s in ((f"only {name}", only_mine), ("only aiguilleur", only_ref)):
        for k, b in sorted(s)[:8]:
            lv = loadings.get((k, b))
            extra = f" ({name} loading {lv:.4f} %)" if lv is not None else ""
            print(f"    {lab}: outage row {k} -> branch row {b}{extra}")
    return f"{len(only_mine)}+{len(only_ref)} differ"


# -- aiguilleur --------------------------------------------------------------------------


def run_aiguilleur(
    net: Network, args: argparse.Namespace, method: str, repeat: int
) -> tuple[ContingencyResult, float]:
    opts = ContingencyOptions(
        rating=args.rating,
        ac_verify=True,
        method=method,  # type: ignore[arg-type]
        margin_pct=args.margin_pct,
        generators=False,
        tolerance_pu=TOL_PU,
        max_iter=MAX_ITER,
    )
    best, res = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        r = screen_n1(net, opts)
        dt = time.perf_counter() - t
        if dt < best:
            best, res = dt, r
    assert res is not None
    return res, best


# -- lightsim2grid -----------------------------------------------------------------------


def _lightsim_grid_matpower(net: Network) -> tuple[Any, Any, Any]:
    """LSGrid from the aligned matrices; (grid, aig bus of ls bus, aig branch of ls branch).

    Units at PQ buses are MATPOWER's fixed (P, Q) injections: lightsim2grid's
    MATPOWER loader would make them regulate voltage, so they are folded into
    the load.
    """
    from lightsim2grid.network import init_from_matpower

    bus = np.array(net.bus.matrix()[:, :13])
    gen = np.array(net.gen.matrix()[:, :21])
    br = np.array(net.branch.matrix()[:, :13])
    on = net.gen.in_service == 1
    pq_units = on & (bus[net.gen_bus, 1] == 1)
    np.add.at(bus[:, 2], net.gen_bus[pq_units], -gen[pq_units, 1])
    np.add.at(bus[:, 3], net.gen_bus[pq_units], -gen[pq_units, 2])
    gen[pq_units, 7] = 0
    mpc = {"baseMVA": net.base_mva, "version": "2", "bus": bus, "gen": gen, "branch": br}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grid = init_from_matpower(mpc)
    is_tr = net.branch.is_transformer
    br_map = np.concatenate([np.flatnonzero(~is_tr), np.flatnonzero(is_tr)])
    return grid, np.arange(net.n_bus), br_map


def _lightsim_grid_pandapower(net: Network) -> tuple[Any, Any, Any]:
    import pandapower.toolbox as tb
    from lightsim2grid.network import init_from_pandapower

    from aiguilleur.grid.pandapower_io import to_pandapower

    pn = to_pandapower(net)
    tb.create_continuous_bus_index(pn, start=0, store_old_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grid = init_from_pandapower(pn, pp_orig_file="pandapower_v3")
    bus_map = net.bus_index(pn.bus.old_index.to_numpy() + 1)
    br_map = np.concatenate([pn.line.index.to_numpy(), pn.trafo.index.to_numpy()])
    return grid, bus_map, br_map


def run_lightsim(
    net_al: Network,
    base: PowerFlowResult,
    outages: Any,
    args: argparse.Namespace,
    rate: Any,
) -> tuple[Row, Pairs, dict[tuple[int, int], float], Any]:
    import lightsim2grid
    from lightsim2grid.algorithm import AlgorithmType
    from lightsim2grid.contingencyAnalysis import ContingencyAnalysisCPP

    build = _lightsim_grid_pandapower if args.lightsim_loader == "pandapower" else None
    build = build or _lightsim_grid_matpower
    grid, bus_map, br_map = build(net_al)
    if AlgorithmType.NR_KLU not in grid.available_default_algorithms():
        raise SystemExit("lightsim2grid was built without KLU")
    grid.change_algorithm(AlgorithmType.NR_KLU)
    # base case: DC-angle start then Newton-Raphson, as aiguilleur does
    vdc = grid.dc_pf(np.ones(grid.total_bus(), dtype=complex), MAX_ITER, TOL_PU)
    v = grid.ac_pf(vdc, MAX_ITER, TOL_PU)
    if v.size == 0:
        raise SystemExit("lightsim2grid: base-case AC power flow did not converge")
    v_aig = base.vm_pu * np.exp(1j * np.deg2rad(base.va_deg))
    v_ref = v_aig[bus_map]
    r0 = int(np.argmax(np.abs(v_ref)))
    dvm = float(np.max(np.abs(np.abs(v) - np.abs(v_ref))))
    dva = float(np.max(np.abs(np.angle(v * np.conj(v[r0])) - np.angle(v_ref * np.conj(v_ref[r0])))))
    p1, q1, _, _ = grid.get_line_res1()
    p2, q2, _, _ = grid.get_line_res2()
    tp1, tq1, _, _ = grid.get_trafo_res1()
    tp2, tq2, _, _ = grid.get_trafo_res2()
    s_ls = np.empty(net_al.n_branch)
    s_ls[br_map] = np.concatenate([_mva(p1, q1, p2, q2), _mva(tp1, tq1, tp2, tq2)])
    ds = float(np.max(np.abs(s_ls - np.maximum(base.s_from_mva, base.s_to_mva))))
    print(
        f"  lightsim2grid {lightsim2grid.__version__} ({args.lightsim_loader} loader) base case vs "
        f"aiguilleur: max |dVm| {dvm:.2e} pu, |dVa| {dva:.2e} rad, |dS| {ds:.2e} MVA"
    )
    if dvm > 1e-6 or ds > 1e-3:
        print("  lightsim2grid does NOT model the same grid: its results are not comparable")
    ls_of_aig = np.empty(net_al.n_branch, dtype=np.int64)
    ls_of_aig[br_map] = np.arange(net_al.n_branch)

    best, comp_t, flow_t, timers = np.inf, 0.0, 0.0, (0.0, 0.0)
    pairs: Pairs = set()
    loadings: dict[tuple[int, int], float] = {}
    max_load = np.full(net_al.n_branch, np.nan)
    conv = np.zeros(0, dtype=bool)
    order: list[int] = []

    def analysis(rows: Any) -> Any:
        """A lightsim2grid contingency analysis of the given branch outages, ready to run."""
        ca = ContingencyAnalysisCPP(grid)
        ca.change_algorithm(AlgorithmType.NR_KLU)
        ca.nb_thread = args.threads
        ca.init_from_n_powerflow = True
        ca.add_multiple_n1([int(x) for x in ls_of_aig[rows]])
        return ca

    for rep in range(args.repeat):
        ca = analysis(outages)
        t = time.perf_counter()
        ca.compute(v, MAX_ITER, TOL_PU)
        t1 = time.perf_counter()
        br = ca.compute_branch_results()
        t2 = time.perf_counter()
        if t2 - t < best:
            best, comp_t, flow_t = t2 - t, t1 - t, t2 - t1
            timers = (ca.total_time(), ca.solver_time())
        if rep == 0:  # every run gives the same flows: read the first one only
            conv = np.asarray(ca.converged_mask(), dtype=bool)
            order = [int(d[0]) for d in ca.my_defaults()]
            for row, ls_k in enumerate(order):
                k = int(br_map[ls_k])
                if not conv[row]:
                    continue
                s = np.empty(net_al.n_branch)
                s[br_map] = _mva(br[row, :, 0], br[row, :, 1], br[row, :, 2], br[row, :, 3])
                s[k] = 0.0
                load = s / rate * 100.0
                max_load[k] = float(np.max(np.where(np.isfinite(load), load, -np.inf)))
                pk = _pairs_from_loading(k, load)
                pairs |= pk
                for kb in pk:
                    loadings[kb] = float(load[kb[1]])
        del br, ca
    if args.all_branches:
        # the full N-1 as a user asks it: every in-service branch, islanding ones included
        # (lightsim2grid reports those as not converged; aiguilleur finds them on the graph)
        every = np.flatnonzero(net_al.branch.in_service == 1)
        best_all, n_bad = np.inf, 0
        for _ in range(args.repeat):
            ca = analysis(every)
            t = time.perf_counter()
            ca.compute(v, MAX_ITER, TOL_PU)
            ca.compute_branch_results()
            best_all = min(best_all, time.perf_counter() - t)
            n_bad = int((~np.asarray(ca.converged_mask(), dtype=bool)).sum())
            del ca
        print(
            f"  lightsim2grid, every in-service branch ({every.size} outages, islanding ones "
            f"included): best {best_all:.3f} s, {n_bad} not converged"
        )
    not_conv = sorted(int(br_map[order[r]]) for r in np.flatnonzero(~conv))
    row_out = Row(
        "lightsim2grid ContingencyAnalysisCPP",
        len(order),
        best,
        len(pairs),
        note=(
            f"NR_KLU, nb_thread={args.threads}; compute {comp_t:.3f} s + branch results "
            f"{flow_t:.3f} s; {int((~conv).sum())} not converged; C++ timers: total "
            f"{timers[0]:.3f} s, solver {timers[1]:.3f} s"
        ),
    )
    row_out.extra["diverged"] = not_conv
    return row_out, pairs, loadings, max_load


# -- pandapower --------------------------------------------------------------------------


def _pandapower_net(net_al: Network) -> tuple[Any, str]:
    try:
        from aiguilleur.grid.pandapower_io import to_pandapower
    except ImportError:
        to_pandapower = None
    if to_pandapower is not None:
        return to_pandapower(net_al), "aiguilleur.grid.pandapower_io.to_pandapower"
    from pandapower.converter import from_ppc

    ppc = {
        "baseMVA": net_al.base_mva,
        "version": "2",
        "bus": net_al.bus.matrix()[:, :13],
        "gen": net_al.gen.matrix()[:, :21],
        "branch": net_al.branch.matrix()[:, :13],
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pn = from_ppc(ppc, f_hz=50, validate_conversion=False)
    return pn, "pandapower.converter.from_ppc"


def _pp_branch_mva(pn: Any, n_branch: int) -> Any:
    s = np.zeros(n_branch)
    rl, rt = pn.res_line, pn.res_trafo
    if len(rl):
        s[pn.line.index.to_numpy()] = _mva(
            rl.p_from_mw.to_numpy(), rl.q_from_mvar.to_numpy(),
            rl.p_to_mw.to_numpy(), rl.q_to_mvar.to_numpy(),
        )  # fmt: skip
    if len(rt):
        s[pn.trafo.index.to_numpy()] = _mva(
            rt.p_hv_mw.to_numpy(), rt.q_hv_mvar.to_numpy(),
            rt.p_lv_mw.to_numpy(), rt.q_lv_mvar.to_numpy(),
        )  # fmt: skip
    return np.nan_to_num(s)


def run_pandapower(
    net_al: Network,
    base: PowerFlowResult,
    outages: Any,
    args: argparse.Namespace,
    rate: Any,
    check: list[int] | None = None,
) -> tuple[Row, Pairs, dict[tuple[int, int], float], Any]:
    import pandapower as pp

    pn, how = _pandapower_net(net_al)
    if "line" in pn and set(pn.line.index) | set(pn.trafo.index) != set(range(net_al.n_branch)):
        raise SystemExit(f"{how}: pandapower elements are not indexed by branch row")
    kw: dict[str, Any] = dict(
        algorithm="nr",
        calculate_voltage_angles=True,
        tolerance_mva=TOL_PU,
        max_iteration=MAX_ITER,
        voltage_depend_loads=False,
        numba=True,
        lightsim2grid=False,  # pandapower's own Newton-Raphson, not lightsim2grid's
        check_connectivity=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.runpp(pn, init="dc", **kw)  # base case (also compiles the numba kernels)
        t = time.perf_counter()
        pp.runpp(pn, init="results", **kw)
        base_t = time.perf_counter() - t
    vm = pn.res_bus.vm_pu.loc[net_al.bus.bus_id - 1].to_numpy()
    s0 = _pp_branch_mva(pn, net_al.n_branch)
    dvm = float(np.max(np.abs(vm - base.vm_pu)))
    # to_pandapower carries a transformer's charging as two bus shunts, so the flow at
    # the ends of such a transformer leaves its charging out: checked apart
    charged = net_al.branch.is_transformer & (net_al.branch.b_pu != 0)
    dsv = np.abs(s0 - np.maximum(base.s_from_mva, base.s_to_mva))
    ds = float(np.max(dsv[~charged]))
    dsc = float(np.max(dsv[charged])) if charged.any() else 0.0
    print(
        f"  pandapower {pp.__version__} net from {how}; base case vs aiguilleur: "
        f"max |dVm| {dvm:.2e} pu, |dS| {ds:.2e} MVA ({dsc:.2e} MVA on the {int(charged.sum())} "
        f"transformers with charging, carried as bus shunts); one warm runpp {base_t * 1e3:.1f} ms"
    )
    if dvm > 1e-6 or ds > 1e-3:
        print("  pandapower does NOT model the same grid: its results are not comparable")
    base_res_bus = pn.res_bus.copy()
    n = min(args.pandapower_sample, outages.size)
    sample = outages[np.unique(np.linspace(0, outages.size - 1, n).round().astype(np.int64))]
    is_tr = net_al.branch.is_transformer
    best, pairs_best, loads_best, diverged_best = np.inf, set(), {}, 0
    max_load = np.full(net_al.n_branch, np.nan)
    for _ in range(args.repeat):
        pairs: Pairs = set()
        loadings: dict[tuple[int, int], float] = {}
        diverged = 0
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for k in sample:
                tbl = "trafo" if is_tr[k] else "line"
                pn[tbl].at[int(k), "in_service"] = False
                pn.res_bus = base_res_bus.copy()  # warm start from the base case, every time
                try:
                    pp.runpp(pn, init="results", **kw)
                    load = _pp_branch_mva(pn, net_al.n_branch) / rate * 100.0
                    load[k] = 0.0
                    max_load[k] = float(np.max(np.where(np.isfinite(load), load, -np.inf)))
                    pk = _pairs_from_loading(int(k), load)
                    pairs |= pk
                    for kb in pk:
                        loadings[kb] = float(load[kb[1]])
                except pp.LoadflowNotConverged:
                    diverged += 1
                finally:
                    pn[tbl].at[int(k), "in_service"] = True
        dt = time.perf_counter() - t
        if dt < best:
            best, pairs_best, loads_best, diverged_best = dt, pairs, loadings, diverged
    per = best / sample.size
    checked = []
    for k in check or []:  # outages the others could not solve: untimed, outside the sample
        tbl = "trafo" if is_tr[k] else "line"
        pn[tbl].at[int(k), "in_service"] = False
        pn.res_bus = base_res_bus.copy()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pp.runpp(pn, init="results", **kw)
            checked.append(f"{k}: converged")
        except pp.LoadflowNotConverged:
            checked.append(f"{k}: did not converge in {MAX_ITER} iterations")
        finally:
            pn[tbl].at[int(k), "in_service"] = True
    if checked:
        print(f"  pandapower on the outages aiguilleur could not solve: {'; '.join(checked)}")
    row = Row(
        "pandapower runpp per outage",
        int(outages.size),
        per * outages.size,
        None,
        note=(
            f"EXTRAPOLATED from {sample.size} outages ({best:.2f} s, {per * 1e3:.1f} ms each); "
            f"numba on, init=results; {diverged_best} diverged in the sample; the violations "
            "column counts the sample only"
        ),
        extra={"sample": sample, "sample_violations": len(pairs_best)},
    )
    return row, pairs_best, loads_best, max_load


# -- OpenLoadFlow (pypowsybl) -------------------------------------------------------------


def run_olf(
    net_al: Network, base: PowerFlowResult, outages: Any, args: argparse.Namespace
) -> tuple[Row, Pairs, dict[tuple[int, int], float]]:
    import pypowsybl as ppw

    from aiguilleur.grid.powsybl_io import openloadflow_parameters, to_pypowsybl

    if args.rating != "a":
        raise SystemExit("OpenLoadFlow column: only rating A is exported as limits (--skip-olf)")
    pnet = to_pypowsybl(net_al)
    refs = [i.ref_bus_id for i in base.islands if i.energised and i.ref_bus_id is not None]
    lf = openloadflow_parameters([f"VL{r}_0" for r in refs], tolerance_pu=TOL_PU, max_iter=MAX_ITER)
    is_tr = net_al.branch.is_transformer | (
        net_al.bus.base_kv[net_al.branch_from] != net_al.bus.base_kv[net_al.branch_to]
    )

    def eid(k: int) -> str:
        return f"{'T' if is_tr[k] else 'L'}{k + 1}"

    params = ppw.security.Parameters(
        load_flow_parameters=lf,
        increased_violations_parameters=ppw.security.IncreasedViolationsParameters(
            flow_proportional_threshold=-1.0,
            low_voltage_proportional_threshold=0.0,
            low_voltage_absolute_threshold=0.0,
            high_voltage_proportional_threshold=0.0,
            high_voltage_absolute_threshold=0.0,
        ),
    )
    # base case against aiguilleur's
    ppw.loadflow.run_ac(pnet, lf)
    b = pnet.get_buses()
    kv = pnet.get_voltage_levels().loc[b["voltage_level_id"], "nominal_v"].to_numpy()
    rows = net_al.bus_index([int(str(v)[2:]) for v in b["voltage_level_id"]])
    dvm = float(np.nanmax(np.abs(b["v_mag"].to_numpy() / kv - base.vm_pu[rows])))
    print(
        f"  pypowsybl {ppw.__version__} OpenLoadFlow base case vs aiguilleur: max |dVm| "
        f"{dvm:.2e} pu"
    )
    best, res = np.inf, None
    for _ in range(args.repeat):
        sa = ppw.security.create_analysis()
        sa.add_single_element_contingencies([eid(int(k)) for k in outages])
        t = time.perf_counter()
        r = sa.run_ac(pnet, params, provider="OpenLoadFlow")
        dt = time.perf_counter() - t
        if dt < best:
            best, res = dt, r
    assert res is not None
    row_of = {eid(k): k for k in range(net_al.n_branch)}
    pairs: Pairs = set()
    loadings: dict[tuple[int, int], float] = {}
    viol = res.limit_violations.reset_index()
    viol = viol[viol["contingency_id"] != ""]
    for cid, sid, val, lim in zip(
        viol["contingency_id"], viol["subject_id"], viol["value"], viol["limit"], strict=True
    ):
        k, bb = row_of.get(str(cid)), row_of.get(str(sid))
        if k is None or bb is None or bb == k:
            continue
        pairs.add((k, bb))
        loadings[(k, bb)] = max(loadings.get((k, bb), 0.0), 100.0 * float(val) / float(lim))
    statuses = [str(pc.status.name) for pc in res.post_contingency_results.values()]
    n_bad = sum(1 for s_ in statuses if s_ != "CONVERGED")
    row = Row(
        "OpenLoadFlow security analysis",
        int(outages.size),
        best,
        len(pairs),
        note=(
            f"pypowsybl {ppw.__version__}, run_ac end to end; {n_bad} contingencies not "
            "converged; flow_proportional_threshold -1 (every post-outage violation)"
        ),
    )
    return row, pairs, loadings


# -- main --------------------------------------------------------------------------------


def main(args: argparse.Namespace) -> None:
    path = args.cases_dir / f"{args.case}.m"
    raw = read_matpower(path)
    if args.load_scale != 1.0:
        import dataclasses

        raw = raw.replace(
            bus=dataclasses.replace(
                raw.bus,
                pd_mw=raw.bus.pd_mw * args.load_scale,
                qd_mvar=raw.bus.qd_mvar * args.load_scale,
            )
        )
    net = scaled_dispatch(raw)
    on = net.gen.in_service == 1
    print(
        f"case {args.case}: {net.n_bus} buses, {net.n_branch} branches, "
        f"{int(on.sum())} units in service"
    )
    print(
        f"operating point: loads x {args.load_scale:g}, scaled_dispatch (stored set-points scaled "
        "to the load): generation "
        f"{float(net.gen.pg_mw[on].sum()):.1f} MW for load {float(net.bus.pd_mw.sum()):.1f} MW; "
        f"rating {args.rating.upper()}, tolerance {TOL_PU:g} pu"
    )
    print(
        f"threads: lightsim2grid nb_thread={args.threads}; OpenBLAS/OMP threads="
        f"{args.blas_threads}; {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f} at start"
    )
    print(f"code: {code_snapshot()}")
    base = ac_power_flow(net)
    if not base.converged:
        raise SystemExit("aiguilleur: base case did not converge")
    net_al = _aligned(net, base)
    rate = _rate(net, args.rating)

    rows: list[Row] = []
    # warm-up (imports, first-call costs), not timed
    res, t_aig = run_aiguilleur(net, args, "screened", args.repeat + 1)
    br_idx = np.flatnonzero(res.kind == "branch")
    isl = br_idx[res.status[br_idx] == "islanding"]
    studied = br_idx[res.status[br_idx] != "islanding"]
    outages = res.element[studied].astype(np.int64)
    aig_pairs = _aig_pairs(res)
    print(
        f"outages: {outages.size} non-islanding branch outages studied; {isl.size} islanding "
        f"(bridges) reported apart (lost load {float(res.lost_load_mw[isl].sum()):.1f} MW in total)"
    )
    stages = ", ".join(f"{k} {v:.3f} s" for k, v in res.stages_s.items())
    print(
        f"aiguilleur screened: {t_aig:.3f} s best of {args.repeat + 1}; stages: {stages}; "
        f"AC-verified {res.ac_solved}, fallbacks {res.fallbacks}; statuses: "
        + ", ".join(f"{s} {res.count(s)}" for s in ("secure", "overload", "islanding", "diverged"))
    )
    print(
        f"base case (N-0): {res.base_overloaded.size} branches already above 100 % of rate "
        f"{args.rating.upper()} (they count in every outage's violations)"
    )
    rows.append(
        Row(
            "aiguilleur screen_n1 screened",
            int(outages.size),
            t_aig,
            len(aig_pairs),
            "reference",
            note=f"AC-verified {res.ac_solved}, margin {args.margin_pct:g} %",
        )
    )

    full_pairs: Pairs | None = None
    if args.with_full:
        rfull, t_full = run_aiguilleur(net, args, "full", 1)
        full_pairs = _aig_pairs(rfull)
        agree = _compare("aiguilleur full", full_pairs, aig_pairs, {})
        rows.append(
            Row("aiguilleur screen_n1 full", int(outages.size), t_full, len(full_pairs), agree)
        )

    if not args.skip_lightsim:
        row, ls_pairs, ls_loads, ls_max = run_lightsim(net_al, base, outages, args, rate)
        row.agreement = _compare("lightsim2grid", ls_pairs, aig_pairs, ls_loads)
        aig_div = sorted(int(res.element[i]) for i in studied if res.status[i] == "diverged")
        print(
            f"  outages not solved: aiguilleur (diverged) {aig_div}, lightsim2grid (not "
            f"converged) {row.extra['diverged']}"
        )
        # AC-verified outages: worst loading, aiguilleur against lightsim2grid
        ver = studied[res.verified[studied]]
        d = np.abs(res.max_loading_pct[ver] - ls_max[res.element[ver]])
        if d.size:
            print(
                f"  worst post-outage loading on the {ver.size} AC-verified outages, aiguilleur vs "
                f"lightsim2grid: max |diff| {np.nanmax(d):.2e} percentage points"
            )
        if full_pairs is not None:
            agree_full = _compare("lightsim2grid", ls_pairs, full_pairs, ls_loads)
            print(f"  lightsim2grid vs aiguilleur full: {agree_full}")
        rows.append(row)

    if not args.skip_pandapower:
        aig_div = [int(res.element[i]) for i in studied if res.status[i] == "diverged"]
        row, pp_pairs, pp_loads, _ = run_pandapower(net_al, base, outages, args, rate, aig_div)
        sample = row.extra["sample"]
        ref_s = _aig_pairs(res, sample)
        row.violations = row.extra["sample_violations"]
        row.agreement = _compare("pandapower", pp_pairs, ref_s, pp_loads) + " (sample)"
        rows.append(row)

    if not args.skip_olf:
        try:
            import pypowsybl  # noqa: F401

            have_olf = True
        except ImportError:
            have_olf = False
            print("pypowsybl not installed: OpenLoadFlow skipped (pip install -e '.[bench]')")
        if have_olf:
            row, olf_pairs, olf_loads = run_olf(net_al, base, outages, args)
            row.agreement = _compare("OpenLoadFlow", olf_pairs, aig_pairs, olf_loads)
            rows.append(row)

    print()
    head = (
        f"{'tool':38s} {'outages':>7s} {'time_s':>9s} {'ms/outage':>9s} {'vs aig':>7s} "
        f"{'violations':>10s}  agreement"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        ratio = r.time_s / t_aig
        v = "-" if r.violations is None else str(r.violations)
        print(
            f"{r.tool:38s} {r.outages:7d} {r.time_s:9.3f} "
            f"{r.time_s / max(r.outages, 1) * 1e3:9.3f} {ratio:6.2f}x {v:>10s}  {r.agreement}"
        )
    print()
    for r in rows:
        if r.note:
            print(f"{r.tool}: {r.note}")
    print(
        "violations = (outage, overloaded branch) pairs above 100 % of rate "
        f"{args.rating.upper()} (MVA, either end); 'vs aig' = time / aiguilleur screened time"
    )
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    assert ARGS is not None
    main(ARGS)
