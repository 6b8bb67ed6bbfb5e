"""Preventive N-1 SCED against an extensive formulation built on PYPOWER's PTDF and LODF."""

from __future__ import annotations

import numpy as np
import pytest

from aiguilleur.data import bundled_case_path
from aiguilleur.errors import ValidationError
from aiguilleur.grid import DCOPFOptions, dc_opf, read_matpower
from aiguilleur.grid.security import DEFAULT_EMERGENCY_FACTOR, SCEDOptions, sced
from tests.conftest import shared_case_files
from tests.grid._pypower_ref import extensive_sced, ptdf_lodf

pytest.importorskip("pypower")

LP_CASES = ["case14_ieee", "case30_ieee", "case39_epri", "case57_ieee"]


def _case(name: str):  # type: ignore[no-untyped-def]
    shared = shared_case_files(f"pglib_opf_{name}.m")
    if shared:
        return read_matpower(shared[0])
    try:
        return read_matpower(bundled_case_path(name))
    except ValidationError:
        pytest.skip(f"{name} is neither bundled nor in the shared PGLib set")


@pytest.mark.parametrize("name", LP_CASES)
@pytest.mark.parametrize("factor", [1.0, 1.3])
def test_sced_matches_the_extensive_form(name: str, factor: float) -> None:
    net = _case(name)
    opts = SCEDOptions(
        dcopf=DCOPFOptions(model="matpower", enforce_angle_limits=False),
        emergency_factor=factor,
        emergency_rating="a",
    )
    res = sced(net, opts)
    ref, obj = extensive_sced(net, factor)
    if ref.status == 2:  # infeasible: ours must say which pairs cannot be secured
        assert res.status == "insecure"
        assert res.unsecured and all(c.relaxation_mw > 0 for c in res.unsecured)
        return
    assert ref.status == 0
    assert res.status == "optimal", res.message
    assert res.objective == pytest.approx(obj, rel=1e-6)
    base = dc_opf(net, opts.dcopf)
    assert res.security_cost == pytest.approx(res.objective - base.objective, abs=1e-6)
    assert res.security_cost >= -1e-6


def test_sced_dispatch_is_secure_by_full_post_outage_flows() -> None:
    """Every non-islanding outage, checked with PYPOWER's PTDF of the post-outage grid."""
    net = read_matpower(bundled_case_path("case118"))
    opts = SCEDOptions(
        dcopf=DCOPFOptions(model="matpower", enforce_angle_limits=False, voll_eur_per_mwh=10_000)
    )
    res = sced(net, opts)
    assert res.status in ("optimal", "insecure")
    d = res.dispatch
    inj = np.zeros(net.n_bus)
    np.add.at(inj, net.gen_bus, d.pg_mw)
    inj += d.shed_mw - net.bus.pd_mw - net.bus.gs_mw
    lim = DEFAULT_EMERGENCY_FACTOR * net.branch.rate_a_mva
    unsecured = {(c.outage, c.monitored) for c in res.unsecured}
    checked = 0
    for k in range(0, net.n_branch, 7):  # a spread sample keeps the test fast
        if k in set(res.islanding_outages.tolist()):
            continue
        on = net.branch.in_service == 1
        on[k] = False
        h, _ = ptdf_lodf(net, on)
        flow = h @ inj
        over = np.flatnonzero((np.abs(flow) > lim + 1e-3) & on)
        assert all((k, int(m)) in unsecured for m in over), (k, over)
        checked += 1
    assert checked > 20


def test_case118_insecure_names_pairs_and_relaxation() -> None:
    net = read_matpower(bundled_case_path("case118"))
    res = sced(net)
    assert res.limit_rule.startswith(f"{DEFAULT_EMERGENCY_FACTOR:g} x rate_a")
    assert res.status == "insecure"
    assert res.unsecured
    c = res.unsecured[0]
    assert abs(c.post_flow_mw) > c.limit_mw
    assert c.relaxation_mw == pytest.approx(abs(c.post_flow_mw) - c.limit_mw, abs=1e-2)
    assert "cannot be secured" in res.message
    assert np.all(np.isfinite(res.dispatch.lmp))
    assert (
        np.nanmax(np.abs(res.dispatch.lmp)) < 1e5
    )  # prices of the relaxed problem, not the penalty
    assert set(res.to_frame("unsecured").columns) >= {"outage_branch", "monitored_branch"}


def test_shedding_secures_what_redispatch_cannot() -> None:
    net = read_matpower(bundled_case_path("case118"))
    res = sced(net, SCEDOptions(dcopf=DCOPFOptions(voll_eur_per_mwh=10_000.0)))
    assert res.status == "optimal"
    assert res.dispatch.total_shed_mw > 0


def test_sced_reports_rounds_and_binding_contingencies() -> None:
    net = read_matpower(bundled_case_path("case118"))
    res = sced(net, SCEDOptions(emergency_factor=1.6))
    assert res.status == "optimal"
    assert res.rounds >= 1 and res.constraints_added >= len(res.binding)
    assert res.binding
    for c in res.binding:
        assert abs(c.post_flow_mw) == pytest.approx(c.limit_mw, rel=1e-5)
    assert res.binding_contingencies == sorted({c.outage for c in res.binding})


def test_options_are_validated() -> None:
    with pytest.raises(ValidationError, match="emergency_factor"):
        SCEDOptions(emergency_factor=-1.0)
    with pytest.raises(ValidationError, match="max_rounds"):
        SCEDOptions(max_rounds=0)
    with pytest.raises(ValidationError, match="value of lost load"):
        SCEDOptions(dcopf=DCOPFOptions(voll_eur_per_mwh=1e8), insecurity_penalty_eur_per_mwh=1e6)
