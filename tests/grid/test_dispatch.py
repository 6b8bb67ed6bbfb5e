"""DC optimal power flow: PGLib references, independent feasibility checks, prices.

Every solution is checked by code that does not share the solver's matrices:
flows recomputed from the angles with numpy, power balance per bus, limits,
and prices by finite differences of the objective. Objectives are compared
with PGLib-OPF's published DC values, with PyPSA's linear OPF and with
PYPOWER's ``rundcopf`` (MATPOWER's DC OPF) where those are installed.
"""

from __future__ import annotations

import csv
import dataclasses
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiguilleur.data import bundled_case_path
from aiguilleur.errors import ValidationError
from aiguilleur.grid.dispatch import DCOPFOptions, DCOPFResult, dc_opf
from aiguilleur.grid.matpower import read_matpower
from aiguilleur.grid.network import GenCostTable, Network
from aiguilleur.grid.pypsa_io import to_pypsa
from aiguilleur.grid.sensitivity import bridges
from tests.conftest import shared_case_params, shared_cases_dir

REFERENCE_CSV = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "pglib-opf" / "reference.csv"
)
# Objective tolerance against PGLib's published DC values (5 significant digits).
REL_TOL = 1e-4
# PGLib's DC values come from PowerModels v0.19.9 solved with Ipopt. On
# case1803_snem one angle-difference limit binds (branch row 593, 915-982,
# at -30 degrees, shadow price 27.35 $/h per degree) and the published value
# corresponds to that angle at about 30.38 degrees: 6.6 mrad beyond the limit,
# inside Ipopt's "acceptable" constraint tolerance (1e-2) rather than a model
# difference (relaxing that one limit by 0.38 degrees reproduces the value).
KNOWN_GAPS = {"case1803_snem": 2e-4}
LARGE_BUSES = 1000


def _reference() -> dict[str, float]:
    if not REFERENCE_CSV.is_file():
        return {}
    with REFERENCE_CSV.open() as fh:
        return {
            r["case"].removeprefix("pglib_opf_"): float(r["dc_objective"])
            for r in csv.DictReader(fh)
            if r["set"] == "typ" and r["dc_objective"].strip()
        }


REFERENCE = _reference()


def _sized_params() -> list[Any]:
    """Shared cases, those above LARGE_BUSES buses marked slow."""
    out = []
    for p in shared_case_params():
        path = p.values[0]
        if path is None:
            out.append(p)
            continue
        m = re.search(r"case(\d+)", path.stem)
        big = m is not None and int(m.group(1)) > LARGE_BUSES
        out.append(pytest.param(path, id=p.id, marks=[pytest.mark.slow] if big else []))
    return out


@cache
def _solved(path: Path) -> tuple[Network, DCOPFResult]:
    net = read_matpower(path)
    return net, dc_opf(net)


def _bundled(name: str) -> Network:
    return read_matpower(bundled_case_path(name))


# -- independent checks ---------------------------------------------------------------


def _pglib_flows(net: Network, va_deg: np.ndarray) -> np.ndarray:
    """PowerModels' DC flows from the angles: x/(r^2+x^2) * (va_f - va_t)."""
    br = net.branch
    b = br.x_pu / (br.r_pu**2 + br.x_pu**2)
    theta = np.deg2rad(va_deg)
    f, t = net.branch_from, net.branch_to
    flow = b * (theta[f] - theta[t]) * net.base_mva
    return np.where(br.in_service == 1, flow, 0.0)


