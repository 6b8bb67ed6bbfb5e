"""Corrective plans: each one that says it holds in AC holds in pandapower's power flow."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from aiguilleur.errors import ValidationError
from aiguilleur.grid.corrective import CorrectiveOptions, ac_check, apply_plan, corrective_plan
from aiguilleur.ops.world import load_case_source


def _case118(scale: float) -> Any:
    net = load_case_source("case118")[3]
    b = net.bus
    return net.replace(bus=dataclasses.replace(b, pd_mw=b.pd_mw * scale, qd_mvar=b.qd_mvar * scale))


def _pandapower_limits(net: Any) -> tuple[float, float, float]:
    """Largest loading (% of rate A), lowest and highest voltage margin (pu) by pandapower."""
    pp = pytest.importorskip("pandapower")
    from aiguilleur.grid.pandapower_io import to_pandapower

    ppnet = to_pandapower(net)
    pp.runpp(ppnet, init="dc", tolerance_mva=1e-9, enforce_q_lims=True)
    s = np.zeros(net.n_branch)
    rl, rt = ppnet.res_line, ppnet.res_trafo
    s[rl.index] = np.maximum(
        np.hypot(rl.p_from_mw, rl.q_from_mvar), np.hypot(rl.p_to_mw, rl.q_to_mvar)
    )
    s[rt.index] = np.maximum(np.hypot(rt.p_hv_mw, rt.q_hv_mvar), np.hypot(rt.p_lv_mw, rt.q_lv_mvar))
    rate = np.where(net.branch.rate_a_mva > 0, net.branch.rate_a_mva, np.inf)
    vm = ppnet.res_bus.vm_pu.to_numpy()
    return (
        float(np.max(s / rate * 100.0)),
        float(np.min(vm - net.bus.vmin_pu)),
        float(np.min(net.bus.vmax_pu - vm)),
    )


@pytest.mark.parametrize(
    "scale",
    [
        1.0,  # the stored set-points: 10 overloads and 4 low voltages (the AC-OPF's case)
        1.2,  # no AC solution as it stands: the plan has to shed
    ],
)
def test_plan_holds_in_pandapower(scale: float) -> None:
    net = _case118(scale)
    assert not ac_check(net, "a").ok
    plan = corrective_plan(net)
    assert plan.ok and plan.status == "optimal"
    # a DC plan comes first even with voltage violations (the AC-OPF starts from its power flow)
    assert [s["stage"] for s in plan.stages[:2]] == ["ac_check", "dc_redispatch_1"]
    assert plan.method == "ac_opf"
    if scale > 1.1:
        assert plan.shed_total_mw > 1.0
    after = apply_plan(net, plan.pg_mw, plan.vg_pu, plan.qg_mvar, plan.shed_mw)
    loading, low, high = _pandapower_limits(after)
    assert loading <= 100.5  # CorrectiveOptions.loading_tolerance_pct
    assert low >= -1e-3 and high >= -1e-3  # CorrectiveOptions.voltage_tolerance_pu
    # and pandapower sees the problem the plan removed
    if scale == 1.0:
        before, low0, _ = _pandapower_limits(net)
        assert before > 100.5 and low0 < -1e-3


def test_a_given_opening_check_gives_the_same_plan() -> None:
    net = _case118(1.0)
    fresh = corrective_plan(net)
    given = corrective_plan(net, before=ac_check(net, "a"))
    assert given.stages[0]["reused"] and not fresh.stages[0]["reused"]
    assert given.status == fresh.status and given.method == fresh.method
    np.testing.assert_allclose(given.pg_mw, fresh.pg_mw, atol=1e-6)
    assert given.cost_eur_per_h == pytest.approx(fresh.cost_eur_per_h, rel=1e-9)
    case14 = load_case_source("case14")[3]
    with pytest.raises(ValidationError, match="before"):
        corrective_plan(net, before=ac_check(case14, "a"))


def test_no_shedding_allowed_gives_a_plan_without_shedding() -> None:
    net = _case118(1.0)
    plan = corrective_plan(net, CorrectiveOptions(allow_shedding=False))
    assert plan.shed_total_mw == 0.0 and not np.any(plan.shed_mw)
    if plan.ok:
        after = apply_plan(net, plan.pg_mw, plan.vg_pu, plan.qg_mvar, plan.shed_mw)
        assert ac_check(after, "a").ok
    else:
        assert plan.remaining
