"""Exchange with pandapower: power-flow fidelity and lossless round trips.

References, none of them written here:

* pandapower's own MATPOWER importer (``pandapower.converter.matpower.from_mpc``,
  which reads the ``.m`` file with ``matpowercaseframes``), on the cases where
  it is right (case14, case118);
* PYPOWER's ``runpf``, an independent port of MATPOWER's power flow, on every
  case: pandapower's importer is not a reference for grids with step-up
  transformers (it puts the tap on MATPOWER's to-bus: case300 diverges, PGLib
  case162, case197, case2000 ... differ by 0.1 pu), transformer charging (it
  becomes an inductive magnetising branch) or a switched-off first unit at a
  bus (case500_goc, case1888_rte lose their slack).

Tolerances: 1e-6 pu on voltage magnitudes and 1e-5 rad on angles.
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiguilleur.errors import ValidationError
from aiguilleur.grid.matpower import read_matpower
from aiguilleur.grid.network import Network
from aiguilleur.grid.pandapower_io import from_pandapower, to_pandapower

pp = pytest.importorskip("pandapower")

VM_TOL = 1e-6
VA_TOL = 1e-5
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "pglib-opf" / "cases"


@pytest.fixture(autouse=True)
def _quiet_pandapower() -> Iterator[None]:
    # pandapower logs every converter note at WARNING; the tests check numbers.
    logger = logging.getLogger("pandapower")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


def case_path(short: str) -> Path:
    """A PGLib case: the bundled copy when there is one, else the shared set."""
    try:
        from aiguilleur.data import bundled_case_path

        return bundled_case_path(short)
    except (ImportError, ValidationError):
        pass
    hits = sorted(SHARED.glob(f"pglib_opf_{short}_*.m")) if SHARED.is_dir() else []
    if not hits:
        pytest.skip(
            f"PGLib {short} is neither bundled (aiguilleur.data) nor in the shared set {SHARED}"
        )
    return hits[0]


def balanced(net: Network) -> Network:
    """Stored set-points of the units in service scaled to the load.

    PGLib set-points do not balance the load; the whole gap on the slack makes
    case300's power flow diverge (in PYPOWER and pandapower alike).
    """
    on = net.gen.in_service == 1
    scale = float(net.bus.pd_mw.sum() / net.gen.pg_mw[on].sum())
    return net.with_dispatch(np.where(on, net.gen.pg_mw * scale, net.gen.pg_mw))


def run_pandapower(pp_net: Any) -> None:
    pp.runpp(pp_net, calculate_voltage_angles=True, init="flat", tolerance_mva=1e-9, numba=False)


def pandapower_voltages(pp_net: Any, net: Network) -> tuple[np.ndarray, np.ndarray]:
    """``vm_pu`` and angles in rad, in the network's bus order."""
    res = pp_net.res_bus.loc[net.bus.bus_id - 1]
    return res.vm_pu.to_numpy(), np.deg2rad(res.va_degree.to_numpy())