def _check_feasible(net: Network, r: DCOPFResult, tol_mw: float = 1e-5) -> None:
    assert r.status == "optimal"
    base_tol = tol_mw * max(1.0, float(np.max(np.abs(net.bus.pd_mw))) / 100.0)
    # flows are B-theta of the reported angles
    np.testing.assert_allclose(r.flow_mw, _pglib_flows(net, r.va_deg), atol=1e-7, rtol=1e-9)
    # power balance: generation + shedding - demand = flow leaving each bus
    out = np.zeros(net.n_bus)
    np.add.at(out, net.branch_from, r.flow_mw)
    np.add.at(out, net.branch_to, -r.flow_mw)
    gen = np.zeros(net.n_bus)
    np.add.at(gen, net.gen_bus, r.pg_mw)
    demand = net.bus.pd_mw + net.bus.gs_mw
    np.testing.assert_allclose(gen + r.shed_mw - demand, out, atol=base_tol)
    np.testing.assert_allclose(r.injection_mw, out, atol=base_tol)
    # generator limits (out of service at 0)
    on = net.gen.in_service == 1
    assert np.all(r.pg_mw[on] >= net.gen.pmin_mw[on] - base_tol)
    assert np.all(r.pg_mw[on] <= net.gen.pmax_mw[on] + base_tol)
    assert np.all(r.pg_mw[~on] == 0.0)
    # branch ratings and angle-difference limits
    rate = net.branch.rate_a_mva
    lim = (rate > 0) & (net.branch.in_service == 1)
    assert np.all(np.abs(r.flow_mw[lim]) <= rate[lim] + base_tol)
    dtheta = r.va_deg[net.branch_from] - r.va_deg[net.branch_to]
    bon = net.branch.in_service == 1
    amin = np.where(net.branch.angmin_deg <= -90, -60.0, net.branch.angmin_deg)
    amax = np.where(net.branch.angmax_deg >= 90, 60.0, net.branch.angmax_deg)
    assert np.all(dtheta[bon] >= amin[bon] - 1e-6)
    assert np.all(dtheta[bon] <= amax[bon] + 1e-6)
    # shedding within the demand and never negative
    assert np.all(r.shed_mw >= -base_tol)
    assert np.all(r.shed_mw <= np.maximum(demand, 0.0) + base_tol)


def _rent_identity(net: Network, r: DCOPFResult) -> tuple[float, float]:
    """(sum of lmp * injection, sum of limit duals * constrained quantity)."""
    dtheta = r.va_deg[net.branch_from] - r.va_deg[net.branch_to]
    lhs = float(np.nansum(r.lmp * r.injection_mw))
    rhs = float(np.sum(r.flow_mw * r.flow_dual) + np.sum(dtheta * r.angle_dual))
    return lhs, rhs


# -- PGLib references ---------------------------------------------------------------------


@pytest.mark.parametrize("path", _sized_params())
def test_objective_matches_pglib_dc_reference(path: Path | None) -> None:
    assert path is not None
    case = path.stem.removeprefix("pglib_opf_")
    _, r = _solved(path)
    assert r.status == "optimal", r.message
    if case not in REFERENCE:
        pytest.skip(f"{case}: no DC objective in reference.csv")
    ref = REFERENCE[case]
    gap = abs(r.objective - ref) / abs(ref)
    assert gap <= KNOWN_GAPS.get(case, REL_TOL), f"{case}: {r.objective} vs {ref} ({gap:.2e})"


@pytest.mark.parametrize("path", _sized_params())
def test_solution_is_feasible_and_prices_consistent(path: Path | None) -> None:
    assert path is not None
    net, r = _solved(path)
    _check_feasible(net, r)
    lhs, rhs = _rent_identity(net, r)
    assert lhs == pytest.approx(rhs, rel=1e-6, abs=1e-6 * max(1.0, abs(r.objective)))
    assert r.congestion_rent >= -1e-6 * max(1.0, abs(r.objective))
    np.testing.assert_allclose(r.lmp_energy + r.lmp_congestion, r.lmp, atol=1e-9)
    # the binding branches are at their rating
    b = r.binding_branches
    np.testing.assert_allclose(np.abs(r.flow_mw[b]), r.rating_mw[b], rtol=1e-6, atol=1e-5)


def test_tangent_cuts_agree_with_highs_qp_where_it_finishes() -> None:
    # HiGHS's active-set QP solver ends in "Solve error" on case200_activ,
    # case793_goc and case2742_goc here (the reference test above covers them
    # with tangent cuts); where it does finish, both methods must agree.
    d = shared_cases_dir()
    if d is None:
        pytest.skip("the shared PGLib case set is absent")
    for name in ("case24_ieee_rts", "case30_as", "case73_ieee_rts", "case500_goc"):
        net = read_matpower(d / f"pglib_opf_{name}.m")
        cuts = dc_opf(net)
        qp = dc_opf(net, DCOPFOptions(quadratic="highs_qp"))
        assert cuts.quadratic and cuts.status == "optimal"
        if qp.status == "optimal":
            assert cuts.objective == pytest.approx(qp.objective, rel=1e-8)
            np.testing.assert_allclose(cuts.lmp, qp.lmp, atol=1e-3)


# -- prices ------------------------------------------------------------------------------


