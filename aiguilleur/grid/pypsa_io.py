"""Export a network to PyPSA in PowerModels' DC model (the model of PGLib's DC references).

PyPSA is an optional dependency (the ``bench`` extra), imported inside the function
only. The export serves cross-checks of :func:`aiguilleur.grid.dc_opf` against
PyPSA's linear optimal power flow.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aiguilleur.errors import ValidationError
from aiguilleur.grid._checks import check_network
from aiguilleur.grid.network import Network

__all__ = ["to_pypsa"]


def to_pypsa(net: Network) -> tuple[Any, float]:
    """A PyPSA network of ``net`` for a linear OPF, and the constant cost ($/h).

    Every in-service branch becomes a line with x_eff = (r^2 + x^2) / x, so that
    1 / x_eff is PowerModels' series susceptance, on a 1 kV / 1 MVA footing
    (transformers included: that model ignores taps and phase shifts); a branch
    with x = 0 carries no DC flow. Bus shunt conductance counts as load.
    PyPSA has no angle-difference limits: compare with
    ``DCOPFOptions(enforce_angle_limits=False)``. PyPSA adds no constant to its
    objective: add the returned constant cost to compare objectives.

    Raises
    ------
    ValidationError
        When PyPSA is not installed or the network has no generator costs.
    """

    check_network(net, "to_pypsa")
    try:
        import pypsa
    except ImportError:
        raise ValidationError("pypsa is not installed: pip install 'aiguilleur[bench]'") from None
    if net.gencost is None:
        raise ValidationError(f"{net.name}: no generator costs to optimise")
    base = net.base_mva
    n = pypsa.Network()
    names = [str(int(b)) for b in net.bus.bus_id]
    n.add("Bus", names, v_nom=1.0)
    br = net.branch
    idx = np.flatnonzero(br.in_service == 1)
    x_eff = (br.r_pu**2 + br.x_pu**2) / np.where(br.x_pu != 0, br.x_pu, np.inf)
    x_eff = np.where(br.x_pu != 0, x_eff, 1e9)  # a pure resistance carries no DC flow
    n.add(
        "Line",
        [f"L{k}" for k in idx],
        bus0=[names[i] for i in net.branch_from[idx]],
        bus1=[names[i] for i in net.branch_to[idx]],
        x=x_eff[idx] / base,
        r=0.0,
        s_nom=np.where(br.rate_a_mva[idx] > 0, br.rate_a_mva[idx], 1e9),
    )
    g = np.flatnonzero(net.gen.in_service == 1)
    cost = net.gencost.polynomial(net.n_gen)[g]
    pmax, pmin = net.gen.pmax_mw[g], net.gen.pmin_mw[g]
    pnom = np.maximum(np.abs(pmax), np.abs(pmin))
    pnom = np.where(pnom > 0, pnom, 1.0)
    extra: dict[str, Any] = {}
    if np.any(cost[:, 0] != 0):
        extra["marginal_cost_quadratic"] = cost[:, 0]
    n.add(
        "Generator",
        [f"G{k}" for k in g],
        bus=[names[i] for i in net.gen_bus[g]],
        p_nom=pnom,
        p_max_pu=pmax / pnom,
        p_min_pu=pmin / pnom,
        marginal_cost=cost[:, 1],
        **extra,
    )
    demand = net.bus.pd_mw + net.bus.gs_mw
    ld = np.flatnonzero(demand != 0)
    n.add("Load", [f"D{k}" for k in ld], bus=[names[i] for i in ld], p_set=demand[ld])
    return n, float(np.sum(cost[:, 2]))
