"""pypowsybl import/export against OpenLoadFlow (the independent reference).

Every agreement test solves the same grid twice: OpenLoadFlow (inside pypowsybl)
on the pypowsybl network with :func:`openloadflow_parameters`, and
:func:`ac_power_flow` on what :func:`from_pypowsybl` made of it.
"""

from __future__ import annotations

import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiguilleur.data import bundled_case_path
from aiguilleur.errors import AiguilleurError, CaseFormatError, ValidationError
from aiguilleur.grid._compile import make_ybus
from aiguilleur.grid.matpower import read_matpower
from aiguilleur.grid.network import BranchTable, BusTable, GenTable, Network
from aiguilleur.grid.operating_point import scaled_dispatch
from aiguilleur.grid.powerflow import PowerFlowOptions, PowerFlowResult, ac_power_flow

pp = pytest.importorskip(
    "pypowsybl", reason="pypowsybl is not installed: pip install 'aiguilleur[powsybl]'"
)

from aiguilleur.grid.powsybl_io import (  # noqa: E402
    ImportOptions,
    ImportReport,
    from_pypowsybl,
    openloadflow_parameters,
    read_grid,
    to_pypowsybl,
    write_grid,
)

TOL = 1e-6  # per unit and radians, the agreement asked of the import
PF = PowerFlowOptions(tolerance_pu=1e-11)
UCTE = Path(str(files("aiguilleur.data").joinpath("grids", "two_zones.uct")))


def olf(n: Any, slack: tuple[str, ...]) -> Any:
    """Run OpenLoadFlow; return the bus-view table with vm (pu) and va (rad) columns."""
    res = pp.loadflow.run_ac(n, openloadflow_parameters(slack, tolerance_pu=1e-11))
    assert all(c.status.name == "CONVERGED" for c in res), [c.status_text for c in res]
    b = n.get_buses()
    kv = n.get_voltage_levels().loc[b["voltage_level_id"], "nominal_v"].to_numpy()
    b = b.assign(vm=b["v_mag"].to_numpy() / kv, va=np.deg2rad(b["v_angle"].to_numpy()))
    return b


def assert_same_voltages(res: PowerFlowResult, rep: ImportReport, b: Any) -> tuple[float, float]:
    """Largest |dVm| and |dVa| (angles relative to the first slack) over the solved buses."""
    assert res.converged
    rows = np.array([rep.bus_row(str(i)) for i in b.index])
    ok = np.isfinite(b["vm"].to_numpy())
    assert ok.sum() >= 1
    ref = rep.bus_row(rep.slack_bus_ids[0])
    va = np.deg2rad(res.va_deg)
    ref_olf = b.loc[rep.slack_bus_ids[0], "va"]
    dvm = np.abs(res.vm_pu[rows] - b["vm"].to_numpy())[ok]
    dva = np.abs((va[rows] - va[ref]) - (b["va"].to_numpy() - ref_olf))[ok]
    assert dvm.max() < TOL, (dvm.max(), b.index[ok][np.argmax(dvm)])
    assert dva.max() < TOL, (dva.max(), b.index[ok][np.argmax(dva)])
    return float(dvm.max()), float(dva.max())


def assert_same_line_flows(n: Any, net: Network, rep: ImportReport, res: PowerFlowResult) -> int:
    """Flows at both ends of lines and transformers whose shunts stayed in the branch.

    Lines with conductance or asymmetric charging and transformers with a
    magnetising admittance hand part of their shunt to the buses, so their end
    flows differ by it: those are left out. Returns how many were compared.
    """
    row = {b: i for i, b in enumerate(rep.branch_ids)}
    checked = 0
    lines = n.get_lines()
    t2 = n.get_2_windings_transformers(all_attributes=True)
    for df, plain in (
        (lines, (lines["g1"] == 0) & (lines["g2"] == 0) & (lines["b1"] == lines["b2"])),
        (t2, (t2["g_at_current_tap"] == 0) & (t2["b_at_current_tap"] == 0)),
    ):
        for eid in df.index[plain.to_numpy()]:
            k = row.get(str(eid))
            if k is None or not np.isfinite(df.at[eid, "p1"]):
                continue
            got = [res.p_from_mw[k], res.q_from_mvar[k], res.p_to_mw[k], res.q_to_mvar[k]]
            want = [df.at[eid, c] for c in ("p1", "q1", "p2", "q2")]
            np.testing.assert_allclose(got, want, atol=1e-4, err_msg=str(eid))
            checked += 1
    return checked


