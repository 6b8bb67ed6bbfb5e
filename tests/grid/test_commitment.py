"""Unit commitment: against brute-force enumeration, invariants of the plan, bad input."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linprog

from aiguilleur.data import bundled_case_path, bundled_profile_path
from aiguilleur.errors import ValidationError
from aiguilleur.grid import read_matpower, read_matpower_string
from aiguilleur.grid.commitment import (
    CommitmentOptions,
    Profile,
    StorageUnits,
    UnitParameters,
    commit,
    read_profile,
    read_storage,
    read_units,
    synthetic_profile,
)

TINY = """function mpc = tiny
mpc.version = '2';
mpc.baseMVA = 100;
mpc.bus = [
 1 3 0 0 0 0 1 1 0 230 1 1.1 0.9;
 2 1 0 0 0 0 1 1 0 230 1 1.1 0.9;
];
mpc.gen = [
 1 0 0 100 -100 1 100 1 150 50 0 0 0 0 0 0 0 0 0 0 0;
 1 0 0 100 -100 1 100 1 80 10 0 0 0 0 0 0 0 0 0 0 0;
 2 60 0 100 -100 1 100 1 100 20 0 0 0 0 0 0 0 0 0 0 0;
];
mpc.branch = [
 1 2 0.01 0.1 0 0 0 0 0 0 1 -360 360;
];
mpc.gencost = [
 2 500 0 3 0 10 0;
 2 100 0 3 0 30 0;
 2 300 0 3 0 20 0;
];
"""


def _brute_force(load: np.ndarray, up: UnitParameters, net) -> float:  # type: ignore[no-untyped-def]
    """Enumerate every commitment, dispatch each by LP; min up/down and ramps checked here."""
    pmin, pmax = net.gen.pmin_mw, net.gen.pmax_mw
    c1 = net.gencost.params[:, 1]
    ng, nt = pmin.size, load.size
    u0 = (net.gen.pg_mw > 0).astype(int)
    p0 = np.where(u0 > 0, net.gen.pg_mw, 0.0)
    ut, dt = up.min_up_h.astype(int), up.min_down_h.astype(int)
    ramp = up.ramp_mw_per_h
    best = np.inf
    for bits in itertools.product((0, 1), repeat=ng * nt):
        u = np.array(bits).reshape(nt, ng)
        prev = np.vstack([u0, u])
        v = np.clip(prev[1:] - prev[:-1], 0, None)
        w = np.clip(prev[:-1] - prev[1:], 0, None)
        ok = True
        for g in range(ng):
            for t in range(nt):
                if v[max(0, t - ut[g] + 1) : t + 1, g].sum() > u[t, g]:
                    ok = False
                if w[max(0, t - dt[g] + 1) : t + 1, g].sum() > 1 - u[t, g]:
                    ok = False
        if not ok:
            continue
        # LP over p[t, g] (with ramp rows), shed at VOLL
        n = nt * ng
        lo = (u * pmin).ravel()
        hi = (u * pmax).ravel()
        cost = np.concatenate([np.tile(c1, nt), np.full(nt, 10_000.0)])
        a_eq = np.zeros((nt, n + nt))
        for t in range(nt):
            a_eq[t, t * ng : (t + 1) * ng] = 1
            a_eq[t, n + t] = 1
        rows, rhs = [], []
        for g in range(ng):
            su = max(ramp[g], pmin[g])
            for t in range(nt):
                r = np.zeros(n + nt)
                r[t * ng + g] = 1
                if t:
                    r[(t - 1) * ng + g] = -1
                    lim = ramp[g] * u[t - 1, g] + su * v[t, g]
                else:
                    lim = p0[g] + ramp[g] * u0[g] + su * v[t, g]
                rows.append(r)
                rhs.append(lim)
                rd = -r
                lim_d = (
                    (ramp[g] * u[t, g] + su * w[t, g])
                    if t
                    else (-p0[g] + ramp[g] * u[t, g] + su * w[t, g])
                )
                rows.append(rd)
                rhs.append(lim_d)
        res = linprog(
            cost,
            A_ub=np.array(rows),
            b_ub=np.array(rhs),
            A_eq=a_eq,
            b_eq=load,
            bounds=list(
                zip(np.concatenate([lo, np.zeros(nt)]), np.concatenate([hi, load]), strict=True)
            ),
            method="highs",
        )
        if res.status != 0:
            continue
        total = (
            res.fun
            + float((u * net.gencost.params[:, 2]).sum())
            + float((v * up.startup_cost).sum())
        )
        best = min(best, total)
    return best


def test_tiny_commitment_equals_brute_force() -> None:
    net = read_matpower_string(TINY)
    load = np.array([60.0, 140.0, 210.0, 90.0])
    lm = np.zeros((4, 2))
    lm[:, 1] = load
    prof = Profile(lm, np.zeros((4, 2)), 1.0)
    up = UnitParameters(
        min_up_h=np.array([3.0, 1.0, 2.0]),
        min_down_h=np.array([2.0, 1.0, 2.0]),
        startup_cost=np.array([2000.0, 50.0, 400.0]),
        ramp_mw_per_h=np.array([60.0, 80.0, 100.0]),
    )
    res = commit(net, prof, options=CommitmentOptions(mip_gap=0.0, segments=1, units=up))
    assert res.status == "optimal"
    ref = _brute_force(load, up, net)
    assert res.objective == pytest.approx(ref, rel=1e-7)


@pytest.fixture(scope="module")
def plan118():  # type: ignore[no-untyped-def]
    net = read_matpower(bundled_case_path("case118"))
    prof = read_profile(bundled_profile_path("case118_24h"), net)
    sto = read_storage(bundled_profile_path("case118_storage"), net)
    opts = CommitmentOptions(network=True, mip_gap=1e-3, time_limit_s=60, reserve_fraction=0.05)
    return net, prof, sto, commit(net, prof, sto, opts)


def test_plan_invariants(plan118) -> None:  # type: ignore[no-untyped-def]
    net, prof, sto, res = plan118
    assert res.status in ("optimal", "time_limit")
    assert res.mip_gap <= 1e-3 + 1e-9
    supply = (
        res.pg_mw.sum(1) + res.renewable_mw.sum(1) + res.discharge_mw.sum(1) - res.charge_mw.sum(1)
    )
    np.testing.assert_allclose(supply + res.shed_mw.sum(1), prof.load_mw.sum(1), atol=1e-4)
    # committed units within limits, uncommitted at 0
    on = res.committed
    assert np.all(res.pg_mw[~on] == 0)
    pmin, pmax = net.gen.pmin_mw, net.gen.pmax_mw
    assert np.all(res.pg_mw <= pmax[None, :] + 1e-6)
    assert np.all(res.pg_mw[on] >= np.broadcast_to(pmin, on.shape)[on] - 1e-6)
    # storage dynamics and terminal condition
    e_prev = np.vstack([sto.soc_init_mwh[None, :], res.soc_mwh[:-1]])
    e = e_prev + sto.eta_charge * res.charge_mw - res.discharge_mw / sto.eta_discharge
    np.testing.assert_allclose(res.soc_mwh, e, atol=1e-5)
    assert np.all(res.soc_mwh[-1] >= sto.soc_init_mwh - 1e-6)
    assert np.all(res.renewable_mw <= prof.renewable_mw + 1e-6)
    assert np.all(np.isfinite(res.price))


def test_min_up_down_and_ramps_hold(plan118) -> None:  # type: ignore[no-untyped-def]
    from aiguilleur.grid.commitment import unit_parameters

    net, _, _, res = plan118
    up = unit_parameters(net)
    u = res.committed.astype(int)
    u0 = (net.gen.pg_mw > 0).astype(int)
    prev = np.vstack([u0, u])
    starts = np.clip(prev[1:] - prev[:-1], 0, None)
    stops = np.clip(prev[:-1] - prev[1:], 0, None)
    for g in range(net.n_gen):
        for t in range(u.shape[0]):
            lo = max(0, t - int(up.min_up_h[g]) + 1)
            assert starts[lo : t + 1, g].sum() <= u[t, g]
            lo = max(0, t - int(up.min_down_h[g]) + 1)
            assert stops[lo : t + 1, g].sum() <= 1 - u[t, g]
    dp = np.diff(res.pg_mw, axis=0)
    ramp = up.ramp_mw_per_h
    both_on = (u[1:] == 1) & (u[:-1] == 1)
    assert np.all(np.abs(dp[both_on]) <= np.broadcast_to(ramp, dp.shape)[both_on] + 1e-5)


def test_shortage_is_shed_not_failed() -> None:
    net = read_matpower(bundled_case_path("case14"))
    prof = synthetic_profile(net, hours=6)
    big = Profile(prof.load_mw * 3.0, prof.renewable_mw, 1.0)
    res = commit(net, big)
    assert res.status == "optimal"
    assert res.shed_mwh > 0


def test_quarter_hourly_horizon() -> None:
    net = read_matpower(bundled_case_path("case118"))
    prof = synthetic_profile(net, hours=24, step_h=0.25)
    assert prof.periods == 96
    res = commit(net, prof, options=CommitmentOptions(mip_gap=1e-2, time_limit_s=30))
    assert res.status in ("optimal", "time_limit")
    assert res.periods == 96


def _write(tmp_path: Path, text: str, name: str = "p.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("period,bus_id,load_mw\n0,1,10\n2,1,10\n", "period 1 is missing"),
        ("period,bus_id,load_mw\n0,1,-5\n", r"line 2, field load_mw: negative"),
        ("period,bus_id,load_mw\n0,999,5\n", r"line 2, field bus_id: no bus 999"),
        ("period,bus_id,load_mw\n0,1,x\n", r"line 2, field load_mw: 'x' is not a number"),
        ("period,bus_id\n0,1\n", "missing column 'load_mw'"),
        ("period,bus_id,load_mw\n0,1,5\n0,1,6\n", "line 3: period 0, bus 1 repeats line 2"),
        ("period,bus_id,load_mw\n0,1\n", "line 2: 2 fields, expected 3"),
    ],
)
def test_profile_errors_name_line_and_field(tmp_path: Path, text: str, match: str) -> None:
    net = read_matpower(bundled_case_path("case14"))
    with pytest.raises(ValidationError, match=match):
        read_profile(_write(tmp_path, text), net)


def test_storage_and_unit_errors(tmp_path: Path) -> None:
    net = read_matpower(bundled_case_path("case14"))
    head = "name,bus_id,power_mw,energy_mwh,eta_charge,eta_discharge\n"
    with pytest.raises(
        ValidationError, match=r"line 2, field eta_charge: efficiency must be in \(0, 1\]"
    ):
        read_storage(_write(tmp_path, head + "b,1,10,40,1.2,0.9\n"), net)
    with pytest.raises(ValidationError, match="field bus_id: no bus 77"):
        read_storage(_write(tmp_path, head + "b,77,10,40,0.9,0.9\n"), net)
    ok = read_storage(_write(tmp_path, head + "b,1,10,40,0.9,0.9\n"), net)
    assert isinstance(ok, StorageUnits) and ok.soc_init_mwh[0] == 20.0
    uh = "gen,min_up_h,min_down_h,startup_cost,ramp_mw_per_h\n"
    with pytest.raises(ValidationError, match="field gen: no generator 99"):
        read_units(_write(tmp_path, uh + "99,1,1,0,10\n", "u.csv"), net)
    with pytest.raises(ValidationError, match="step_h"):
        synthetic_profile(net, hours=24, step_h=0.0)
    with pytest.raises(ValidationError, match="horizon"):
        synthetic_profile(net, hours=24).head(30)
