"""Scenario replays: the bundled crisis parses; a 24-hour crisis on case118 replays end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aiguilleur.errors import AiguilleurError, CaseFormatError, ValidationError
from aiguilleur.ops import MemoryStore, OpsCentre
from aiguilleur.ops.replay_report import check_report_dir, write_replay_report
from aiguilleur.ops.scenario import bundled_scenarios, load_scenario, parse_offset, replay

CRISIS118 = Path(__file__).with_name("crisis118.yaml")


def test_bundled_crisis_parses() -> None:
    assert "crisis" in bundled_scenarios()
    sc = load_scenario("crisis")
    assert sc.world["grid"]["case"] == "case1888"
    assert sc.auto_apply == ("grid_corrective", "fleet_replan")
    assert sc.duration_s > 20 * 3600
    types = {d.get("type") for _, d in sc.timeline}
    for t in (
        "load_scale",
        "branch_trip",
        "gen_trip",
        "health_reading",
        "road_closure",
        "depot_outage",
        "order_created",
        "forecast_issued",
    ):
        assert t in types
    offsets = [t for t, _ in sc.timeline]
    assert offsets == sorted(offsets)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("90s", 90.0),
        ("30m", 1800.0),
        ("2h15m", 8100.0),
        ("1d", 86400.0),
        ("01:30", 5400.0),
        ("00:00:05", 5.0),
    ],
)
def test_offsets(text: str, seconds: float) -> None:
    assert parse_offset(text) == seconds


@pytest.mark.parametrize("bad", ["-5m", "soon", "", "400d", True, "1:99"])
def test_bad_offsets(bad: Any) -> None:
    with pytest.raises(ValidationError):
        parse_offset(bad)


@pytest.mark.parametrize(
    ("yaml_text", "match"),
    [
        (
            "name: x\nstart: 2026-01-01T00:00:00\nworld: {grid: {case: case14}}\n"
            "timeline: [{at: 1m, type: load_scale, factor: 1.1}]",
            "time zone",
        ),
        (
            "name: x\nstart: 2026-01-01T00:00:00Z\nworld: {grid: {case: case14}}\n"
            "timeline: [{at: 1m, type: load_scale, factor: -1}]",
            "factor",
        ),
        (
            "name: x\nstart: 2026-01-01T00:00:00Z\nworld: {grid: {case: case14}}\n"
            "timeline: [{at: later, type: load_scale, factor: 1}]",
            "offset",
        ),
        ("name: x\nstart: 2026-01-01T00:00:00Z\nworld: {}\ntimeline: []", "world"),
        (
            "name: x\nstart: 2026-01-01T00:00:00Z\nworld: {grid: {}}\n"
            "policy: {auto_apply: [shed]}\n"
            "timeline: [{at: 1m, operator: approve_pending}]",
            "auto_apply",
        ),
        (
            "name: x\nstart: 2026-01-01T00:00:00Z\nworld: {grid: {}}\n"
            "policy: {fleet_deadline_s: 0}\n"
            "timeline: [{at: 1m, operator: approve_pending}]",
            "fleet_deadline_s",
        ),
        ("timeline: [\n", "YAML"),
        ("- just a list", "mapping"),
    ],
)
def test_bad_scenarios_name_the_problem(tmp_path: Path, yaml_text: str, match: str) -> None:
    p = tmp_path / "s.yaml"
    p.write_text(yaml_text)
    with pytest.raises(CaseFormatError, match=match):
        load_scenario(p)


def test_crisis_sets_the_fleet_deadline() -> None:
    sc = load_scenario("crisis")
    assert sc.fleet_deadline_s == 1.0
    assert sc.world["fleet"]["time_limit_s"] == 0.5


def test_unknown_scenario_lists_the_bundled_ones() -> None:
    with pytest.raises(ValidationError, match=r"bundled: .*crisis"):
        load_scenario("nothing-like-it")


def test_report_folder_is_never_replaced_silently(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("old")
    with pytest.raises(AiguilleurError, match="--force"):
        check_report_dir(tmp_path)
    check_report_dir(tmp_path, force=True)
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(AiguilleurError, match="not a folder"):
        check_report_dir(f)


@pytest.fixture(scope="module")
def crisis118() -> Any:
    return replay(load_scenario(CRISIS118))


@pytest.mark.slow
def test_crisis118_replays_to_a_state_that_holds(crisis118: Any, tmp_path: Path) -> None:
    r = crisis118
    d = r.to_dict()
    for key in (
        "events",
        "proposals",
        "reaction_s",
        "ac_violations_after",
        "shed_mw",
        "undelivered_orders",
        "state_hash",
    ):
        assert key in d
    assert set(d["reaction_s"]) >= {"p50", "p95", "max"}
    assert d["events"] > 100 and d["proposals"] >= 5
    kinds = {p["kind"] for p in r.proposals}
    assert kinds == {"grid_corrective", "fleet_replan"}
    # every applied grid plan held in its own AC check; shedding only by the operator
    for p in r.proposals:
        if p["status"] == "approved" and p["sheds_load"]:
            assert p["decision"]["operator"] == "scripted-operator"
        if p["status"] == "approved" and p["kind"] == "grid_corrective":
            assert p["ok"]
    assert r.speedup > 100
    # the log replays to the same state
    c = OpsCentre(MemoryStore())
    assert all(x.ok for x in c.ingest(r.log))
    assert c.state().state_hash == r.state_hash
    # and the report is written with every file
    out = tmp_path / "rep"
    check_report_dir(out)
    page = write_replay_report(r, out)
    text = page.read_text(encoding="utf-8")
    assert "Timeline" in text and "Proposals" in text and "<svg" in text
    # the report names the grid it ran on
    assert "pglib_opf_case118_ieee: 118 buses, 186 branches, 54 generators." in text
    assert json.loads((out / "summary.json").read_text())["state_hash"] == r.state_hash
    assert (out / "events.jsonl").read_text().count("\n") == d["events"]
    geo = json.loads((out / "routes.geojson").read_text())
    assert geo["features"]
