"""PTDF/LODF against full DC power flows, and bridge detection against graph search."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import connected_components

from aiguilleur.data import bundled_case_path
from aiguilleur.errors import ValidationError
from aiguilleur.grid import (
    DCModel,
    Network,
    bridges,
    dc_power_flow,
    lodf,
    ptdf,
    read_matpower,
    scaled_dispatch,
)
from aiguilleur.grid import sensitivity as sens


@pytest.fixture(scope="module")
def case118() -> Network:
    return scaled_dispatch(read_matpower(bundled_case_path("case118")))


@pytest.fixture(scope="module")
def case14() -> Network:
    return scaled_dispatch(read_matpower(bundled_case_path("case14")))


def _n_components(net: Network, off: int) -> int:
    on = net.branch.in_service == 1
    on[off] = False
    f, t = net.branch_from[on], net.branch_to[on]
    adj = sp.csr_matrix((np.ones(f.size), (f, t)), shape=(net.n_bus, net.n_bus))
    return int(connected_components(adj, directed=False)[0])


def test_ptdf_matches_dc_power_flow(case14: Network) -> None:
    h = ptdf(case14)
    base = dc_power_flow(case14)
    for bus in range(case14.n_bus):
        loads = np.array(case14.bus.pd_mw)
        loads[bus] -= 10.0  # inject 10 MW at `bus`, the slack takes it back
        moved = case14.replace(bus=_with(case14, "pd_mw", loads))
        after = dc_power_flow(moved)
        np.testing.assert_allclose(after.p_mw - base.p_mw, 10.0 * h[:, bus], atol=1e-9)


def _with(net: Network, col: str, values: np.ndarray) -> object:
    import dataclasses

    return dataclasses.replace(net.bus, **{col: values})


def test_bridges_equal_graph_search(case118: Network) -> None:
    got = set(bridges(case118).tolist())
    expected = {
        k
        for k in range(case118.n_branch)
        if case118.branch.in_service[k] == 1 and _n_components(case118, k) > 1
    }
    assert got == expected
    assert len(got) > 0


def test_lodf_columns_of_bridges_are_nan_not_inf(case118: Network) -> None:
    m = lodf(case118)
    br = bridges(case118)
    assert np.all(np.isnan(m[:, br]))
    rest = np.setdiff1d(np.arange(case118.n_branch), br)
    assert np.all(np.isfinite(m[:, rest]))
    np.testing.assert_allclose(np.diag(m)[rest], -1.0)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_lodf_equals_full_dc_power_flow_on_random_outages(
    case118: Network, data: st.DataObject
) -> None:
    model = DCModel.build(case118)
    candidates = np.flatnonzero(~model.bridge & (case118.branch.in_service == 1))
    k = int(data.draw(st.sampled_from(candidates.tolist())))
    scale = data.draw(st.floats(0.6, 1.2))
    net = case118.with_dispatch(case118.gen.pg_mw * scale)
    net = net.replace(bus=_with(net, "pd_mw", net.bus.pd_mw * scale))
    base = dc_power_flow(net)
    col, is_bridge = model.lodf_columns([k])
    assert not is_bridge[0]
    predicted = base.p_mw + col[:, 0] * base.p_mw[k]
    predicted[k] = 0.0
    after = dc_power_flow(net.with_branch_status(k, 0))
    np.testing.assert_allclose(predicted, after.p_mw, atol=1e-7)


def test_negative_reactance_is_not_a_bridge() -> None:
    # a series capacitor inside a loop: 1 - H_kk is negative, not zero
    net = read_matpower(bundled_case_path("case14"))
    x = np.array(net.branch.x_pu)
    x[0] = -0.02
    import dataclasses

    net = net.replace(branch=dataclasses.replace(net.branch, x_pu=x))
    assert 0 not in set(bridges(net).tolist())
    col, is_bridge = DCModel.build(net).lodf_columns([0])
    assert not is_bridge[0] and np.all(np.isfinite(col))


def test_dense_limit_is_a_clear_error(case14: Network, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sens, "DENSE_LIMIT", 10)
    with pytest.raises(ValidationError, match="blockwise"):
        lodf(case14)