def test_uncongested_case14_prices_equal_marginal_unit_cost() -> None:
    net = _bundled("case14")
    r = dc_opf(net)
    assert r.status == "optimal"
    assert r.binding_branches.size == 0
    cost = net.gencost.polynomial(net.n_gen)  # type: ignore[union-attr]
    on = net.gen.in_service == 1
    marginal = np.flatnonzero(
        on & (r.pg_mw > net.gen.pmin_mw + 1e-6) & (r.pg_mw < net.gen.pmax_mw - 1e-6)
    )
    assert marginal.size == 1
    g = int(marginal[0])
    price = 2 * cost[g, 0] * r.pg_mw[g] + cost[g, 1]
    np.testing.assert_allclose(r.lmp, price, rtol=1e-9)
    np.testing.assert_allclose(r.lmp_congestion, 0.0, atol=1e-9)
    assert r.congestion_rent == pytest.approx(0.0, abs=1e-6)


def _congested_case14() -> tuple[Network, int]:
    net = _bundled("case14")
    r = dc_opf(net)
    # the busiest branch (1-2) at 85 % of its flow: bus 2's unit must make up the rest
    k = int(np.argmax(np.abs(r.flow_mw)))
    rate = np.array(net.branch.rate_a_mva)
    rate[k] = 0.85 * abs(r.flow_mw[k])
    net = net.replace(branch=dataclasses.replace(net.branch, rate_a_mva=rate))
    return net, k


def test_congested_case14_rent_equals_flow_duals() -> None:
    net, k = _congested_case14()
    r = dc_opf(net)
    _check_feasible(net, r)
    assert k in r.binding_branches
    assert np.ptp(r.lmp) > 1.0
    lhs, rhs = _rent_identity(net, r)
    assert lhs == pytest.approx(rhs, abs=1e-6)
    assert r.congestion_rent > 0
    # at its upper limit the branch's dual is negative (relaxing it saves money)
    assert r.flow_dual[k] * np.sign(r.flow_mw[k]) < 0
    # energy price is the reference bus's price
    ref = int(np.flatnonzero(net.bus.bus_type == 3)[0])
    np.testing.assert_allclose(r.lmp_energy, r.lmp[ref])
    assert r.lmp_congestion[ref] == 0.0


@pytest.mark.parametrize("bus_row", [0, 4, 9, 13])
def test_lmp_is_the_cost_of_one_more_mw_of_load(bus_row: int) -> None:
    net, _ = _congested_case14()
    r = dc_opf(net)
    delta = 1e-3
    pd = np.array(net.bus.pd_mw)
    pd[bus_row] += delta
    more = dc_opf(net.replace(bus=dataclasses.replace(net.bus, pd_mw=pd)))
    assert (more.objective - r.objective) / delta == pytest.approx(r.lmp[bus_row], rel=1e-6)


def test_quadratic_marginal_unit_sets_the_price() -> None:
    d = shared_cases_dir()
    if d is None:
        pytest.skip("the shared PGLib case set is absent")
    net = read_matpower(d / "pglib_opf_case24_ieee_rts.m")
    r = dc_opf(net)
    cost = net.gencost.polynomial(net.n_gen)  # type: ignore[union-attr]
    inner = (r.pg_mw > net.gen.pmin_mw + 1e-3) & (r.pg_mw < net.gen.pmax_mw - 1e-3)
    quad = inner & (cost[:, 0] > 0) & (net.gen.in_service == 1)
    assert np.any(quad)
    g = np.flatnonzero(quad)
    marginal_cost = 2 * cost[g, 0] * r.pg_mw[g] + cost[g, 1]
    np.testing.assert_allclose(r.lmp[net.gen_bus[g]], marginal_cost, atol=1e-3)


# -- infeasibility and shedding --------------------------------------------------------------


def _overloaded_case14(unlimited: bool) -> tuple[Network, float]:
    net = _bundled("case14")
    pmax = float(np.sum(net.gen.pmax_mw[net.gen.in_service == 1]))
    scale = 1.2 * pmax / float(np.sum(net.bus.pd_mw))
    bus = dataclasses.replace(net.bus, pd_mw=net.bus.pd_mw * scale)
    net = net.replace(bus=bus)
    if unlimited:
        rate0 = np.zeros(net.n_branch)
        net = net.replace(branch=dataclasses.replace(net.branch, rate_a_mva=rate0))
    return net, float(np.sum(net.bus.pd_mw)) - pmax


def test_load_above_capacity_is_reported_infeasible() -> None:
    net, _ = _overloaded_case14(unlimited=False)
    r = dc_opf(net)
    assert r.status == "infeasible"
    assert np.isnan(r.objective)
    assert np.all(np.isnan(r.pg_mw))


