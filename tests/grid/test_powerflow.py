"""AC and DC power flow: pandapower cross-checks, invariants, islands and bad input.

The pandapower cross-check builds the pandapower net with pandapower's own
MATPOWER converter (``from_ppc``) from the raw case matrices, after four
model-preserving rewrites that make it "the same case" (each one proved by the
Ybus check below, which compares pandapower's internal admittance matrix with
MATPOWER's formula on the original case):

* out-of-service generators and branches are dropped (``from_ppc`` turns a
  branch with ratio 1 between two voltage levels into an ``impedance`` element
  and loses its status; a switched-off first unit at a bus would make the bus PQ
  in pandapower but PV in MATPOWER);
* the reference bus is the one aiguilleur reports (PGLib's case1888_rte has no
  generator at its type-3 bus; ``from_ppc`` then creates no ext_grid);
* transformer charging ``b`` is moved into the equivalent bus shunts
  (``b/2/tap**2`` at the from bus, ``b/2`` at the to bus: the same Ybus);
  ``from_ppc`` would turn it into an inductive magnetising branch;
* transformers whose to-bus has the higher nominal voltage are turned around
  (``r, x *= tap**2``, ``b /= tap**2``, ``tap -> 1/tap``, ``shift -> -shift``:
  the same Ybus); ``from_ppc`` puts the ratio on the high-voltage side, which is
  MATPOWER's to side for those branches.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import connected_components

from aiguilleur.errors import InfeasibleError, ValidationError
from aiguilleur.grid.matpower import read_matpower
from aiguilleur.grid.network import Network
from aiguilleur.grid.operating_point import scaled_dispatch
from aiguilleur.grid.powerflow import (
    PowerFlowOptions,
    PowerFlowResult,
    ac_power_flow,
    dc_power_flow,
)

PGLIB = Path(__file__).parents[3] / "shared" / "data" / "pglib-opf" / "cases"
BUNDLED = Path(__file__).parents[2] / "aiguilleur" / "data" / "cases"

TOL_PU = 1e-10  # Newton tolerance on both sides of the cross-check
VM_TOL = 1e-6  # pu
VA_TOL = 1e-5  # rad
BALANCE_TOL = 1e-6  # MW / MVA


# -- loading ----------------------------------------------------------------------------


def _case_path(source: str, name: str) -> Path:
    root = PGLIB if source == "pglib" else BUNDLED
    path = root / f"pglib_opf_{name}.m"
    if not path.is_file():
        pytest.skip(f"{source} case {name} not found at {path}")
    return path


_CACHE: dict[tuple[str, str], Network] = {}


def _load(name: str, source: str = "pglib") -> Network:
    key = (source, name)
    if key not in _CACHE:
        _CACHE[key] = read_matpower(_case_path(source, name))
    return _CACHE[key]


def _balanced(net: Network) -> Network:
    """The stored set-points scaled to the load (``scaled_dispatch``)."""
    return scaled_dispatch(net)


def _small(name: str) -> Network:
    """A small case, from the shared PGLib folder or else the bundled copy."""
    for source in ("pglib", "bundled"):
        root = PGLIB if source == "pglib" else BUNDLED
        if (root / f"pglib_opf_{name}.m").is_file():
            return _load(name, source)
    pytest.skip(f"case {name} not available")
    raise AssertionError  # unreachable


def _ref_bus_ids(res: PowerFlowResult) -> list[int]:
    return [int(i.ref_bus_id) for i in res.islands if i.energised and i.ref_bus_id is not None]


# -- an independent MATPOWER Ybus and the pandapower net ----------------------------


def _matpower_ybus(net: Network) -> sp.csr_matrix:
    """MATPOWER's makeYbus on the case as stored (independent of aiguilleur's solver)."""
    br = net.branch
    on = (br.in_service == 1).astype(float)
    ys = on / (br.r_pu + 1j * br.x_pu)
    bc = on * br.b_pu
    tap = np.where(br.tap_ratio == 0.0, 1.0, br.tap_ratio) * np.exp(1j * np.pi / 180 * br.shift_deg)
    ytt = ys + 0.5j * bc
    yff = ytt / (tap * np.conj(tap))
    yft = -ys / np.conj(tap)
    ytf = -ys / tap
    f, t = net.branch_from, net.branch_to
    n = net.n_bus
    ysh = (net.bus.gs_mw + 1j * net.bus.bs_mvar) / net.base_mva
    rows = np.concatenate([f, f, t, t, np.arange(n)])
    cols = np.concatenate([f, t, f, t, np.arange(n)])
    vals = np.concatenate([yff, yft, ytf, ytt, ysh])
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, n))


def _ppc(net: Network, ref_bus_ids: list[int], *, one_unit_per_bus: bool = False) -> dict[str, Any]:
    """A pypower case for ``from_ppc`` that models exactly ``net`` (see module docstring).

    With ``one_unit_per_bus`` the units at a bus are merged into one (P, Q, limits summed,
    the first unit's voltage set-point), the form in which reactive limits are the same
    problem in pandapower as in MATPOWER and aiguilleur (see the Q-limit test).
    """
    base = net.base_mva
    bus = np.array(net.bus.matrix()[:, :13], dtype=float)
    gen_on = net.gen.in_service == 1
    gen = np.array(net.gen.matrix()[gen_on, :10], dtype=float)
    br_on = net.branch.in_service == 1
    br = np.array(net.branch.matrix()[br_on, :13], dtype=float)
    f, t = net.branch_from[br_on], net.branch_to[br_on]

    has_gen = np.isin(bus[:, 0], gen[:, 0])
    new_ref = np.isin(bus[:, 0], ref_bus_ids)
    old_ref = bus[:, 1] == 3
    bus[old_ref & ~new_ref, 1] = np.where(has_gen[old_ref & ~new_ref], 2, 1)
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
    if one_unit_per_bus:
        buses, first = np.unique(gen[:, 0], return_index=True)
        order = np.argsort(first)
        merged = gen[first[order]].copy()
        for j, b in enumerate(buses[order]):
            at = gen[:, 0] == b
            for col in (1, 2, 3, 4, 6, 8, 9):  # PG QG QMAX QMIN MBASE PMAX PMIN
                merged[j, col] = gen[at, col].sum()
        gen = merged
    return {"baseMVA": base, "version": "2", "bus": bus, "gen": gen, "branch": br}


def _pandapower_net(net: Network, ref_bus_ids: list[int], *, one_unit_per_bus: bool = False) -> Any:
    from pandapower.converter.pypower import from_ppc

    ppc = _ppc(net, ref_bus_ids, one_unit_per_bus=one_unit_per_bus)
    return from_ppc(ppc, f_hz=50, validate_conversion=False)


def _runpp(pnet: Any, **kw: Any) -> None:
    import pandapower as pp

    pp.runpp(
        pnet,
        algorithm="nr",
        init="dc",
        calculate_voltage_angles=True,
        tolerance_mva=TOL_PU,  # pandapower compares it with the mismatch in per unit
        max_iteration=30,
        voltage_depend_loads=False,
        lightsim2grid=False,
        numba=False,  # same answer; spares the JIT compilation in the test run
        **kw,
    )


def _pp_ybus_matches(pnet: Any, net: Network) -> float:
    ypp = pnet._ppc["internal"]["Ybus"]
    idx = np.asarray(pnet._pd2ppc_lookups["bus"])[np.asarray(net.bus.bus_id)]
    diff = (ypp[idx][:, idx] - _matpower_ybus(net)).tocoo()
    return float(np.max(np.abs(diff.data))) if diff.nnz else 0.0


def _pp_voltages(pnet: Any, net: Network) -> tuple[np.ndarray, np.ndarray]:
    rb = pnet.res_bus.loc[np.asarray(net.bus.bus_id)]
    return rb.vm_pu.to_numpy(), np.deg2rad(rb.va_degree.to_numpy())


def _assert_same_voltages(net: Network, res: PowerFlowResult, pnet: Any) -> tuple[float, float]:
    ref = int(net.bus_index(_ref_bus_ids(res))[0])
    vm_pp, va_pp = _pp_voltages(pnet, net)
    va = np.deg2rad(res.va_deg)
    d_va = np.angle(np.exp(1j * ((va - va[ref]) - (va_pp - va_pp[ref]))))
    d_vm = res.vm_pu - vm_pp
    worst_vm, worst_va = float(np.max(np.abs(d_vm))), float(np.max(np.abs(d_va)))
    assert worst_vm <= VM_TOL, (
        f"max |dVm| = {worst_vm:.3e} pu at bus {net.bus.bus_id[np.argmax(np.abs(d_vm))]}"
    )
    assert worst_va <= VA_TOL, (
        f"max |dVa| = {worst_va:.3e} rad at bus {net.bus.bus_id[np.argmax(np.abs(d_va))]}"
    )
    return worst_vm, worst_va


def _multi_unit_buses(net: Network) -> int:
    on = net.gen.in_service == 1
    return int(np.sum(np.bincount(net.gen_bus[on], minlength=net.n_bus) > 1))


def _pq_bus_units(net: Network) -> int:
    on = net.gen.in_service == 1
    return int(np.sum(on & (net.bus.bus_type[net.gen_bus] == 1)))


# -- pandapower: single slack, no Q limits -------------------------------------------

_SLOW = pytest.mark.slow
CROSS_CHECK_CASES = [
    pytest.param("pglib", "case14_ieee", id="case14_ieee"),
    pytest.param("pglib", "case24_ieee_rts", id="case24_ieee_rts"),
    pytest.param("pglib", "case30_ieee", id="case30_ieee"),
    # units at PQ buses with a stored Qg, which they inject (MATPOWER's makeSbus, pandapower's sgen)
    pytest.param("pglib", "case30_as", id="case30_as"),
    pytest.param("pglib", "case39_epri", id="case39_epri"),
    pytest.param("pglib", "case57_ieee", id="case57_ieee"),
    pytest.param("pglib", "case89_pegase", id="case89_pegase"),
    pytest.param("pglib", "case118_ieee", id="case118_ieee"),
    pytest.param("pglib", "case162_ieee_dtc", id="case162_ieee_dtc"),
    pytest.param("pglib", "case300_ieee", id="case300_ieee"),
    pytest.param("pglib", "case500_goc", id="case500_goc"),
    pytest.param("pglib", "case1354_pegase", id="case1354_pegase", marks=_SLOW),
    pytest.param("pglib", "case1888_rte", id="case1888_rte", marks=_SLOW),
    pytest.param("pglib", "case2869_pegase", id="case2869_pegase", marks=_SLOW),
    pytest.param("pglib", "case8387_pegase", id="case8387_pegase", marks=_SLOW),
    pytest.param("pglib", "case2848_rte", id="case2848_rte", marks=_SLOW),
    pytest.param("bundled", "case14_ieee", id="bundled-case14_ieee"),
    pytest.param("bundled", "case118_ieee", id="bundled-case118_ieee"),
    pytest.param("bundled", "case1888_rte", id="bundled-case1888_rte", marks=_SLOW),
]


@pytest.mark.parametrize(("source", "name"), CROSS_CHECK_CASES)
def test_ac_matches_pandapower(source: str, name: str) -> None:
    pytest.importorskip("pandapower")
    net = _balanced(_load(name, source))
    res = ac_power_flow(net, PowerFlowOptions(tolerance_pu=TOL_PU))
    assert res.converged, f"aiguilleur did not converge ({res.max_mismatch_pu:.2e} pu)"
    assert res.max_mismatch_pu <= TOL_PU
    pnet = _pandapower_net(net, _ref_bus_ids(res))
    try:
        _runpp(pnet)
    except Exception as exc:  # pandapower raises LoadflowNotConverged
        pytest.skip(f"pandapower did not converge on {name}: {exc}")
    assert _pp_ybus_matches(pnet, net) < 1e-8, "the pandapower net is not the same case"
    _assert_same_voltages(net, res, pnet)


# -- pandapower: reactive limits ---------------------------------------------------------
# pandapower's enforce_q_lims is MATPOWER's: every violating unit (not the slack) is held at
# its limit and its bus switched to PQ, all at once, and no bus goes back to PV. aiguilleur
# does the same. from_ppc makes only the first unit at a bus a `gen` (the others become sgens
# with a fixed Q), which is a different problem where a bus has several units. MATPOWER and
# aiguilleur share a bus's Q among its units in proportion to their ranges, so the units of a
# bus reach their limits together: the same problem as one unit with the summed range, which
# is what pandapower is given here (a no-op on cases with one unit per bus).

Q_LIMIT_CASES = [
    pytest.param("case14_ieee"),
    pytest.param("case24_ieee_rts"),  # 7 buses with several units
    pytest.param("case30_ieee"),
    pytest.param("case30_as"),  # units at PQ buses with a stored Qg
    pytest.param("case57_ieee"),
    pytest.param("case73_ieee_rts"),  # 21 buses with several units
    pytest.param("case118_ieee"),
    pytest.param("case500_goc"),  # 27 buses with several units
    pytest.param("case1354_pegase", marks=_SLOW),
    pytest.param("case1888_rte", marks=_SLOW),
    pytest.param("case2869_pegase", marks=_SLOW),
    pytest.param("case2848_rte", marks=_SLOW),  # 78 buses with several units, PQ units
]


@pytest.mark.parametrize("name", Q_LIMIT_CASES)
def test_q_limits_match_pandapower(name: str) -> None:
    pytest.importorskip("pandapower")
    net = _balanced(_load(name))
    res = ac_power_flow(net, PowerFlowOptions(tolerance_pu=TOL_PU, enforce_q_limits=True))
    assert res.converged
    assert res.q_limited_gens.size > 0, "the case should exercise the limits"
    pnet = _pandapower_net(net, _ref_bus_ids(res), one_unit_per_bus=True)
    _runpp(pnet, enforce_q_lims=True)
    assert _pp_ybus_matches(pnet, net) < 1e-8
    _assert_same_voltages(net, res, pnet)
    # the same buses end with their units at a limit
    limited_buses = set(net.gen.bus_id[res.q_limited_gens].tolist())
    q = pnet.res_gen.q_mvar.to_numpy()
    at_limit = np.isclose(q, pnet.gen.max_q_mvar.to_numpy(), rtol=0, atol=1e-6) | np.isclose(
        q, pnet.gen.min_q_mvar.to_numpy(), rtol=0, atol=1e-6
    )
    assert limited_buses == set(pnet.gen.bus.to_numpy()[at_limit].tolist())


# -- pandapower: distributed slack ---------------------------------------------------------
# pandapower shares the imbalance among gens and ext_grids by `slack_weight` (summed per bus)
# with the same formulation (one slack variable, P_i = P_sched_i + w_i k). Its ext_grid has no
# active set-point, so the reference unit's Pg is added as an sgen at that bus. Units at PQ
# buses become sgens, which cannot take a weight: compared only on cases without any.

DIST_CASES = ["case14_ieee", "case30_ieee", "case57_ieee", "case118_ieee"]


@pytest.mark.parametrize("participation", ["pmax", "pg"])
@pytest.mark.parametrize("name", DIST_CASES)
def test_distributed_slack_matches_pandapower(name: str, participation: str) -> None:
    pp = pytest.importorskip("pandapower")
    net = _balanced(_load(name))
    assert _pq_bus_units(net) == 0
    opts = PowerFlowOptions(
        tolerance_pu=TOL_PU, distributed_slack=True, participation=participation
    )
    res = ac_power_flow(net, opts)
    assert res.converged
    on = net.gen.in_service == 1
    weight = {"pmax": net.gen.pmax_mw, "pg": net.gen.pg_mw}[participation]
    w_bus = np.zeros(net.n_bus)
    np.add.at(w_bus, net.gen_bus[on], np.maximum(weight[on], 0.0))
    pnet = _pandapower_net(net, _ref_bus_ids(res))
    pos = net.bus_index(pnet.gen.bus.to_numpy())
    pnet.gen["slack_weight"] = w_bus[pos]
    pos_eg = net.bus_index(pnet.ext_grid.bus.to_numpy())
    pnet.ext_grid["slack_weight"] = w_bus[pos_eg]
    for b in pnet.ext_grid.bus.to_numpy():
        first = np.flatnonzero(on & (net.gen.bus_id == b))[0]
        pp.create_sgen(pnet, int(b), p_mw=float(net.gen.pg_mw[first]), q_mvar=0.0)
    _runpp(pnet, distributed_slack=True)
    _assert_same_voltages(net, res, pnet)
    # every unit moved in proportion to its weight
    w = np.maximum(weight[on], 0.0)
    moved = res.pg_mw[on] - net.gen.pg_mw[on]
    assert np.allclose(moved, moved.sum() / w.sum() * w, rtol=0, atol=1e-7)
    assert res.pg_mw.sum() == pytest.approx(
        net.bus.pd_mw.sum() + res.losses_mw + float(np.sum(net.bus.gs_mw * res.vm_pu**2)),
        abs=BALANCE_TOL,
    )


# -- invariants (no pandapower) --------------------------------------------------------


def _with_load_scale(net: Network, k: float) -> Network:
    bus = dataclasses.replace(net.bus, pd_mw=net.bus.pd_mw * k, qd_mvar=net.bus.qd_mvar * k)
    scaled = net.replace(bus=bus)
    try:
        return scaled_dispatch(scaled)
    except InfeasibleError:  # beyond the fleet's Pmax: the slack takes the rest
        return scaled


def _connected_outages(net: Network, candidates: list[int]) -> list[int]:
    """The candidates, in order, that can be switched out with the grid still connected."""
    on = np.array(net.branch.in_service == 1)
    out: list[int] = []
    for k in candidates:
        if not on[k]:
            continue
        on[k] = False
        f, t = net.branch_from[on], net.branch_to[on]
        adj = sp.csr_matrix((np.ones(f.size), (f, t)), shape=(net.n_bus, net.n_bus))
        if connected_components(adj, directed=False)[0] == 1:
            out.append(k)
        else:
            on[k] = True
    return out


def _bus_mismatch_mva(net: Network, res: PowerFlowResult) -> np.ndarray:
    """|injection - (branch end flows + shunt)| at every bus, recomputed from the result."""
    n = net.n_bus

    def per_bus(idx: np.ndarray, s: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.bincount(idx, weights=s.real, minlength=n) + 1j * np.bincount(
            idx, weights=s.imag, minlength=n
        )
        return out

    inj = per_bus(net.gen_bus, res.pg_mw + 1j * res.qg_mvar) - (
        net.bus.pd_mw + 1j * net.bus.qd_mvar
    )
    flows = per_bus(net.branch_from, res.p_from_mw + 1j * res.q_from_mvar) + per_bus(
        net.branch_to, res.p_to_mw + 1j * res.q_to_mvar
    )
    shunt = (net.bus.gs_mw - 1j * net.bus.bs_mvar) * res.vm_pu**2
    out: np.ndarray = np.abs(inj - flows - shunt)
    return out


def _check_ac_invariants(net: Network, res: PowerFlowResult, opts: PowerFlowOptions) -> None:
    assert res.converged, f"no convergence ({res.max_mismatch_pu:.2e} pu)"
    assert res.max_mismatch_pu <= opts.tolerance_pu
    on = net.gen.in_service == 1
    assert np.all(res.pg_mw[~on] == 0) and np.all(res.qg_mvar[~on] == 0)
    off = net.branch.in_service == 0
    for a in (res.p_from_mw, res.q_from_mvar, res.p_to_mw, res.q_to_mvar):
        assert np.all(a[off] == 0)
    vm2 = res.vm_pu**2
    # system balance: generation = load + branch losses + shunt conductance
    gap = res.pg_mw.sum() - net.bus.pd_mw.sum() - res.losses_mw - np.sum(net.bus.gs_mw * vm2)
    assert abs(gap) <= BALANCE_TOL, f"active balance off by {gap:.3e} MW"
    # bus by bus, from the result's flows only
    mis = _bus_mismatch_mva(net, res)
    worst = int(np.argmax(mis))
    assert mis[worst] <= BALANCE_TOL, f"bus {net.bus.bus_id[worst]}: mismatch {mis[worst]:.3e} MVA"
    if opts.enforce_q_limits:
        ref = net.bus_index(_ref_bus_ids(res))
        pv_units = on & (net.bus.bus_type[net.gen_bus] != 1) & ~np.isin(net.gen_bus, ref)
        q = res.qg_mvar[pv_units]
        assert np.all(q <= net.gen.qmax_mvar[pv_units] + 1e-6)
        assert np.all(q >= net.gen.qmin_mvar[pv_units] - 1e-6)
    if opts.distributed_slack:
        w = {
            "pmax": net.gen.pmax_mw,
            "pg": net.gen.pg_mw,
            "headroom": net.gen.pmax_mw - net.gen.pg_mw,
        }
        weight = np.maximum(w[opts.participation][on], 0.0)
        moved = res.pg_mw[on] - net.gen.pg_mw[on]
        k = moved.sum() / weight.sum()
        assert np.allclose(moved, k * weight, rtol=0, atol=1e-7)


def _check_dc_conservation(net: Network) -> None:
    dc = dc_power_flow(net)
    assert dc.converged
    n = net.n_bus
    inj = np.bincount(net.gen_bus, weights=dc.pg_mw, minlength=n) - net.bus.pd_mw - net.bus.gs_mw
    out = np.bincount(net.branch_from, weights=dc.p_mw, minlength=n) - np.bincount(
        net.branch_to, weights=dc.p_mw, minlength=n
    )
    assert np.max(np.abs(inj - out)) <= BALANCE_TOL
    assert np.all(dc.p_mw[net.branch.in_service == 0] == 0)
    assert abs(dc.pg_mw.sum() - net.bus.pd_mw.sum() - net.bus.gs_mw.sum()) <= BALANCE_TOL


_INVARIANT_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.parametrize("name", ["case14_ieee", "case30_ieee"])
@_INVARIANT_SETTINGS
@given(
    scale=st.floats(0.5, 1.3),
    outages=st.lists(st.integers(0, 40), max_size=5, unique=True),
    q_limits=st.booleans(),
    distributed=st.booleans(),
    participation=st.sampled_from(["pmax", "pg", "headroom"]),
    init=st.sampled_from(["flat", "case", "dc"]),
)
def test_ac_invariants(
    name: str,
    scale: float,
    outages: list[int],
    q_limits: bool,
    distributed: bool,
    participation: str,
    init: str,
) -> None:
    base = _small(name)
    net = _with_load_scale(base, scale)
    cut = _connected_outages(net, [k % net.n_branch for k in outages])
    net = net.with_branch_status(cut, False) if cut else net
    opts = PowerFlowOptions(
        tolerance_pu=1e-9,
        enforce_q_limits=q_limits,
        distributed_slack=distributed,
        participation=participation,
        init=init,
    )
    res = ac_power_flow(net, opts)
    assert len(res.islands) == 1
    # Heavy load with the wrong outage has no solution (pandapower does not converge on
    # case14 at 1.25x without branch 1-2, nor on case30 without branch 1-2 and with Q limits).
    assume(res.converged)
    _check_ac_invariants(net, res, opts)


@pytest.mark.parametrize("name", ["case14_ieee", "case30_ieee"])
@pytest.mark.parametrize("init", ["flat", "case", "dc"])
@pytest.mark.parametrize(
    ("q_limits", "distributed"), [(False, False), (True, False), (False, True)]
)
def test_base_case_converges_from_every_start(
    name: str, init: str, q_limits: bool, distributed: bool
) -> None:
    net = _balanced(_small(name))
    opts = PowerFlowOptions(
        tolerance_pu=1e-9, enforce_q_limits=q_limits, distributed_slack=distributed, init=init
    )
    _check_ac_invariants(net, ac_power_flow(net, opts), opts)


@pytest.mark.parametrize("name", ["case14_ieee", "case30_ieee"])
@_INVARIANT_SETTINGS
@given(
    scale=st.floats(0.5, 1.3),
    outages=st.lists(st.integers(0, 40), max_size=5, unique=True),
)
def test_dc_conserves_power_at_every_bus(name: str, scale: float, outages: list[int]) -> None:
    net = _with_load_scale(_small(name), scale)
    cut = _connected_outages(net, [k % net.n_branch for k in outages])
    _check_dc_conservation(net.with_branch_status(cut, False) if cut else net)


@pytest.mark.parametrize(
    ("name", "q_limits"),
    [
        ("case24_ieee_rts", False),  # several units per bus, a shunt reactor
        ("case24_ieee_rts", True),
        ("case89_pegase", False),  # shunt conductance, phase shifters
        ("case89_pegase", True),
        ("case300_ieee", False),  # with Q limits neither aiguilleur nor pandapower converges
        ("case30_as", False),  # units at PQ buses with a stored Qg
        ("case30_as", True),
    ],
)
def test_ac_balance_on_other_cases(name: str, q_limits: bool) -> None:
    net = _balanced(_load(name))
    opts = PowerFlowOptions(tolerance_pu=1e-9, enforce_q_limits=q_limits)
    _check_ac_invariants(net, ac_power_flow(net, opts), opts)
    _check_dc_conservation(net)


# -- islands -------------------------------------------------------------------------


def _branch_rows(net: Network, pairs: list[tuple[int, int]]) -> list[int]:
    rows = []
    for a, b in pairs:
        hit = np.flatnonzero(
            ((net.branch.from_bus_id == a) & (net.branch.to_bus_id == b))
            | ((net.branch.from_bus_id == b) & (net.branch.to_bus_id == a))
        )
        assert hit.size == 1, (a, b)
        rows.append(int(hit[0]))
    return rows


def test_island_without_generation_is_deenergised() -> None:
    net = _balanced(_small("case14_ieee"))
    # buses 12, 13 and 14 (34.5 MW of load, no generator) cut off from the rest
    cut = _branch_rows(net, [(6, 12), (6, 13), (9, 14)])
    split = net.with_branch_status(cut, False)
    res = ac_power_flow(split, PowerFlowOptions(tolerance_pu=1e-9))
    assert len(res.islands) == 2
    dead = [i for i in res.islands if not i.energised]
    live = [i for i in res.islands if i.energised]
    assert len(dead) == 1 and len(live) == 1
    d, lv = dead[0], live[0]
    assert d.buses == 3 and lv.buses == 11
    assert d.ref_bus_id is None and not d.converged
    island_buses = np.isin(split.bus.bus_id, [12, 13, 14])
    assert d.load_mw == pytest.approx(float(split.bus.pd_mw[island_buses].sum()))
    assert d.load_mw == pytest.approx(34.5)
    assert d.generation_mw == 0.0
    assert lv.converged and lv.ref_bus_id == 1 and not lv.ref_chosen
    assert res.converged
    assert np.all(res.vm_pu[island_buses] == 0.0)
    touching = np.isin(split.branch.from_bus_id, [12, 13, 14]) | np.isin(
        split.branch.to_bus_id, [12, 13, 14]
    )
    assert np.all(res.p_from_mw[touching] == 0) and np.all(res.q_to_mvar[touching] == 0)
    assert np.all(res.vm_pu[~island_buses] > 0.8)
    # the live island balances; its load excludes the dead island's
    assert np.max(_bus_mismatch_mva(split, res)[~island_buses]) <= BALANCE_TOL
    assert lv.load_mw == pytest.approx(float(split.bus.pd_mw[~island_buses].sum()))
    # DC power flow reports the same islands
    dc = dc_power_flow(split)
    assert [(i.buses, i.energised) for i in dc.islands] == [
        (i.buses, i.energised) for i in res.islands
    ]


def _components(net: Network) -> np.ndarray:
    on = net.branch.in_service == 1
    f, t = net.branch_from[on], net.branch_to[on]
    adj = sp.csr_matrix((np.ones(f.size), (f, t)), shape=(net.n_bus, net.n_bus))
    labels: np.ndarray = connected_components(adj, directed=False)[1]
    return labels


def test_two_energised_islands_each_get_a_reference() -> None:
    net = _balanced(_small("case14_ieee"))
    # the three transformers split the 5-bus HV part from the 9-bus LV part
    cut = _branch_rows(net, [(4, 7), (4, 9), (5, 6)])
    split = net.with_branch_status(cut, False)
    res = ac_power_flow(split, PowerFlowOptions(tolerance_pu=1e-9))
    assert res.converged
    assert sorted(i.buses for i in res.islands) == [5, 9]
    assert all(i.energised and i.converged for i in res.islands)
    hv = next(i for i in res.islands if i.buses == 5)
    lv = next(i for i in res.islands if i.buses == 9)
    assert hv.ref_bus_id == 1 and not hv.ref_chosen
    # no type-3 bus in the LV part: the bus of its largest unit (by Pmax) takes the role
    on = split.gen.in_service == 1
    lv_units = np.flatnonzero(on & (split.gen.bus_id >= 6))
    assert lv.ref_chosen
    assert lv.ref_bus_id == int(split.gen.bus_id[lv_units[np.argmax(split.gen.pmax_mw[lv_units])]])
    assert np.max(_bus_mismatch_mva(split, res)) <= BALANCE_TOL
    # each island balances on its own: generation = load + losses inside it
    label = _components(split)
    br_label = label[split.branch_from]
    for k in np.unique(label):
        buses = label == k
        units = on & buses[split.gen_bus]
        losses = np.sum((res.p_from_mw + res.p_to_mw)[br_label == k])
        gen = res.pg_mw[units].sum()
        isl = next(i for i in res.islands if i.buses == int(buses.sum()))
        assert isl.generation_mw == pytest.approx(gen, abs=1e-9)
        assert gen == pytest.approx(split.bus.pd_mw[buses].sum() + losses, abs=BALANCE_TOL)


def test_islands_match_pandapower() -> None:
    pytest.importorskip("pandapower")
    net = _balanced(_small("case14_ieee"))
    split = net.with_branch_status(_branch_rows(net, [(6, 12), (6, 13), (9, 14)]), False)
    res = ac_power_flow(split, PowerFlowOptions(tolerance_pu=TOL_PU))
    pnet = _pandapower_net(split, _ref_bus_ids(res))
    _runpp(pnet)
    rb = pnet.res_bus.loc[np.asarray(split.bus.bus_id)]
    dead = np.isin(split.bus.bus_id, [12, 13, 14])
    assert np.all(np.isnan(rb.vm_pu.to_numpy()[dead]))  # pandapower: out of service
    va = np.deg2rad(res.va_deg[~dead])
    va_pp = np.deg2rad(rb.va_degree.to_numpy()[~dead])
    assert np.max(np.abs(res.vm_pu[~dead] - rb.vm_pu.to_numpy()[~dead])) <= VM_TOL
    assert np.max(np.abs((va - va[0]) - (va_pp - va_pp[0]))) <= VA_TOL


def test_deenergised_island_solves_without_warnings() -> None:
    net = _balanced(_small("case14_ieee"))
    split = net.with_branch_status(_branch_rows(net, [(6, 12), (6, 13), (9, 14)]), False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = ac_power_flow(split)
    assert res.converged


# -- bad input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tolerance_pu": -1},
        {"tolerance_pu": 0.0},
        {"tolerance_pu": float("nan")},
        {"max_iter": 0},
        {"max_iter": -3},
        {"participation": "load"},
        {"init": "warm"},
    ],
)
def test_bad_options_raise_validation_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PowerFlowOptions(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [{"tolerance_pu": float("inf")}, {"max_iter": 2.5}, {"tolerance_pu": "1e-8"}],
    ids=["inf-tolerance", "fractional-max-iter", "string-tolerance"],
)
def test_meaningless_options_raise_validation_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PowerFlowOptions(**kwargs)


def test_warm_start_of_wrong_length_raises_validation_error() -> None:
    net = _small("case14_ieee")
    with pytest.raises(ValidationError, match="v0"):
        ac_power_flow(net, v0=np.ones(net.n_bus - 1, dtype=complex))


def test_unusable_warm_start_is_reported_not_raised() -> None:
    net = _small("case14_ieee")
    res = ac_power_flow(net, v0=np.zeros(net.n_bus, dtype=complex))
    assert not res.converged and res.iterations <= 1


def test_unknown_result_component_raises() -> None:
    net = _small("case14_ieee")
    with pytest.raises(ValidationError):
        ac_power_flow(net).to_frame("load")
    with pytest.raises(ValidationError):
        dc_power_flow(net).to_frame("island")
