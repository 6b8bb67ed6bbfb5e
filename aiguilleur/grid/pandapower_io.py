"""Exchange networks with pandapower, keeping MATPOWER's power-flow semantics.

:func:`to_pandapower` builds a pandapower net whose Newton-Raphson power flow
gives the same voltages as MATPOWER's ``runpf`` on the same case; and
:func:`from_pandapower` reads a pandapower net back into a :class:`Network`.
pandapower is an optional dependency (the ``dev`` extra): it is imported inside
the functions only, never when aiguilleur is imported.

Why not ``pandapower.converter.from_ppc``
-----------------------------------------
pandapower's own MATPOWER/PYPOWER converter (3.5.6) does not reproduce
MATPOWER's power flow on many PGLib cases; the exporter here builds the
elements itself instead:

* a transformer whose to-bus has the higher base kV becomes a pandapower
  transformer with its high-voltage side, and so its tap, at MATPOWER's
  to-bus, while MATPOWER puts the tap at the from-bus;
* a transformer's charging susceptance ``b`` becomes a magnetising current,
  which pandapower always makes inductive, and which runs through a T model
  by default: a capacitive ``b > 0`` changes sign and ``b < 0`` is placed
  differently;
* the first generator of a bus decides its type: when that one is out of
  service the bus loses its voltage control, or the grid its slack (PGLib
  ``case1888_rte``, ``case500_goc``).

Mapping (MATPOWER -> pandapower)
--------------------------------
* Bus ``i`` -> ``net.bus`` index ``bus_id - 1`` (as pandapower's ``from_mpc``
  numbers them), ``vn_kv = base_kv`` (1 kV where the case gives 0, so that
  ohms stay finite; per-unit values do not depend on it), isolated buses
  (type 4) out of service. ``area`` is kept in an extra ``area`` column.
* ``pd_mw, qd_mvar`` -> one load per bus (negative demand stays a load);
  ``gs_mw, bs_mvar`` -> one shunt per bus.
* Generators keep their row as element index, spread over three tables by
  MATPOWER's bus-type rule (a PV or reference bus keeps its type only with a
  generator in service; with no reference bus the first PV bus becomes one):
  the first in-service generator of a reference bus -> ``ext_grid`` (its
  angle is the bus ``va_deg``); other generators at voltage-controlled buses
  -> ``gen``; generators at PQ buses -> ``sgen`` with their fixed ``P, Q``.
  The voltage set-point of a bus is the ``vg_pu`` of its last in-service
  generator, as in MATPOWER's ``runpf``.
* Branch row ``k`` -> ``line`` index ``k`` (``length_km = 1``, impedances in
  ohms on the from-bus base kV) or, when ``tap_ratio != 0`` or
  ``shift_deg != 0``, ``trafo`` index ``k`` with ``hv_bus`` = from-bus and
  ``lv_bus`` = to-bus, ``vn_hv_kv = base_kv(from) * tap``, no tap changer and
  no magnetising branch (a ``tap_ratio_zero`` column remembers a tap written
  as 0). A transformer's charging ``b`` goes into two shunts
  (``j b/2 / tap^2`` at the from-bus, ``j b/2`` at the to-bus: exactly
  MATPOWER's admittances) marked with the transformer in a
  ``charging_of_trafo`` column; :func:`from_pandapower` folds them back.
* ``rate_a_mva`` -> ``max_i_ka`` (lines) or ``sn_mva`` (transformers) at
  ``max_loading_percent = 100``; an unlimited branch (0) gets pandapower's
  ``99999`` and ``max_loading_percent = NaN``. ``rate_b_mva``,
  ``rate_c_mva``, ``angmin_deg``, ``angmax_deg`` have no pandapower field:
  they ride along in extra columns of the same names.
* Costs -> ``poly_cost`` (up to quadratic) and ``pwl_cost``.

What does not survive a round trip
----------------------------------
``Network -> to_pandapower -> from_pandapower`` keeps bus ids, loads, shunts,
generator set-points and limits, branch impedances, taps, shifts, ratings,
angle limits, statuses and polynomial costs (to within a few rounding
errors of the ohm conversions). Lost or normalised: the case header and
extra matrices (``areas``...); generator columns past the tenth (ramp
rates...); the row order of buses (they come back sorted by id); bus
``vm_pu`` and ``va_deg`` other than the set-points (pandapower starts from a
flat or previous solution); the bus type
of a PV bus without a generator in service (read back as PQ, which is what
MATPOWER does with it); ``base_kv = 0`` (read back as 1 kV); polynomial
costs come back with ``ncost = 3`` and piecewise-linear costs with the cost
at their first point equal to ``p * slope`` (pandapower keeps slopes only).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import numpy.typing as npt

from aiguilleur.errors import ValidationError
from aiguilleur.grid._checks import check_network
from aiguilleur.grid.network import (
    BranchTable,
    BusTable,
    GenCostTable,
    GenTable,
    Network,
)

__all__ = ["from_pandapower", "to_pandapower"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# pandapower's own stand-in for "no limit" (pandapower.converter.from_ppc).
_UNLIMITED = 99999.0
# Element tables that from_pandapower cannot express as MATPOWER data.
_UNSUPPORTED = (
    "trafo3w",
    "ward",
    "xward",
    "dcline",
    "storage",
    "motor",
    "asymmetric_load",
    "asymmetric_sgen",
    "svc",
    "ssc",
    "tcsc",
    "vsc",
    "line_dc",
    "bus_dc",
)
_GEN_TABLES = ("ext_grid", "gen", "sgen")
_BRANCH_TABLES = ("line", "trafo", "impedance")


def _import_pandapower() -> Any:
    try:
        import pandapower
    except ImportError:
        msg = "pandapower is not installed: pip install 'aiguilleur[dev]'"
        raise ValidationError(msg) from None
    return pandapower


# -- export -----------------------------------------------------------------------------
def _effective_bus_types(net: Network) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """MATPOWER's ``bustypes``: bus types as the power flow sees them.

    A PV or reference bus keeps its type only while one of its generators is
    in service; with no reference bus left, the first PV bus becomes one.
    Returns the types and the in-service mask of the generators (generators on
    isolated buses count as out of service, as MATPOWER's ``ext2int`` drops
    them).
    """
    btype = np.array(net.bus.bus_type)
    gbus = net.gen_bus
    on = (net.gen.in_service == 1) & (btype[gbus] != 4)
    n_on = np.bincount(gbus[on], minlength=net.n_bus)
    eff = np.where((btype == 4), 4, 1)
    eff[(btype == 3) & (n_on > 0)] = 3
    eff[(btype == 2) & (n_on > 0)] = 2
    if not np.any(eff == 3):
        pv = np.flatnonzero(eff == 2)
        if pv.size:
            eff[pv[0]] = 3
    return eff.astype(np.int64), on


def _voltage_setpoints(net: Network, on: npt.NDArray[np.bool_]) -> FloatArray:
    """Per-bus voltage set-point: the last in-service generator's ``vg_pu`` wins.

    That is MATPOWER's ``V0(gbus) = gen(on, VG)`` assignment, where a later row
    overwrites an earlier one at the same bus.
    """
    vset = np.ones(net.n_bus)
    rows = np.flatnonzero(on)
    vset[net.gen_bus[rows]] = net.gen.vg_pu[rows]  # numpy keeps the last duplicate too
    return vset


def to_pandapower(net: Network, *, f_hz: float = 50.0) -> Any:
    """Export a network to a pandapower net with the same power-flow solution.

    Parameters
    ----------
    net
        The network.
    f_hz
        Frequency of the pandapower net; only used to express line charging
        as a capacitance (the per-unit susceptance does not depend on it).

    Returns
    -------
    pandapower.auxiliary.pandapowerNet
        A new net; ``pandapower.runpp(pp_net, calculate_voltage_angles=True)``
        gives MATPOWER's solution. The mapping and what does not survive a
        round trip are described in the module docstring.

    Raises
    ------
    ValidationError
        When pandapower is missing, or a polynomial cost has an order above 2
        (pandapower's ``poly_cost`` stops at quadratic terms).
    """

    check_network(net, "to_pandapower")
    pp = _import_pandapower()
    if not (np.isfinite(f_hz) and f_hz > 0):
        raise ValidationError(f"f_hz: expected a positive frequency, got {f_hz}")
    base = net.base_mva
    bus, gen, br = net.bus, net.gen, net.branch
    out = pp.create_empty_network(name=net.name, f_hz=f_hz, sn_mva=base)

    # -- buses, loads, shunts
    kv = np.where(bus.base_kv > 0, bus.base_kv, 1.0)
    pp_bus = bus.bus_id - 1
    pp.create_buses(
        out,
        net.n_bus,
        vn_kv=kv,
        index=pp_bus,
        zone=bus.zone,
        in_service=bus.bus_type != 4,
        max_vm_pu=bus.vmax_pu,
        min_vm_pu=bus.vmin_pu,
        type="b",
    )
    out.bus["area"] = np.asarray(bus.area)
    has_load = (bus.pd_mw != 0) | (bus.qd_mvar != 0)
    if np.any(has_load):
        pp.create_loads(
            out, pp_bus[has_load], p_mw=bus.pd_mw[has_load], q_mvar=bus.qd_mvar[has_load]
        )
    has_shunt = (bus.gs_mw != 0) | (bus.bs_mvar != 0)
    sh_bus = [pp_bus[has_shunt]]
    sh_p = [bus.gs_mw[has_shunt]]
    sh_q = [-bus.bs_mvar[has_shunt]]
    sh_kv = [kv[has_shunt]]
    sh_on = [np.ones(int(has_shunt.sum()), dtype=bool)]
    sh_tag = [np.full(int(has_shunt.sum()), np.nan)]

    # -- generators
    eff, on = _effective_bus_types(net)
    vset = _voltage_setpoints(net, on)
    gbus = net.gen_bus
    # The slack of a reference bus is its first in-service generator: MATPOWER's
    # pfsoln gives that one the slack power.
    is_eg = np.zeros(net.n_gen, dtype=bool)
    for ref_bus in np.flatnonzero(eff == 3):
        is_eg[np.flatnonzero(on & (gbus == ref_bus))[0]] = True
    is_gen = ~is_eg & np.isin(eff[gbus], (2, 3))
    is_sgen = ~is_eg & ~is_gen
    # In-service units at one bus must agree on the set-point (pandapower refuses
    # otherwise); out-of-service ones keep their own.
    vg = np.where(on, vset[gbus], gen.vg_pu)
    for row in np.flatnonzero(is_eg):
        b = int(gbus[row])
        pp.create_ext_grid(
            out,
            bus=int(pp_bus[b]),
            vm_pu=float(vset[b]),
            va_degree=float(bus.va_deg[b]),
            in_service=True,
            max_p_mw=float(gen.pmax_mw[row]),
            min_p_mw=float(gen.pmin_mw[row]),
            max_q_mvar=float(gen.qmax_mvar[row]),
            min_q_mvar=float(gen.qmin_mvar[row]),
            index=int(row),
        )
    if np.any(is_eg):
        # pandapower's ext_grid has no set-point or machine base: keep them for
        # the way back (pandapower ignores unknown columns).
        rows = out.ext_grid.index.to_numpy()
        out.ext_grid["p_mw"] = gen.pg_mw[rows]
        out.ext_grid["q_mvar"] = gen.qg_mvar[rows]
        out.ext_grid["sn_mva"] = gen.mbase_mva[rows]
    if np.any(is_gen):
        rows = np.flatnonzero(is_gen)
        pp.create_gens(
            out,
            pp_bus[gbus[rows]],
            p_mw=gen.pg_mw[rows],
            vm_pu=vg[rows],
            sn_mva=gen.mbase_mva[rows],
            max_p_mw=gen.pmax_mw[rows],
            min_p_mw=gen.pmin_mw[rows],
            max_q_mvar=gen.qmax_mvar[rows],
            min_q_mvar=gen.qmin_mvar[rows],
            in_service=gen.in_service[rows] == 1,
            controllable=True,
            index=rows,
        )
        out.gen.loc[rows, "q_mvar"] = gen.qg_mvar[rows]
    if np.any(is_sgen):
        rows = np.flatnonzero(is_sgen)
        pp.create_sgens(
            out,
            pp_bus[gbus[rows]],
            p_mw=gen.pg_mw[rows],
            q_mvar=gen.qg_mvar[rows],
            sn_mva=gen.mbase_mva[rows],
            max_p_mw=gen.pmax_mw[rows],
            min_p_mw=gen.pmin_mw[rows],
            max_q_mvar=gen.qmax_mvar[rows],
            min_q_mvar=gen.qmin_mvar[rows],
            in_service=gen.in_service[rows] == 1,
            controllable=True,
            index=rows,
        )
        out.sgen.loc[rows, "vm_pu"] = gen.vg_pu[rows]

    # -- branches
    f, t = net.branch_from, net.branch_to
    is_tr = br.is_transformer
    rate = br.rate_a_mva
    limited = rate > 0
    extra_cols = {
        "rate_b_mva": br.rate_b_mva,
        "rate_c_mva": br.rate_c_mva,
        "angmin_deg": br.angmin_deg,
        "angmax_deg": br.angmax_deg,
    }
    rows = np.flatnonzero(~is_tr)
    if rows.size:
        zb = kv[f[rows]] ** 2 / base
        omega = 2.0 * math.pi * f_hz
        max_i = np.where(limited[rows], rate[rows] / (math.sqrt(3.0) * kv[f[rows]]), _UNLIMITED)
        pp.create_lines_from_parameters(
            out,
            pp_bus[f[rows]],
            pp_bus[t[rows]],
            length_km=1.0,
            r_ohm_per_km=br.r_pu[rows] * zb,
            x_ohm_per_km=br.x_pu[rows] * zb,
            c_nf_per_km=br.b_pu[rows] / (zb * omega) * 1e9,
            max_i_ka=max_i,
            max_loading_percent=np.where(limited[rows], 100.0, np.nan),
            in_service=br.in_service[rows] == 1,
            index=rows,
        )
        for col, val in extra_cols.items():
            out.line.loc[rows, col] = val[rows]
    rows = np.flatnonzero(is_tr)
    if rows.size:
        tap = np.where(br.tap_ratio[rows] != 0, br.tap_ratio[rows], 1.0)
        sn = np.where(limited[rows], rate[rows], _UNLIMITED)
        r, x = br.r_pu[rows], br.x_pu[rows]
        z = np.hypot(r, x)
        # pandapower rebuilds x as sign(vk) * sqrt(vk^2 - vkr^2); the sign of vk
        # carries the sign of x (capacitive series compensation, x < 0).
        vk = np.where(x < 0, -z, z) * sn * 100.0 / base
        vkr = r * sn * 100.0 / base
        # The off-nominal ratio goes into the rated voltages, so that no tap
        # changer model (steps, sides) is involved: ratio = (vn_hv/vn_lv) /
        # (base_kv_from/base_kv_to) = tap, with the tap at the from (hv) end as
        # in MATPOWER.
        pp.create_transformers_from_parameters(
            out,
            pp_bus[f[rows]],
            pp_bus[t[rows]],
            sn_mva=sn,
            vn_hv_kv=kv[f[rows]] * tap,
            vn_lv_kv=kv[t[rows]],
            vkr_percent=vkr,
            vk_percent=vk,
            pfe_kw=0.0,
            i0_percent=0.0,
            shift_degree=br.shift_deg[rows],
            max_loading_percent=np.where(limited[rows], 100.0, np.nan),
            in_service=br.in_service[rows] == 1,
            index=rows,
        )
        for col, val in extra_cols.items():
            out.trafo.loc[rows, col] = val[rows]
        # A phase shifter with tap 0 and one with tap 1 are the same device;
        # remember which one the case wrote.
        out.trafo.loc[rows, "tap_ratio_zero"] = br.tap_ratio[rows] == 0
        # Charging of a MATPOWER transformer sits on both ends of its series
        # impedance (b/2 / tap^2 seen from the from-bus); pandapower's
        # magnetising branch can only be inductive, so carry it as shunts.
        ch = rows[br.b_pu[rows] != 0]
        if ch.size:
            tap_ch = np.where(br.tap_ratio[ch] != 0, br.tap_ratio[ch], 1.0)
            half = br.b_pu[ch] / 2.0 * base
            sh_bus += [pp_bus[f[ch]], pp_bus[t[ch]]]
            sh_p += [np.zeros(ch.size), np.zeros(ch.size)]
            sh_q += [-half / tap_ch**2, -half]
            sh_kv += [kv[f[ch]], kv[t[ch]]]
            sh_on += [br.in_service[ch] == 1, br.in_service[ch] == 1]
            sh_tag += [ch.astype(np.float64), ch.astype(np.float64)]
    sbus = np.concatenate(sh_bus)
    if sbus.size:
        pp.create_shunts(
            out,
            sbus,
            q_mvar=np.concatenate(sh_q),
            p_mw=np.concatenate(sh_p),
            vn_kv=np.concatenate(sh_kv),
            in_service=np.concatenate(sh_on),
        )
        out.shunt["charging_of_trafo"] = np.concatenate(sh_tag)

    # -- costs
    if net.gencost is not None:
        _export_costs(pp, out, net.gencost, net.n_gen, is_eg, is_gen)
    return out


def _element_types(is_eg: npt.NDArray[np.bool_], is_gen: npt.NDArray[np.bool_]) -> list[str]:
    return ["ext_grid" if e else "gen" if g else "sgen" for e, g in zip(is_eg, is_gen, strict=True)]


def _poly_coefficients(gc: GenCostTable, rows: IntArray) -> FloatArray:
    """``c2, c1, c0`` of polynomial cost rows; higher zero terms are dropped."""
    out = np.zeros((rows.size, 3))
    for j, row in enumerate(rows):
        k = int(gc.ncost[row])
        coef = gc.params[row, :k]
        if k > 3:
            if np.any(coef[: k - 3] != 0):
                raise ValidationError(
                    f"gencost row {row + 1}: polynomial of order {k - 1}; pandapower's "
                    "poly_cost holds quadratic costs at most",
                    "gencost",
                    int(row),
                )
            coef = coef[k - 3 :]
        out[j, 3 - coef.size :] = coef
    return out


def _pwl_points(gc: GenCostTable, row: int) -> list[list[float]]:
    """MATPOWER ``(p, cost)`` breakpoints as pandapower ``[p_from, p_to, slope]``."""
    k = int(gc.ncost[row])
    p = gc.params[row, 0 : 2 * k : 2]
    c = gc.params[row, 1 : 2 * k : 2]
    if k < 2 or np.any(np.diff(p) <= 0):
        raise ValidationError(
            f"gencost row {row + 1}: piecewise-linear cost needs increasing breakpoints",
            "gencost",
            row,
        )
    slope = np.diff(c) / np.diff(p)
    return [[float(p[i]), float(p[i + 1]), float(slope[i])] for i in range(k - 1)]


def _export_costs(
    pp: Any,
    out: Any,
    gc: GenCostTable,
    n_gen: int,
    is_eg: npt.NDArray[np.bool_],
    is_gen: npt.NDArray[np.bool_],
) -> None:
    et = np.array(_element_types(is_eg, is_gen), dtype=object)
    idx = np.arange(n_gen, dtype=np.int64)
    has_q = len(gc) == 2 * n_gen
    p_poly = gc.model[:n_gen] == 2
    q_poly = (gc.model[n_gen:] == 2) if has_q else np.zeros(n_gen, dtype=bool)
    if has_q and np.any(q_poly & ~p_poly):
        i = int(np.flatnonzero(q_poly & ~p_poly)[0])
        raise ValidationError(
            f"gencost row {n_gen + i + 1}: a polynomial reactive cost needs a polynomial "
            "active cost on the same generator (pandapower keeps both in one poly_cost row)",
            "gencost",
            n_gen + i,
        )
    rows = idx[p_poly]
    if rows.size:
        cp = _poly_coefficients(gc, rows)
        cq = np.zeros_like(cp)
        if has_q:
            qsel = q_poly[rows]
            cq[qsel] = _poly_coefficients(gc, rows[qsel] + n_gen)
        pp.create_poly_costs(
            out,
            rows,
            et[rows],
            cp1_eur_per_mw=cp[:, 1],
            cp0_eur=cp[:, 0 + 2],
            cp2_eur_per_mw2=cp[:, 0],
            cq1_eur_per_mvar=cq[:, 1],
            cq0_eur=cq[:, 2],
            cq2_eur_per_mvar2=cq[:, 0],
            check=False,
            startup=gc.startup[rows],
            shutdown=gc.shutdown[rows],
        )
    for power_type, offset in (("p", 0), ("q", n_gen)):
        if power_type == "q" and not has_q:
            break
        rows = idx[gc.model[offset : offset + n_gen] == 1]
        if rows.size:
            pp.create_pwl_costs(
                out,
                rows,
                et[rows],
                [_pwl_points(gc, int(r) + offset) for r in rows],
                power_type=power_type,
                check=False,
                startup=gc.startup[rows + offset],
                shutdown=gc.shutdown[rows + offset],
            )


# -- import -----------------------------------------------------------------------------
def _col(df: Any, name: str, default: float) -> FloatArray:
    """A float column of a pandapower table, ``default`` where missing or NaN."""
    if name not in df.columns:
        return np.full(len(df), default, dtype=np.float64)
    vals = np.asarray(df[name].to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    return np.where(np.isnan(vals), default, vals)


def _in_service(df: Any) -> npt.NDArray[np.bool_]:
    return np.asarray(df["in_service"].to_numpy(dtype=bool), dtype=bool)


def _check_supported(pp_net: Any) -> None:
    for tbl in _UNSUPPORTED:
        if tbl in pp_net and len(pp_net[tbl]) and np.any(_in_service(pp_net[tbl])):
            raise ValidationError(
                f"pandapower table {tbl!r} has elements in service; MATPOWER data cannot "
                f"express them (supported: bus, load, sgen, gen, ext_grid, shunt, line, trafo, "
                "impedance)",
                tbl,
            )
    sw = pp_net.get("switch")
    if sw is not None and len(sw):
        bad = (~sw["closed"].to_numpy(dtype=bool)) | (sw["et"].to_numpy() == "b")
        if np.any(bad):
            raise ValidationError(
                f"pandapower switch {sw.index[np.flatnonzero(bad)[0]]}: open switches and "
                "bus-bus switches are not supported (fuse the buses or take the elements out "
                "of service first)",
                "switch",
            )
    if "step_dependency_table" in pp_net.shunt.columns and np.any(
        pp_net.shunt["step_dependency_table"].fillna(False).to_numpy(dtype=bool)
    ):
        raise ValidationError("pandapower shunt: step dependency tables are not supported", "shunt")


def _constant_impedance_share(
    pp_net: Any,
    load: Any,
    lb: IntArray,
    pos: Any,
    pd_mw: FloatArray,
    qd: FloatArray,
    gs: FloatArray,
    bs: FloatArray,
) -> None:
    """Move the constant-impedance share of the bus demand into the bus shunts.

    pandapower applies, at each bus, the plain mean of its loads'
    ``const_z_*_percent`` to the bus's net demand (loads less static
    generators), so the same share is taken here; a shunt draws exactly
    ``P V^2``.
    """
    nb = pd_mw.size
    count = np.bincount(lb, minlength=nb).astype(np.float64)
    shares = []
    for col in ("const_z_p_percent", "const_z_q_percent", "const_i_p_percent", "const_i_q_percent"):
        total = np.bincount(lb, weights=_col(load, col, 0.0) / 100.0, minlength=nb)
        shares.append(np.divide(total, count, out=np.zeros(nb), where=count > 0))
    cz_p, cz_q, ci_p, ci_q = shares
    if np.any(ci_p != 0) or np.any(ci_q != 0):
        raise ValidationError(
            "pandapower load: constant-current loads cannot be expressed in MATPOWER data "
            "(pass voltage_depend_loads=False to read them as constant power)",
            "load",
        )
    if not (np.any(cz_p) or np.any(cz_q)):
        return
    net_p, net_q = pd_mw.copy(), qd.copy()
    sg = pp_net.sgen[_in_service(pp_net.sgen)]
    if len(sg):
        sb = pos(sg["bus"])
        scale = _col(sg, "scaling", 1.0)
        np.subtract.at(net_p, sb, _col(sg, "p_mw", 0.0) * scale)
        np.subtract.at(net_q, sb, _col(sg, "q_mvar", 0.0) * scale)
    pd_mw -= cz_p * net_p
    gs += cz_p * net_p
    qd -= cz_q * net_q
    bs -= cz_q * net_q


def _has_slack(pp_net: Any) -> bool:
    eg, gen = pp_net.ext_grid, pp_net.gen
    if len(eg) and np.any(_in_service(eg)):
        return True
    return bool(len(gen)) and bool(np.any((_col(gen, "slack", 0.0) != 0) & _in_service(gen)))


def _ordered(frames: list[tuple[str, Any]]) -> list[tuple[str, int, int]]:
    """``(table, position, index)`` of all rows, by index then by table order."""
    rows = [
        (name, pos, int(ix))
        for rank, (name, df) in enumerate(frames)
        for pos, ix in enumerate(df.index)
    ]
    rank_of = {name: r for r, (name, _) in enumerate(frames)}
    rows.sort(key=lambda r: (r[2], rank_of[r[0]]))
    return rows


def from_pandapower(
    pp_net: Any, *, trafo_model: str | None = None, voltage_depend_loads: bool = True
) -> Network:
    """Import a pandapower net as a network with the same power-flow solution.

    Bus ids are the pandapower bus indices plus one (pandapower counts from
    0, MATPOWER from 1), so a net made by :func:`to_pandapower` or by
    ``pandapower.converter.from_mpc`` gets its case's bus ids back. Generators
    are the ``ext_grid``, ``gen`` and ``sgen`` elements, and branches the
    ``line``, ``trafo`` and ``impedance`` elements, each ordered by pandapower
    index (ties: in that table order); so a net made by :func:`to_pandapower`
    gives back the rows in their original order.

    Branch parameters come from pandapower's own case builder (the one behind
    ``to_ppc``), so tap changers, parallel systems and the like are honoured. What MATPOWER
    branches cannot hold, branch conductance and unequal shunt admittances at
    the two ends (pandapower's T model of transformers), is moved into the bus
    shunts, which leaves the admittance matrix unchanged. Constant-impedance
    shares of loads become bus shunts, taken the way pandapower takes them
    (the mean share of a bus's loads applied to its net demand); the rest is
    constant power.
    ``sgen`` elements become generators (fixed at their set-point when not
    ``controllable``); limits pandapower leaves empty become infinite (as its
    OPF reads them), voltage limits 0 and 2 pu.

    Parameters
    ----------
    pp_net
        A pandapower net; it is not modified.
    trafo_model
        ``"t"`` or ``"pi"``: the transformer model whose admittances to
        reproduce; by default the net's ``user_pf_options`` or, failing that,
        ``"t"`` (``pandapower.runpp``'s default).
    voltage_depend_loads
        As in ``pandapower.runpp`` (default ``True``): read the
        constant-impedance share of loads as shunts. ``False`` reads every
        load as constant power.

    Returns
    -------
    Network

    Raises
    ------
    ValidationError
        When pandapower is missing, or the net holds elements MATPOWER data
        cannot express (three-winding transformers, wards, DC lines, storage,
        open or bus-bus switches, constant-current loads, asymmetric
        impedances, negative bus indices).
    """
    pp = _import_pandapower()
    from pandapower.auxiliary import _add_ppc_options
    from pandapower.pd2ppc import _pd2ppc
    from pandapower.pypower.idx_brch import (
        BR_B,
        BR_B_ASYM,
        BR_G,
        BR_G_ASYM,
        BR_R,
        BR_R_ASYM,
        BR_X,
        BR_X_ASYM,
        SHIFT,
        TAP,
    )

    if trafo_model is None:
        trafo_model = str(pp_net.get("user_pf_options", {}).get("trafo_model", "t"))
    if trafo_model not in ("t", "pi"):
        raise ValidationError(f"trafo_model: expected 't' or 'pi', got {trafo_model!r}")
    _check_supported(pp_net)
    base = float(pp_net.sn_mva)

    # -- buses
    pbus = pp_net.bus.sort_index()
    pidx = pbus.index.to_numpy(dtype=np.int64)
    if pidx.size == 0:
        raise ValidationError("pandapower net has no bus", "bus")
    if pidx[0] < 0:
        raise ValidationError(
            f"pandapower bus index {int(pidx[0])}: bus indices must be >= 0", "bus"
        )
    nb = pidx.size

    def pos(ix: Any) -> IntArray:
        ids = np.asarray(ix, dtype=np.int64)
        out: IntArray = np.searchsorted(pidx, ids).astype(np.int64)
        known = pidx[np.minimum(out, nb - 1)] == ids
        if not np.all(known):
            bad = int(ids[~known].ravel()[0])
            raise ValidationError(f"pandapower bus {bad} is named by an element but does not exist")
        return out

    vn = _col(pbus, "vn_kv", 0.0)
    pd_mw = np.zeros(nb)
    qd = np.zeros(nb)
    gs = np.zeros(nb)
    bs = np.zeros(nb)
    load = pp_net.load[_in_service(pp_net.load)]
    if len(load):
        lb = pos(load["bus"])
        scale = _col(load, "scaling", 1.0)
        np.add.at(pd_mw, lb, _col(load, "p_mw", 0.0) * scale)
        np.add.at(qd, lb, _col(load, "q_mvar", 0.0) * scale)
        if voltage_depend_loads:
            _constant_impedance_share(pp_net, load, lb, pos, pd_mw, qd, gs, bs)

    # -- shunts, with the transformer charging that to_pandapower put there
    # All shunts, switched-off ones too: the charging of a switched-off
    # transformer is switched off with it and still belongs to it.
    sh = pp_net.shunt
    sh_on = _in_service(sh)
    tag = _col(sh, "charging_of_trafo", np.nan)
    sb = pos(sh["bus"]) if len(sh) else np.zeros(0, dtype=np.int64)
    step = _col(sh, "step", 1.0)
    sh_vn = _col(sh, "vn_kv", np.nan)
    sh_vn = np.where(np.isnan(sh_vn), vn[sb], sh_vn)
    factor = step * (vn[sb] / sh_vn) ** 2
    sh_g = _col(sh, "p_mw", 0.0) * factor
    sh_b = -_col(sh, "q_mvar", 0.0) * factor
    trafo = pp_net.trafo
    charging: dict[int, float] = {}
    folded = np.zeros(len(sh), dtype=bool)
    for k in np.unique(tag[~np.isnan(tag)]).astype(np.int64):
        sel = np.flatnonzero(tag == k)
        if k not in trafo.index or sel.size != 2:
            continue
        hv, lv = pos([trafo.at[k, "hv_bus"], trafo.at[k, "lv_bus"]])
        ends = sb[sel]
        if sorted(ends.tolist()) != sorted([int(hv), int(lv)]) or hv == lv:
            continue
        if np.any(sh_on[sel] != bool(trafo.at[k, "in_service"])):
            continue  # switched apart from its transformer: an ordinary shunt now
        charging[int(k)] = 2.0 * float(sh_b[sel[ends == lv][0]]) / base
        folded[sel] = True
    keep = sh_on & ~folded
    np.add.at(gs, sb[keep], sh_g[keep])
    np.add.at(bs, sb[keep], sh_b[keep])

    # -- generators
    gframes = [(name, pp_net[name]) for name in _GEN_TABLES]
    order = _ordered(gframes)
    ng = len(order)
    g_bus = np.zeros(ng, dtype=np.int64)
    pg = np.zeros(ng)
    qg = np.zeros(ng)
    qmax = np.zeros(ng)
    qmin = np.zeros(ng)
    vg = np.ones(ng)
    mbase = np.zeros(ng)
    status = np.zeros(ng, dtype=np.int64)
    pmax = np.zeros(ng)
    pmin = np.zeros(ng)
    btype = np.where(_in_service(pbus), 1, 4).astype(np.int64)
    vm = np.ones(nb)
    va = np.zeros(nb)
    cols: dict[str, dict[str, npt.NDArray[Any]]] = {}
    for name, df in gframes:
        n = len(df)
        scale = _col(df, "scaling", 1.0)
        ctrl = _col(df, "controllable", 1.0 if name != "sgen" else 0.0) != 0
        p = _col(df, "p_mw", 0.0) * scale
        q = _col(df, "q_mvar", 0.0) * (scale if name == "sgen" else 1.0)
        fixed_q = name == "sgen"
        cols[name] = {
            "bus": pos(df["bus"]) if n else np.zeros(0),
            "p": p,
            "q": q,
            "vm": _col(df, "vm_pu", 1.0),
            "sn": _col(df, "sn_mva", base),
            "on": _in_service(df).astype(np.float64) if n else np.zeros(0),
            "pmax": np.where(ctrl | (name == "ext_grid"), _col(df, "max_p_mw", np.inf), p),
            "pmin": np.where(ctrl | (name == "ext_grid"), _col(df, "min_p_mw", -np.inf), p),
            "qmax": np.where(ctrl | (not fixed_q), _col(df, "max_q_mvar", np.inf), q),
            "qmin": np.where(ctrl | (not fixed_q), _col(df, "min_q_mvar", -np.inf), q),
            "va": _col(df, "va_degree", 0.0),
            "slack": _col(df, "slack", 0.0),
        }
    # Voltage set-points and types of the buses, from the controlling elements.
    for name in ("gen", "ext_grid"):
        c = cols[name]
        on = c["on"] != 0
        b = c["bus"][on].astype(np.int64)
        vm[b] = c["vm"][on]
        if name == "gen":
            slack = c["slack"][on] != 0
            btype[b[~slack]] = np.where(btype[b[~slack]] == 4, 4, np.maximum(btype[b[~slack]], 2))
            btype[b[slack]] = np.where(btype[b[slack]] == 4, 4, 3)
        else:
            btype[b] = np.where(btype[b] == 4, 4, 3)
            va[b] = c["va"][on]
    controlled = np.isin(btype, (2, 3))
    for j, (name, p_, _ix) in enumerate(order):
        c = cols[name]
        b = int(c["bus"][p_])
        g_bus[j] = b
        pg[j], qg[j] = c["p"][p_], c["q"][p_]
        pmax[j], pmin[j] = c["pmax"][p_], c["pmin"][p_]
        qmax[j], qmin[j] = c["qmax"][p_], c["qmin"][p_]
        mbase[j] = c["sn"][p_]
        status[j] = int(c["on"][p_] != 0)
        # MATPOWER takes a bus's set-point from its generators' Vg: every unit in
        # service at a controlled bus must carry it.
        vg[j] = vm[b] if (controlled[b] and status[j]) else c["vm"][p_]

    # -- branches
    # pandapower's public to_ppc returns the internal case, which has dropped
    # the out-of-service branches; the full case comes from the same builder
    # (_pd2ppc) with the options to_ppc sets. It writes into the net: use a copy.
    work = copy.deepcopy(pp_net)
    if not _has_slack(work) and np.any(_in_service(work.bus)):
        # pandapower refuses to build a case without a slack; branch parameters
        # do not depend on it, so lend the copy one.
        pp.create_ext_grid(work, int(work.bus.index[_in_service(work.bus)][0]))
    work["_options"] = {}
    _add_ppc_options(
        work,
        calculate_voltage_angles=True,
        trafo_model=trafo_model,
        check_connectivity=False,
        mode="pf",
        switch_rx_ratio=2,
        init_vm_pu="flat",
        init_va_degree="flat",
        enforce_q_lims=False,
        enforce_p_lims=False,
        recycle=None,
        voltage_depend_loads=False,
    )
    ppc, _ = _pd2ppc(work)
    ranges = work._pd2ppc_lookups["branch"]

    bframes = [(name, pp_net[name]) for name in _BRANCH_TABLES]
    border = _ordered(bframes)
    nl = len(border)
    fb = np.zeros(nl, dtype=np.int64)
    tb = np.zeros(nl, dtype=np.int64)
    mat = np.zeros((nl, 13))
    mat[:, 11], mat[:, 12] = -360.0, 360.0
    end_cols = {
        "line": ("from_bus", "to_bus"),
        "trafo": ("hv_bus", "lv_bus"),
        "impedance": ("from_bus", "to_bus"),
    }
    per_table: dict[str, dict[str, Any]] = {}
    for name, df in bframes:
        if not len(df):
            continue
        lo, hi = ranges[name]
        rows = np.asarray(ppc["branch"][lo:hi], dtype=np.complex128)
        if np.any(rows[:, BR_R_ASYM].real != 0) or np.any(rows[:, BR_X_ASYM].real != 0):
            raise ValidationError(
                f"pandapower {name}: unequal series impedances in the two directions "
                "cannot be expressed in MATPOWER data",
                name,
            )
        if name == "line":
            vr = vn[pos(df["from_bus"])] * math.sqrt(3.0)
            nominal = (
                _col(df, "max_i_ka", np.nan) * _col(df, "df", 1.0) * _col(df, "parallel", 1.0) * vr
            )
        elif name == "trafo":
            nominal = _col(df, "sn_mva", np.nan) * _col(df, "df", 1.0) * _col(df, "parallel", 1.0)
        else:
            nominal = _col(df, "sn_mva", np.nan)
        if name != "impedance" and "max_loading_percent" in df.columns:
            rate_a = _col(df, "max_loading_percent", np.nan) / 100.0 * nominal
        else:
            rate_a = np.full(len(df), np.nan)
        per_table[name] = {
            "ppc": rows,
            "from": pos(df[end_cols[name][0]]),
            "to": pos(df[end_cols[name][1]]),
            "on": _in_service(df),
            "rate_a": np.where(np.isfinite(rate_a), rate_a, 0.0),
            "rate_b": _col(df, "rate_b_mva", 0.0),
            "rate_c": _col(df, "rate_c_mva", 0.0),
            "angmin": _col(df, "angmin_deg", -360.0),
            "angmax": _col(df, "angmax_deg", 360.0),
            "index": df.index.to_numpy(),
            "tap_zero": _col(df, "tap_ratio_zero", 0.0) != 0,
        }
    for j, (name, p_, ix) in enumerate(border):
        d = per_table[name]
        row = d["ppc"][p_]
        f_, t_ = int(d["from"][p_]), int(d["to"][p_])
        fb[j], tb[j] = f_, t_
        tap = float(row[TAP].real)
        shift = float(row[SHIFT].real)
        plain = name == "line" or (name == "impedance" and tap == 1.0 and shift == 0.0)
        written_zero = name == "trafo" and d["tap_zero"][p_] and abs(tap - 1.0) < 1e-12
        if plain or written_zero:
            tap = 0.0
        b = float(row[BR_B].real)
        if name == "trafo" and ix in charging:
            b += charging[ix]
        on = bool(d["on"][p_])
        mat[j, :11] = (
            0,
            0,
            row[BR_R].real,
            row[BR_X].real,
            b,
            d["rate_a"][p_],
            d["rate_b"][p_],
            d["rate_c"][p_],
            tap,
            shift,
            int(on),
        )
        mat[j, 11], mat[j, 12] = d["angmin"][p_], d["angmax"][p_]
        # Branch conductance and the to-end surplus of a T model have no MATPOWER
        # field: the same admittances as bus shunts (makeYbus: Yff gets
        # (g/2)/tap^2, Ytt gets (g + g_asym)/2 + j b_asym/2).
        g = float(row[BR_G].real)
        g_asym = float(row[BR_G_ASYM].real)
        b_asym = float(row[BR_B_ASYM].real)
        if on and (g or g_asym or b_asym):
            tt = tap if tap != 0.0 else 1.0
            gs[f_] += g / 2.0 / tt**2 * base
            gs[t_] += (g + g_asym) / 2.0 * base
            bs[t_] += b_asym / 2.0 * base

    # -- assemble
    bus_ids = pidx + 1
    zone = pbus["zone"] if "zone" in pbus.columns else None
    try:
        zone_arr = np.asarray(zone, dtype=np.float64) if zone is not None else np.ones(nb)
        zone_arr = np.where(np.isfinite(zone_arr), zone_arr, 1.0)
    except (TypeError, ValueError):
        zone_arr = np.ones(nb)
    bus_t = BusTable(
        bus_id=bus_ids,
        bus_type=btype,
        pd_mw=pd_mw,
        qd_mvar=qd,
        gs_mw=gs,
        bs_mvar=bs,
        area=_col(pbus, "area", 1.0).astype(np.int64),
        vm_pu=vm,
        va_deg=va,
        base_kv=vn,
        zone=zone_arr.astype(np.int64),
        vmax_pu=_col(pbus, "max_vm_pu", 2.0),
        vmin_pu=_col(pbus, "min_vm_pu", 0.0),
    )
    gen_t = GenTable(
        bus_id=bus_ids[g_bus],
        pg_mw=pg,
        qg_mvar=qg,
        qmax_mvar=qmax,
        qmin_mvar=qmin,
        vg_pu=vg,
        mbase_mva=mbase,
        in_service=status,
        pmax_mw=pmax,
        pmin_mw=pmin,
    )
    br_t = BranchTable(
        from_bus_id=bus_ids[fb],
        to_bus_id=bus_ids[tb],
        r_pu=mat[:, 2],
        x_pu=mat[:, 3],
        b_pu=mat[:, 4],
        rate_a_mva=mat[:, 5],
        rate_b_mva=mat[:, 6],
        rate_c_mva=mat[:, 7],
        tap_ratio=mat[:, 8],
        shift_deg=mat[:, 9],
        in_service=mat[:, 10].astype(np.int64),
        angmin_deg=mat[:, 11],
        angmax_deg=mat[:, 12],
    )
    gencost = _import_costs(pp_net, order)
    return Network(
        name=str(pp_net.get("name", "") or "pandapower"),
        base_mva=base,
        bus=bus_t,
        gen=gen_t,
        branch=br_t,
        gencost=gencost,
    )


def _import_costs(pp_net: Any, order: list[tuple[str, int, int]]) -> GenCostTable | None:
    """``poly_cost`` and ``pwl_cost`` rows as MATPOWER gencost rows (Q rows when used)."""
    poly = pp_net.get("poly_cost")
    pwl = pp_net.get("pwl_cost")
    n_poly = 0 if poly is None else len(poly)
    n_pwl = 0 if pwl is None else len(pwl)
    if n_poly + n_pwl == 0:
        return None
    ng = len(order)
    row_of = {(name, ix): j for j, (name, _p, ix) in enumerate(order)}
    p_rows: dict[int, tuple[int, list[float]]] = {}
    q_rows: dict[int, tuple[int, list[float]]] = {}
    # to_pandapower keeps MATPOWER's start-up and shut-down costs in extra
    # columns; other nets have none.
    events: dict[tuple[int, int], tuple[float, float]] = {}

    def _events(r: Any, key: tuple[int, int]) -> None:
        su, sd = r.get("startup", 0.0), r.get("shutdown", 0.0)
        su = 0.0 if su is None or su != su else float(su)
        sd = 0.0 if sd is None or sd != sd else float(sd)
        if su or sd:
            events[key] = (su, sd)

    for _, r in poly.iterrows() if n_poly else iter(()):
        j = row_of.get((str(r["et"]), int(r["element"])))
        if j is None:
            continue
        p_rows[j] = (
            2,
            [float(r["cp2_eur_per_mw2"]), float(r["cp1_eur_per_mw"]), float(r["cp0_eur"])],
        )
        _events(r, (0, j))
        cq = [
            float(r.get("cq2_eur_per_mvar2", 0.0)),
            float(r.get("cq1_eur_per_mvar", 0.0)),
            float(r.get("cq0_eur", 0.0)),
        ]
        if any(cq):
            q_rows[j] = (2, cq)
    for _, r in pwl.iterrows() if n_pwl else iter(()):
        j = row_of.get((str(r["et"]), int(r["element"])))
        if j is None:
            continue
        # pandapower keeps slopes only; its OPF starts the cost at p0 * slope0.
        pts = r["points"]
        flat: list[float] = []
        c = 0.0
        for i, (lo, hi, slope) in enumerate(pts):
            if i == 0:
                c = float(lo) * float(slope)
                flat += [float(lo), c]
            c += (float(hi) - float(lo)) * float(slope)
            flat += [float(hi), c]
        is_q = str(r.get("power_type", "p")) == "q"
        (q_rows if is_q else p_rows)[j] = (1, flat)
        _events(r, (int(is_q), j))
    n_rows = 2 * ng if q_rows else ng
    model = np.full(n_rows, 2, dtype=np.int64)
    ncost = np.zeros(n_rows, dtype=np.int64)
    entries: list[list[float]] = [[] for _ in range(n_rows)]
    for rows, off in ((p_rows, 0), (q_rows, ng)):
        for j, (m, vals) in rows.items():
            model[j + off] = m
            entries[j + off] = vals
            ncost[j + off] = len(vals) // 2 if m == 1 else len(vals)
    # Generators without a cost get a zero polynomial, as MATPOWER needs a row each.
    width = max([3] + [len(e) for e in entries])
    params = np.zeros((n_rows, width))
    for j, e in enumerate(entries):
        if not e:
            ncost[j] = 3
        else:
            params[j, : len(e)] = e
    startup = np.zeros(n_rows)
    shutdown = np.zeros(n_rows)
    for (q_side, j), (su, sd) in events.items():
        if j + q_side * ng < n_rows:
            startup[j + q_side * ng], shutdown[j + q_side * ng] = su, sd
    return GenCostTable(
        model=model,
        startup=startup,
        shutdown=shutdown,
        ncost=ncost,
        params=params,
    )