def test_value_of_lost_load_sheds_exactly_the_deficit() -> None:
    net, deficit = _overloaded_case14(unlimited=True)
    voll = 5000.0
    r = dc_opf(net, DCOPFOptions(voll_eur_per_mwh=voll, enforce_angle_limits=False))
    assert r.status == "optimal"
    assert r.total_shed_mw == pytest.approx(deficit, rel=1e-9)
    on = net.gen.in_service == 1
    np.testing.assert_allclose(r.pg_mw[on], net.gen.pmax_mw[on], atol=1e-6)
    # where load is shed, one more MW costs the value of lost load
    shed = r.shed_mw > 1e-6
    np.testing.assert_allclose(r.lmp[shed], voll, rtol=1e-9)
    cost = net.gencost.polynomial(net.n_gen)  # type: ignore[union-attr]
    gen_cost = float(np.sum(cost[on, 0] * r.pg_mw[on] ** 2 + cost[on, 1] * r.pg_mw[on]))
    gen_cost += float(np.sum(cost[on, 2]))
    assert r.objective == pytest.approx(gen_cost + voll * deficit, rel=1e-9)


def test_value_of_lost_load_with_network_limits() -> None:
    net, deficit = _overloaded_case14(unlimited=False)
    r = dc_opf(net, DCOPFOptions(voll_eur_per_mwh=10_000.0))
    assert r.status == "optimal"
    _check_feasible(net, r)
    assert r.total_shed_mw >= deficit - 1e-6


def test_island_without_generation_sheds_its_load() -> None:
    net = _bundled("case14")
    f, t = net.bus_index(net.branch.from_bus_id), net.bus_index(net.branch.to_bus_id)
    bus14 = int(net.bus_index([14])[0])
    cut = np.flatnonzero((f == bus14) | (t == bus14))
    islanded = net.with_branch_status(cut, 0)
    assert dc_opf(islanded).status == "infeasible"
    r = dc_opf(islanded, DCOPFOptions(voll_eur_per_mwh=3000.0))
    assert r.status == "optimal"
    assert r.shed_mw[bus14] == pytest.approx(net.bus.pd_mw[bus14])
    assert r.lmp[bus14] == pytest.approx(3000.0)
    assert r.total_shed_mw == pytest.approx(net.bus.pd_mw[bus14])
    assert np.all(r.flow_mw[cut] == 0.0)


def test_isolated_bus_is_left_out() -> None:
    net = _bundled("case14")
    bus14 = int(net.bus_index([14])[0])
    types = np.array(net.bus.bus_type)
    types[bus14] = 4
    r = dc_opf(net.replace(bus=dataclasses.replace(net.bus, bus_type=types)))
    assert r.status == "optimal"
    assert np.isnan(r.lmp[bus14])
    assert r.shed_mw[bus14] == 0.0


# -- costs ---------------------------------------------------------------------------------


def _with_costs(net: Network, model: np.ndarray, ncost: np.ndarray, params: np.ndarray) -> Network:
    ng = net.n_gen
    gc = GenCostTable(
        model=model, startup=np.zeros(ng), shutdown=np.zeros(ng), ncost=ncost, params=params
    )
    return net.replace(gencost=gc)


def test_piecewise_linear_costs_match_their_polynomial() -> None:
    # a linear cost written as two points must give the same dispatch and cost
    net = _bundled("case118")
    poly = net.gencost.polynomial(net.n_gen)  # type: ignore[union-attr]
    lo, hi = net.gen.pmin_mw, np.maximum(net.gen.pmax_mw, net.gen.pmin_mw + 1.0)
    params = np.column_stack([lo, poly[:, 1] * lo + poly[:, 2], hi, poly[:, 1] * hi + poly[:, 2]])
    pwl = _with_costs(net, np.ones(net.n_gen, dtype=int), np.full(net.n_gen, 2), params)
    a, b = dc_opf(net), dc_opf(pwl)
    assert b.status == "optimal"
    assert b.objective == pytest.approx(a.objective, rel=1e-9)
    np.testing.assert_allclose(b.lmp, a.lmp, atol=1e-6)


