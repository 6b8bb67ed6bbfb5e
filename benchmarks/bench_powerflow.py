"""AC power flow: aiguilleur against pandapower, lightsim2grid and OpenLoadFlow on the same input.

For each case: read the MATPOWER file (not timed), balance it with
``scaled_dispatch`` (the stored set-points scaled to the load; PGLib's raw
set-points do not balance), then time best-of-N:

* aiguilleur ``ac_power_flow`` (Ybus build, DC start, Newton-Raphson, flows);
* pandapower ``runpp`` (numba on, its own Newton-Raphson: ``lightsim2grid=False``),
  the whole call and its solver core (``net._ppc["et"]``: DC start, Ybus,
  Newton-Raphson and pfsoln, without the pandas conversion and result tables);
* lightsim2grid's C++ ``LSGrid`` built once from the same pandapower net
  (``init_from_pandapower``, timed apart), then per run: Ybus rebuild forced,
  ``dc_pf`` for the start, ``ac_pf``;
* OpenLoadFlow through pypowsybl: ``pypowsybl.loadflow.run_ac`` on the network that
  ``aiguilleur.grid.powsybl_io.to_pypowsybl`` builds (built once, not timed), with
  ``openloadflow_parameters`` (our reference bus as its slack, no distributed slack,
  no reactive limits, remote control off, nothing dropped by its plausibility
  checks, DC-angle start, 1e-8 per equation); the call includes pypowsybl's
  conversion of the network and the write-back of the results, as a user pays them.

Same options on every side: one slack bus, no reactive limits, mismatch
tolerance 1e-8 pu, at most 30 iterations, start from DC angles with flat
magnitudes (generator set-points at PV buses). The pandapower net is made by
pandapower's own ``from_ppc`` after the model-preserving rewrites that make it
the same case (see ``tests/grid/test_powerflow.py``); the largest voltage
differences against aiguilleur are printed.

Run from the repository root::

    .venv/bin/python benchmarks/bench_powerflow.py
    .venv/bin/python benchmarks/bench_powerflow.py --cases case118_ieee case1888_rte --repeat 10
    .venv/bin/python benchmarks/bench_powerflow.py --profile case8387_pegase
    .venv/bin/python benchmarks/bench_powerflow.py --no-lightsim --no-olf
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import platform
import pstats
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from aiguilleur.grid.matpower import read_matpower
from aiguilleur.grid.network import Network
from aiguilleur.grid.operating_point import scaled_dispatch
from aiguilleur.grid.powerflow import PowerFlowOptions, PowerFlowResult, ac_power_flow

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CASES_DIR = REPO / ".." / "shared" / "data" / "pglib-opf" / "cases"
DEFAULT_CASES = ["case1888_rte", "case2869_pegase", "case8387_pegase"]
TOL_PU = 1e-8
MAX_ITER = 30


def case_path(cases_dir: Path, name: str) -> Path:
    """The case file in ``cases_dir``, else the copy bundled with aiguilleur."""
    stem = name if name.startswith("pglib_opf_") else f"pglib_opf_{name}"
    path = cases_dir / f"{stem}.m"
    if path.is_file():
        return path
    try:
        from aiguilleur.data import bundled_case_path

        return bundled_case_path(name)
    except Exception:
        sys.exit(f"case {name}: no {path} and no bundled copy")


def best_of(
    fns: dict[str, Callable[[], Any]], repeat: int
) -> tuple[dict[str, float], dict[str, Any]]:
    """Best wall time of each function over ``repeat`` rounds, after one warm-up call each.

    The functions take turns within every round, so that a busy machine slows
    them alike rather than whichever happened to run during the busy spell.
    """
    out = {k: fn() for k, fn in fns.items()}
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            out[k] = fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best, out


# -- the same case for pandapower ------------------------------------------------------


def to_ppc(net: Network, ref_bus_ids: list[int]) -> dict[str, Any]:
    """A pypower case that ``from_ppc`` turns into exactly ``net``'s model.

    Out-of-service units and branches dropped; aiguilleur's reference bus made
    the type-3 bus; transformer charging moved into the equivalent bus shunts;
    step-up transformers (to side at the higher kV) turned around so that
    ``from_ppc`` puts the ratio on MATPOWER's side. Each rewrite keeps Ybus.
    """
    base = net.base_mva
    bus = np.array(net.bus.matrix()[:, :13], dtype=float)
    gen = np.array(net.gen.matrix()[net.gen.in_service == 1, :10], dtype=float)
    br_on = net.branch.in_service == 1
    br = np.array(net.branch.matrix()[br_on, :13], dtype=float)
    f, t = net.branch_from[br_on], net.branch_to[br_on]
    has_gen = np.isin(bus[:, 0], gen[:, 0])
    new_ref = np.isin(bus[:, 0], ref_bus_ids)
    old_ref = (bus[:, 1] == 3) & ~new_ref
    bus[old_ref, 1] = np.where(has_gen[old_ref], 2, 1)
    bus[new_ref, 1] = 3
    kv = bus[:, 9]
    tap = np.where(br[:, 8] == 0.0, 1.0, br[:, 8])
    trafo = ((br[:, 8] != 0.0) & (br[:, 8] != 1.0)) | (br[:, 9] != 0.0)
    charged = trafo & (br[:, 4] != 0.0)
    np.add.at(bus[:, 5], f[charged], br[charged, 4] / 2.0 / tap[charged] ** 2 * base)
    np.add.at(bus[:, 5], t[charged], br[charged, 4] / 2.0 * base)
    br[charged, 4] = 0.0
    up = trafo & (kv[t] > kv[f])
    br[up, 0], br[up, 1] = br[up, 1].copy(), br[up, 0].copy()
    br[up, 2] *= tap[up] ** 2
    br[up, 3] *= tap[up] ** 2
    br[up, 8] = 1.0 / tap[up]
    br[up, 9] = -br[up, 9]
    return {"baseMVA": base, "version": "2", "bus": bus, "gen": gen, "branch": br}


def pandapower_net(net: Network, ref_bus_ids: list[int]) -> Any:
    from pandapower.converter.pypower import from_ppc

    pnet = from_ppc(to_ppc(net, ref_bus_ids), f_hz=50, validate_conversion=False)
    impedances_to_lines(pnet)
    return pnet


def impedances_to_lines(pnet: Any) -> None:
    """Replace ``impedance`` elements by the equivalent lines (lightsim2grid has no impedance).

    ``from_ppc`` makes an ``impedance`` of a ratio-1 branch between two voltage
    levels. A pandapower line takes its per-unit base from its from bus, so a line
    with ohmic values on that base has the same admittances.
    """
    import pandapower as pp

    imp = pnet.impedance
    if not len(imp):
        return
    sn, f_hz = float(pnet.sn_mva), float(pnet.f_hz)
    for idx, row in imp.iterrows():
        fb, tb = int(row.from_bus), int(row.to_bus)
        zbase = float(pnet.bus.vn_kv.at[fb]) ** 2 / sn
        to_sys = sn / float(row.sn_mva)  # impedance-base pu -> system-base pu
        r = float(row.rft_pu) * to_sys
        x = float(row.xft_pu) * to_sys
        b_total = 2.0 * float(row.bf_pu) / to_sys
        pp.create_line_from_parameters(
            pnet,
            fb,
            tb,
            length_km=1.0,
            r_ohm_per_km=r * zbase,
            x_ohm_per_km=x * zbase,
            c_nf_per_km=b_total / zbase / (2.0 * np.pi * f_hz) * 1e9,
            max_i_ka=99999.0,
            in_service=bool(row.in_service),
        )
        pnet.impedance.drop(index=idx, inplace=True)


def runpp(pnet: Any) -> None:
    import pandapower as pp

    pp.runpp(
        pnet,
        algorithm="nr",
        init="dc",
        calculate_voltage_angles=True,
        tolerance_mva=TOL_PU,  # compared with the per-unit mismatch inside pandapower
        max_iteration=MAX_ITER,
        voltage_depend_loads=False,
        enforce_q_lims=False,
        distributed_slack=False,
        numba=True,
        lightsim2grid=False,
    )


def voltage_gaps(
    net: Network, res: PowerFlowResult, vm: np.ndarray, va_rad: np.ndarray
) -> tuple[float, float]:
    """Largest |dVm| (pu) and |dVa| (rad, relative to the reference bus) against ``res``."""
    ref_id = next(int(r.ref_bus_id) for r in res.islands if r.ref_bus_id is not None)
    ref = int(net.bus_index([ref_id])[0])
    va = np.deg2rad(res.va_deg)
    dva = np.angle(np.exp(1j * ((va - va[ref]) - (va_rad - va_rad[ref]))))
    return float(np.max(np.abs(res.vm_pu - vm))), float(np.max(np.abs(dva)))


# -- lightsim2grid ---------------------------------------------------------------------


def lightsim_runner(pnet: Any) -> tuple[float, Callable[[], np.ndarray], str, np.ndarray]:
    """Build lightsim2grid's model once; return its build time, a DC-start + AC solve,
    the algorithm's name and the bus ids in the model's order.

    lightsim2grid 1.2.0's ``init_from_pandapower`` mis-maps buses when the bus
    index is not sorted (case1888_rte's file order): it takes ``vn_kv`` in sorted
    order but maps ids through ``argsort`` rather than its inverse, so lines and
    transformers get another bus's base voltage. The model is built from a copy
    with the bus table sorted, which is the same network.
    """
    import copy

    from lightsim2grid.gridmodel import init_from_pandapower

    lnet = copy.deepcopy(pnet)
    lnet.bus = lnet.bus.sort_index()
    order = lnet.bus.index.to_numpy().astype(np.int64)
    t0 = time.perf_counter()
    model = init_from_pandapower(lnet)
    t_init = time.perf_counter() - t0
    # flat magnitudes with the generators' set-points, as on the other sides
    vm0 = np.ones(model.total_bus())
    pos = {int(b): i for i, b in enumerate(order)}
    for tbl in (lnet.gen, lnet.ext_grid):
        for b, v in zip(tbl.bus.to_numpy(), tbl.vm_pu.to_numpy(), strict=True):
            vm0[pos[int(b)]] = v

    def solve() -> np.ndarray:
        model.tell_recompute_ybus()
        v_dc = model.dc_pf(vm0.astype(complex), MAX_ITER, TOL_PU)
        if v_dc.size == 0:
            return v_dc
        v0 = vm0 * np.exp(1j * np.angle(v_dc))
        out: np.ndarray = model.ac_pf(v0, MAX_ITER, TOL_PU)
        return out

    algo = str(model.get_algo_type()).split(".")[-1]
    return t_init, solve, algo, order


# -- OpenLoadFlow (pypowsybl) ---------------------------------------------------------


def olf_runner(net: Network, ref_bus_ids: list[int]) -> tuple[Callable[[], Any], Any, list[str]]:
    """OpenLoadFlow on ``to_pypowsybl(net)``: the solve, the pypowsybl network, slack ids."""
    import pypowsybl as ppw

    from aiguilleur.grid.powsybl_io import openloadflow_parameters, to_pypowsybl

    pnet = to_pypowsybl(net)
    slack = [f"VL{i}_0" for i in ref_bus_ids]
    params = openloadflow_parameters(slack, tolerance_pu=TOL_PU, max_iter=MAX_ITER)

    def solve() -> Any:
        return ppw.loadflow.run_ac(pnet, params)

    return solve, pnet, slack


def olf_voltages(net: Network, pnet: Any) -> tuple[np.ndarray, np.ndarray]:
    """OpenLoadFlow's voltages (pu, rad) in ``net``'s bus order."""
    b = pnet.get_buses()
    kv = pnet.get_voltage_levels().loc[b["voltage_level_id"], "nominal_v"].to_numpy()
    rows = net.bus_index([int(str(v)[2:]) for v in b["voltage_level_id"]])
    vm = np.full(net.n_bus, np.nan)
    va = np.full(net.n_bus, np.nan)
    vm[rows] = b["v_mag"].to_numpy() / kv
    va[rows] = np.deg2rad(b["v_angle"].to_numpy())
    return vm, va


# -- main ------------------------------------------------------------------------------


def bench_case(path: Path, repeat: int, with_lightsim: bool, with_olf: bool) -> dict[str, Any]:
    net = scaled_dispatch(read_matpower(path))
    opts = PowerFlowOptions(tolerance_pu=TOL_PU, max_iter=MAX_ITER, init="dc")
    res = ac_power_flow(net, opts)
    row: dict[str, Any] = {"case": path.stem.removeprefix("pglib_opf_"), "buses": net.n_bus}
    refs = [int(r.ref_bus_id) for r in res.islands if r.energised and r.ref_bus_id is not None]
    pnet = pandapower_net(net, refs)
    cores: list[float] = []

    def pp_once() -> None:
        runpp(pnet)
        cores.append(float(pnet._ppc["et"]))

    fns: dict[str, Callable[[], Any]] = {"ai": lambda: ac_power_flow(net, opts), "pp": pp_once}
    order = np.zeros(0, dtype=np.int64)
    if with_lightsim:
        try:
            t_init, fns["ls"], row["ls_algo"], order = lightsim_runner(pnet)
            row["ls_init_s"] = t_init
        except Exception as exc:  # an optional anchor must not stop the run
            row["ls_note"] = f"{type(exc).__name__}: {exc}"
    pnet_olf = None
    if with_olf:
        try:
            fns["olf"], pnet_olf, _ = olf_runner(net, refs)
        except Exception as exc:  # an optional anchor must not stop the run
            row["olf_note"] = f"{type(exc).__name__}: {exc}"
    best, out = best_of(fns, repeat)
    res = out["ai"]
    if "olf" in fns:
        row["olf_s"] = best["olf"]
        comp = out["olf"]
        row["olf_it"] = int(sum(c.iteration_count for c in comp))
        if all(c.status.name == "CONVERGED" for c in comp):
            vm, va = olf_voltages(net, pnet_olf)
            ok = np.isfinite(vm)
            row["olf_dvm"], row["olf_dva"] = voltage_gaps(
                net, res, np.where(ok, vm, res.vm_pu), np.where(ok, va, np.deg2rad(res.va_deg))
            )
        else:
            row["olf_note"] = "not converged: " + "; ".join(c.status_text for c in comp)
    row.update(ai_s=best["ai"], ai_it=res.iterations, ai_ok=res.converged)
    row.update(pp_s=best["pp"], pp_core_s=min(cores[1:]), pp_it=int(pnet._ppc["iterations"]))
    rb = pnet.res_bus.loc[np.asarray(net.bus.bus_id)]
    row["dvm"], row["dva"] = voltage_gaps(
        net, res, rb.vm_pu.to_numpy(), np.deg2rad(rb.va_degree.to_numpy())
    )
    if "ls" in fns:
        row["ls_s"] = best["ls"]
        v = out["ls"]
        if v.size:
            pos = np.searchsorted(order, np.asarray(net.bus.bus_id))
            row["ls_dvm"], row["ls_dva"] = voltage_gaps(net, res, np.abs(v[pos]), np.angle(v[pos]))
        else:
            row["ls_note"] = "diverged"
    return row


def print_table(rows: list[dict[str, Any]], with_lightsim: bool, with_olf: bool) -> None:
    head = (
        f"{'case':<18} {'buses':>6} {'aiguilleur s':>12} {'pandapower s':>12} {'ratio':>6}"
        f" {'pp core s':>9} {'it ai/pp':>8} {'max|dVm| pu':>11} {'max|dVa| rad':>12}"
    )
    if with_lightsim:
        head += f" {'ls2g s':>8} {'ls2g/ai':>7} {'ls2g build s':>12} {'ls2g max|dV|':>12}"
    if with_olf:
        head += f" {'OLF s':>8} {'OLF/ai':>6} {'OLF it':>6} {'OLF max|dV|':>11}"
    print(head)
    print("-" * len(head))
    for r in rows:
        line = (
            f"{r['case']:<18} {r['buses']:>6} {r['ai_s']:>12.5f} {r['pp_s']:>12.5f}"
            f" {r['pp_s'] / r['ai_s']:>6.2f} {r['pp_core_s']:>9.5f}"
            f" {r['ai_it']:>3}/{r['pp_it']:<4} {r['dvm']:>11.1e} {r['dva']:>12.1e}"
        )
        if with_lightsim:
            if "ls_s" in r:
                gap = max(r.get("ls_dvm", np.nan), r.get("ls_dva", np.nan))
                line += (
                    f" {r['ls_s']:>8.5f} {r['ls_s'] / r['ai_s']:>7.2f}"
                    f" {r['ls_init_s']:>12.3f} {gap:>12.1e}"
                )
            if "ls_note" in r:
                line += f"  lightsim2grid: {r['ls_note']}"
        if with_olf:
            if "olf_s" in r:
                gap = max(r.get("olf_dvm", np.nan), r.get("olf_dva", np.nan))
                line += (
                    f" {r['olf_s']:>8.5f} {r['olf_s'] / r['ai_s']:>6.2f} {r['olf_it']:>6}"
                    f" {gap:>11.1e}"
                )
            if "olf_note" in r:
                line += f"  OpenLoadFlow: {r['olf_note']}"
        print(line)
    print(
        "ratio = pandapower runpp s / aiguilleur s (> 1: aiguilleur faster); "
        "pp core = pandapower's own timer of DC start + Ybus + NR + pfsoln"
    )
    if with_lightsim and any("ls_algo" in r for r in rows):
        algo = next(r["ls_algo"] for r in rows if "ls_algo" in r)
        print(
            f"ls2g = lightsim2grid {algo}: forced Ybus rebuild + dc_pf + ac_pf per run; "
            "its model build from the pandapower net is timed apart"
        )
    if with_olf and any("olf_s" in r for r in rows):
        import pypowsybl

        print(
            f"OLF = OpenLoadFlow through pypowsybl {pypowsybl.__version__}: run_ac on "
            "to_pypowsybl(net) with openloadflow_parameters (network build not timed; "
            "pypowsybl's own conversion and result write-back are in the time)"
        )


def profile_case(path: Path, top: int) -> None:
    net = scaled_dispatch(read_matpower(path))
    opts = PowerFlowOptions(tolerance_pu=TOL_PU, max_iter=MAX_ITER, init="dc")
    ac_power_flow(net, opts)  # warm caches (cached_property lookups)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(5):
        ac_power_flow(net, opts)
    prof.disable()
    print(f"cProfile of 5 x ac_power_flow on {path.stem} (cumulative, then own time):")
    st = pstats.Stats(prof)
    st.strip_dirs().sort_stats("cumulative").print_stats(top)
    st.sort_stats("tottime").print_stats(top)


def machine() -> str:
    import numpy
    import scipy

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    parts = [f"{cpu}, {os.cpu_count()} CPUs", f"Python {platform.python_version()}"]
    parts += [f"numpy {numpy.__version__}", f"scipy {scipy.__version__}"]
    for mod in ("pandapower", "numba", "lightsim2grid", "pypowsybl"):
        try:
            parts.append(f"{mod} {__import__(mod).__version__}")
        except Exception:
            parts.append(f"{mod} absent")
    return "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases-dir", type=Path, default=DEFAULT_CASES_DIR)
    ap.add_argument("--cases", nargs="+", default=DEFAULT_CASES)
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per tool (best is kept)")
    ap.add_argument("--no-lightsim", action="store_true", help="skip lightsim2grid")
    ap.add_argument("--no-olf", action="store_true", help="skip OpenLoadFlow (pypowsybl)")
    ap.add_argument(
        "--profile", metavar="CASE", help="cProfile aiguilleur's ac_power_flow on CASE and exit"
    )
    ap.add_argument("--top", type=int, default=25, help="rows of the profile to print")
    args = ap.parse_args(argv)

    logging.disable(logging.WARNING)  # from_ppc logs about transformer voltage levels
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="lightsim2grid")

    if args.profile:
        profile_case(case_path(args.cases_dir, args.profile), args.top)
        return 0
    try:
        import pandapower  # noqa: F401
    except ImportError:
        sys.exit("pandapower is not installed: pip install -e '.[bench]'")
    with_lightsim = not args.no_lightsim
    if with_lightsim:
        try:
            import lightsim2grid  # noqa: F401
        except ImportError:
            with_lightsim = False
            print("lightsim2grid not installed: skipped")
    with_olf = not args.no_olf
    if with_olf:
        try:
            import pypowsybl  # noqa: F401
        except ImportError:
            with_olf = False
            print("pypowsybl not installed: OpenLoadFlow skipped (pip install -e '.[bench]')")
    print(machine())
    print(f"load average at start {os.getloadavg()[0]:.2f}")
    print(
        f"AC power flow, best of {args.repeat} interleaved rounds after one warm-up; point: "
        "scaled_dispatch (stored set-points scaled to the load); tol 1e-8 pu; DC start"
    )
    rows = []
    for name in args.cases:
        rows.append(
            bench_case(case_path(args.cases_dir, name), args.repeat, with_lightsim, with_olf)
        )
        print(f"  {name} done", file=sys.stderr, flush=True)
    print_table(rows, with_lightsim, with_olf)
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
