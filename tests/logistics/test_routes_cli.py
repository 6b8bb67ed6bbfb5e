"""``aiguilleur routes solve`` / ``routes replan``: the JSON contract and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from typer.testing import CliRunner

from aiguilleur.cli import app
from aiguilleur.logistics.routing import PlannedRoute, check_plan, read_instance
from tests.conftest import REPO_ROOT

EXAMPLES = REPO_ROOT / "aiguilleur" / "data" / "routing"
runner = CliRunner()


def run_json(*args: str, code: int = 0) -> dict[str, Any]:
    res = runner.invoke(app, list(args))
    assert res.exit_code == code, (res.stdout, res.stderr)
    out: dict[str, Any] = json.loads(res.stdout)
    return out


def assert_one_line_error(res: Any, *fragments: str) -> None:
    assert res.exit_code == 2, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ")
    for f in fragments:
        assert f in lines[0]
    assert "Traceback" not in res.output


def _tiny_vrp(tmp_path: Path) -> Path:
    f = tmp_path / "tiny.vrp"
    f.write_text(
        "NAME : tiny\nTYPE : CVRP\nDIMENSION : 6\nEDGE_WEIGHT_TYPE : EUC_2D\nCAPACITY : 10\n"
        "NODE_COORD_SECTION\n1 0 0\n2 0 10\n3 10 0\n4 10 10\n5 5 5\n6 -5 -5\n"
        "DEMAND_SECTION\n1 0\n2 3\n3 4\n4 5\n5 7\n6 2\nDEPOT_SECTION\n1\n-1\nEOF\n"
    )
    return f


def test_solve_json_contract_on_a_vrp_file(tmp_path: Path) -> None:
    f = _tiny_vrp(tmp_path)
    out = run_json(
        "routes", "solve", str(f), "--time-limit", "0.3", "--seed", "2", "--workers", "1", "--json"
    )
    assert {"cost", "vehicles", "feasible", "time_s", "routes"} <= set(out)
    assert out["feasible"] is True
    # Routes use CVRPLIB .sol numbering: customers 1..n, depot not listed.
    assert sorted(c for r in out["routes"] for c in r) == [1, 2, 3, 4, 5]
    p = read_instance(f)
    rep = check_plan(p, [PlannedRoute(0, np.array(r) - 1) for r in out["routes"]])
    assert rep.feasible and rep.objective == out["cost"]
    assert out["vehicles"] == len(out["routes"])


def test_solve_then_replan_round_trip(tmp_path: Path) -> None:
    inst = tmp_path / "monaco_fuel.json"
    shutil.copy(EXAMPLES / "monaco_fuel.json", inst)
    plan = tmp_path / "plan.json"
    out = run_json(
        "routes",
        "solve",
        str(inst),
        "--time-limit",
        "0.5",
        "--workers",
        "1",
        "--write-plan",
        str(plan),
        "--json",
    )
    assert out["feasible"] and plan.exists()
    doc = json.loads(plan.read_text())
    assert doc["instance"] == "monaco_fuel.json"
    event = tmp_path / "ev.json"
    event.write_text(json.dumps({"type": "breakdown", "vehicle": doc["routes"][0]["vehicle"]}))
    res = run_json(
        "routes",
        "replan",
        str(plan),
        "--at",
        "33000",
        "--event",
        str(event),
        "--deadline",
        "0.6",
        "--workers",
        "1",
        "--json",
    )
    assert res["feasible"] is True
    assert {"cost", "repair_cost", "changes", "delay_s", "dropped", "vehicles"} <= set(res)
    assert res["cost"] <= res["repair_cost"] or res["objective"] <= res["repair_objective"]
    broken = next(c for c in res["changes"] if c["vehicle"] == doc["routes"][0]["vehicle"])
    assert broken["status"] in ("broken",) and broken["after"] == broken["served"]


def test_replan_bundled_example_in_text() -> None:
    res = runner.invoke(
        app,
        [
            "routes",
            "replan",
            str(EXAMPLES / "monaco_fuel_plan.json"),
            "--at",
            "36000",
            "--event",
            str(EXAMPLES / "event_closure.json"),
            "--deadline",
            "0.5",
            "--workers",
            "1",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "re-plan at 36000" in res.stdout


def test_bad_inputs_give_one_line_errors(tmp_path: Path) -> None:
    assert_one_line_error(
        runner.invoke(app, ["routes", "solve", str(tmp_path / "none.vrp")]), "no such file"
    )
    bad = tmp_path / "bad.vrp"
    bad.write_text(_tiny_vrp(tmp_path).read_text().replace("5 7\n", "5 70\n"))
    assert_one_line_error(
        runner.invoke(app, ["routes", "solve", str(bad)]),
        "bad.vrp:",
        "node 5: demand 70 exceeds the vehicle capacity 10",
    )
    j = tmp_path / "o.json"
    doc = json.loads((EXAMPLES / "monaco_fuel.json").read_text())
    doc["orders"][0]["window_s"] = [40000, 30000]
    j.write_text(json.dumps(doc))
    assert_one_line_error(
        runner.invoke(app, ["routes", "solve", str(j)]), "orders[0] 'hospital-pasteur'", "closes"
    )
    ev = tmp_path / "ev.json"
    ev.write_text(json.dumps({"type": "breakdown", "vehicle": "ghost#1"}))
    res = runner.invoke(
        app,
        [
            "routes",
            "replan",
            str(EXAMPLES / "monaco_fuel_plan.json"),
            "--at",
            "30000",
            "--event",
            str(ev),
        ],
    )
    assert_one_line_error(res, "no vehicle named 'ghost#1'")
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "instance": str(EXAMPLES / "monaco_fuel.json"),
                "routes": [{"vehicle": "x", "vehicle_type": "tanker", "orders": ["nope"]}],
            }
        )
    )
    res = runner.invoke(app, ["routes", "replan", str(plan), "--at", "0", "--event", str(ev)])
    assert_one_line_error(res, "unknown order 'nope'")