BUNDLED = [
    "create_ieee9",
    "create_ieee14",
    "create_ieee30",
    "create_ieee57",
    "create_ieee118",
    "create_ieee300",
    "create_eurostag_tutorial_example1_network",
    "create_eurostag_tutorial_example1_with_tie_lines_and_areas",
    "create_micro_grid_be_network",
    "create_micro_grid_nl_network",
    "create_four_substations_node_breaker_network",
    "create_metrix_tutorial_six_buses_network",
]


@pytest.mark.parametrize("factory", BUNDLED)
def test_import_matches_openloadflow(factory: str) -> None:
    n = getattr(pp.network, factory)()
    net, rep = from_pypowsybl(n)
    assert rep.ok, rep.summary()
    res = ac_power_flow(net, PF)
    b = olf(n, rep.slack_bus_ids)
    assert_same_voltages(res, rep, b)
    if factory.startswith("create_ieee"):
        assert assert_same_line_flows(n, net, rep, res) > 0


def test_ucte_file_matches_openloadflow() -> None:
    net, rep = read_grid(UCTE)
    assert rep.source_format == "UCTE"
    assert rep.counts["dangling_line"] == 1
    assert any(o.element_type == "ratio_tap_changer" for o in rep.simplified)
    n = pp.network.load(str(UCTE))
    res = ac_power_flow(net, PF)
    assert_same_voltages(res, rep, olf(n, rep.slack_bus_ids))
    # the phase shifter's angle is in the branch as MATPOWER's shift (sign reversed)
    alpha = float(n.get_2_windings_transformers(all_attributes=True)["alpha"].abs().max())
    assert alpha > 1.0
    assert np.isclose(np.max(np.abs(net.branch.shift_deg)), alpha)


def test_micro_grid_be_report_lists_every_simplification() -> None:
    n = pp.network.create_micro_grid_be_network()
    net, rep = from_pypowsybl(n)
    kinds = {o.element_type for o in rep.simplified}
    assert {"three_windings_transformer", "phase_tap_changer", "generator"} <= kinds
    assert any("remote voltage control" in o.reason for o in rep.simplified)
    # star bus of the three-winding transformer at rated_u0, three legs
    star = [b for b in rep.bus_ids if b.endswith("#star")]
    assert len(star) == 1
    assert net.bus.base_kv[rep.bus_row(star[0])] == 400.0
    assert sum(1 for i in rep.branch_ids if "#leg" in i) == 3
    assert rep.counts["dangling_line"] == 5
    assert "NOT REPRESENTED" not in rep.summary()
    # with OpenLoadFlow's default remote voltage control the grids differ: the
    # simplification is real, which is why the report names it
    res = ac_power_flow(net, PF)
    params = openloadflow_parameters(rep.slack_bus_ids, tolerance_pu=1e-11)
    params.provider_parameters["voltageRemoteControl"] = "true"
    pp.loadflow.run_ac(n, params)
    b = n.get_buses()
    kv = n.get_voltage_levels().loc[b["voltage_level_id"], "nominal_v"].to_numpy()
    rows = [rep.bus_row(str(i)) for i in b.index]
    assert np.max(np.abs(res.vm_pu[rows] - b["v_mag"].to_numpy() / kv)) > 1e-3


def test_hvdc_and_svc_are_modelled_and_reported() -> None:
    n = pp.network.create_four_substations_node_breaker_network()
    net, rep = from_pypowsybl(n)
    kinds = {o.element_type for o in rep.simplified}
    assert {"hvdc_line", "static_var_compensator"} <= kinds
    assert len(rep.slack_bus_ids) == 2  # two synchronous components joined by HVDC
    with pytest.raises(ValidationError, match="hvdc_line HVDC1"):
        from_pypowsybl(n, ImportOptions(hvdc="reject"))
    # the converter stations' P at OpenLoadFlow's solution equals the modelled injections
    pp.loadflow.run_ac(n, openloadflow_parameters(rep.slack_bus_ids))
    vsc = n.get_vsc_converter_stations()
    g = {u: k for k, u in enumerate(rep.gen_ids)}
    for sid in vsc.index:
        assert np.isclose(net.gen.pg_mw[g[str(sid)]], -vsc.at[sid, "p"], atol=1e-6)


