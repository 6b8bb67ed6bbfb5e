"""AC optimal power flow: PGLib-OPF reference objectives, warm starts, statuses, prices."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from aiguilleur.cli import app
from aiguilleur.data import bundled_case_path
from aiguilleur.errors import CaseFormatError, ValidationError
from aiguilleur.grid import Network, PowerFlowOptions, ac_power_flow, read_matpower
from aiguilleur.grid._compile import make_ybus
from aiguilleur.grid.acopf import ACOPFOptions, ACOPFResult, ACOPFStart, ac_opf
from tests.conftest import REPO_ROOT, shared_case_files

REFERENCE = REPO_ROOT.parent / "shared" / "data" / "pglib-opf" / "reference.csv"
GAP_PCT = 0.05
# PGLib-OPF's published AC objectives of the bundled cases (reference.csv, 5 digits)
BUNDLED_REF = {"case14": 2.1781e03, "case118": 9.7214e04}


def _ref_objectives() -> dict[str, float]:
    if not REFERENCE.is_file():
        return {}
    with REFERENCE.open(newline="") as fh:
        return {r["case"]: float(r["ac_objective"]) for r in csv.DictReader(fh)}


def _small_shared_cases() -> list[object]:
    files = [f for f in shared_case_files() if _buses(f) <= 300]
    if not files:
        return [pytest.param(None, id="no-shared-cases", marks=pytest.mark.skip("no shared data"))]
    return [pytest.param(f, id=f.stem.removeprefix("pglib_opf_")) for f in files]


def _buses(path: Path) -> int:
    digits = "".join(ch for ch in path.stem.split("case", 1)[1].split("_")[0] if ch.isdigit())
    return int(digits)


@pytest.fixture(scope="module")
def case14() -> Network:
    return read_matpower(bundled_case_path("case14"))


@pytest.fixture(scope="module")
def case118() -> Network:
    return read_matpower(bundled_case_path("case118"))


@pytest.fixture(scope="module")
def sol118(case118: Network) -> ACOPFResult:
    return ac_opf(case118)


# -- reference objectives -----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BUNDLED_REF))
def test_bundled_cases_match_pglib_objective(name: str) -> None:
    net = read_matpower(bundled_case_path(name))
    res = ac_opf(net)
    assert res.status == "optimal", res.message
    ref = BUNDLED_REF[name]
    assert abs(res.objective - ref) / ref * 100 < GAP_PCT
    assert res.max_violation < 1e-6


@pytest.mark.parametrize("path", _small_shared_cases())
def test_shared_cases_up_to_300_buses_match_pglib_objective(path: Path) -> None:
    refs = _ref_objectives()
    if not refs:
        pytest.skip("reference.csv of the shared PGLib-OPF data is absent")
    net = read_matpower(path)
    res = ac_opf(net)
    assert res.status == "optimal", res.message
    ref = refs[path.stem]
    gap = abs(res.objective - ref) / abs(ref) * 100
    assert gap < GAP_PCT, f"{path.stem}: {res.objective} vs {ref} ({gap:.4f} %)"


def test_dc_start_reaches_the_same_optimum(case118: Network, sol118: ACOPFResult) -> None:
    res = ac_opf(case118, start="dc")
    assert res.status == "optimal"
    assert res.start == "dc"
    assert res.objective == pytest.approx(sol118.objective, rel=1e-6)


# -- the solution is a physical operating point --------------------------------------------


def test_solution_satisfies_power_balance_through_ybus(
    case118: Network, sol118: ACOPFResult
) -> None:
    # an independent evaluation: the bus admittance matrix of the power flow
    ybus, yf, _ = make_ybus(case118)
    v = sol118.vm_pu * np.exp(1j * np.deg2rad(sol118.va_deg))
    s_inj = v * np.conj(ybus @ v) * case118.base_mva
    sg = np.zeros(case118.n_bus, dtype=complex)
    np.add.at(sg, case118.gen_bus, sol118.pg_mw + 1j * sol118.qg_mvar)
    sd = case118.bus.pd_mw + 1j * case118.bus.qd_mvar
    assert np.max(np.abs(s_inj - (sg - sd))) < 1e-4  # MVA
    sf = v[case118.branch_from] * np.conj(yf @ v) * case118.base_mva
    np.testing.assert_allclose(sf.real, sol118.pf_mw, atol=1e-8)
    np.testing.assert_allclose(sf.imag, sol118.qf_mvar, atol=1e-8)
    # limits hold
    rate = case118.branch.rate_a_mva
    assert np.all(np.abs(sf) <= rate * (1 + 1e-6))
    assert np.all(sol118.vm_pu <= case118.bus.vmax_pu + 1e-6)
    assert np.all(sol118.vm_pu >= case118.bus.vmin_pu - 1e-6)
    assert np.all(sol118.pg_mw <= case118.gen.pmax_mw + 1e-4)
    dva = sol118.va_deg[case118.branch_from] - sol118.va_deg[case118.branch_to]
    assert np.all(dva <= case118.branch.angmax_deg + 1e-5)
    assert np.all(dva >= case118.branch.angmin_deg - 1e-5)
    assert sol118.losses_mw == pytest.approx(
        float(
            np.sum(sol118.pg_mw)
            - np.sum(case118.bus.pd_mw)
            - np.sum(case118.bus.gs_mw * sol118.vm_pu**2)
        ),
        abs=1e-3,
    )


def test_newton_power_flow_reproduces_the_opf_point(case118: Network, sol118: ACOPFResult) -> None:
    vg = sol118.vm_pu[case118.gen_bus]
    net = case118.replace(gen=dataclasses.replace(case118.gen, pg_mw=sol118.pg_mw, vg_pu=vg))
    pf = ac_power_flow(net, PowerFlowOptions(init="flat"))
    assert pf.converged
    np.testing.assert_allclose(pf.vm_pu, sol118.vm_pu, atol=1e-6)
    np.testing.assert_allclose(pf.va_deg, sol118.va_deg, atol=1e-5)
    np.testing.assert_allclose(pf.pg_mw, sol118.pg_mw, atol=1e-3)


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(scale=st.floats(0.7, 1.1), bus=st.integers(0, 13))
def test_power_balance_holds_for_any_load_level(case14: Network, scale: float, bus: int) -> None:
    pd = np.array(case14.bus.pd_mw) * scale
    pd[bus] += 5.0
    net = case14.replace(bus=dataclasses.replace(case14.bus, pd_mw=pd))
    res = ac_opf(net)
    assert res.status == "optimal"
    ybus, _, _ = make_ybus(net)
    v = res.vm_pu * np.exp(1j * np.deg2rad(res.va_deg))
    s_inj = v * np.conj(ybus @ v) * net.base_mva
    sg = np.zeros(net.n_bus, dtype=complex)
    np.add.at(sg, net.gen_bus, res.pg_mw + 1j * res.qg_mvar)
    assert np.max(np.abs(s_inj - sg + pd + 1j * net.bus.qd_mvar)) < 1e-4


# -- prices ------------------------------------------------------------------------------


def test_lmp_equals_marginal_cost_of_unconstrained_generators(
    case118: Network, sol118: ACOPFResult
) -> None:
    cost = case118.gencost.polynomial(case118.n_gen)  # type: ignore[union-attr]
    pg = sol118.pg_mw
    mc = 2 * cost[:, 0] * pg + cost[:, 1]
    free = (pg > case118.gen.pmin_mw + 1.0) & (pg < case118.gen.pmax_mw - 1.0)
    assert free.sum() >= 3
    lmp_at_gen = sol118.lmp[case118.gen_bus]
    np.testing.assert_allclose(lmp_at_gen[free], mc[free], rtol=1e-4, atol=1e-3)
    # the reference bus too, when its generator is marginal
    ref = int(np.flatnonzero(case118.bus.bus_type == 3)[0])
    on_ref = np.flatnonzero((case118.gen_bus == ref) & free)
    if on_ref.size:
        assert sol118.lmp[ref] == pytest.approx(mc[on_ref[0]], rel=1e-4)


def test_lmp_matches_finite_difference_of_the_objective(case14: Network) -> None:
    bus = 8
    base = ac_opf(case14)
    step = 0.5  # MW

    def obj(delta: float) -> float:
        pd = np.array(case14.bus.pd_mw)
        pd[bus] += delta
        res = ac_opf(case14.replace(bus=dataclasses.replace(case14.bus, pd_mw=pd)))
        assert res.status == "optimal"
        return res.objective

    fd = (obj(step) - obj(-step)) / (2 * step)
    assert base.lmp[bus] == pytest.approx(fd, rel=1e-3)
    qd_step = 0.5

    def obj_q(delta: float) -> float:
        qd = np.array(case14.bus.qd_mvar)
        qd[bus] += delta
        res = ac_opf(case14.replace(bus=dataclasses.replace(case14.bus, qd_mvar=qd)))
        return res.objective

    fd_q = (obj_q(qd_step) - obj_q(-qd_step)) / (2 * qd_step)
    assert base.lmp_q[bus] == pytest.approx(fd_q, rel=1e-2, abs=1e-4)


def test_binding_flow_limit_has_a_value(case118: Network, sol118: ACOPFResult) -> None:
    b = sol118.binding
    assert b.flow_from.size + b.flow_to.size >= 1
    for k in b.flow_from:
        s = np.hypot(sol118.pf_mw[k], sol118.qf_mvar[k])
        assert s == pytest.approx(case118.branch.rate_a_mva[k], rel=1e-5)
        assert sol118.flow_dual_from[k] > 0
    # relaxing the binding rating lowers the cost by about its dual
    k = int(np.concatenate([b.flow_from, b.flow_to])[0])
    rate = np.array(case118.branch.rate_a_mva)
    rate[k] += 1.0
    relaxed = ac_opf(case118.replace(branch=dataclasses.replace(case118.branch, rate_a_mva=rate)))
    saving = sol118.objective - relaxed.objective
    dual = sol118.flow_dual_from[k] + sol118.flow_dual_to[k]
    assert saving == pytest.approx(dual, rel=0.1)


# -- warm starts -------------------------------------------------------------------------


def test_warm_start_after_an_outage_takes_fewer_iterations(
    case118: Network, sol118: ACOPFResult
) -> None:
    out = case118.with_branch_status([10], 0)
    cold = ac_opf(out)
    warm = ac_opf(out, start=sol118)
    assert cold.status == warm.status == "optimal"
    assert warm.start == "warm"
    assert warm.objective == pytest.approx(cold.objective, rel=1e-6)
    assert warm.iterations < cold.iterations


def test_start_from_a_json_file_round_trip(case14: Network, tmp_path: Path) -> None:
    res = ac_opf(case14)
    path = tmp_path / "start.json"
    path.write_text(
        json.dumps(
            {
                "vm_pu": res.vm_pu.tolist(),
                "va_deg": res.va_deg.tolist(),
                "pg_mw": res.pg_mw.tolist(),
                "qg_mvar": res.qg_mvar.tolist(),
            }
        )
    )
    start = ACOPFStart.from_json(path)
    again = ac_opf(case14, start=start)
    assert again.status == "optimal"
    assert again.start == "given"
    assert again.objective == pytest.approx(res.objective, rel=1e-7)


def test_bad_start_files_are_one_line_errors(case14: Network, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CaseFormatError, match=r"bad\.json:1"):
        ACOPFStart.from_json(bad)
    bad.write_text(json.dumps({"vm_pu": [1.0]}))
    with pytest.raises(CaseFormatError, match="va_deg"):
        ACOPFStart.from_json(bad)
    with pytest.raises(CaseFormatError, match="no such file"):
        ACOPFStart.from_json(tmp_path / "missing.json")
    short = ACOPFStart(np.ones(3), np.zeros(3), np.zeros(5), np.zeros(5))
    with pytest.raises(ValidationError, match="vm_pu"):
        ac_opf(case14, start=short)


# -- statuses ----------------------------------------------------------------------------


def test_overloaded_grid_is_locally_infeasible_with_named_violations(case14: Network) -> None:
    heavy = case14.replace(
        bus=dataclasses.replace(
            case14.bus, pd_mw=case14.bus.pd_mw * 10, qd_mvar=case14.bus.qd_mvar * 10
        )
    )
    res = ac_opf(heavy)
    assert res.status == "locally_infeasible"
    assert res.violations
    assert res.max_violation > 1e-3
    assert any("balance at bus" in v or "limit" in v for v in res.violations)


def test_unreachable_voltage_limits_are_locally_infeasible(case14: Network) -> None:
    vmin = np.full(case14.n_bus, 1.3)
    vmax = np.full(case14.n_bus, 1.31)
    vmax[0] = 0.9  # below vmin at bus 1: no point satisfies it
    vmin[0] = 0.89
    vmin[1] = vmax[1] = 1.3
    net = case14.replace(bus=dataclasses.replace(case14.bus, vmin_pu=vmin, vmax_pu=vmax))
    res = ac_opf(net)
    assert res.status == "locally_infeasible"
    assert res.violations
    # crossed limits are bad data, named as such
    vmin = np.array(case14.bus.vmin_pu)
    vmin[3] = 1.2
    crossed = case14.replace(bus=dataclasses.replace(case14.bus, vmin_pu=vmin))
    with pytest.raises(ValidationError, match=r"bus row 4 \(id 4\): vmin_pu 1.2 is above"):
        ac_opf(crossed)


def test_iteration_limit_is_a_status(case118: Network) -> None:
    res = ac_opf(case118, ACOPFOptions(max_iter=3))
    assert res.status == "iteration_limit"
    assert res.iterations == 3
    assert res.violations  # the last iterate is not feasible yet


def test_options_are_validated() -> None:
    with pytest.raises(ValidationError, match="tolerance"):
        ACOPFOptions(tolerance=0.0)
    with pytest.raises(ValidationError, match="max_iter"):
        ACOPFOptions(max_iter=-1)
    with pytest.raises(ValidationError, match="rating"):
        ACOPFOptions(rating="d")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="time_limit_s"):
        ACOPFOptions(time_limit_s=-1.0)
    with pytest.raises(ValidationError, match="fixed"):
        ACOPFOptions(ipopt_options={"print_level": 5})
    with pytest.raises(ValidationError, match="ipopt_options"):
        ACOPFOptions(ipopt_options={"tol": [1]})  # type: ignore[dict-item]


def test_ipopt_options_pass_through(case14: Network, capfd: pytest.CaptureFixture[str]) -> None:
    res = ac_opf(case14, ACOPFOptions(ipopt_options={"mumps_pivot_order": 0}))
    assert res.status == "optimal"
    with pytest.raises(ValidationError, match=r"rejected.*not a valid setting"):
        ac_opf(case14, ACOPFOptions(ipopt_options={"linear_solver": "no_such_solver"}))
    with pytest.raises(ValidationError, match="no_such_option"):
        ac_opf(case14, ACOPFOptions(ipopt_options={"no_such_option": 1}))
    out, _ = capfd.readouterr()
    assert out == ""  # IPOPT's complaint is in the error, not on standard output


def test_time_limit_is_a_status(case118: Network) -> None:
    res = ac_opf(case118, ACOPFOptions(time_limit_s=1e-4))
    assert res.status == "time_limit"


def test_piecewise_linear_costs_are_refused_clearly(case14: Network) -> None:
    gc = case14.gencost
    assert gc is not None
    params = np.hstack([gc.params, np.zeros((len(gc), 1))])
    params[2] = [0.0, 0.0, 100.0, 2000.0]  # two points: (0 MW, 0), (100 MW, 2000)
    pwl = dataclasses.replace(
        gc,
        model=np.where(np.arange(len(gc)) == 2, 1, gc.model),
        ncost=np.where(np.arange(len(gc)) == 2, 2, gc.ncost),
        params=params,
    )
    with pytest.raises(ValidationError, match="gencost row 3: piecewise-linear"):
        ac_opf(case14.replace(gencost=pwl))


def test_rating_and_angle_options(case118: Network, sol118: ACOPFResult) -> None:
    loose = ac_opf(case118, ACOPFOptions(enforce_angle_limits=False, rating="c"))
    assert loose.status == "optimal"
    assert loose.objective <= sol118.objective + 1e-6


def test_frames(sol118: ACOPFResult, case118: Network) -> None:
    bus = sol118.to_frame("bus")
    gen = sol118.to_frame("gen")
    br = sol118.to_frame("branch")
    assert len(bus) == case118.n_bus and len(gen) == case118.n_gen
    assert len(br) == case118.n_branch
    assert br["binding"].sum() >= 1
    assert {"lmp", "lmp_q", "vm_pu"} <= set(bus.columns)
    with pytest.raises(ValidationError):
        sol118.to_frame("load")


# -- command line --------------------------------------------------------------------------


def test_cli_ac_opf_json(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["grid", "opf", "case14", "--ac", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    for key in ("status", "objective", "time_s", "iterations", "vm_pu", "pg_mw", "qg_mvar"):
        assert key in out
    assert out["status"] == "optimal"
    assert out["max_violation"] < 1e-6
    assert abs(out["objective"] - BUNDLED_REF["case14"]) / BUNDLED_REF["case14"] < GAP_PCT / 100
    assert len(out["vm_pu"]) == 14 and len(out["pg_mw"]) == 5
    # the JSON output is a valid start file
    start = tmp_path / "start.json"
    start.write_text(res.stdout)
    again = runner.invoke(app, ["grid", "opf", "case14", "--ac", "--start", str(start), "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["iterations"] <= out["iterations"]
    dc = runner.invoke(app, ["grid", "opf", "case14", "--ac", "--start", "dc"])
    assert dc.exit_code == 0, dc.output
    assert "AC-OPF" in dc.stdout


def test_cli_ac_opf_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["grid", "opf", "case14", "--start", "dc"])
    assert res.exit_code == 2
    assert "--ac" in res.stderr
    res = runner.invoke(app, ["grid", "opf", "case14", "--ac", "--start", str(tmp_path / "x.json")])
    assert res.exit_code == 2
    assert "no such file" in res.stderr
    assert "Traceback" not in res.output
    res = runner.invoke(app, ["grid", "opf", "case14", "--ac", "--voll", "1000"])
    assert res.exit_code == 2


def test_cli_dc_opf_unchanged() -> None:
    res = CliRunner().invoke(app, ["grid", "opf", "case14", "--json"])
    assert res.exit_code == 0
    out = json.loads(res.stdout)
    assert set(out) == {
        "case",
        "status",
        "objective",
        "time_s",
        "model",
        "pg_mw",
        "lmp",
        "shed_mw",
        "ok",
        "message",
        "binding_branches",
    }


# -- angle-difference rows implied by flow and voltage limits ---------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    r=st.floats(0.0, 0.2),
    x=st.floats(-0.05, 0.5).filter(lambda v: abs(v) > 1e-3),
    b=st.floats(-0.2, 1.0),
    tap=st.sampled_from([0.0, 0.9, 1.0, 1.1]),
    shift=st.floats(-10.0, 10.0),
    rate=st.floats(10.0, 500.0),
    vf=st.floats(0.0, 1.0),
    vt=st.floats(0.0, 1.0),
    d=st.one_of(st.floats(-0.7, 0.7), st.floats(-np.pi, np.pi)),
)
def test_implied_angle_limits_hold_at_every_point_within_the_flow_limit(
    case14: Network,
    r: float,
    x: float,
    b: float,
    tap: float,
    shift: float,
    rate: float,
    vf: float,
    vt: float,
    d: float,
) -> None:
    """Where a branch's angle row is called implied, no point within the flow and
    voltage limits and within half a turn of the shift exceeds it."""
    from aiguilleur.grid._acopf_model import _angle_limits, implied_angle_limits

    br = case14.branch
    one = lambda v: np.where(np.arange(len(br)) == 0, v, getattr(br, name))  # noqa: E731
    changes = {}
    for name, v in (
        ("r_pu", r),
        ("x_pu", x),
        ("b_pu", b),
        ("tap_ratio", tap),
        ("shift_deg", shift),
        ("rate_a_mva", rate),
        ("angmin_deg", -30.0),
        ("angmax_deg", 30.0),
    ):
        changes[name] = one(v)
    net = case14.replace(branch=dataclasses.replace(br, **changes))
    if not implied_angle_limits(net, net.branch.rate_a_mva)[0]:
        return
    f, t = int(net.branch_from[0]), int(net.branch_to[0])
    bus = net.bus
    vm_f = bus.vmin_pu[f] + vf * (bus.vmax_pu[f] - bus.vmin_pu[f])
    vm_t = bus.vmin_pu[t] + vt * (bus.vmax_pu[t] - bus.vmin_pu[t])
    theta = np.deg2rad(shift) + d  # within half a turn of the shift
    vm = np.ones(net.n_bus)
    va = np.zeros(net.n_bus)
    vm[f], vm[t], va[f] = vm_f, vm_t, theta
    _, yf, yt = make_ybus(net)
    v = vm * np.exp(1j * va)
    s_f = abs(v[f] * np.conj(yf[0] @ v)) * net.base_mva
    s_t = abs(v[t] * np.conj(yt[0] @ v)) * net.base_mva
    event("implied")
    if max(s_f, s_t) <= rate:
        event("implied, within the flow limit")
        lo, hi = _angle_limits(net)
        assert lo[0] - 1e-9 <= theta <= hi[0] + 1e-9


def test_screening_implied_angle_rows_keeps_the_optimum(case118: Network) -> None:
    from aiguilleur.grid._acopf_model import implied_angle_limits

    assert implied_angle_limits(case118, case118.branch.rate_a_mva).all()  # every row implied
    full = ac_opf(case118, ACOPFOptions(screen_angle_limits=False))
    screened = ac_opf(case118)
    assert full.status == screened.status == "optimal"
    assert screened.objective == pytest.approx(full.objective, rel=1e-7)
    np.testing.assert_allclose(screened.vm_pu, full.vm_pu, atol=1e-5)
    assert screened.max_violation < 1e-6


def test_an_exceeded_screened_angle_row_triggers_a_full_solve(
    case14: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aiguilleur.grid.acopf as acopf_mod

    base = ac_opf(case14)
    monkeypatch.setattr(acopf_mod, "_ANGLE_TOL", -1.0)  # every left-out row counts as exceeded
    again = ac_opf(case14)
    assert again.status == "optimal"
    assert "every angle-difference row" in again.message
    assert again.iterations > base.iterations
    assert again.objective == pytest.approx(base.objective, rel=1e-9)


# -- the two ways into IPOPT ----------------------------------------------------------


def test_c_interface_and_casadi_give_the_same_solution(
    case118: Network, sol118: ACOPFResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiguilleur.grid import _ipopt

    assert _ipopt.available()  # the casadi wheel ships IPOPT's C interface
    monkeypatch.setattr(_ipopt, "_LIB", [None])  # as if it could not be loaded
    assert not _ipopt.available()
    via_casadi = ac_opf(case118)
    assert via_casadi.status == sol118.status == "optimal"
    assert via_casadi.objective == pytest.approx(sol118.objective, rel=1e-8)
    np.testing.assert_allclose(via_casadi.vm_pu, sol118.vm_pu, atol=1e-6)
    # multipliers in the same conventions: prices and binding limits agree
    np.testing.assert_allclose(via_casadi.lmp, sol118.lmp, rtol=1e-4, atol=1e-3)
    for name in ("flow_from", "flow_to", "vm_max", "vm_min", "pg_max", "pg_min"):
        np.testing.assert_array_equal(
            getattr(via_casadi.binding, name), getattr(sol118.binding, name)
        )
    # a warm start carries primal and dual values through either path
    out = case118.with_branch_status([int(sol118.binding.flow_from[0])], 0)
    warm = ac_opf(out, start=via_casadi)
    monkeypatch.setattr(_ipopt, "_LIB", [])
    warm_c = ac_opf(out, start=sol118)
    assert warm.status == warm_c.status == "optimal"
    assert warm_c.objective == pytest.approx(warm.objective, rel=1e-7)


def test_an_error_inside_a_callback_is_a_solver_error(
    case14: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiguilleur.errors import SolverError
    from aiguilleur.grid._acopf_model import ACModel

    def broken(*args: object, **kwargs: object) -> None:
        raise FloatingPointError("boom")

    monkeypatch.setattr(ACModel, "hessian_values", broken)
    with pytest.raises(SolverError, match="FloatingPointError: boom"):
        ac_opf(case14)


@pytest.mark.parametrize("screen", [True, False])
def test_derivatives_match_finite_differences(case14: Network, screen: bool) -> None:
    """Jacobian and Hessian of the compiled model against central differences, with
    some branches unrated (a partial set of flow rows) and the angle rows kept or not."""
    from aiguilleur.grid._acopf_model import compile_model
    from aiguilleur.grid.acopf import _costs, _flat

    rate = np.array(case14.branch.rate_a_mva)
    rate[::3] = 0.0  # unlimited: no flow rows for these
    angmin = np.full(case14.n_branch, -20.0)
    net = case14.replace(
        branch=dataclasses.replace(case14.branch, rate_a_mva=rate, angmin_deg=angmin)
    )
    gens = np.flatnonzero(net.gen.in_service == 1)
    model = compile_model(net, *_costs(net, gens), screen_angle_limits=screen)
    assert model.ang.size > 0
    rng = np.random.default_rng(3)
    x = _flat(model) + rng.normal(0.0, 0.05, model.n_x)
    x[model.lbx == model.ubx] = model.lbx[model.lbx == model.ubx]
    lam = rng.normal(0.0, 1.0, model.n_g)
    sigma = 0.7
    jac = model.jac.to_scipy(model.jacobian_values(x)).toarray()
    hess_u = model.hess.to_scipy(model.hessian_values(x, sigma, lam)).toarray()
    hess = hess_u + np.triu(hess_u, 1).T
    eps = 1e-6
    jac_fd = np.empty_like(jac)
    hess_fd = np.empty_like(hess)

    def grad_lagrangian(y: np.ndarray) -> np.ndarray:
        j = model.jac.to_scipy(model.jacobian_values(y)).toarray()
        return sigma * model.objective_grad(y) + j.T @ lam

    for k in range(model.n_x):
        e = np.zeros(model.n_x)
        e[k] = eps
        jac_fd[:, k] = (model.constraints(x + e) - model.constraints(x - e)) / (2 * eps)
        hess_fd[:, k] = (grad_lagrangian(x + e) - grad_lagrangian(x - e)) / (2 * eps)
    np.testing.assert_allclose(jac, jac_fd, atol=1e-6 * max(1.0, np.abs(jac).max()))
    np.testing.assert_allclose(hess, hess_fd, atol=1e-5 * max(1.0, np.abs(hess).max()))