def pypower_voltages(net: Network) -> tuple[np.ndarray, np.ndarray]:
    """MATPOWER semantics, computed by PYPOWER's runpf on the raw matrices."""
    pypower_api = pytest.importorskip("pypower.api")
    ppc = {
        "version": "2",
        "baseMVA": net.base_mva,
        "bus": net.bus.matrix().copy(),
        "gen": net.gen.matrix().copy(),
        "branch": net.branch.matrix().copy(),
    }
    opt = pypower_api.ppoption(PF_TOL=1e-11, PF_MAX_IT=30, VERBOSE=0, OUT_ALL=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PYPOWER's own numpy deprecations
        res, ok = pypower_api.runpf(ppc, opt)
    assert ok == 1, "PYPOWER did not converge"
    return res["bus"][:, 7], np.deg2rad(res["bus"][:, 8])


def assert_same_voltages(
    got: tuple[np.ndarray, np.ndarray], ref: tuple[np.ndarray, np.ndarray], mask: Any = None
) -> None:
    sel = slice(None) if mask is None else mask
    dvm = np.max(np.abs(got[0][sel] - ref[0][sel]))
    dva = np.max(np.abs(got[1][sel] - ref[1][sel]))
    assert dvm < VM_TOL, f"vm differs by {dvm:.2e} pu"
    assert dva < VA_TOL, f"va differs by {dva:.2e} rad"


# -- optional dependency -----------------------------------------------------------------
def test_importing_aiguilleur_does_not_import_pandapower() -> None:
    code = (
        "import sys, aiguilleur.grid.pandapower_io; "
        "assert 'pandapower' not in sys.modules, 'pandapower imported eagerly'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_pandapower_is_a_validation_error(monkeypatch: pytest.MonkeyPatch) -> None:
    net = read_matpower(case_path("case14"))
    monkeypatch.setitem(sys.modules, "pandapower", None)
    with pytest.raises(ValidationError, match=r"pandapower is not installed: pip install"):
        to_pandapower(net)
    with pytest.raises(ValidationError, match=r"pandapower is not installed"):
        from_pandapower(object())


# -- export: the same power flow as MATPOWER -----------------------------------------------
@pytest.mark.parametrize("short", ["case14", "case118"])
def test_export_matches_pandapower_from_mpc(short: str) -> None:
    pytest.importorskip("matpowercaseframes")
    from pandapower.converter.matpower import from_mpc

    path = case_path(short)
    net = read_matpower(path)
    ours = to_pandapower(net)
    run_pandapower(ours)
    ref = from_mpc(str(path))
    run_pandapower(ref)
    assert_same_voltages(pandapower_voltages(ours, net), pandapower_voltages(ref, net))


@pytest.mark.parametrize("short", ["case14", "case118", "case300"])
def test_export_matches_matpower_semantics(short: str) -> None:
    net = balanced(read_matpower(case_path(short)))
    ours = to_pandapower(net)
    run_pandapower(ours)
    assert_same_voltages(pandapower_voltages(ours, net), pypower_voltages(net))


def _awkward_case14() -> Network:
    """case14 with what pandapower's importer gets wrong, all at once.

    * every bus's first unit is a switched-off twin with another set-point
      (MATPOWER keeps voltage control and the slack with the unit in service);
    * the transformers step up (their to-bus has the higher base kV), carry
      capacitive and inductive charging, taps and phase shifts;
    * one line is out of service and one load is negative.
    """
    net = read_matpower(case_path("case14"))
    g = net.gen
    twin = {c: np.concatenate([getattr(g, c), getattr(g, c)]) for c in g.schema.names}
    n = net.n_gen
    twin["in_service"][:n] = 0
    twin["vg_pu"][:n] = 0.95
    order = np.argsort(np.tile(np.arange(n), 2), kind="stable")  # twin right before its unit
    gen = type(g)(**{c: v[order] for c, v in twin.items()})
    cost = net.gencost
    assert cost is not None
    gencost = dataclasses.replace(
        cost,
        model=np.tile(cost.model, 2)[order],
        startup=np.tile(cost.startup, 2)[order],
        shutdown=np.tile(cost.shutdown, 2)[order],
        ncost=np.tile(cost.ncost, 2)[order],
        params=np.tile(cost.params, (2, 1))[order],
    )
    br = net.branch
    tr = np.flatnonzero(br.is_transformer)
    kv = np.full(net.n_bus, 135.0)
    kv[net.branch_to[tr]] = 345.0
    kv[net.branch_from[tr]] = 20.0
    b = np.array(br.b_pu)
    b[tr] = np.resize([0.05, -0.03], tr.size)
    shift = np.array(br.shift_deg)
    shift[tr] = np.resize([3.0, -2.0, 0.0], tr.size)
    status = np.array(br.in_service)
    status[~br.is_transformer] = 1
    status[np.flatnonzero(~br.is_transformer)[-1]] = 0
    pd_mw = np.array(net.bus.pd_mw)
    pd_mw[-1] = -5.0
    return net.replace(
        gen=gen,
        gencost=gencost,
        bus=dataclasses.replace(net.bus, base_kv=kv, pd_mw=pd_mw),
        branch=dataclasses.replace(br, b_pu=b, shift_deg=shift, in_service=status),
    )


def test_export_keeps_matpower_semantics_where_from_ppc_does_not() -> None:
    net = _awkward_case14()
    tr = net.branch.is_transformer
    assert np.all(net.bus.base_kv[net.branch_to[tr]] > net.bus.base_kv[net.branch_from[tr]])
    ours = to_pandapower(net)
    run_pandapower(ours)
    assert_same_voltages(pandapower_voltages(ours, net), pypower_voltages(net))
    # The same net after a round trip through aiguilleur still agrees.
    again = to_pandapower(from_pandapower(ours))
    run_pandapower(again)
    assert_same_voltages(pandapower_voltages(again, net), pypower_voltages(net))


# -- round trip Network -> pandapower -> Network --------------------------------------------
def _rel(a: Any, b: Any) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    same = a == b  # equal infinities too
    d = np.where(same, 0.0, np.abs(a - b) / np.maximum(1.0, np.abs(b)))
    return float(d.max()) if d.size else 0.0


def assert_round_trip(net: Network, back: Network) -> None:
    """Everything :func:`to_pandapower` documents as kept, within 1e-9 relative."""
    order = np.argsort(net.bus.bus_id, kind="stable")  # pandapower keeps buses sorted
    assert np.array_equal(back.bus.bus_id, net.bus.bus_id[order])
    assert back.base_mva == net.base_mva
    for c in ("pd_mw", "qd_mvar", "gs_mw", "bs_mvar", "vmax_pu", "vmin_pu", "area", "zone"):
        assert _rel(getattr(back.bus, c), getattr(net.bus, c)[order]) < 1e-9, f"bus.{c}"
    assert np.array_equal(back.bus.bus_type == 4, net.bus.bus_type[order] == 4)
    for c in net.gen.schema.names:
        assert _rel(getattr(back.gen, c), getattr(net.gen, c)) < 1e-9, f"gen.{c}"
    for c in net.branch.schema.names:
        assert _rel(getattr(back.branch, c), getattr(net.branch, c)) < 1e-9, f"branch.{c}"
    assert np.array_equal(back.gen.in_service, net.gen.in_service)
    assert np.array_equal(back.branch.in_service, net.branch.in_service)
    assert back.gencost == net.gencost


@pytest.mark.parametrize("short", ["case14", "case118", "case300", "case1888"])
def test_round_trip_is_lossless(short: str) -> None:
    net = read_matpower(case_path(short))
    assert_round_trip(net, from_pandapower(to_pandapower(net)))


def test_round_trip_with_switched_off_branches() -> None:
    # PGLib case2736sp_k has 235 branches and 150 units out of service.
    hits = sorted(SHARED.glob("pglib_opf_case2736sp_k.m")) if SHARED.is_dir() else []
    if not hits:
        pytest.skip(f"PGLib case2736sp_k is not in the shared set {SHARED}")
    net = read_matpower(hits[0])
    assert np.sum(net.branch.in_service == 0) > 0
    assert_round_trip(net, from_pandapower(to_pandapower(net)))


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_round_trip_property(data: st.DataObject) -> None:
    net = read_matpower(case_path("case14"))
    n_br, n_gen = net.n_branch, net.n_gen
    floats = st.floats(-0.5, 0.5, allow_nan=False)
    br_on = data.draw(st.lists(st.integers(0, 1), min_size=n_br, max_size=n_br))
    gen_on = data.draw(st.lists(st.integers(0, 1), min_size=n_gen, max_size=n_gen))
    b = data.draw(st.lists(floats, min_size=n_br, max_size=n_br))
    tap = data.draw(st.lists(st.sampled_from([0.0, 0.9, 1.0, 1.05]), min_size=n_br, max_size=n_br))
    shift = data.draw(st.lists(st.sampled_from([0.0, -5.0, 10.0]), min_size=n_br, max_size=n_br))
    rate = data.draw(st.lists(st.sampled_from([0.0, 80.0, 250.5]), min_size=n_br, max_size=n_br))
    btype = np.array(net.bus.bus_type)
    btype[data.draw(st.integers(1, net.n_bus - 1))] = 4
    net = net.replace(
        bus=dataclasses.replace(net.bus, bus_type=btype),
        gen=dataclasses.replace(net.gen, in_service=np.array(gen_on)),
        branch=dataclasses.replace(
            net.branch,
            in_service=np.array(br_on),
            b_pu=np.array(b),
            tap_ratio=np.array(tap),
            shift_deg=np.array(shift),
            rate_a_mva=np.array(rate),
            rate_b_mva=np.array(rate) * 1.1,
        ),
    )
    assert_round_trip(net, from_pandapower(to_pandapower(net)))


def test_piecewise_linear_costs_survive() -> None:
    net = read_matpower(case_path("case14"))
    n = net.n_gen
    params = np.zeros((n, 6))
    # pandapower keeps slopes only: the cost at the first breakpoint is p0 * slope0.
    params[:] = [0.0, 0.0, 50.0, 1000.0, 200.0, 5500.0]
    cost = dataclasses.replace(
        net.gencost,
        model=np.ones(n, dtype=np.int64),
        startup=np.full(n, 12.5),
        shutdown=np.zeros(n),
        ncost=np.full(n, 3, dtype=np.int64),
        params=params,
    )
    net = net.replace(gencost=cost)
    pp_net = to_pandapower(net)
    assert len(pp_net.pwl_cost) == n
    assert from_pandapower(pp_net).gencost == cost


def test_cubic_costs_are_refused() -> None:
    net = read_matpower(case_path("case14"))
    cost = net.gencost
    assert cost is not None
    params = np.hstack([np.ones((len(cost), 1)), cost.params])
    cubic = dataclasses.replace(cost, ncost=cost.ncost + 1, params=params)
    with pytest.raises(ValidationError, match="order 3"):
        to_pandapower(net.replace(gencost=cubic))


# -- import of nets made in pandapower ------------------------------------------------------
def _hand_made_net() -> Any:
    """A pandapower net using what pandapower has and MATPOWER has not."""
    net = pp.create_empty_network(sn_mva=100.0, name="hand made")
    pp.create_buses(net, 6, vn_kv=[220, 220, 110, 110, 20, 110], index=[3, 5, 8, 10, 11, 12])
    pp.create_ext_grid(net, 3, vm_pu=1.02, va_degree=10.0)
    pp.create_line_from_parameters(
        net, 3, 5, length_km=40, r_ohm_per_km=0.03, x_ohm_per_km=0.3, c_nf_per_km=10,
        max_i_ka=1.0, parallel=2, g_us_per_km=0.5, max_loading_percent=100.0,
    )  # fmt: skip
    pp.create_transformer_from_parameters(
        net, 5, 8, sn_mva=200, vn_hv_kv=225, vn_lv_kv=110, vkr_percent=0.3, vk_percent=12,
        pfe_kw=60, i0_percent=0.1, shift_degree=5, tap_side="lv", tap_neutral=0, tap_pos=2,
        tap_step_percent=1.25, tap_changer_type="Ratio", max_loading_percent=80, parallel=2,
    )  # fmt: skip
    pp.create_line_from_parameters(
        net, 8, 10, length_km=20, r_ohm_per_km=0.1, x_ohm_per_km=0.4, c_nf_per_km=9,
        max_i_ka=0.5, max_loading_percent=90,
    )  # fmt: skip
    pp.create_transformer_from_parameters(
        net, 10, 11, sn_mva=60, vn_hv_kv=110, vn_lv_kv=21, vkr_percent=0.5, vk_percent=10,
        pfe_kw=20, i0_percent=0.2, tap_side="hv", tap_neutral=0, tap_pos=-3,
        tap_step_percent=1.5, tap_changer_type="Ratio",
    )  # fmt: skip
    pp.create_impedance(net, 10, 12, rft_pu=0.01, xft_pu=0.05, rtf_pu=0.01, xtf_pu=0.05, sn_mva=50)
    pp.create_gen(net, 11, p_mw=30, vm_pu=1.01, min_q_mvar=-20, max_q_mvar=20, max_p_mw=50)
    pp.create_sgen(net, 12, p_mw=10, q_mvar=2)
    pp.create_load(net, 12, p_mw=40, q_mvar=10, const_z_p_percent=30, const_z_q_percent=20)
    pp.create_load(net, 8, p_mw=60, q_mvar=15, scaling=0.9)
    pp.create_shunt(net, 10, q_mvar=-5, p_mw=0.1, step=2, vn_kv=115)
    pp.create_line_from_parameters(
        net, 8, 12, length_km=10, r_ohm_per_km=0.1, x_ohm_per_km=0.4, c_nf_per_km=9,
        max_i_ka=0.5, in_service=False,
    )  # fmt: skip
    pp.create_poly_cost(net, 0, "ext_grid", cp1_eur_per_mw=20, cp2_eur_per_mw2=0.01)
    pp.create_pwl_cost(net, 0, "gen", [[0, 20, 10], [20, 50, 15]])
    return net


@pytest.mark.parametrize("trafo_model", ["t", "pi"])
def test_import_keeps_pandapower_power_flow(trafo_model: str) -> None:
    src = _hand_made_net()
    pp.runpp(src, calculate_voltage_angles=True, init="flat", tolerance_mva=1e-10,
             trafo_model=trafo_model, numba=False)  # fmt: skip
    net = from_pandapower(src, trafo_model=trafo_model)
    assert net.bus.bus_id.tolist() == [4, 6, 9, 11, 12, 13]  # pandapower index + 1
    assert net.bus.bus_type.tolist() == [3, 1, 1, 1, 2, 1]
    assert net.bus.va_deg[0] == 10.0
    assert net.branch.in_service.tolist() == [1, 1, 1, 1, 1, 0]
    assert net.branch.rate_a_mva[1] == pytest.approx(0.8 * 200 * 2)
    assert net.gencost is not None
    assert net.gencost.params[0, :3].tolist() == [0.01, 20.0, 0.0]
    assert net.gencost.params[1, :6].tolist() == [0.0, 0.0, 20.0, 200.0, 50.0, 650.0]
    back = to_pandapower(net)
    run_pandapower(back)
    ref = src.res_bus
    got = back.res_bus.loc[ref.index]
    assert np.max(np.abs(got.vm_pu - ref.vm_pu)) < VM_TOL
    assert np.max(np.abs(np.deg2rad(got.va_degree - ref.va_degree))) < VA_TOL


def test_import_does_not_touch_the_net() -> None:
    src = _hand_made_net()
    before = {k: src[k].copy() for k in ("bus", "line", "trafo", "load", "shunt")}
    keys = set(src.keys())
    from_pandapower(src)
    assert set(src.keys()) == keys
    for k, df in before.items():
        assert src[k].equals(df), k


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda n: pp.create_transformer3w(n, 5, 8, 11, "63/25/38 MVA 110/20/10 kV"), "trafo3w"),
        (lambda n: pp.create_switch(n, 8, 1, et="l", closed=False), "switch"),
        (lambda n: pp.create_switch(n, 8, 12, et="b", closed=True), "switch"),
        (lambda n: n.load.__setitem__("const_i_p_percent", 10.0), "constant-current"),
        (lambda n: pp.create_ward(n, 8, 1.0, 1.0, 0.0, 0.0), "ward"),
    ],
)
def test_import_refuses_what_matpower_cannot_hold(change: Any, match: str) -> None:
    src = _hand_made_net()
    change(src)
    with pytest.raises(ValidationError, match=match):
        from_pandapower(src)


def test_import_of_a_pandapower_example_grid() -> None:
    import pandapower.networks as pn

    src = pn.case118()
    run_pandapower(src)
    back = to_pandapower(from_pandapower(src))
    run_pandapower(back)
    ref = src.res_bus
    got = back.res_bus.loc[ref.index]
    assert np.max(np.abs(got.vm_pu - ref.vm_pu)) < VM_TOL
    assert np.max(np.abs(np.deg2rad(got.va_degree - ref.va_degree))) < VA_TOL
