"""Independent DC references built with PYPOWER's PTDF and LODF (not aiguilleur's)."""

from __future__ import annotations

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
