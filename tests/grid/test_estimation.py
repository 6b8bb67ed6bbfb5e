"""AC state estimation against pandapower's WLS estimator, noise statistics, bad data,
observability, the measurements file and the CLI contract."""

from __future__ import annotations

import json
import logging
import math
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from aiguilleur.cli import app
from aiguilleur.data import bundled_case_path
from aiguilleur.errors import CaseFormatError, ValidationError
from aiguilleur.grid import (
    EstimationOptions,
    EstimationResult,
    Measurements,
    Network,
    PowerFlowResult,
    SimulationOptions,
    ac_power_flow,
    estimate_state,
    read_matpower,
    read_measurements,
    scaled_dispatch,
    simulate_measurements,
    write_measurements,
)
from aiguilleur.grid.estimation import read_measurements_string

BUNDLED_CSV = (
    Path(__file__).resolve().parents[2]
    / "aiguilleur"
    / "data"
    / "measurements"
    / "case14_measurements.csv"
)
FLOW_KINDS = ("p_from", "q_from", "p_to", "q_to")


@cache
def solved(case: str) -> tuple[Network, PowerFlowResult]:
    net = scaled_dispatch(read_matpower(bundled_case_path(case)))
    pf = ac_power_flow(net)
    assert pf.converged
    return net, pf


def exact(meas: Measurements) -> Measurements:
    assert meas.true_value is not None
    return meas.with_values(meas.true_value)


# -- against pandapower ---------------------------------------------------------------------


