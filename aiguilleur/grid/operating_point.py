"""Operating points: generator set-points that balance the load.

PGLib-OPF cases store set-points that do not match their load (case1888_rte is
about 2 GW short); a power flow of such a point loads the whole imbalance on
the slack. :func:`scaled_dispatch` gives a balanced point by scaling the
stored set-points to the load, within each unit's limits.
"""

from __future__ import annotations

import numpy as np

from aiguilleur.errors import InfeasibleError, ValidationError
from aiguilleur.grid._checks import check_network
from aiguilleur.grid.network import Network

__all__ = ["scaled_dispatch"]


def scaled_dispatch(net: Network, losses_pct: float = 0.0) -> Network:
    """A copy of ``net`` whose in-service generators cover load plus losses.

    Set-points are scaled by one common factor, then units that hit Pmin or
    Pmax are held there and the rest rescaled, until the total matches
    ``load + shunt conductance`` times ``1 + losses_pct / 100``. Units with a
    zero set-point are scaled from their Pmax instead when every stored
    set-point is zero.

    Raises
    ------
    InfeasibleError
        When the target lies outside the sum of Pmin or of Pmax in service.
    """
    check_network(net, "scaled_dispatch", solve=True)
    if (
        isinstance(losses_pct, bool)
        or not isinstance(losses_pct, (int, float))
        or not 0 <= losses_pct < 100
    ):
        raise ValidationError(
            f"scaled_dispatch: losses_pct must be in [0, 100), got {losses_pct!r}"
        )
    g = net.gen
    on = g.in_service == 1
    target = float(np.sum(net.bus.pd_mw) + np.sum(net.bus.gs_mw)) * (1.0 + losses_pct / 100.0)
    pmin = np.where(on, g.pmin_mw, 0.0)
    pmax = np.where(on, g.pmax_mw, 0.0)
    if target > pmax.sum() + 1e-9 or target < pmin.sum() - 1e-9:
        raise InfeasibleError(
            f"{net.name}: load {target:.1f} MW lies outside the in-service range "
            f"[{pmin.sum():.1f}, {pmax.sum():.1f}] MW"
        )
    base = np.where(on, g.pg_mw, 0.0)
    if np.sum(np.abs(base)) == 0.0:
        base = pmax.copy()
    pg = np.clip(base, pmin, pmax)
    free = on.copy()
    for _ in range(net.n_gen + 1):
        fixed_sum = float(np.sum(pg[~free]))
        free_base = float(np.sum(base[free]))
        if free_base <= 0:
            break
        factor = (target - fixed_sum) / free_base
        trial = np.where(free, base * factor, pg)
        over = free & (trial > pmax)
        under = free & (trial < pmin)
        if not (over.any() or under.any()):
            pg = trial
            break
        pg = np.where(over, pmax, np.where(under, pmin, trial))
        free = free & ~over & ~under
    # any rounding left is spread over the units with headroom
    gap = target - float(pg.sum())
    if abs(gap) > 1e-9:
        room = np.where(gap > 0, pmax - pg, pg - pmin)
        room = np.where(on, np.maximum(room, 0.0), 0.0)
        if room.sum() > 0:
            pg = pg + np.sign(gap) * room * min(1.0, abs(gap) / room.sum())
    return net.with_dispatch(np.where(on, pg, g.pg_mw))
