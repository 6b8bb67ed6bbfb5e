"""AC state estimation: aiguilleur against pandapower's WLS estimator, and gross-error trials.

On a PGLib case balanced with ``scaled_dispatch`` and solved by AC power flow
(the truth), ``simulate_measurements`` draws sets of redundancy about 2
(voltage magnitudes, P/Q injection pairs, P/Q flow pairs at branch ends;
sigma 0.004 pu and 1 MW/Mvar) with both meter placements: ``random`` (a
spanning tree's flows, then random sites) and ``redundant`` (meters where
they check one another, repaired until no reading is weak). For each, the
critical readings, near-critical ones and critical pairs are counted on the
AC model at the true state. Transformers with charging susceptance have it
set to zero: pandapower models it as bus shunts outside the flow, MATPOWER
and aiguilleur inside it, so their end flows would differ.

1. Same problem on both sides, best-of-N, interleaved: weighted least squares
   from the same start rules, tolerance 1e-8 (pandapower
   ``estimate(algorithm="wls")``, aiguilleur ``bad_data=False``); zero
   injections unused on the random placement, given to both as readings of
   0 with sigma 1e-3 pu on the redundant one (which meters no bus that has
   nothing connected). aiguilleur is timed with its structure kept between
   calls (the usual case: same grid, same meters, new values), rebuilt at
   every call (a first call), and without qdldl (SuperLU only); then its
   default (zero injections as exact constraints and the bad-data tests with
   normalised residuals). The largest voltage differences between the two
   estimates are printed.
2. Gross-error trials: each trial draws fresh noise, adds +-20 sigma to one
   reading chosen at random and runs aiguilleur's default estimator; a trial
   counts as identified when that reading is among the rejected ones. Good
   readings rejected are counted over all trials. The other outcomes are
   counted apart: the reading named among suspects (a critical pair: the
   error is seen but cannot be placed), critical readings (no residual
   variance: no method can see their errors), near-critical ones.

Run from the repository root::

    .venv/bin/python benchmarks/bench_estimation.py
    .venv/bin/python benchmarks/bench_estimation.py --case case118_ieee --trials 200
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from aiguilleur.grid.estimation import (
    EstimationOptions,
    Measurements,
    SimulationOptions,
    estimate_state,
    simulate_measurements,
)
from aiguilleur.grid.matpower import read_matpower
from aiguilleur.grid.network import Network
from aiguilleur.grid.operating_point import scaled_dispatch
from aiguilleur.grid.powerflow import ac_power_flow

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CASES_DIR = REPO / ".." / "shared" / "data" / "pglib-opf" / "cases"


def case_path(cases_dir: Path, name: str) -> Path:
    stem = name if name.startswith("pglib_opf_") else f"pglib_opf_{name}"
    path = cases_dir / f"{stem}.m"
    if path.is_file():
        return path
    from aiguilleur.data import bundled_case_path

    return bundled_case_path(name)


def best_of(fns: dict[str, Callable[[], Any]], repeat: int) -> dict[str, float]:
    """Best wall time of each function, taking turns within every round (after a warm-up)."""
    for fn in fns.values():
        fn()
    best = {k: float("inf") for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t)
    return best


def pandapower_net(net: Network, meas: Measurements) -> Any:
    import pandapower as pp

    from aiguilleur.grid.pandapower_io import to_pandapower

    ppn = to_pandapower(net)
    trafo = np.zeros(net.n_branch, dtype=bool)
    trafo[ppn.trafo.index.values] = True
    rows = meas.rows(net)
    bus_pp = net.bus.bus_id - 1
    for k, v, s, r in zip(meas.kind.tolist(), meas.value, meas.sigma, rows.tolist(), strict=True):
        if k == "vm":
            pp.create_measurement(ppn, "v", "bus", v, s, int(bus_pp[r]))
        elif k in ("p_inj", "q_inj"):  # pandapower counts bus power positive when consumed
            pp.create_measurement(ppn, k[0], "bus", -v, s, int(bus_pp[r]))
        else:
            end = k.split("_")[1]
            side = ("hv" if end == "from" else "lv") if trafo[r] else end
            pp.create_measurement(
                ppn, k[0], "trafo" if trafo[r] else "line", v, s, int(r), side=side
            )
    return ppn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases-dir", type=Path, default=DEFAULT_CASES_DIR)
    ap.add_argument("--case", default="case1888_rte")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--redundancy", type=float, default=2.0)
    ap.add_argument(
        "--placement",
        choices=("both", "random", "redundant"),
        default="both",
        help="meter placement of simulate_measurements (default: both, random first)",
    )
    args = ap.parse_args()
    if args.repeat < 1 or args.trials < 0:
        sys.exit("--repeat must be >= 1 and --trials >= 0")
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, {platform.machine()}")
    net = scaled_dispatch(read_matpower(case_path(args.cases_dir, args.case)))
    try:
        from aiguilleur.grid.pandapower_io import to_pandapower

        tr = to_pandapower(net).trafo.index.values
        charged = np.zeros(net.n_branch, dtype=bool)
        charged[tr] = net.branch.b_pu[tr] != 0
        have_pp = True
    except ImportError:
        charged = np.zeros(net.n_branch, dtype=bool)
        have_pp = False
    if charged.any():
        b_pu = np.where(charged, 0.0, net.branch.b_pu)
        net = net.replace(branch=dataclasses.replace(net.branch, b_pu=b_pu))
        print(f"transformer charging set to zero on {int(charged.sum())} branches")
    pf = ac_power_flow(net)
    assert pf.converged
    placements = ["random", "redundant"] if args.placement == "both" else [args.placement]
    sets: dict[str, Measurements] = {}
    for placement in placements:
        opts = SimulationOptions(redundancy=args.redundancy, placement=placement)
        t = time.perf_counter()
        sets[placement] = simulate_measurements(net, pf, opts, seed=args.seed)
        dt = time.perf_counter() - t
        meas = sets[placement]
        n_state = 2 * net.n_bus - 1
        s_ii, rho = redundancy_of(net, pf, meas)
        print(
            f"{net.name}, {placement} placement ({dt:.1f} s to draw): {net.n_bus} buses, "
            f"{net.n_branch} branches, {len(meas)} readings, redundancy "
            f"{len(meas) / n_state:.2f} ({n_state} states); critical readings "
            f"{int(np.sum(s_ii < 1e-6))}, near-critical (residual variance < 0.25 of the "
            f"reading's) {int(np.sum((s_ii >= 1e-6) & (s_ii < 0.25)))}, in a critical pair "
            f"(residual correlation > 0.99) {int(np.sum(rho > 0.99))}, correlation > 0.9 "
            f"{int(np.sum(rho > 0.9))}"
        )
    for placement, meas in sets.items():
        print(f"-- {placement} placement")
        # the redundant placement leaves zero-injection buses unmetered (nothing to meter
        # there): both estimators are then given them, as readings of 0 with sigma 1e-3 pu
        timing(net, meas, args.repeat, have_pp, zero_inj=placement == "redundant")
        if args.trials:
            trials(net, meas, args.trials, args.seed)


def redundancy_of(net: Network, pf: Any, meas: Measurements) -> tuple[Any, Any]:
    """Residual variance share and largest residual correlation per reading (the AC model
    at the true state, zero injections known, as the default estimator has them)."""
    from aiguilleur.grid._estimation import KINDS
    from aiguilleur.grid.measurements import _residual_redundancy

    code = {k: i for i, k in enumerate(KINDS)}
    kind = np.array([code[str(k)] for k in meas.kind.tolist()], dtype=np.int64)
    sig = np.where(kind == 0, meas.sigma, meas.sigma / net.base_mva)
    v = pf.vm_pu * np.exp(1j * np.deg2rad(pf.va_deg))
    return _residual_redundancy(net, v, kind, meas.rows(net), sig)


def zero_injection_buses(net: Network) -> Any:
    has_gen = np.zeros(net.n_bus, dtype=bool)
    has_gen[net.gen_bus[net.gen.in_service == 1]] = True
    return np.flatnonzero(~has_gen & (net.bus.pd_mw == 0.0) & (net.bus.qd_mvar == 0.0))


def timing(net: Network, meas: Measurements, repeat: int, have_pp: bool, zero_inj: bool) -> None:
    import aiguilleur.grid.estimation as est

    if zero_inj:
        same = EstimationOptions(zero_injection="virtual", virtual_sigma_pu=1e-3, bad_data=False)
        zi_pp: Any = [int(net.bus.bus_id[b] - 1) for b in zero_injection_buses(net)]
    else:
        same = EstimationOptions(zero_injection="none", bad_data=False)
        zi_pp = None
    print(
        f"same problem: zero injections {'as readings (sigma 1e-3 pu)' if zero_inj else 'unused'}"
    )
    full = EstimationOptions()
    res_same = estimate_state(net, meas, same)
    res_full = estimate_state(net, meas, full)
    print(
        f"aiguilleur: {res_same.status} in {res_same.iterations} iterations (same problem); "
        f"default: {res_full.status}, {res_full.iterations} iterations, "
        f"{len(res_full.bad_data)} rejected, J {res_full.objective:.1f} / "
        f"threshold {res_full.chi2_threshold:.1f}"
    )
    ldl = est._qdldl

    def cold() -> Any:
        est._STRUCTURES.clear()  # the network and meter structure rebuilt, as on a first call
        return estimate_state(net, meas, same)

    def superlu_warm() -> Any:
        est._qdldl = None
        try:
            return estimate_state(net, meas, same)
        finally:
            est._qdldl = ldl

    fns: dict[str, Callable[[], Any]] = {
        "aiguilleur WLS": lambda: estimate_state(net, meas, same),
        "aiguilleur WLS, structure rebuilt (first call)": cold,
        "aiguilleur default (zero injections + bad-data tests)": lambda: estimate_state(
            net, meas, full
        ),
    }
    if ldl is not None:
        fns["aiguilleur WLS, SuperLU only (no qdldl)"] = superlu_warm
    if have_pp:
        from pandapower.estimation import estimate

        ppn = pandapower_net(net, meas)
        logging.disable(logging.WARNING)
        warnings.simplefilter("ignore")

        def run_pp() -> Any:
            return estimate(
                ppn,
                algorithm="wls",
                init="flat",
                tolerance=1e-8,
                maximum_iterations=50,
                zero_injection=zi_pp,
            )

        fns["pandapower estimate(wls)"] = run_pp
    load0 = os.getloadavg()
    best = best_of(fns, repeat)
    load1 = os.getloadavg()
    for k, t in best.items():
        print(f"  {k:55s} {t * 1000:9.1f} ms")
    if have_pp:
        out = run_pp()
        vm = ppn.res_bus_est.vm_pu.loc[net.bus.bus_id - 1].to_numpy()
        va = ppn.res_bus_est.va_degree.loc[net.bus.bus_id - 1].to_numpy()
        pp_t = best["pandapower estimate(wls)"]
        print(f"  pandapower converged: {out['success']}, {out['num_iterations']} iterations")
        for k in list(fns)[:2] + list(fns)[3:4]:
            if k in best and not k.startswith("pandapower"):
                print(f"  ratio pandapower / {k}: {pp_t / best[k]:.1f}x")
        # pandapower's slack keeps the angle stored in the case, aiguilleur's is 0 (as in
        # its power flow): compare angles relative to the reference bus
        ref = net.bus_index([res_same.reference_bus_ids[0]])[0]
        dva = np.deg2rad((va - va[ref]) - (res_same.va_deg - res_same.va_deg[ref]))
        print(
            f"  max |dVm| {np.max(np.abs(vm - res_same.vm_pu)):.2e} pu, "
            f"max |dVa| {np.max(np.abs(dva)):.2e} rad (relative to the reference bus)"
        )
    print(f"  load average {load0[0]:.2f} before, {load1[0]:.2f} after (1 min)")


def trials(net: Network, meas: Measurements, n_trials: int, seed: int) -> None:
    full = EstimationOptions()
    rng = np.random.default_rng(seed + 1000)
    assert meas.true_value is not None
    hits = named = critical = near = wrong = false = good_total = 0
    times: list[float] = []
    load0 = os.getloadavg()
    for _ in range(n_trials):
        noisy = meas.true_value + meas.sigma * rng.standard_normal(len(meas))
        i = int(rng.integers(len(meas)))
        noisy[i] += 20.0 * meas.sigma[i] * rng.choice([-1.0, 1.0])
        t = time.perf_counter()
        res = estimate_state(net, meas.with_values(noisy), full)
        times.append(time.perf_counter() - t)
        bad = str(meas.id[i])
        rejected = {m for m, _ in res.bad_data}
        good_total += len(meas) - 1
        false += len(rejected - {bad})
        if bad in rejected:
            hits += 1
        elif bad in res.suspect_measurements:
            named += 1  # detected; among perfectly correlated readings, named as suspects
        else:
            check = estimate_state(net, meas.with_values(noisy), EstimationOptions(max_removals=0))
            rn = check.normalized_residual[i]
            if np.isnan(rn):
                critical += 1  # no residual variance: no method can see this error
            elif rn < 0.5 * 20.0:
                near += 1  # residual variance below a quarter of the reading's: mostly hidden
            else:
                wrong += 1
    load1 = os.getloadavg()
    n = n_trials
    print(f"gross errors of 20 sigma, {n} trials (one error each, fresh noise per trial):")
    print(f"  identified and removed: {hits}/{n} = {100 * hits / n:.1f} %")
    print(
        f"  detected, not identifiable, reading named among the suspects: {named}; "
        f"detected or identified: {100 * (hits + named) / n:.1f} %"
    )
    print(
        f"  missed: {critical} critical readings (error invisible), {near} near-critical "
        f"(normalised residual < 10 for a 20-sigma error), {wrong} other"
    )
    print(f"  good readings rejected: {false} of {good_total} = {100 * false / good_total:.4f} %")
    print(
        f"  time per trial: median {1000 * float(np.median(times)):.0f} ms, "
        f"max {1000 * max(times):.0f} ms"
    )
    print(f"  load average {load0[0]:.2f} before, {load1[0]:.2f} after (1 min)")


if __name__ == "__main__":
    main()
