"""The day-ahead security assessment, checked against outside references.

- the congestion forecast of several (hour, scenario) points against pandapower's
  Newton-Raphson, one outage at a time, on the very operating points assessed;
- the Monte Carlo EENS on a tiny system against the exact enumeration of every
  outage state (each answered by a one-shot corrective redispatch);
- the scenarios against the forecast they come from (quantiles reproduced, the
  copula's correlation recovered);
- the command line's JSON contract and its one-line errors.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from aiguilleur.cli import app
from aiguilleur.data import bundled_case_path
from aiguilleur.errors import ValidationError
from aiguilleur.forecast import ForecastSettings, sample_series, sample_series_path
from aiguilleur.grid import read_matpower
from aiguilleur.grid.redispatch import Outage, RedispatchOptions, redispatch
from aiguilleur.ops._dayahead_work import (
    HourItem,
    HourJob,
    Spread,
    _monte_carlo,
    quantile_to_z,
    sample_states,
    z_to_quantile,
)
from aiguilleur.ops.dayahead import (
    DayAheadOptions,
    DayAheadResult,
    FailureRates,
    assess_day_ahead,
    default_failure_rates,
    ledoit_wolf_correlation,
    parse_outages,
    read_failure_rates,
    read_renewables,
    sample_paths,
)

FAST = ForecastSettings(
    n_estimators=20, median_n_estimators=30, num_leaves=7, median_num_leaves=7,
    calibration_days=30,
)  # fmt: skip
DAY = "2014-02-20"


@pytest.fixture(scope="module")
def case14() -> Any:
    return read_matpower(bundled_case_path("case14"))


@pytest.fixture(scope="module")
def history() -> Any:
    return sample_series(impute=True)


@pytest.fixture(scope="module")
def result(case14: Any, history: Any) -> DayAheadResult:
    # single slack, so that pandapower solves the same problem
    opts = DayAheadOptions(forecast=FAST, samples=8, distributed_slack=False)
    return assess_day_ahead(case14, history, DAY, opts)


# -- the assessment -----------------------------------------------------------------------------


def test_result_shape_and_contract(result: DayAheadResult) -> None:
    assert result.ok and result.status == "complete"
    d = result.to_dict()
    for key in ("hours", "scenarios", "contingencies_per_hour", "critical", "preventive_cost",
                "eens_mwh", "wall_s", "tasks", "workers"):  # fmt: skip
        assert key in d
    assert d["hours"] == 24 and d["scenarios"] == 3
    assert d["scenario_labels"] == ["P10", "P50", "P90"]
    assert d["contingencies_per_hour"] == 20  # every branch of case14
    for c in d["critical"]:
        assert set(c) >= {"hour", "contingency", "branch", "probability"}
        assert 0.0 < c["probability"] <= 1.0
    json.dumps(d, allow_nan=True)
    # the scenarios are the forecast's P10, P50 and P90, in order at every hour
    sc = result.scenarios
    assert np.all(np.diff(sc.load_mw, axis=0) >= 0)
    lev = list(sc.levels)
    np.testing.assert_allclose(sc.load_mw[1], sc.quantiles[:, lev.index(0.5)])
    np.testing.assert_allclose(sc.weights, [0.3, 0.4, 0.3])


def test_congestion_probability_is_the_weight_of_the_scenarios_that_overload(
    result: DayAheadResult,
) -> None:
    w = result.scenarios.weights
    for h in range(24):
        expect = np.zeros(result.net.n_branch)
        for s in range(3):
            o = result.outcome(h, s)
            hit = np.zeros(result.net.n_branch, dtype=bool)
            hit[o.base_over] = True
            hit[o.pair_branch] = True
            expect += w[s] * hit
        np.testing.assert_allclose(result.overload_probability[h], expect, atol=1e-12)
    # the critical triples add up the same way
    for c in result.critical[:20]:
        p = 0.0
        for s in range(3):
            o = result.outcome(c.hour, s)
            if c.contingency == "base":
                p += w[s] * float(c.branch in o.base_over.tolist())
            else:
                code = int(c.contingency.split(":")[1]) - 1
                pairs = set(zip(o.pair_cont.tolist(), o.pair_branch.tolist(), strict=True))
                p += w[s] * float((code, c.branch) in pairs)
        assert c.probability == pytest.approx(p)


def _pandapower_loading(pp: Any, ppnet: Any, net: Any, k: int | None) -> np.ndarray | None:
    table = None
    if k is not None:
        table = "line" if k in ppnet.line.index else "trafo"
        getattr(ppnet, table).loc[k, "in_service"] = False
    try:
        pp.runpp(ppnet, init="dc", tolerance_mva=1e-9, calculate_voltage_angles=True)
    except pp.LoadflowNotConverged:
        return None
    finally:
        if table is not None:
            getattr(ppnet, table).loc[k, "in_service"] = True
    s = np.zeros(net.n_branch)
    rl, rt = ppnet.res_line, ppnet.res_trafo
    s[rl.index] = np.maximum(
        np.hypot(rl.p_from_mw, rl.q_from_mvar), np.hypot(rl.p_to_mw, rl.q_to_mvar)
    )
    s[rt.index] = np.maximum(np.hypot(rt.p_hv_mw, rt.q_hv_mvar), np.hypot(rt.p_lv_mw, rt.q_lv_mvar))
    if k is not None:
        s[k] = 0.0
    rate = np.where(net.branch.rate_a_mva > 0, net.branch.rate_a_mva, np.inf)
    out: np.ndarray = s / rate * 100.0
    return out


@pytest.mark.parametrize("hour", [3, 12, 18])
def test_congestion_matches_pandapower_per_outage(result: DayAheadResult, hour: int) -> None:
    """Each assessed point rebuilt in pandapower and every branch outage run there."""
    pp = pytest.importorskip("pandapower")
    from aiguilleur.grid.pandapower_io import to_pandapower

    for s in range(result.scenarios.count):
        net = result.operating_point(hour, s)
        o = result.outcome(hour, s)
        ppnet = to_pandapower(net)
        base = _pandapower_loading(pp, ppnet, net, None)
        assert base is not None
        assert set(np.flatnonzero(base > 100.0).tolist()) == set(o.base_over.tolist())
        np.testing.assert_allclose(o.base_loading, base[o.base_over], atol=1e-5)
        mine = set(zip(o.pair_cont.tolist(), o.pair_branch.tolist(), strict=True))
        theirs: set[tuple[int, int]] = set()
        loads: dict[tuple[int, int], float] = {}
        for k in np.flatnonzero(net.branch.in_service == 1).tolist():
            load = _pandapower_loading(pp, ppnet, net, k)
            if load is None:
                assert k in o.diverged.tolist() or _islanding(net, k)
                continue
            for b in np.flatnonzero((load > 100.0) & ~(base > 100.0)).tolist():
                theirs.add((k, b))
                loads[(k, b)] = float(load[b])
        assert mine == theirs, (hour, s)
        for (k, b), v in zip(mine, [0] * len(mine), strict=True):
            del v
            j = int(np.flatnonzero((o.pair_cont == k) & (o.pair_branch == b))[0])
            assert o.pair_loading[j] == pytest.approx(loads[(k, b)], abs=1e-4)


def _islanding(net: Any, k: int) -> bool:
    from aiguilleur.grid import bridges

    return k in bridges(net).tolist()


def test_preventive_redispatch_is_reported_where_congested(result: DayAheadResult) -> None:
    for o in result.outcomes:
        congested = bool(o.base_over.size or o.pair_cont.size)
        if congested:
            assert o.preventive_status.split("_")[-1] in (
                "optimal",
                "insecure",
            ) or o.preventive_status.startswith("shed_")
            assert o.residual_pairs >= 0  # verified again in AC
        else:
            assert o.preventive_status == "not_needed" and o.preventive_cost == 0.0
    assert math.isfinite(result.preventive_cost)


def test_report_is_written(result: DayAheadResult, tmp_path: Path) -> None:
    path = result.write_report(tmp_path)
    text = path.read_text()
    assert "Overload probability by hour and branch" in text
    assert "Critical (hour, contingency, branch) triples" in text
    assert "<svg" in text


def test_operating_point_carries_the_plan(result: DayAheadResult) -> None:
    sc = result.scenarios
    for h, s in ((0, 0), (18, 2)):
        net = result.operating_point(h, s)
        plan = result.commitment[s]
        on = net.gen.in_service == 1
        assert on.sum() >= plan.committed[h].sum()
        np.testing.assert_allclose(net.gen.pg_mw[on].sum(), plan.pg_mw[h].sum(), rtol=1e-9)
        pos = result.net.bus.pd_mw > 0
        np.testing.assert_allclose(
            net.bus.pd_mw[pos].sum(), sc.factors[s, h] * result.net.bus.pd_mw[pos].sum()
        )


# -- Monte Carlo against exact enumeration --------------------------------------------------------


def test_eens_monte_carlo_matches_exact_enumeration(case14: Any) -> None:
    """Five elements with large failure probabilities; every other element cannot fail."""
    from aiguilleur.grid import ContingencyOptions, scaled_dispatch

    net = scaled_dispatch(case14)
    rd_opts = RedispatchOptions(minutes=5.0, default_ramp_pct_per_min=2.0)
    br = np.zeros((24, net.n_branch))
    gn = np.zeros((24, net.n_gen))
    gn[5, 0], gn[5, 1] = 0.15, 0.10
    br[5, 0], br[5, 6], br[5, 13] = 0.2, 0.05, 0.1
    rates = FailureRates(br, gn, "test")
    job = HourJob(
        net, Spread.of(net), ContingencyOptions(), None, None, False, rd_opts,
        rates.branch_per_h, rates.gen_per_h, 3000, 11,
    )  # fmt: skip
    item = HourItem(
        5, 0, 1.0, np.asarray(net.gen.pg_mw), net.gen.in_service == 1, np.zeros(net.n_bus)
    )
    p_any, shed, base_shed, states, _ = _monte_carlo(job, item, net, np.asarray(net.gen.pg_mw))
    est = p_any * shed.mean() + (1 - p_any) * base_shed
    se = p_any * shed.std(ddof=1) / math.sqrt(shed.size)
    # exact: every one of the 2^5 states, each a one-shot redispatch
    elems = [("gen", 0, 0.15), ("gen", 1, 0.10), ("branch", 0, 0.2), ("branch", 6, 0.05),
             ("branch", 13, 0.1)]  # fmt: skip
    exact = 0.0
    for mask in itertools.product([0, 1], repeat=len(elems)):
        prob = 1.0
        outs = []
        for m, (kind, row, p) in zip(mask, elems, strict=True):
            prob *= p if m else 1 - p
            if m:
                outs.append(Outage(kind, row))  # type: ignore[arg-type]
        r = redispatch(net, outs, net.gen.pg_mw, rd_opts)
        exact += prob * float(np.sum(r.shed_mw))
    assert exact > 1.0  # the fixture does shed load in some states
    assert abs(est - exact) <= 4.0 * se + 1e-9, (est, exact, se)
    assert p_any == pytest.approx(1 - 0.85 * 0.9 * 0.8 * 0.95 * 0.9)
    assert states <= 2**5 - 1


def test_conditional_state_sampling_matches_exact_probabilities() -> None:
    p = np.array([0.3, 0.05, 0.2])
    rng = np.random.default_rng(5)
    p_any, states = sample_states(p, 60_000, rng)
    assert p_any == pytest.approx(1 - 0.7 * 0.95 * 0.8)
    assert states.any(axis=1).all()
    for mask in itertools.product([False, True], repeat=3):
        if not any(mask):
            continue
        exact = np.prod([q if m else 1 - q for q, m in zip(p, mask, strict=True)]) / p_any
        freq = np.mean(np.all(states == np.array(mask)[None, :], axis=1))
        assert freq == pytest.approx(exact, abs=4 * math.sqrt(exact * (1 - exact) / 60_000) + 1e-4)


# -- scenarios ------------------------------------------------------------------------------------

LEVELS = np.array([0.05, 0.1, 0.5, 0.9, 0.95])


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(1.0, 1e4), min_size=5, max_size=5),
    st.floats(-4.0, 4.0),
)
def test_normal_score_maps_are_inverse(qs: list[float], z: float) -> None:
    pred = np.sort(np.array(qs))
    if np.any(np.diff(pred) <= 1e-6 * pred[-1]):
        return
    x = z_to_quantile(pred, LEVELS, np.array(z))
    assert quantile_to_z(pred, LEVELS, x) == pytest.approx(z, abs=1e-9)
    # the quantiles themselves are reproduced exactly
    from scipy.stats import norm

    np.testing.assert_allclose(z_to_quantile(pred[None, :], LEVELS, norm.ppf(LEVELS)[None, :])[0],
                               pred, rtol=1e-12)  # fmt: skip


def test_copula_paths_respect_quantiles_and_correlation() -> None:
    rng = np.random.default_rng(0)
    hours = np.arange(24)
    corr = 0.9 ** np.abs(hours[:, None] - hours[None, :])
    base = 1000 + 200 * np.sin(hours / 24 * 2 * np.pi)
    quant = base[:, None] * np.array([0.9, 0.93, 1.0, 1.07, 1.1])[None, :]
    paths = sample_paths(quant, LEVELS, corr, 20_000, rng)
    for j, q in enumerate(LEVELS):
        np.testing.assert_allclose(np.quantile(paths, q, axis=0), quant[:, j], rtol=4e-3)
    z = quantile_to_z(np.broadcast_to(quant, (20_000, 24, 5)), LEVELS, paths)
    np.testing.assert_allclose(np.corrcoef(z.T), corr, atol=0.03)
    c, lam = ledoit_wolf_correlation(z)
    assert lam < 0.05
    np.testing.assert_allclose(c, corr, atol=0.04)


def test_ledoit_wolf_shrinks_noise_towards_independence() -> None:
    rng = np.random.default_rng(1)
    z = rng.standard_normal((30, 24))
    c, lam = ledoit_wolf_correlation(z)
    assert lam > 0.5
    off = c[~np.eye(24, dtype=bool)]
    assert np.max(np.abs(off)) < np.max(np.abs(np.corrcoef(z.T)[~np.eye(24, dtype=bool)]))


@pytest.mark.slow
def test_sampled_scenarios_in_the_assessment(case14: Any, history: Any) -> None:
    opts = DayAheadOptions(forecast=FAST, samples=0, scenarios=5, residual_days=20)
    res = assess_day_ahead(case14, history, DAY, opts)
    sc = res.scenarios
    assert sc.labels == ("S1", "S2", "S3", "S4", "S5") and sc.correlation is not None
    np.testing.assert_allclose(sc.weights, 0.2)
    assert 0.0 <= sc.shrinkage <= 1.0
    # neighbouring hours of a day's forecast errors move together
    assert np.mean(np.diag(sc.correlation, 1)) > 0.5
    assert math.isnan(res.eens_mwh)


def test_forecast_parts_give_the_whole_fit(history: Any) -> None:
    """The forecast fitted as separate tasks (the calibration, each final booster),
    shipped back by pickle, gives exactly the forecaster fitted in one piece
    (:func:`~aiguilleur.forecast.fit`), and so does the final model in one task."""
    import pickle

    from aiguilleur.ops._dayahead_work import (
        ForecastJob,
        forecast_parts,
        forecast_quantiles,
        forecast_task,
    )
    from aiguilleur.ops.dayahead import _history_until, _parse_day

    opts = DayAheadOptions(forecast=FAST)
    hist, issue = _history_until(history, _parse_day(DAY), opts)
    job = ForecastJob(hist, issue, FAST, opts.residual_days)
    whole, levels = forecast_task(job, "quantiles")
    parts = forecast_parts(FAST)
    # the calibration first, then the two median models (l2, then pinball), then the rest
    assert parts == ["calibration", "final:2", "final:5", "final:0", "final:1", "final:3",
                     "final:4"]  # fmt: skip
    got_parts = [pickle.loads(pickle.dumps(forecast_task(job, w))) for w in parts]
    got, got_levels = forecast_quantiles(job, parts, got_parts)
    np.testing.assert_array_equal(got, whole)
    np.testing.assert_array_equal(got_levels, levels)
    halves = ["calibration", "final"]
    got2, _ = forecast_quantiles(job, halves, [forecast_task(job, w) for w in halves])
    np.testing.assert_array_equal(got2, whole)
    shifts = got_parts[0]
    assert np.all(np.diff(got, axis=1) >= 0) and not np.array_equal(shifts, np.zeros_like(shifts))
    with pytest.raises(ValidationError, match="boosters: expected numbers from 0 to 5"):
        forecast_task(job, "final:6")


# -- inputs ---------------------------------------------------------------------------------------


def test_days_that_cannot_be_forecast(case14: Any, history: Any) -> None:
    with pytest.raises(ValidationError, match="last day that can be assessed is 2014-03-01"):
        assess_day_ahead(case14, history, "2014-03-02", DayAheadOptions(forecast=FAST))
    with pytest.raises(ValidationError, match="history starts"):
        assess_day_ahead(case14, history, "2013-06-20", DayAheadOptions(forecast=FAST))
    with pytest.raises(ValidationError, match="YYYY-MM-DD"):
        assess_day_ahead(case14, history, "tomorrow", DayAheadOptions(forecast=FAST))


def test_planned_outages(case14: Any) -> None:
    outs = parse_outages(["branch:3", "gen:2"], case14)
    assert [o.label for o in outs] == ["branch:3", "gen:2"]
    with pytest.raises(ValidationError, match="20 branches"):
        parse_outages(["branch:21"], case14)
    with pytest.raises(ValidationError, match="branch:K or gen:J"):
        parse_outages(["bus:3"], case14)


def test_failure_rate_file(case14: Any, tmp_path: Path) -> None:
    f = tmp_path / "rates.csv"
    f.write_text("element,probability,hour\nbranch:2,0.01,\ngen:1,0.2,7\n")
    r = read_failure_rates(f, case14)
    d = default_failure_rates(case14)
    assert r.branch_per_h[:, 1].tolist() == [0.01] * 24
    assert r.gen_per_h[7, 0] == 0.2 and r.gen_per_h[6, 0] == d.gen_per_h[6, 0]
    assert r.branch_per_h[0, 0] == d.branch_per_h[0, 0]
    f.write_text("element,probability\nbranch:2,1.5\n")
    with pytest.raises(ValidationError, match=r"rates.csv, line 2, field probability"):
        read_failure_rates(f, case14)
    f.write_text("element,probability\nbranch:99,0.1\n")
    with pytest.raises(ValidationError, match=r"line 2, field element"):
        read_failure_rates(f, case14)


def test_default_failure_rates(case14: Any) -> None:
    d = default_failure_rates(case14)
    assert d.branch_per_h[0, 0] == pytest.approx(0.5 / 8760, rel=1e-4)
    assert d.gen_per_h[0, 0] == pytest.approx(1 / 1000, rel=1e-3)


def test_renewable_file(case14: Any, tmp_path: Path) -> None:
    f = tmp_path / "ren.csv"
    f.write_text("hour,bus_id,available_mw\n0,3,10\n23,3,5.5\n")
    r = read_renewables(f, case14)
    assert r.shape == (24, 14) and r[0, 2] == 10.0 and r[23, 2] == 5.5 and r.sum() == 15.5
    f.write_text("hour,bus_id,available_mw\n24,3,10\n")
    with pytest.raises(ValidationError, match="line 2, field hour"):
        read_renewables(f, case14)
    f.write_text("hour,bus_id,available_mw\n1,99,10\n")
    with pytest.raises(ValidationError, match="line 2, field bus_id: no bus 99"):
        read_renewables(f, case14)


def test_options_are_validated() -> None:
    with pytest.raises(ValidationError, match="scenarios"):
        DayAheadOptions(scenarios=0)
    with pytest.raises(ValidationError, match="quantile paths"):
        DayAheadOptions(scenarios=4, sampling="quantiles")
    with pytest.raises(ValidationError, match="samples"):
        DayAheadOptions(samples=-1)
    with pytest.raises(ValidationError, match=r"level 0\.1"):
        DayAheadOptions(forecast=ForecastSettings(quantiles=(0.25, 0.5, 0.75)))


# -- command line ---------------------------------------------------------------------------------

runner = CliRunner()
HIST = str(sample_series_path())


def _cli(*args: str) -> Any:
    return runner.invoke(app, ["ops", "day-ahead", *args])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--day", "2014-03-09"], "no forecast can be issued"),
        (["--day", "2014-02-20", "--outage", "branch:99"], "the case has 20 branches"),
        (["--day", "2014-02-20", "--outage", "line:2"], "branch:K or gen:J"),
        (["--day", "2014-02-20", "--ray", "not an address"], "host:port"),
        (["--day", "2014-02-20", "--ray", "127.0.0.1:1"], "no Ray cluster answers"),
    ],
)
def test_cli_bad_input_is_one_line(args: list[str], message: str) -> None:
    if "127.0.0.1:1" in args:
        pytest.importorskip("ray")
    r = _cli("case14", "--history", HIST, *args)
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.output


@pytest.mark.slow
def test_cli_json_contract(tmp_path: Path) -> None:
    r = _cli("case14", "--history", HIST, "--day", DAY, "--samples", "4", "--workers", "1",
             "--report", str(tmp_path), "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    for key in ("hours", "scenarios", "contingencies_per_hour", "critical", "preventive_cost",
                "eens_mwh", "wall_s", "tasks", "workers"):  # fmt: skip
        assert key in d
    assert d["hours"] == 24 and d["scenarios"] == 3 and d["workers"] == 1
    assert all(set(c) >= {"hour", "contingency", "branch", "probability"} for c in d["critical"])
    assert Path(d["report"]).is_file()