def _pandapower_estimate(
    net: Network, meas: Measurements, zero_injection: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """pandapower's WLS estimate of the same readings (bus order of ``net``)."""
    pp = pytest.importorskip("pandapower")
    from pandapower.estimation import estimate

    from aiguilleur.grid.pandapower_io import to_pandapower

    ppn = to_pandapower(net)
    trafo = np.zeros(net.n_branch, dtype=bool)
    trafo[ppn.trafo.index.values] = True
    rows = meas.rows(net)
    bus_pp = net.bus.bus_id - 1  # to_pandapower's bus numbering
    for k, v, s, r in zip(meas.kind.tolist(), meas.value, meas.sigma, rows.tolist(), strict=True):
        if k == "vm":
            pp.create_measurement(ppn, "v", "bus", v, s, int(bus_pp[r]))
        elif k in ("p_inj", "q_inj"):  # pandapower's bus readings are consumption-positive
            pp.create_measurement(ppn, k[0], "bus", -v, s, int(bus_pp[r]))
        else:
            end = k.split("_")[1]
            side = ("hv" if end == "from" else "lv") if trafo[r] else end
            pp.create_measurement(
                ppn, k[0], "trafo" if trafo[r] else "line", v, s, int(r), side=side
            )
    zi = None if zero_injection is None else [int(bus_pp[b]) for b in zero_injection]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            out = estimate(
                ppn,
                algorithm="wls",
                init="flat",
                tolerance=1e-10,
                maximum_iterations=50,
                zero_injection=zi,
            )
        finally:
            logging.disable(logging.NOTSET)
    assert out["success"]
    return (
        ppn.res_bus_est.vm_pu.loc[bus_pp].to_numpy(),
        ppn.res_bus_est.va_degree.loc[bus_pp].to_numpy(),
    )


def _without_trafo_charging_flows(net: Network, meas: Measurements) -> Measurements:
    """Drop flows on transformers with charging: pandapower puts it in bus shunts, off the flow."""
    pytest.importorskip("pandapower")
    from aiguilleur.grid.pandapower_io import to_pandapower

    tr = to_pandapower(net).trafo.index.values
    charged = np.zeros(net.n_branch, dtype=bool)
    charged[tr] = net.branch.b_pu[tr] != 0
    rows = meas.rows(net)
    return meas.subset(~(np.isin(meas.kind, FLOW_KINDS) & charged[rows]))


@pytest.mark.parametrize(("case", "redundancy"), [("case14", 2.0), ("case118", None)])
def test_same_estimate_as_pandapower(case: str, redundancy: float | None) -> None:
    net, pf = solved(case)
    meas = simulate_measurements(net, pf, SimulationOptions(redundancy=redundancy), seed=3)
    meas = _without_trafo_charging_flows(net, meas)
    opts = EstimationOptions(zero_injection="none", bad_data=False, tolerance=1e-11)
    res = estimate_state(net, meas, opts)
    assert res.ok, res.message
    vm, va = _pandapower_estimate(net, meas)
    assert np.max(np.abs(res.vm_pu - vm)) < 1e-6
    assert np.max(np.abs(np.deg2rad(res.va_deg - va))) < 1e-6
    # and the estimate is not the truth: the comparison is of two estimators, not of PF
    assert np.max(np.abs(res.vm_pu - pf.vm_pu)) > 1e-5


def test_virtual_zero_injections_as_pandapower() -> None:
    net, pf = solved("case14")
    meas = simulate_measurements(net, pf, SimulationOptions(redundancy=1.6), seed=5)
    meas = _without_trafo_charging_flows(net, meas)
    zi = np.flatnonzero(
        (net.bus.pd_mw == 0)
        & (net.bus.qd_mvar == 0)
        & ~np.isin(np.arange(net.n_bus), net.gen_bus[net.gen.in_service == 1])
    )
    assert zi.size  # bus 7 of the IEEE 14-bus case
    # pandapower's zero-injection readings have a standard deviation of 0.001 pu
    opts = EstimationOptions(
        zero_injection="virtual", virtual_sigma_pu=1e-3, bad_data=False, tolerance=1e-11
    )
    res = estimate_state(net, meas, opts)
    assert res.ok
    vm, va = _pandapower_estimate(net, meas, zero_injection=zi)
    assert np.max(np.abs(res.vm_pu - vm)) < 1e-6
    assert np.max(np.abs(np.deg2rad(res.va_deg - va))) < 1e-6


# -- exactness of the model, solvers ---------------------------------------------------------


@pytest.mark.parametrize("case", ["case14", "case118", "case1888"])
def test_noise_free_readings_give_the_power_flow_state(case: str) -> None:
    """The measurement model is the power flow's: exact readings give its state back."""
    net, pf = solved(case)
    meas = exact(simulate_measurements(net, pf, SimulationOptions(redundancy=2.0), seed=1))
    res = estimate_state(net, meas, EstimationOptions(tolerance=1e-10))
    assert res.ok, res.message
    assert res.objective < 1e-12
    assert np.max(np.abs(res.vm_pu - pf.vm_pu)) < 1e-8
    assert np.max(np.abs(np.deg2rad(res.va_deg - pf.va_deg))) < 1e-8


@pytest.mark.parametrize("case", ["case14", "case118"])
def test_hachtel_and_multipliers_agree_and_meet_zero_injections(case: str) -> None:
    net, pf = solved(case)
    meas = simulate_measurements(net, pf, SimulationOptions(redundancy=2.0), seed=2)
    out = [
        estimate_state(net, meas, EstimationOptions(solver=s, bad_data=False, tolerance=1e-11))
        for s in ("normal", "hachtel")
    ]
    for res in out:
        assert res.ok
    assert np.max(np.abs(out[0].vm_pu - out[1].vm_pu)) < 1e-8
    assert np.max(np.abs(out[0].va_deg - out[1].va_deg)) < 1e-6
    # the estimate injects nothing at zero-injection buses (exact constraints)
    from aiguilleur.grid.measurements import _true_values

    p, q, *_ = _true_values(net, out[0].vm_pu, out[0].va_deg)
    has_gen = np.isin(np.arange(net.n_bus), net.gen_bus[net.gen.in_service == 1])
    zi = (net.bus.pd_mw == 0) & (net.bus.qd_mvar == 0) & ~has_gen
    assert zi.any()
    assert np.max(np.abs(p[zi])) < 1e-6 and np.max(np.abs(q[zi])) < 1e-6  # MW, Mvar


# -- statistics of the noise ------------------------------------------------------------------


def test_objective_follows_the_chi_square_distribution() -> None:
    """Over many noise draws J/dof averages 1 and the voltage error stays within the noise."""
    net, pf = solved("case118")
    opts = EstimationOptions(bad_data=False)
    base = simulate_measurements(net, pf, SimulationOptions(redundancy=2.0), seed=0)
    rng = np.random.default_rng(7)
    js: list[float] = []
    errs: list[np.ndarray] = []
    dof = 0
    for _ in range(40):
        assert base.true_value is not None
        noisy = base.with_values(base.true_value + base.sigma * rng.standard_normal(len(base)))
        res = estimate_state(net, noisy, opts)
        assert res.ok
        js.append(res.objective)
        dof = res.degrees_of_freedom
        errs.append(res.vm_pu - pf.vm_pu)
    mean = float(np.mean(js))
    # the mean of 40 chi-square(dof) draws has a standard deviation sqrt(2 dof / 40)
    assert abs(mean - dof) < 4 * math.sqrt(2 * dof / 40)
    # the estimate filters the noise: its error is smaller than one reading's
    rms = float(np.sqrt(np.mean(np.square(errs))))
    assert rms < 0.004
    assert rms > 1e-4  # and it is an estimate from noisy readings, not the truth


# -- bad data --------------------------------------------------------------------------------


def test_normalized_residuals_match_a_dense_computation() -> None:
    """Omega = R - H G^-1 H^T with H by finite differences of independent flow formulas."""
    from aiguilleur.grid.measurements import _true_values

    net, pf = solved("case14")
    meas = simulate_measurements(net, pf, SimulationOptions(redundancy=2.5), seed=4)
    res = estimate_state(net, meas, EstimationOptions(zero_injection="none", rn_detection=0.1))
    rows = meas.rows(net)
    kinds = meas.kind.tolist()
    ref = int(np.flatnonzero(net.bus.bus_type == 3)[0])
    base = net.base_mva

    def h(vm: np.ndarray, va: np.ndarray) -> np.ndarray:
        p, q, pf_, qf, pt, qt = _true_values(net, vm, va)
        table = {"p_inj": p, "q_inj": q, "p_from": pf_, "q_from": qf, "p_to": pt, "q_to": qt}
        return np.array(
            [vm[r] if k == "vm" else table[k][r] / base for k, r in zip(kinds, rows, strict=True)]
        )

    vm, va = res.vm_pu.copy(), res.va_deg.copy()
    cols = []
    eps = 1e-7
    for b in range(net.n_bus):
        if b != ref:
            d = va.copy()
            d[b] += np.rad2deg(eps)
            e = va.copy()
            e[b] -= np.rad2deg(eps)
            cols.append((h(vm, d) - h(vm, e)) / (2 * eps))
    for b in range(net.n_bus):
        d = vm.copy()
        d[b] += eps
        e = vm.copy()
        e[b] -= eps
        cols.append((h(d, va) - h(e, va)) / (2 * eps))
    hm = np.column_stack(cols)
    sig = np.where(meas.kind == "vm", meas.sigma, meas.sigma / base)
    w = 1 / sig**2
    gain = hm.T @ (w[:, None] * hm)
    omega = sig**2 - np.einsum("ij,jk,ik->i", hm, np.linalg.inv(gain), hm)
    r = np.where(meas.kind == "vm", meas.value, meas.value / base) - h(vm, va)
    rn = np.abs(r) / np.sqrt(omega)
    # no reading is rejected at rn_threshold=3 here, so these are the reported residuals
    assert not res.bad_data
    ours = res.normalized_residual
    critical = omega < 1e-5 * sig**2  # errors there cannot be seen: no residual reported
    assert np.all(np.isnan(ours[critical]))
    assert np.all(np.isfinite(ours[~critical]))
    assert np.allclose(ours[~critical], rn[~critical], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("solver", ["normal", "hachtel"])
@pytest.mark.parametrize("case", ["case14", "case118"])
def test_single_gross_error_is_identified(case: str, solver: str) -> None:
    net, pf = solved(case)
    meas = simulate_measurements(net, pf, SimulationOptions(redundancy=2.0), seed=11)
    opts = EstimationOptions(solver=solver)
    assert not estimate_state(net, meas, opts).bad_data  # the clean set passes
    rng = np.random.default_rng(3)
    found = 0
    trials = 10
    for _ in range(trials):
        i = int(rng.integers(len(meas)))
        value = np.array(meas.value)
        value[i] += 20.0 * meas.sigma[i] * rng.choice([-1.0, 1.0])
        res = estimate_state(net, meas.with_values(value), opts)
        if res.suspect_measurements:  # a critical pair: named, not guessed
            assert res.status == "bad_data" and meas.id[i] in res.suspect_measurements
            continue
        assert res.ok, res.message
        # a critical reading's error cannot be seen, and the largest normalised residual
        # can point at a strongly correlated neighbour (correlation 0.95 between the two
        # ends of a load bus's two branches in case118): most trials, not all, identify it
        if res.bad_data and res.bad_data[0][0] == meas.id[i]:
            assert res.bad_data[0][1] > 3.0
            found += 1
    assert found >= 6


def test_bad_data_named_with_its_residual_and_estimate_recovers() -> None:
    net, pf = solved("case118")
    meas = simulate_measurements(net, pf, SimulationOptions(redundancy=None), seed=8)
    i = int(np.flatnonzero(meas.kind == "p_from")[10])
    value = np.array(meas.value)
    value[i] += 30.0 * meas.sigma[i]
    clean = estimate_state(net, meas)
    res = estimate_state(net, meas.with_values(value))
    assert res.ok
    assert res.bad_data[0][0] == meas.id[i] and res.bad_data[0][1] > 10
    assert np.max(np.abs(res.vm_pu - clean.vm_pu)) < 1e-3
    d = res.to_dict()
    assert d["bad_data"][0]["id"] == meas.id[i]
    # a 30-sigma error also fails the chi-square test alone
    chi_only = estimate_state(
        net, meas.with_values(value), EstimationOptions(rn_detection=math.inf)
    )
    assert chi_only.bad_data[0][0] == meas.id[i]
    # with removal off the error stays in, and the chi-square test says so
    off = estimate_state(net, meas.with_values(value), EstimationOptions(bad_data=False))
    assert off.status == "bad_data" and not off.ok and not off.bad_data
    assert off.objective > off.chi2_threshold and "removal is off" in off.message


def test_critical_pair_is_named_not_guessed() -> None:
    """Bus 8 hangs off bus 7 alone: without bus 7's zero-injection equations and with no
    P injection read at 7 or 8, the two ends of branch 7-8 are the only P readings placing
    bus 8: a critical pair (equal normalised residuals) whose error cannot be placed."""
    net, pf = solved("case14")
    meas = simulate_measurements(net, pf, SimulationOptions(redundancy=None), seed=6)
    k = int(np.flatnonzero((net.branch.from_bus_id == 7) & (net.branch.to_bus_id == 8))[0])
    meas = meas.subset(~np.isin(meas.id, ["p_inj:bus:8", "p_inj:bus:7"]))
    i = int(np.flatnonzero(meas.id == f"p_to:branch:{k + 1}")[0])
    value = np.array(meas.value)
    value[i] += 20.0 * meas.sigma[i]
    res = estimate_state(net, meas.with_values(value), EstimationOptions(zero_injection="none"))
    assert res.status == "bad_data" and not res.ok
    assert set(res.suspect_measurements) == {f"p_from:branch:{k + 1}", f"p_to:branch:{k + 1}"}
    assert res.bad_data == ()  # neither is rejected on a coin flip
    assert "not identifiable" in res.message
    assert res.to_dict()["suspect_measurements"] == list(res.suspect_measurements)


def test_bad_data_beyond_the_removal_budget_is_reported() -> None:
    net, pf = solved("case118")
    meas = simulate_measurements(
        net, pf, SimulationOptions(redundancy=2.5, gross_errors=4, gross_error_sigma=40), seed=9
    )
    res = estimate_state(net, meas, EstimationOptions(max_removals=1))
    assert res.status == "bad_data" and not res.ok
    assert len(res.bad_data) == 1
    assert "removals" in res.message
    full = estimate_state(net, meas)
    assert full.ok and len(full.bad_data) >= 4


# -- observability ----------------------------------------------------------------------------


def test_unobservable_island_is_named_and_the_rest_estimated() -> None:
    net, pf = solved("case14")
    meas = simulate_measurements(net, pf, SimulationOptions(redundancy=None), seed=1)
    rows = meas.rows(net)
    b14 = int(net.bus_index([14])[0])
    at14 = (net.branch_from == b14) | (net.branch_to == b14)
    touching = np.where(np.isin(meas.kind, FLOW_KINDS), at14[rows], rows == b14) | (
        np.isin(meas.kind, ("p_inj", "q_inj"))
        & np.isin(rows, np.concatenate([net.branch_from[at14], net.branch_to[at14]]))
    )
    meas = exact(meas.subset(~touching))
    res = estimate_state(net, meas)
    assert res.status == "partial" and not res.ok
    assert res.unobservable_buses.tolist() == [14]
    assert res.unobservable_islands == ((14,),)
    assert math.isnan(res.vm_pu[b14]) and math.isnan(res.va_deg[b14])
    est = np.arange(net.n_bus) != b14
    assert np.max(np.abs(res.vm_pu[est] - pf.vm_pu[est])) < 1e-8
    assert res.to_dict()["unobservable_buses"] == [14]
    # the JSON form reads back to the same value (NaN for the unobservable bus included)
    back = EstimationResult.from_dict(json.loads(json.dumps(res.to_dict())))
    assert back.status == res.status and back.unobservable_islands == res.unobservable_islands
    assert np.array_equal(back.vm_pu, res.vm_pu, equal_nan=True)
    assert np.array_equal(back.normalized_residual, res.normalized_residual, equal_nan=True)
    assert back.measurement_id.tolist() == res.measurement_id.tolist()
    assert back.to_dict() == res.to_dict()
    with pytest.raises(ValidationError, match="missing field"):
        EstimationResult.from_dict({"status": "converged"})


def test_two_bus_island_without_flows_is_named() -> None:
    net, pf = solved("case118")
    meas = exact(simulate_measurements(net, pf, SimulationOptions(redundancy=None), seed=1))
    rows = meas.rows(net)
    # cut buses 116 and 117's region: drop every reading on the branches and buses around them
    target = net.bus_index([117, 12])
    f, t = net.branch_from, net.branch_to
    cut = np.isin(f, target) | np.isin(t, target)
    around = np.unique(np.concatenate([f[cut], t[cut]]))
    drop = np.where(np.isin(meas.kind, FLOW_KINDS), cut[rows], np.isin(rows, around))
    res = estimate_state(net, meas.subset(~drop))
    assert not res.ok and res.status == "partial"
    assert 117 in res.unobservable_buses.tolist()
    assert all(len(i) >= 1 for i in res.unobservable_islands)
    est = np.isfinite(res.vm_pu)
    assert np.max(np.abs(res.vm_pu[est] - pf.vm_pu[est])) < 1e-8


def test_no_voltage_magnitude_is_unobservable() -> None:
    net, pf = solved("case14")
    meas = simulate_measurements(net, pf, SimulationOptions(redundancy=None), seed=1)
    res = estimate_state(net, meas.subset(meas.kind != "vm"))
    assert res.status == "unobservable" and not res.ok
    assert res.unobservable_buses.size == net.n_bus
    assert np.all(np.isnan(res.vm_pu))


def test_out_of_service_branch_reading_is_set_aside() -> None:
    net, pf = solved("case14")
    meas = simulate_measurements(net, pf, SimulationOptions(redundancy=None), seed=1)
    rows = meas.rows(net)
    k = int(rows[np.flatnonzero(meas.kind == "p_from")[3]])
    res = estimate_state(net.with_branch_status([k], 0), meas)
    assert f"p_from:branch:{k + 1}" in res.unused_measurements


# -- the measurements file -------------------------------------------------------------------


def test_csv_round_trip_and_bundled_file(tmp_path: Path) -> None:
    net, pf = solved("case14")
    meas = simulate_measurements(net, pf, SimulationOptions(redundancy=2.0), seed=1)
    path = tmp_path / "m.csv"
    write_measurements(meas, path)
    back = read_measurements(path, net)
    # the file keeps readings, not the simulator's truth
    assert back == Measurements(meas.id, meas.kind, meas.element, meas.value, meas.sigma)
    assert Measurements.from_dict(json.loads(json.dumps(meas.to_dict()))) == meas
    frame = meas.to_frame()
    assert list(frame.columns[:5]) == ["id", "kind", "element", "value", "sigma"]
    bundled = Measurements.from_csv(BUNDLED_CSV, read_matpower(bundled_case_path("case14")))
    assert len(bundled) > 40


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a,vm,bus:1,1.0\n", "m.csv:1: expected 5 fields"),
        (
            "id,kind,element,value,sigma\na,vm,bus:99,1.0,0.01\n",
            "m.csv:2: field element: no bus 99",
        ),
        ("a,p_from,branch:21,1.0,0.01\n", "no branch 21"),
        ("a,p_from,bus:2,1.0,0.01\n", "expected branch:<n>"),
        ("a,vm,bus:1,1.0,0\n", "field sigma: must be positive"),
        ("a,vm,bus:1,1.0,-2\n", "field sigma: must be positive"),
        ("a,vm,bus:1,nan,0.1\n", "field value"),
        ("a,volts,bus:1,1.0,0.1\n", "field kind"),
        ("a,vm,bus:1,1.0,0.1\n\n# note\na,vm,bus:2,1.0,0.1\n", "m.csv:4: field id"),
        ("\n# nothing\n", "no measurement"),
    ],
)
def test_csv_errors_name_the_line(text: str, fragment: str) -> None:
    net = read_matpower(bundled_case_path("case14"))
    with pytest.raises(CaseFormatError) as e:
        read_measurements_string(text, net, source="m.csv")
    assert fragment in str(e.value)
    assert str(e.value).startswith("m.csv")