def test_three_winding_rejected_on_request() -> None:
    n = pp.network.create_micro_grid_be_network()
    with pytest.raises(ValidationError, match="three_windings_transformer"):
        from_pypowsybl(n, ImportOptions(three_winding="reject"))


def test_detailed_dc_model_is_not_represented_and_said_so() -> None:
    n = pp.network.create_ac_dc_monopolar_network()
    _, rep = from_pypowsybl(n)
    assert not rep.ok
    kinds = {o.element_type for o in rep.not_represented}
    assert {"dc_line", "voltage_source_converter"} <= kinds
    assert "NOT REPRESENTED" in rep.summary()
    assert rep.to_dict()["ok"] is False
    with pytest.raises(ValidationError, match="not represented"):
        from_pypowsybl(n, ImportOptions(strict=True))


def test_open_ended_line_and_disconnected_unit() -> None:
    n = pp.network.create_eurostag_tutorial_example1_with_more_generators_network()
    n.update_lines(id="NHV1_NHV2_1", connected2=False)
    gen = n.get_generators().index[-1]
    n.update_generators(id=gen, connected=False)
    net, rep = from_pypowsybl(n)
    assert any(o.element_id == "NHV1_NHV2_1" and "side 1 only" in o.reason for o in rep.simplified)
    assert "NHV1_NHV2_1" not in rep.branch_ids
    k = rep.gen_ids.index(str(gen))
    assert net.gen.in_service[k] == 0
    res = ac_power_flow(net, PF)
    assert_same_voltages(res, rep, olf(n, rep.slack_bus_ids))


@pytest.mark.parametrize("case", ["case14_ieee", "case118_ieee", "case1888_rte"])
def test_pglib_case_through_pypowsybl_and_back(case: str) -> None:
    """Our MATPOWER reading, exported: OpenLoadFlow and the round trip agree with it."""
    net = scaled_dispatch(read_matpower(bundled_case_path(case)))
    ref = ac_power_flow(net, PF)
    n = to_pypowsybl(net)
    back, rep = from_pypowsybl(n)
    assert rep.ok, rep.summary()
    assert sorted(back.bus.bus_id) == sorted(net.bus.bus_id)
    assert back.n_branch == net.n_branch and back.n_gen == net.n_gen
    rows = net.bus_index(back.bus.bus_id)
    res = ac_power_flow(back, PF)
    np.testing.assert_allclose(res.vm_pu, ref.vm_pu[rows], atol=1e-9)
    np.testing.assert_allclose(res.va_deg, ref.va_deg[rows], atol=1e-7)
    np.testing.assert_array_equal(back.gen.in_service, net.gen.in_service)
    # and OpenLoadFlow on the exported network solves the original case
    b = olf(n, rep.slack_bus_ids)
    at = net.bus_index([int(str(v)[2:]) for v in b["voltage_level_id"]])  # VL<id>
    slack = net.bus_index([int(rep.slack_bus_ids[0].split("_")[0][2:])])[0]
    va = np.deg2rad(ref.va_deg)
    assert np.max(np.abs(ref.vm_pu[at] - b["vm"].to_numpy())) < TOL
    assert np.max(np.abs(va[at] - va[slack] - b["va"].to_numpy())) < TOL


@pytest.mark.parametrize("fmt", ["XIIDM", "CGMES"])
def test_file_round_trip(fmt: str, tmp_path: Path) -> None:
    net = scaled_dispatch(read_matpower(bundled_case_path("case118_ieee")))
    ref = ac_power_flow(net, PF)
    out = write_grid(net, tmp_path / ("c118.xiidm" if fmt == "XIIDM" else "cgmes"), fmt)
    back, rep = read_grid(out)
    assert rep.ok
    res = ac_power_flow(back, PF)
    rows = net.bus_index(back.bus.bus_id)
    np.testing.assert_allclose(res.vm_pu, ref.vm_pu[rows], atol=1e-8)
    np.testing.assert_allclose(res.va_deg, ref.va_deg[rows], atol=1e-6)


def test_ucte_round_trip_through_pypowsybl(tmp_path: Path) -> None:
    n = pp.network.load(str(UCTE))
    n.save(str(tmp_path / "again.uct"), format="UCTE")
    a, _ = read_grid(UCTE)
    b, _ = read_grid(tmp_path / "again.uct")
    ra, rb = ac_power_flow(a, PF), ac_power_flow(b, PF)
    np.testing.assert_allclose(np.sort(ra.vm_pu), np.sort(rb.vm_pu), atol=1e-9)


