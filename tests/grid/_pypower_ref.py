"""Independent DC references built with PYPOWER's PTDF and LODF (not aiguilleur's)."""

from __future__ import annotations

from typing import Any

import numpy as np

from aiguilleur.grid import Network


def pypower_arrays(net: Network, branch_on: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """PYPOWER bus and branch matrices (buses numbered 0..n-1 in the network's order)."""
    nb, nl = net.n_bus, net.n_branch
    bus = np.zeros((nb, 13))
    bus[:, 0] = np.arange(nb)
    bus[:, 1] = net.bus.bus_type
    bus[:, 2] = net.bus.pd_mw
    bus[:, 4] = net.bus.gs_mw
    bus[:, 7] = 1.0
    br = np.zeros((nl, 13))
    br[:, 0] = net.branch_from
    br[:, 1] = net.branch_to
    br[:, 2] = net.branch.r_pu
    br[:, 3] = net.branch.x_pu
    br[:, 5] = net.branch.rate_a_mva
    br[:, 8] = net.branch.tap_ratio
    br[:, 9] = net.branch.shift_deg
    on = (net.branch.in_service == 1) if branch_on is None else branch_on
    br[:, 10] = on.astype(float)
    return bus, br


def ptdf_lodf(net: Network, branch_on: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    from pypower.makeLODF import makeLODF
    from pypower.makePTDF import makePTDF

    bus, br = pypower_arrays(net, branch_on)
    slack = int(np.flatnonzero(net.bus.bus_type == 3)[0])
    h = makePTDF(net.base_mva, bus, br, slack)
    with np.errstate(divide="ignore", invalid="ignore"):  # bridges: 1 - H_kk = 0
        lodf = makeLODF(br, h)
    return h, lodf


def extensive_sced(net: Network, factor: float) -> tuple[Any, float | None]:
    """min c'pg over every base and post-outage flow limit, all written out (m x m rows).

    The anchor of the SCED: PYPOWER's PTDF and LODF, one dense LP (scipy's HiGHS),
    linear costs. Returns scipy's result and the objective (None unless solved).
    """
    from scipy.optimize import linprog

    h, lodf = ptdf_lodf(net)
    on = net.branch.in_service == 1
    gens = np.flatnonzero(net.gen.in_service == 1)
    gc = net.gencost
    c1 = gc.params[gens, gc.ncost[gens] - 2]
    c0 = gc.params[gens, gc.ncost[gens] - 1]
    nb = net.n_bus
    cg = np.zeros((nb, gens.size))
    cg[net.gen_bus[gens], np.arange(gens.size)] = 1.0
    pd = (net.bus.pd_mw + net.bus.gs_mw) / net.base_mva
    rate = net.branch.rate_a_mva / net.base_mva
    mon = np.flatnonzero(on & (rate > 0))
    a_base = h[mon] @ cg
    b_base = h[mon] @ pd
    rows, rhs = [a_base, -a_base], [rate[mon] + b_base, rate[mon] - b_base]
    bridge = np.abs(1.0 - np.einsum("kk->k", h[:, net.branch_from] - h[:, net.branch_to])) < 1e-8
    for k in np.flatnonzero(on & ~bridge):
        post = h[mon] + lodf[mon, k][:, None] * h[k][None, :]
        keep = mon != k
        a = (post @ cg)[keep]
        b = (post @ pd)[keep]
        lim = factor * rate[mon][keep]
        rows += [a, -a]
        rhs += [lim + b, lim - b]
    res = linprog(
        c1 * net.base_mva,
        A_ub=np.vstack(rows),
        b_ub=np.concatenate(rhs),
        A_eq=np.ones((1, gens.size)),
        b_eq=[pd.sum()],
        bounds=list(
            zip(
                net.gen.pmin_mw[gens] / net.base_mva,
                net.gen.pmax_mw[gens] / net.base_mva,
                strict=True,
            )
        ),
        method="highs",
    )
    return res, res.fun + c0.sum() if res.status == 0 else None
