"""N-1 screening: the screened AC result must equal a full AC power flow of every outage."""

from __future__ import annotations

import numpy as np
import pytest

from aiguilleur.data import bundled_case_path
from aiguilleur.errors import SolverError, ValidationError
from aiguilleur.grid import (
    ContingencyOptions,
    Network,
    ac_power_flow,
    apply_outage,
    read_matpower,
    scaled_dispatch,
    screen_n1,
)


def _load(name: str) -> Network:
    return scaled_dispatch(read_matpower(bundled_case_path(name)))


def _assert_same(screened: object, full: object) -> None:
    s, f = screened, full
    assert s.violations() == f.violations()  # type: ignore[attr-defined]
    np.testing.assert_array_equal(s.status, f.status)  # type: ignore[attr-defined]


@pytest.mark.parametrize("generators", [False, True])
def test_screened_equals_full_ac_case118(generators: bool) -> None:
    net = _load("case118")
    opts = ContingencyOptions(generators=generators)
    screened = screen_n1(net, opts)
    full = screen_n1(net, ContingencyOptions(generators=generators, method="full"))
    _assert_same(screened, full)
    assert screened.count("islanding") == 9
    assert len(screened) == int(np.sum(net.branch.in_service == 1)) + (
        int(np.sum(net.gen.in_service == 1)) if generators else 0
    )


def test_screened_equals_full_ac_case118_lightly_loaded() -> None:
    # at 70 % load most outages are secure, so the DC screen must do the sorting
    net = _load("case118")
    import dataclasses

    net = net.replace(bus=dataclasses.replace(net.bus, pd_mw=net.bus.pd_mw * 0.7))
    net = scaled_dispatch(net)
    screened = screen_n1(net, ContingencyOptions(margin_pct=10.0))
    full = screen_n1(net, ContingencyOptions(method="full"))
    _assert_same(screened, full)
    assert screened.count("secure") > 0
    assert screened.ac_solved < full.ac_solved


@pytest.mark.slow
def test_screened_equals_full_ac_case1888_rte() -> None:
    net = _load("case1888_rte")
    screened = screen_n1(net)
    full = screen_n1(net, ContingencyOptions(method="full"))
    _assert_same(screened, full)
    assert screened.count("islanding") > 0


def test_overloads_match_a_direct_power_flow() -> None:
    net = _load("case118")
    res = screen_n1(net)
    i = int(np.flatnonzero(res.status == "overload")[0])
    k = int(res.element[i])
    pf = ac_power_flow(net.with_branch_status(k, 0))
    direct = np.flatnonzero(np.nan_to_num(pf.loading_pct) > 100.0)
    assert set(direct.tolist()) == set(res.overloaded[i].tolist())
    assert res.max_loading_pct[i] == pytest.approx(np.nanmax(pf.loading_pct), abs=1e-5)


def test_islanding_outage_reports_what_it_cuts_off() -> None:
    net = _load("case118")
    res = screen_n1(net)
    isl = np.flatnonzero(res.status == "islanding")
    assert isl.size
    for i in isl:
        k = int(res.element[i])
        pf = ac_power_flow(net.with_branch_status(k, 0))
        assert len(pf.islands) == 2
        small = min(pf.islands, key=lambda r: r.buses)
        assert res.cut_buses[i] == small.buses
        assert res.lost_load_mw[i] == pytest.approx(small.load_mw)


def test_dc_only_and_ranking() -> None:
    net = _load("case14")
    res = screen_n1(net, ContingencyOptions(ac_verify=False))
    assert res.method == "dc"
    assert not res.verified.any()
    order = res.ranked()
    loads = np.nan_to_num(res.max_loading_pct[order], nan=-1.0)
    assert np.all(np.diff(loads) <= 0)
    df = res.to_frame()
    assert list(df.columns[:4]) == ["kind", "element", "status", "max_loading_pct"]


def test_rating_choice_changes_the_limit() -> None:
    net = _load("case118")
    import dataclasses

    rate_c = net.branch.rate_a_mva * 2.0
    net = net.replace(branch=dataclasses.replace(net.branch, rate_c_mva=rate_c))
    a = screen_n1(net, ContingencyOptions(rating="a"))
    c = screen_n1(net, ContingencyOptions(rating="c"))
    assert c.count("overload") < a.count("overload")


def test_bad_options_and_unsolvable_base() -> None:
    with pytest.raises(ValidationError):
        ContingencyOptions(rating="z")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        ContingencyOptions(margin_pct=150)
    net = read_matpower(bundled_case_path("case14"))
    import dataclasses

    heavy = net.replace(bus=dataclasses.replace(net.bus, pd_mw=net.bus.pd_mw * 40))
    with pytest.raises(SolverError, match="did not converge"):
        screen_n1(heavy)


def test_progress_is_reported() -> None:
    seen: list[tuple[int, int]] = []
    screen_n1(_load("case14"), progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1]


def test_dc_only_equals_a_dc_power_flow_of_every_outage() -> None:
    from aiguilleur.grid import dc_power_flow

    net = _load("case118")
    res = screen_n1(net, ContingencyOptions(ac_verify=False, generators=True))
    rate = np.where(net.branch.rate_a_mva > 0, net.branch.rate_a_mva, np.inf)
    for p in range(len(res)):
        if res.status[p] == "islanding":
            continue
        k = int(res.element[p])
        if res.kind[p] == "branch":
            after = dc_power_flow(apply_outage(net, "branch", k))
        else:
            after = dc_power_flow(apply_outage(net, "generator", k))
        load = np.abs(after.p_mw) / rate * 100.0
        assert set(np.flatnonzero(load > 100.0).tolist()) == set(res.overloaded[p].tolist())
        assert res.max_loading_pct[p] == pytest.approx(np.nanmax(load), abs=1e-7)


def test_violations_match_pandapower_per_outage() -> None:
    """An outside reference: pandapower's own Newton-Raphson, one outage at a time."""
    pp = pytest.importorskip("pandapower")
    from aiguilleur.grid.pandapower_io import to_pandapower

    net = _load("case118")
    res = screen_n1(net)
    ppnet = to_pandapower(net)
    rate = np.where(net.branch.rate_a_mva > 0, net.branch.rate_a_mva, np.inf)
    studied = np.flatnonzero(res.status != "islanding")
    for p in studied[:: max(1, studied.size // 25)]:
        k = int(res.element[p])
        table = "line" if k in ppnet.line.index else "trafo"
        getattr(ppnet, table).loc[k, "in_service"] = False
        try:
            pp.runpp(ppnet, init="dc", tolerance_mva=1e-9, calculate_voltage_angles=True)
        finally:
            getattr(ppnet, table).loc[k, "in_service"] = True
        s = np.zeros(net.n_branch)
        rl, rt = ppnet.res_line, ppnet.res_trafo
        s[rl.index] = np.maximum(
            np.hypot(rl.p_from_mw, rl.q_from_mvar), np.hypot(rl.p_to_mw, rl.q_to_mvar)
        )
        s[rt.index] = np.maximum(
            np.hypot(rt.p_hv_mw, rt.q_hv_mvar), np.hypot(rt.p_lv_mw, rt.q_lv_mvar)
        )
        s[k] = 0.0
        load = s / rate * 100.0
        assert set(np.flatnonzero(load > 100.0).tolist()) == set(res.overloaded[p].tolist()), k
        assert res.max_loading_pct[p] == pytest.approx(np.max(load), abs=1e-5)
