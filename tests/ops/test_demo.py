"""The demo job, on a small bundled grid (the full French grid runs in tests/test_cli.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from aiguilleur.data import bundled_case_path
from aiguilleur.grid import ContingencyOptions, read_matpower, scaled_dispatch, screen_n1
from aiguilleur.ops import DemoResult, run_demo


@pytest.fixture(scope="module")
def demo118(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    stages: list[tuple[str, int, int]] = []
    out = tmp_path_factory.mktemp("demo")
    res = run_demo(
        out, progress=lambda s, d, t: stages.append((s, d, t)), case="case118", with_fleet=False
    )
    assert stages[0][0] == "loading the grid"
    assert any(s == "N-1 screening" and d == t for s, d, t in stages)
    assert stages[-1][0] == "done"
    return res


def test_counts_and_files(demo118: DemoResult) -> None:
    r = demo118
    assert r.case == "pglib_opf_case118_ieee"
    assert r.operating_point == "stored set-points scaled to the load"
    assert r.attribution == "Grid: PGLib-OPF v23.07 pglib_opf_case118_ieee, CC BY 4.0"
    assert r.contingencies == r.branch_contingencies + r.generator_contingencies
    assert r.contingencies == r.secure + r.overload + r.islanding + r.diverged
    assert r.branch_contingencies == 186
    assert r.generator_contingencies == r.generators
    assert r.report_path == r.out_dir / "index.html"
    text = r.report_path.read_text(encoding="utf-8")
    assert "pglib_opf_case118_ieee" in text
    assert text.count("<svg") == 5  # loadings, overloads, prices before, after, change
    assert "Corrective redispatch" in text
    with r.csv_path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == r.contingencies
    assert not list(r.out_dir.glob("*.tmp"))


def test_worst_outage_matches_the_screen(demo118: DemoResult) -> None:
    r = demo118
    w = r.worst
    assert w is not None
    assert w.status != "islanding"
    assert w.max_loading_pct is not None
    worst_pct = w.max_loading_pct
    assert r.top[0] == w
    assert all(o.max_loading_pct is None or o.max_loading_pct <= worst_pct for o in r.top)
    # the post-outage power flow is the screen's AC solution of that outage
    assert r.post_converged
    assert r.post_max_loading_pct == pytest.approx(w.max_loading_pct, rel=1e-6)
    assert len(r.post_overloads) == w.n_overloaded
    loads = [b.loading_pct for b in r.post_overloads]
    assert loads == sorted(loads, reverse=True)
    assert all(v > 100.0 for v in loads)
    assert 0.5 < r.post_vm_min_pu <= r.post_vm_max_pu < 1.5


def test_corrective_redispatch_after_the_worst_outage(demo118: DemoResult) -> None:
    r = demo118
    rd = r.redispatch
    assert rd is not None and r.worst is not None
    assert rd.status == "optimal"
    assert rd.outages[0].row == r.worst.row
    assert not rd.remaining_overloads.size  # in the DC model, every overload is removed
    load = float(np.sum(read_matpower(bundled_case_path("case118")).bus.pd_mw))
    gs = float(np.sum(read_matpower(bundled_case_path("case118")).bus.gs_mw))
    assert float(np.sum(rd.pg_mw)) + rd.total_shed_mw == pytest.approx(load + gs, abs=1e-3)
    assert r.plan_ac_converged is True and r.plan_ac_rounds >= 1
    assert r.lmp_before is not None and r.lmp_after is not None
    assert r.lmp_before.shape == r.lmp_after.shape == (118,)


def test_worst_islanding_cuts_the_most_load(demo118: DemoResult) -> None:
    net = scaled_dispatch(read_matpower(bundled_case_path("case118")))
    res = screen_n1(net, ContingencyOptions(generators=True))
    isl = res.status == "islanding"
    wi = demo118.worst_islanding
    assert wi is not None
    assert wi.lost_load_mw == pytest.approx(float(np.max(res.lost_load_mw[isl])))


def test_default_out_dir_is_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    r = run_demo(case="case14", with_fleet=False)
    assert r.out_dir == tmp_path / "aiguilleur-report"
    assert r.report_path.is_file()


def test_fleet_part_replans_both_fleets_after_the_flood() -> None:
    from aiguilleur.logistics.routing import check_plan  # noqa: F401  (the checker exists)
    from aiguilleur.ops.fleet import run_fleet_demo

    f = run_fleet_demo(seed=1, time_limit_s=1.0, replan_deadline_s=1.0)
    assert f.closed_edges > 0
    assert {p.fleet for p in f.fleets} == {"tankers", "repair crews"}
    for p in f.fleets:
        assert p.feasible_before and p.feasible_after
        # the re-plan is never worse than patching the old plan
        assert p.cost_after <= p.repair_cost_after + 1e-6
        served_before = sorted(s for seq in p.routes_before for s in seq[1:-1])
        served_after = sorted(s for seq in p.routes_after for s in seq[1:-1])
        assert served_before == served_after or p.dropped_after
    assert f.fuel_supply_l < f.fuel_need_l
    assert f.fuel_shortfall_by_priority.get(1, 0.0) == 0.0  # hospitals served first
    assert f.geojson["type"] == "FeatureCollection" and f.geojson["features"]
    assert f.map_svg.startswith("<svg") and "OpenStreetMap" in f.map_svg
