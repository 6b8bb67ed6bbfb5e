"""Energy decisions: preventive N-1 SCED, corrective redispatch and unit commitment, timed.

1. SCED by constraint generation (LODF rows added only where violated), against
   the anchor an operator would write first: the extensive form with every
   (outage, branch) limit written out on PYPOWER's PTDF/LODF and solved by
   HiGHS (through scipy), on the cases where that fits in memory. On
   case1888_rte (target under 5 s) ours runs alone: its extensive form has
   ~4 million dense rows.
2. Corrective redispatch on case1888_rte from the DC-OPF dispatch, for every
   non-islanding single-branch outage: the plan from the compiled
   :class:`Redispatcher` (warm basis; targets: median under 50 ms, 95th
   percentile under 200 ms, event to plan), against re-solving the post-outage
   DC-OPF with load shedding from scratch (build + cold solve) on a sample.
3. Unit commitment on case118 (24 h, with and without the network) and
   case1888_rte (24 h, copper plate): time and MIP gap reached.

Run from the repository root::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_dispatch.py
    .venv/bin/python benchmarks/bench_dispatch.py --only redispatch --sample 200
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from aiguilleur.grid import DCOPFOptions, dc_opf, read_matpower
from aiguilleur.grid.commitment import CommitmentOptions, commit, synthetic_profile
from aiguilleur.grid.network import Network
from aiguilleur.grid.redispatch import Outage, Redispatcher
from aiguilleur.grid.security import SCEDOptions, sced

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / ".." / "shared" / "data" / "pglib-opf" / "cases"


def load(name: str, cases_dir: Path) -> Network:
    path = cases_dir / f"pglib_opf_{name}.m"
    if path.is_file():
        return read_matpower(path)
    from aiguilleur.data import bundled_case_path

    try:
        return read_matpower(bundled_case_path(name))
    except Exception:
        sys.exit(f"case {name}: not in {cases_dir} and not bundled")


def extensive_sced(net: Network, factor: float) -> tuple[float, float, str]:
    """Every post-outage limit written out (PYPOWER PTDF/LODF), one LP: (time, objective, status).

    The same reference the test suite checks :func:`sced` against
    (``tests/grid/_pypower_ref.py``).
    """
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.grid._pypower_ref import extensive_sced as reference

    t0 = time.perf_counter()
    res, obj = reference(net, factor)
    status = {0: "optimal", 2: "infeasible"}.get(res.status, "error")
    return time.perf_counter() - t0, float("nan") if obj is None else float(obj), status


def bench_sced(args: argparse.Namespace) -> None:
    print("\n== Preventive N-1 SCED (constraint generation with LODFs)")
    head = (
        f"{'case':<18}{'factor':>7} {'status':<9}{'objective':>14}{'sec. cost':>11}{'rounds':>7}"
        f"{'rows added':>11}{'ours s':>8}{'extensive s':>12}{'ext. status':>12}{'speed-up':>9}"
        "  shed"
    )
    print(head)
    print("-" * len(head))
    runs = [
        ("case118_ieee", True, None),
        ("case300_ieee", True, None),
        ("case1888_rte", False, None),
        ("case1888_rte", False, 10_000.0),
    ]
    for name, ext, voll in runs:
        net = load(name, args.cases_dir)
        for factor in (1.2, 1.5):
            opts = SCEDOptions(
                dcopf=DCOPFOptions(
                    model="matpower", enforce_angle_limits=False, voll_eur_per_mwh=voll
                ),
                emergency_rating="a",
                emergency_factor=factor,
            )
            best = np.inf
            for _ in range(args.repeat):
                t = time.perf_counter()
                r = sced(net, opts)
                best = min(best, time.perf_counter() - t)
            te, oe, se = (np.nan, np.nan, "-")
            if ext and args.extensive:
                te, oe, se = extensive_sced(net, factor)
                if se == "optimal" and r.status == "optimal":
                    assert abs(oe - r.objective) <= 1e-6 * abs(oe), (oe, r.objective)
            label = name if voll is None else f"{name}+VOLL"
            print(
                f"{label:<18}{factor:>7.1f} {r.status:<9}{r.objective:>14.2f}"
                f"{r.security_cost:>11.2f}{r.rounds:>7}{r.constraints_added:>11}{best:>8.2f}"
                f"{te:>12.2f}{se:>12}{(te / best if np.isfinite(te) else np.nan):>8.1f}x"
                f"  shed {r.dispatch.total_shed_mw:.1f} MW",
                flush=True,
            )


def bench_redispatch(args: argparse.Namespace) -> None:
    print("\n== Corrective redispatch on case1888_rte, every non-islanding branch outage")
    net = load("case1888_rte", args.cases_dir)
    pg = dc_opf(net).pg_mw
    t = time.perf_counter()
    rd = Redispatcher(net, pg)
    compile_s = time.perf_counter() - t
    from aiguilleur.grid.sensitivity import DCModel

    bridge = DCModel.build(net).bridge
    outages = np.flatnonzero((net.branch.in_service == 1) & ~bridge)
    times, shed, statuses = [], 0, {}
    for k in outages:
        t = time.perf_counter()
        res = rd.solve([Outage("branch", int(k))])
        times.append(time.perf_counter() - t)
        shed += res.total_shed_mw > 0
        statuses[res.status] = statuses.get(res.status, 0) + 1
    ms = np.array(times) * 1e3
    print(
        f"compile {compile_s * 1e3:.0f} ms once; {outages.size} outages: median "
        f"{np.median(ms):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms, max {ms.max():.1f} ms "
        f"(event to plan, explanations included); statuses {statuses}; {shed} plans shed load"
    )
    rng = np.random.default_rng(1)
    sample = rng.choice(outages, size=min(args.sample, outages.size), replace=False)
    cold = []
    opts = DCOPFOptions(voll_eur_per_mwh=10_000.0)
    for k in sample:
        post = net.with_branch_status(int(k), 0)
        t = time.perf_counter()
        dc_opf(post, opts)
        cold.append(time.perf_counter() - t)
    cm = np.array(cold) * 1e3
    ours = ms[np.searchsorted(outages, sample)]
    print(
        f"anchor, post-outage DC-OPF with shedding from scratch on {sample.size} of them: median "
        f"{np.median(cm):.1f} ms (ours on the same outages {np.median(ours):.1f} ms: "
        f"{np.median(cm) / np.median(ours):.1f}x)"
    )


def bench_commit(args: argparse.Namespace) -> None:
    print("\n== Unit commitment, 24 hourly steps, synthetic profile from the case's loads")
    for name, network in (("case118_ieee", False), ("case118_ieee", True), ("case1888_rte", False)):
        net = load(name, args.cases_dir)
        prof = synthetic_profile(net, hours=24)
        opts = CommitmentOptions(network=network, mip_gap=1e-3, time_limit_s=args.time_limit)
        r = commit(net, prof, options=opts)
        print(
            f"{name:<16} network={'yes' if network else 'no ':<4} {r.status:<11} cost "
            f"{r.objective:>14,.0f}  gap {100 * r.mip_gap:.3f} %  {r.binaries:>6} binaries "
            f"{r.rows:>7} rows  {r.time_s:6.2f} s  starts {int(r.startups.sum())}",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases-dir", type=Path, default=SHARED)
    ap.add_argument("--only", choices=["sced", "redispatch", "commit"], nargs="*")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sample", type=int, default=100, help="outages for the cold anchor")
    ap.add_argument("--time-limit", type=float, default=120.0, help="UC time limit, s")
    ap.add_argument("--no-extensive", dest="extensive", action="store_false")
    args = ap.parse_args()
    blas = os.environ.get("OPENBLAS_NUM_THREADS")
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, OPENBLAS_NUM_THREADS={blas}"
    )
    parts = args.only or ["sced", "redispatch", "commit"]
    if "sced" in parts:
        bench_sced(args)
    if "redispatch" in parts:
        bench_redispatch(args)
    if "commit" in parts:
        bench_commit(args)


if __name__ == "__main__":
    main()