_field = st.sampled_from(
    [
        "a",
        "b",
        "vm",
        "p_inj",
        "q_to",
        "bus:1",
        "bus:14",
        "branch:3",
        "branch:0",
        "bus:x",
        "1.0",
        "-3e2",
        "0",
        "nan",
        "inf",
        "",
        " ",
        "1_0",
        "bus:99999999999999999999",
        "#",
        "\u0663",
    ]
)
_line = st.one_of(
    st.lists(_field, min_size=0, max_size=7).map(",".join),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_line, max_size=6))
def test_csv_fuzz_gives_measurements_or_a_clear_error(lines: list[str]) -> None:
    net = read_matpower(bundled_case_path("case14"))
    text = "\n".join(lines)
    try:
        meas = read_measurements_string(text, net, source="f.csv")
    except (CaseFormatError, ValidationError) as e:
        assert "\n" not in str(e)
        return
    assert len(meas) >= 1
    assert np.all(meas.sigma > 0)
    meas.rows(net)  # every element exists


# -- options, simulator ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tolerance": 0},
        {"max_iter": 0},
        {"solver": "qr"},
        {"zero_injection": "maybe"},
        {"chi2_confidence": 1.0},
        {"rn_threshold": -1},
        {"rn_detection": float("nan")},
        {"virtual_sigma_pu": 0},
        {"init": "warm"},
        {"max_removals": -1},
    ],
)
def test_options_are_validated(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        EstimationOptions(**kwargs)


def test_simulator_redundancy_seed_and_errors() -> None:
    net, pf = solved("case118")
    a = simulate_measurements(net, pf, SimulationOptions(redundancy=2.0), seed=4)
    b = simulate_measurements(net, pf, SimulationOptions(redundancy=2.0), seed=4)
    assert a == b
    n_state = 2 * net.n_bus - 1
    assert abs(len(a) / n_state - 2.0) < 0.01
    assert estimate_state(net, exact(a)).ok  # the backbone makes it observable
    g = simulate_measurements(net, pf, SimulationOptions(redundancy=2.0, gross_errors=3), seed=4)
    assert g.true_value is not None
    big = np.abs(g.value - g.true_value) / g.sigma > 15
    assert int(big.sum()) == 3
    d = simulate_measurements(net, pf, SimulationOptions(redundancy=None, dropout=0.5), seed=4)
    full = simulate_measurements(net, pf, SimulationOptions(redundancy=None), seed=4)
    assert 0.4 < len(d) / len(full) < 0.6
    with pytest.raises(ValidationError):
        SimulationOptions(dropout=1.0)


def test_unknown_element_in_a_value_is_a_validation_error() -> None:
    net = read_matpower(bundled_case_path("case14"))
    m = Measurements(["x"], ["vm"], [99], [1.0], [0.01])
    with pytest.raises(ValidationError, match="measurement x: no bus 99"):
        estimate_state(net, m)
    with pytest.raises(ValidationError, match="sigma"):
        Measurements(["x"], ["vm"], [1], [1.0], [0.0])
    with pytest.raises(ValidationError, match="twice"):
        Measurements(["x", "x"], ["vm", "vm"], [1, 2], [1.0, 1.0], [0.1, 0.1])


# -- the command line -------------------------------------------------------------------------

runner = CliRunner()


def test_cli_json_contract() -> None:
    res = runner.invoke(
        app, ["grid", "estimate", "case14", "--measurements", str(BUNDLED_CSV), "--json"]
    )
    assert res.exit_code == 0, (res.stdout, res.stderr)
    out = json.loads(res.stdout)
    for key in (
        "converged",
        "iterations",
        "vm_pu",
        "va_deg",
        "bus_id",
        "objective",
        "chi2_threshold",
        "bad_data",
        "unobservable_buses",
    ):
        assert key in out
    assert out["converged"] is True and out["ok"] is True
    assert len(out["vm_pu"]) == len(out["bus_id"]) == 14
    text = runner.invoke(app, ["grid", "estimate", "case14", "--measurements", str(BUNDLED_CSV)])
    assert text.exit_code == 0 and "converged" in text.stdout


def test_cli_exit_codes(tmp_path: Path) -> None:
    net = read_matpower(bundled_case_path("case14"))
    meas = read_measurements(BUNDLED_CSV, net)
    only_flows = tmp_path / "flows.csv"
    write_measurements(meas.subset(meas.kind != "vm"), only_flows)
    res = runner.invoke(
        app, ["grid", "estimate", "case14", "--measurements", str(only_flows), "--json"]
    )
    assert res.exit_code == 1
    assert json.loads(res.stdout)["status"] == "unobservable"
    bad = tmp_path / "bad.csv"
    bad.write_text("id,kind,element,value,sigma\nx,vm,bus:1,1.0,-1\n")
    res = runner.invoke(app, ["grid", "estimate", "case14", "--measurements", str(bad)])
    assert res.exit_code == 2
    assert res.stderr.strip().startswith("error: ") and "bad.csv:2: field sigma" in res.stderr
    assert "Traceback" not in res.output


# -- meter placement, the structure cache, the factorisations -------------------------------


def _dense_sensitivity(net: Network, pf: PowerFlowResult, meas: Measurements) -> np.ndarray:
    """``S = I - W^1/2 H G^-1 H^T W^1/2`` from a finite-difference Jacobian of the public
    ``measured_values`` (independent of the estimator's kernels), zero injections known."""
    from aiguilleur.grid.measurements import measured_values

    rows = meas.rows(net)
    scale = np.where(meas.kind == "vm", 1.0, 1.0 / net.base_mva)
    gen_on = net.gen.in_service == 1
    loaded = (net.bus.pd_mw != 0) | (net.bus.qd_mvar != 0)
    loaded[net.gen_bus[gen_on]] = True
    zi = np.flatnonzero(~loaded)

    def h(x: np.ndarray) -> np.ndarray:
        va = np.concatenate([[0.0], x[: net.n_bus - 1]])  # bus 0 is the angle reference
        vals = measured_values(net, x[net.n_bus - 1 :], np.rad2deg(va))
        real = np.array([vals[k][r] for k, r in zip(meas.kind.tolist(), rows, strict=True)])
        return np.concatenate([real * scale, vals["p_inj"][zi] / 100, vals["q_inj"][zi] / 100])

    x0 = np.concatenate([np.deg2rad(pf.va_deg[1:] - pf.va_deg[0]), pf.vm_pu])
    eps = 1e-7
    jac = np.column_stack(
        [(h(x0 + eps * e) - h(x0 - eps * e)) / (2 * eps) for e in np.eye(x0.size)]
    )
    # as the placement's own check: zero injections 1000 times more accurate than 0.004 pu
    sigma = np.concatenate([meas.sigma * scale, np.full(2 * zi.size, 4e-6)])
    hs = jac / sigma[:, None]
    s = np.eye(hs.shape[0]) - hs @ np.linalg.solve(hs.T @ hs, hs.T)
    m = len(meas)
    return s[:m, :m]


def test_redundant_placement_leaves_no_critical_reading() -> None:
    """Checked with a dense finite-difference model: at redundancy 2 the random placement
    has critical readings and critical pairs, the redundant one no critical reading and
    fewer pairs (case118 has 1.6 branches a bus: a redundancy of 2 cannot hold injections
    and a flow on every branch, and 4 readings stay in pairs correlated above 0.99). The
    placement's own sparse computation of the residual variances agrees."""
    from aiguilleur.grid._estimation import KINDS
    from aiguilleur.grid.measurements import _residual_redundancy

    net, pf = solved("case118")
    counts = {}
    for placement in ("random", "redundant"):
        opts = SimulationOptions(redundancy=2.0, placement=placement)
        meas = simulate_measurements(net, pf, opts, seed=4)
        assert abs(len(meas) / (2 * net.n_bus - 1) - 2.0) < 0.03
        s = _dense_sensitivity(net, pf, meas)
        d = np.diag(s).clip(min=0.0)
        ok = d > 1e-6
        corr = np.abs(s[np.ix_(ok, ok)]) / np.sqrt(np.outer(d[ok], d[ok]))
        np.fill_diagonal(corr, 0.0)
        counts[placement] = (int(np.sum(~ok)), int(np.sum(corr.max(axis=0) > 0.99)))
        code = {k: i for i, k in enumerate(KINDS)}
        kind = np.array([code[str(k)] for k in meas.kind.tolist()], dtype=np.int64)
        sig = np.where(kind == 0, meas.sigma, meas.sigma / net.base_mva)
        v = pf.vm_pu * np.exp(1j * np.deg2rad(pf.va_deg))
        s_ii, _ = _residual_redundancy(net, v, kind, meas.rows(net), sig)
        assert np.max(np.abs(s_ii - np.diag(s))) < 1e-5
    assert counts["random"][0] > 0 and counts["redundant"][0] == 0, counts
    assert counts["redundant"][1] < counts["random"][1] / 5, counts


def test_redundant_placement_identifies_every_single_gross_error() -> None:
    net, pf = solved("case118")
    opts = SimulationOptions(redundancy=2.0, placement="redundant")
    meas = simulate_measurements(net, pf, opts, seed=4)
    assert meas.true_value is not None
    rng = np.random.default_rng(8)
    found = false = 0
    trials = 40
    for _ in range(trials):
        value = meas.true_value + meas.sigma * rng.standard_normal(len(meas))
        i = int(rng.integers(len(meas)))
        value[i] += 20.0 * meas.sigma[i] * rng.choice([-1.0, 1.0])
        res = estimate_state(net, meas.with_values(value))
        rejected = {m for m, _ in res.bad_data}
        found += meas.id[i] in rejected
        false += len(rejected - {meas.id[i]})
    assert found >= 0.95 * trials
    assert false <= 0.01 * trials * (len(meas) - 1)


def test_structure_cache_and_factorisations_give_the_cold_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """New values on the same meters reuse the network's structure; another network (a
    branch out) gets its own; qdldl and SuperLU agree; all equal a cold estimate."""
    import aiguilleur.grid.estimation as est

    net, pf = solved("case118")
    meas = simulate_measurements(net, pf, SimulationOptions(redundancy=2.0), seed=6)
    assert meas.true_value is not None
    other = meas.with_values(meas.true_value + 0.5 * meas.sigma)
    outage = net.with_branch_status([7], False)

    def cold(n: Network, m: Measurements) -> EstimationResult:
        est._STRUCTURES.clear()
        return estimate_state(n, m)

    want = [cold(net, meas), cold(net, other), cold(outage, meas)]
    est._STRUCTURES.clear()
    for qd in (est._qdldl, None):
        monkeypatch.setattr(est, "_qdldl", qd)
        got = [estimate_state(net, meas), estimate_state(net, other), estimate_state(outage, meas)]
        for g, w in zip(got, want, strict=True):
            assert g.status == w.status
            assert np.allclose(g.vm_pu, w.vm_pu, atol=1e-9, equal_nan=True)
            assert np.allclose(g.va_deg, w.va_deg, atol=1e-7, equal_nan=True)
            assert g.unused_measurements == w.unused_measurements
    # the outage changed the answer: the cache did not hand back the intact network's
    assert np.max(np.abs(want[2].va_deg - want[0].va_deg)) > 1e-4


def test_ldl_gives_way_to_superlu_on_a_zero_pivot() -> None:
    """LDL^T without pivoting breaks down on a zero pivot: the step falls back to SuperLU
    (for the rest of the call), and a positive definite system is solved."""
    import scipy.sparse as sp

    import aiguilleur.grid.estimation as est

    if est._qdldl is None:
        pytest.skip("qdldl is not installed")
    a = sp.csc_matrix(np.array([[0.0, 1.0], [1.0, 0.0]]))
    fact = est._Factor()
    assert est._solve_ldl(sp.triu(a, format="csc"), np.array([1.0, 2.0]), fact) is None
    assert fact.ldl_failed
    spd = sp.csc_matrix(np.array([[4.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 2.0]]))
    fact = est._Factor()
    b = np.array([1.0, 2.0, 3.0])
    x = est._solve_ldl(sp.triu(spd, format="csc"), b, fact)
    assert x is not None and np.allclose(spd @ x, b, atol=1e-13)


def test_placement_is_validated() -> None:
    with pytest.raises(ValidationError, match="placement: expected random or redundant"):
        SimulationOptions(placement="smart")  # type: ignore[arg-type]