def test_piecewise_linear_quadratic_approximation() -> None:
    # a convex three-segment curve; the cost is checked against its own formula
    net = _bundled("case14")
    ng = net.n_gen
    pmax = np.maximum(net.gen.pmax_mw, 1.0)
    x = np.linspace(0.0, 1.0, 4)[None, :] * pmax[:, None]
    y = 0.05 * x**2 + 10.0 * x + np.arange(ng)[:, None]
    params = np.empty((ng, 8))
    params[:, 0::2], params[:, 1::2] = x, y
    pwl = _with_costs(net, np.ones(ng, dtype=int), np.full(ng, 4), params)
    r = dc_opf(pwl)
    assert r.status == "optimal"
    _check_feasible(pwl, r)
    on = net.gen.in_service == 1
    expected = sum(float(np.interp(r.pg_mw[g], x[g], y[g])) for g in np.flatnonzero(on))
    assert r.objective == pytest.approx(expected, rel=1e-9)


def test_bad_costs_are_rejected() -> None:
    net = _bundled("case14")
    ng = net.n_gen
    # non-convex piecewise-linear curve
    params = np.tile([0.0, 0.0, 50.0, 1000.0, 100.0, 1200.0], (ng, 1))
    with pytest.raises(ValidationError, match="not convex"):
        dc_opf(_with_costs(net, np.ones(ng, dtype=int), np.full(ng, 3), params))
    # negative quadratic term
    params = np.tile([-0.1, 10.0, 0.0], (ng, 1))
    with pytest.raises(ValidationError, match="non-convex"):
        dc_opf(_with_costs(net, np.full(ng, 2), np.full(ng, 3), params))
    # cubic term
    params = np.tile([0.01, 0.0, 10.0, 0.0], (ng, 1))
    with pytest.raises(ValidationError, match="order 3"):
        dc_opf(_with_costs(net, np.full(ng, 2), np.full(ng, 4), params))
    # no costs at all
    with pytest.raises(ValidationError, match="no generator costs"):
        dc_opf(net.replace(gencost=None))


def test_leading_zero_cubic_terms_are_accepted() -> None:
    net = _bundled("case14")
    poly = net.gencost.polynomial(net.n_gen)  # type: ignore[union-attr]
    params = np.column_stack([np.zeros(net.n_gen), poly])
    cubic = _with_costs(net, np.full(net.n_gen, 2), np.full(net.n_gen, 4), params)
    assert dc_opf(cubic).objective == pytest.approx(dc_opf(net).objective, rel=1e-12)


# -- options, models, components out of service ----------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model": "acopf"},
        {"rating": "d"},
        {"enforce_angle_limits": 1},
        {"voll_eur_per_mwh": -1.0},
        {"voll_eur_per_mwh": "high"},
        {"primal_feasibility_tolerance": 0.0},
        {"dual_feasibility_tolerance": True},
        {"time_limit_s": 0.0},
        {"solver": "gurobi"},
        {"quadratic": "exact"},
    ],
)
def test_bad_options_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        DCOPFOptions(**kwargs)


def test_options_must_be_options() -> None:
    with pytest.raises(ValidationError, match="DCOPFOptions"):
        dc_opf(_bundled("case14"), {"model": "pglib"})  # type: ignore[arg-type]


def test_time_limit_is_a_status_not_an_exception() -> None:
    d = shared_cases_dir()
    if d is None:
        pytest.skip("the shared PGLib case set is absent")
    net = read_matpower(d / "pglib_opf_case793_goc.m")
    r = dc_opf(net, DCOPFOptions(time_limit_s=1e-9))
    assert r.status == "error"
    assert "time limit" in r.message.lower()
    assert np.isnan(r.objective)


def test_ratings_b_and_c_and_angle_limits() -> None:
    net, k = _congested_case14()
    a = dc_opf(net, DCOPFOptions(rating="a"))
    c = dc_opf(net, DCOPFOptions(rating="c"))  # rate_c was left at its original value
    assert a.objective > c.objective
    assert k not in c.binding_branches
    loose = dc_opf(net, DCOPFOptions(enforce_angle_limits=False))
    assert loose.objective <= a.objective + 1e-9


def test_out_of_service_components() -> None:
    net = _bundled("case118")
    r0 = dc_opf(net)
    g = int(np.argmax(r0.pg_mw))
    # the busiest branch whose outage does not split the grid
    flows = np.abs(r0.flow_mw)
    flows[bridges(net)] = -1.0
    k = int(np.argmax(flows))
    net2 = net.with_gen_status([g], 0).with_branch_status([k], 0)
    r = dc_opf(net2)
    _check_feasible(net2, r)
    assert r.pg_mw[g] == 0.0
    assert r.flow_mw[k] == 0.0
    assert r.objective > r0.objective