def test_ucte_export_of_a_matpower_case_is_refused_clearly(tmp_path: Path) -> None:
    net = read_matpower(bundled_case_path("case14_ieee"))
    with pytest.raises(ValidationError, match="cannot write UCTE"):
        write_grid(net, tmp_path / "c14.uct", "UCTE")


def test_bad_files_and_arguments(tmp_path: Path) -> None:
    with pytest.raises(CaseFormatError, match="no such file"):
        read_grid(tmp_path / "missing.xiidm")
    junk = tmp_path / "junk.xiidm"
    junk.write_text("not a grid\n")
    with pytest.raises(CaseFormatError, match=r"junk\.xiidm"):
        read_grid(junk)
    with pytest.raises(ValidationError, match="format"):
        write_grid(read_matpower(bundled_case_path("case14")), tmp_path / "x", "PSSE")
    with pytest.raises(ValidationError, match="base_mva"):
        ImportOptions(base_mva=0)
    with pytest.raises(ValidationError, match="three_winding"):
        ImportOptions(three_winding="drop")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="slack_bus_ids"):
        from_pypowsybl(pp.network.create_ieee14(), ImportOptions(slack_bus_ids=("nope",)))
    with pytest.raises(ValidationError, match="tolerance_pu"):
        openloadflow_parameters(tolerance_pu=0.0)


def test_missing_pypowsybl_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pypowsybl", None)
    net = read_matpower(bundled_case_path("case14"))
    with pytest.raises(AiguilleurError, match=r"pip install 'aiguilleur\[powsybl\]'"):
        to_pypowsybl(net)


def test_given_slack_is_used() -> None:
    n = pp.network.create_ieee14()
    net, rep = from_pypowsybl(n, ImportOptions(slack_bus_ids=("VL2_0",)))
    assert rep.slack_bus_ids == ("VL2_0",)
    assert net.bus.bus_type[rep.bus_row("VL2_0")] == 3
    assert_same_voltages(ac_power_flow(net, PF), rep, olf(n, rep.slack_bus_ids))


# -- property: export then import keeps the admittance matrix ---------------------------


@st.composite
def small_networks(draw: Any) -> Network:
    nb = draw(st.integers(2, 6))
    kv = np.array(
        draw(st.lists(st.sampled_from([20.0, 110.0, 225.0, 400.0]), min_size=nb, max_size=nb))
    )
    nl = draw(st.integers(1, 8))
    f = np.array(draw(st.lists(st.integers(0, nb - 1), min_size=nl, max_size=nl)))
    t = np.array(draw(st.lists(st.integers(0, nb - 1), min_size=nl, max_size=nl)))
    t = np.where(t == f, (f + 1) % nb, t)
    real = st.floats(0.0, 0.05, allow_nan=False)
    r = np.array(draw(st.lists(real, min_size=nl, max_size=nl)))
    x = np.array(draw(st.lists(st.floats(0.01, 0.3), min_size=nl, max_size=nl)))
    b = np.array(draw(st.lists(st.floats(-0.05, 0.3), min_size=nl, max_size=nl)))
    tap = np.array(
        draw(st.lists(st.sampled_from([0.0, 0.95, 1.0, 1.05]), min_size=nl, max_size=nl))
    )
    shift = np.array(
        draw(st.lists(st.sampled_from([0.0, 0.0, -5.0, 10.0]), min_size=nl, max_size=nl))
    )
    gs = np.array(draw(st.lists(st.floats(-5.0, 5.0), min_size=nb, max_size=nb)))
    bs = np.array(draw(st.lists(st.floats(-50.0, 50.0), min_size=nb, max_size=nb)))
    ids = np.arange(1, nb + 1) * 3
    bus = BusTable(
        bus_id=ids, bus_type=np.where(np.arange(nb) == 0, 3, 1), pd_mw=np.zeros(nb),
        qd_mvar=np.zeros(nb), gs_mw=gs, bs_mvar=bs, area=np.ones(nb), vm_pu=np.ones(nb),
        va_deg=np.zeros(nb), base_kv=kv, zone=np.ones(nb), vmax_pu=np.full(nb, 1.1),
        vmin_pu=np.full(nb, 0.9),
    )  # fmt: skip
    gen = GenTable(
        bus_id=ids[:1], pg_mw=[0.0], qg_mvar=[0.0], qmax_mvar=[100.0], qmin_mvar=[-100.0],
        vg_pu=[1.0], mbase_mva=[100.0], in_service=[1], pmax_mw=[100.0], pmin_mw=[0.0],
    )  # fmt: skip
    br = BranchTable(
        from_bus_id=ids[f], to_bus_id=ids[t], r_pu=r, x_pu=x, b_pu=b, rate_a_mva=np.zeros(nl),
        rate_b_mva=np.zeros(nl), rate_c_mva=np.zeros(nl), tap_ratio=tap, shift_deg=shift,
        in_service=np.ones(nl, dtype=np.int64), angmin_deg=np.full(nl, -360.0),
        angmax_deg=np.full(nl, 360.0),
    )  # fmt: skip
    return Network("random", 100.0, bus, gen, br)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_networks())
def test_export_import_keeps_ybus(net: Network) -> None:
    back, _ = from_pypowsybl(to_pypowsybl(net))
    rows = net.bus_index(back.bus.bus_id)
    y0 = make_ybus(net)[0].toarray()[np.ix_(rows, rows)]
    y1 = make_ybus(back)[0].toarray()
    np.testing.assert_allclose(y1, y0, atol=1e-9 * max(1.0, float(np.abs(y0).max())))


# -- command line -----------------------------------------------------------------------


def test_cli_import_and_export(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from aiguilleur.cli import app

    runner = CliRunner()
    out = tmp_path / "two_zones.m"
    res = runner.invoke(app, ["grid", "import", str(UCTE), "--out", str(out), "--json"])
    assert res.exit_code == 0, res.stderr
    body = json.loads(res.stdout)
    assert body["ok"] is True and body["buses"] == 6
    assert read_matpower(out).n_bus == 6
    xiidm = tmp_path / "c14.xiidm"
    res = runner.invoke(app, ["grid", "export", "case14", str(xiidm)])
    assert res.exit_code == 0, res.stderr
    assert read_grid(xiidm)[0].n_bus == 14
    # a grid with elements that are not represented: listed, exit 1; --strict: error, exit 2
    dc = tmp_path / "acdc.xiidm"
    pp.network.create_ac_dc_monopolar_network().save(str(dc), format="XIIDM")
    res = runner.invoke(app, ["grid", "import", str(dc)])
    assert res.exit_code == 1
    assert "NOT REPRESENTED dc_line" in res.stdout
    res = runner.invoke(app, ["grid", "import", str(dc), "--strict"])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: ") and "not represented" in res.stderr
    res = runner.invoke(app, ["grid", "import", str(tmp_path / "none.uct")])
    assert res.exit_code == 2 and "no such file" in res.stderr


def test_non_linear_shunt_battery_and_fixed_unit_match_openloadflow() -> None:
    import pandas as pd

    n = pp.network.create_ieee14()
    vl9 = n.get_buses().at["VL9_0", "voltage_level_id"]
    bus9 = n.get_bus_breaker_view_buses().query("voltage_level_id == @vl9").index[0]
    shunt = pd.DataFrame(
        {"id": ["NLS"], "voltage_level_id": [vl9], "bus_id": [bus9], "model_type": ["NON_LINEAR"],
         "section_count": [2]}
    ).set_index("id")  # fmt: skip
    sections = pd.DataFrame(
        {"id": ["NLS", "NLS", "NLS"], "g": [0.0, 1e-4, 2e-4], "b": [2e-3, 5e-3, 9e-3]}
    ).set_index("id")
    n.create_shunt_compensators(shunt, non_linear_model_df=sections)
    vl4 = n.get_buses().at["VL4_0", "voltage_level_id"]
    bus4 = n.get_bus_breaker_view_buses().query("voltage_level_id == @vl4").index[0]
    n.create_batteries(
        id="BAT", voltage_level_id=vl4, bus_id=bus4, target_p=20.0, target_q=-7.0,
        min_p=-50.0, max_p=50.0,
    )  # fmt: skip
    # a unit that does not regulate, at a bus where another one does
    vl2 = n.get_buses().at["VL2_0", "voltage_level_id"]
    bus2 = n.get_bus_breaker_view_buses().query("voltage_level_id == @vl2").index[0]
    n.create_generators(
        id="FIXED", voltage_level_id=vl2, bus_id=bus2, target_p=5.0, target_q=3.0,
        min_p=0.0, max_p=10.0, voltage_regulator_on=False,
    )  # fmt: skip
    net, rep = from_pypowsybl(n)
    assert rep.ok
    k = rep.bus_row("VL9_0")
    # the second section's accumulated admittance, in MW and MVAr at 1 pu
    kv = float(net.bus.base_kv[k])
    base = from_pypowsybl(pp.network.create_ieee14())[0]
    assert np.isclose(net.bus.bs_mvar[k] - base.bus.bs_mvar[k], 5e-3 * kv**2)
    assert np.isclose(net.bus.gs_mw[k] - base.bus.gs_mw[k], 1e-4 * kv**2)
    res = ac_power_flow(net, PF)
    assert_same_voltages(res, rep, olf(n, rep.slack_bus_ids))
    g = rep.gen_ids.index("FIXED")
    assert np.isclose(res.qg_mvar[g], 3.0)
    assert any(o.element_id == "FIXED" for o in rep.simplified)


@pytest.mark.parametrize("factory", ["create_ieee118", "create_ieee300"])
def test_reactive_limits_match_openloadflow(factory: str) -> None:
    """With reactive limits on both sides (ours: PV to PQ switching), the same solution.

    On these grids both switch the same units (6 and 12); on PGLib case118 and
    case1888_rte exported through to_pypowsybl the switched sets differ and so do
    the voltages (up to 5e-3 pu): the agreement is claimed without limits only.
    """
    n = getattr(pp.network, factory)()
    net, rep = from_pypowsybl(n)
    res = ac_power_flow(net, PowerFlowOptions(tolerance_pu=1e-11, enforce_q_limits=True))
    assert res.q_limited_gens.size > 0
    params = openloadflow_parameters(rep.slack_bus_ids, tolerance_pu=1e-11)
    params.use_reactive_limits = True
    pp.loadflow.run_ac(n, params)
    b = n.get_buses()
    kv = n.get_voltage_levels().loc[b["voltage_level_id"], "nominal_v"].to_numpy()
    b = b.assign(vm=b["v_mag"].to_numpy() / kv, va=np.deg2rad(b["v_angle"].to_numpy()))
    assert_same_voltages(res, rep, b)


def test_conflicting_voltage_targets_are_reported() -> None:
    n = pp.network.create_ieee14()
    vl2 = n.get_buses().at["VL2_0", "voltage_level_id"]
    bus2 = n.get_bus_breaker_view_buses().query("voltage_level_id == @vl2").index[0]
    kv = float(n.get_voltage_levels().at[vl2, "nominal_v"])
    n.create_generators(
        id="OTHER", voltage_level_id=vl2, bus_id=bus2, target_p=1.0, target_v=1.02 * kv,
        min_p=0.0, max_p=10.0, voltage_regulator_on=True,
    )  # fmt: skip
    _, rep = from_pypowsybl(n)
    notes = [o for o in rep.simplified if "differs from that of the first unit" in o.reason]
    assert [o.element_id for o in notes] == ["OTHER"]


def test_cgmes_zip(tmp_path: Path) -> None:
    """A CGMES export zipped (as CGMES models travel) reads back to the same power flow.

    (The MicroGrid BE exported by pypowsybl is an individual grid model whose boundary
    lines refer to base voltages of the CGMES boundary set; without the boundary files
    pypowsybl's importer refuses it, and read_grid says so in one error.)
    """
    import zipfile

    net = scaled_dispatch(read_matpower(bundled_case_path("case118_ieee")))
    ref = ac_power_flow(net, PF)
    folder = write_grid(net, tmp_path / "cgmes", "CGMES")
    archive = tmp_path / "case118.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted(folder.iterdir()):
            z.write(f, f.name)
    back, rep = read_grid(archive)
    assert rep.source_format == "CGMES" and rep.ok
    res = ac_power_flow(back, PF)
    rows = net.bus_index(back.bus.bus_id)
    np.testing.assert_allclose(res.vm_pu, ref.vm_pu[rows], atol=1e-8)
    be = tmp_path / "be"
    be.mkdir()
    pp.network.create_micro_grid_be_network().save(str(be / "MicroGridBE"), format="CGMES")
    with pytest.raises(CaseFormatError, match="pypowsybl cannot read it"):
        read_grid(be)