def test_matpower_model_matches_pypower_rundcopf() -> None:
    pypower = pytest.importorskip("pypower.api")
    for name in ("case14", "case118"):
        net = _bundled(name)
        gen = net.gen.matrix()
        if gen.shape[1] < 21:
            gen = np.hstack([gen, np.zeros((net.n_gen, 21 - gen.shape[1]))])
        gc = net.gencost
        assert gc is not None
        ppc = {
            "version": "2",
            "baseMVA": net.base_mva,
            "bus": net.bus.matrix(),
            "gen": gen,
            "branch": net.branch.matrix(),
            "gencost": np.column_stack([gc.model, gc.startup, gc.shutdown, gc.ncost, gc.params]),
        }
        ref = pypower.rundcopf(ppc, pypower.ppoption(VERBOSE=0, OUT_ALL=0))
        assert ref["success"]
        r = dc_opf(net, DCOPFOptions(model="matpower"))
        assert r.objective == pytest.approx(ref["f"], rel=1e-8)
        np.testing.assert_allclose(r.lmp, ref["bus"][:, 13], atol=1e-5)
        np.testing.assert_allclose(r.pg_mw, ref["gen"][:, 1], atol=1e-4)


def _compare_with_pypsa(name: str) -> None:
    pytest.importorskip("pypsa")
    net = _bundled(name)
    # PyPSA has no angle-difference limits; they do not bind on these cases
    ours = dc_opf(net, DCOPFOptions(enforce_angle_limits=False))
    assert ours.objective == pytest.approx(dc_opf(net).objective, rel=1e-12)
    cost = net.gencost.polynomial(net.n_gen)  # type: ignore[union-attr]
    assert np.all(cost[:, 0] == 0), "the PyPSA comparison assumes linear costs"
    n, c0 = to_pypsa(net)
    status, condition = n.optimize(solver_name="highs")
    assert (status, condition) == ("ok", "optimal")
    theirs = float(n.objective) + c0
    assert ours.objective == pytest.approx(theirs, rel=1e-4)
    # the LP is not degenerate here, so the duals are unique and must agree
    lmp = n.buses_t.marginal_price.iloc[0].to_numpy()
    np.testing.assert_allclose(ours.lmp, lmp, atol=0.01)


@pytest.mark.filterwarnings("ignore")
def test_objective_and_prices_match_pypsa_case118() -> None:
    _compare_with_pypsa("case118")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_objective_and_prices_match_pypsa_case1888_rte() -> None:
    _compare_with_pypsa("case1888_rte")


# -- result values -----------------------------------------------------------------------------


def test_result_is_read_only_and_has_frames() -> None:
    net = _bundled("case14")
    r = dc_opf(net)
    with pytest.raises(ValueError):
        r.lmp[0] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.objective = 0.0  # type: ignore[misc]
    bus, gen, br = r.to_frame("bus"), r.to_frame("gen"), r.to_frame("branch")
    assert len(bus) == net.n_bus and len(gen) == net.n_gen and len(br) == net.n_branch
    assert {"bus_id", "va_deg", "lmp", "lmp_energy", "lmp_congestion", "shed_mw"} <= set(bus)
    assert {"bus_id", "pg_mw"} <= set(gen)
    assert {"from_bus_id", "to_bus_id", "flow_mw", "rating_mw", "flow_dual", "binding"} <= set(br)
    assert list(bus.bus_id) == list(net.bus.bus_id)
    with pytest.raises(ValidationError, match="unknown component"):
        r.to_frame("load")


def test_dc_opf_prints_nothing() -> None:
    # HiGHS's Python wrapper prints a banner on stdout; it must not leak into
    # machine-readable output such as `aiguilleur grid dispatch --json`
    code = (
        "from aiguilleur.data import bundled_case_path\n"
        "from aiguilleur.grid.matpower import read_matpower\n"
        "from aiguilleur.grid.dispatch import dc_opf\n"
        "dc_opf(read_matpower(bundled_case_path('case14')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == ""
    assert out.stderr == ""


@settings(max_examples=25, deadline=None)
@given(
    scale=st.floats(min_value=0.3, max_value=1.6),
    voll=st.floats(min_value=200.0, max_value=20_000.0),
)
def test_balance_and_flows_hold_for_any_load_level(scale: float, voll: float) -> None:
    net = _bundled("case14")
    net = net.replace(bus=dataclasses.replace(net.bus, pd_mw=net.bus.pd_mw * scale))
    r = dc_opf(net, DCOPFOptions(voll_eur_per_mwh=voll))
    _check_feasible(net, r)
    lhs, rhs = _rent_identity(net, r)
    assert lhs == pytest.approx(rhs, abs=1e-6 * max(1.0, r.objective))
