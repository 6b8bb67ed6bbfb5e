"""The ``aiguilleur ops`` command line: its JSON contract, its errors, its exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aiguilleur.cli import app
from tests.ops.conftest import at, case14_genesis

runner = CliRunner()


def invoke(*args: str, input: str | None = None) -> Any:
    return runner.invoke(app, list(args), input=input, catch_exceptions=False)


def lines(*docs: dict[str, Any]) -> str:
    return "".join(json.dumps(d) + "\n" for d in docs)


def ev(i: int, t: str, **kw: Any) -> dict[str, Any]:
    return {"id": f"c{i}", "type": t, "occurred_at": at(i), "source": "cli-test", **kw}


def test_ingest_events_state_round_trip(tmp_path: Path) -> None:
    store = str(tmp_path / "ops.db")
    src = tmp_path / "in.jsonl"
    src.write_text(
        lines(
            case14_genesis(),
            ev(1, "branch_trip", branch="branch:3"),
            ev(2, "load_scale", factor=1.05),
        )
        + "this is not json\n"
        + lines(ev(3, "branch_trip", branch="branch:99"), ev(1, "branch_trip", branch="branch:3"))
    )
    res = invoke("ops", "ingest", str(src), "--store", store, "--no-respond")
    assert res.exit_code == 2  # two lines were refused
    acks = [json.loads(x) for x in res.stdout.splitlines()]
    assert acks == [
        {"id": "world:grid", "seq": 1},
        {"id": "c1", "seq": 2},
        {"id": "c2", "seq": 3},
        {"id": "c1", "seq": 2, "duplicate": True},
    ]
    errs = res.stderr.strip().splitlines()
    assert errs[0].startswith("error: line 4: event: not valid JSON")
    assert errs[1].startswith("error: line 5: branch: branch:99")
    st = json.loads(invoke("ops", "state", "--store", store, "--json").stdout)
    for key in ("last_seq", "events", "state_hash", "grid", "fleets", "alarms"):
        assert key in st
    assert st["last_seq"] == 3 and st["grid"]["branches_out"] == ["branch:3"]
    # the log exported, ingested into a fresh store, gives the same state
    out = invoke("ops", "events", "--store", store)
    assert out.exit_code == 0 and out.stdout.count("\n") == 3
    store2 = str(tmp_path / "copy.db")
    again = invoke("ops", "ingest", "-", "--store", store2, "--no-respond", input=out.stdout)
    assert again.exit_code == 0
    st2 = json.loads(invoke("ops", "state", "--store", store2, "--json").stdout)
    assert st2["state_hash"] == st["state_hash"]
    tail = invoke("ops", "events", "--store", store, "--since", "2")
    assert [json.loads(x)["id"] for x in tail.stdout.splitlines()] == ["c2"]


def test_read_commands_refuse_a_missing_store(tmp_path: Path) -> None:
    for cmd in ("state", "events", "plans", "alarms"):
        res = invoke("ops", cmd, "--store", str(tmp_path / "none.db"))
        assert res.exit_code == 2
        assert res.stderr.strip().startswith("error: ") and "no such store" in res.stderr
        assert "Traceback" not in res.output
        assert not (tmp_path / "none.db").exists()


def test_ingest_bad_file_and_schema(tmp_path: Path) -> None:
    res = invoke("ops", "ingest", str(tmp_path / "nope.jsonl"), "--store", str(tmp_path / "x.db"))
    assert res.exit_code == 2 and "no such file" in res.stderr
    res = invoke("ops", "ingest", str(tmp_path), "--store", str(tmp_path / "x.db"))
    assert res.exit_code == 2 and "not a regular file" in res.stderr
    schema = json.loads(invoke("ops", "schema").stdout)
    assert "branch_trip" in json.dumps(schema)


def test_decisions_through_the_cli(tmp_path: Path) -> None:
    store = str(tmp_path / "ops.db")
    src = lines(case14_genesis(), ev(1, "load_scale", factor=1.6))
    res = invoke("ops", "ingest", "-", "--store", store, input=src)
    assert res.exit_code == 0, res.stderr
    plans = json.loads(invoke("ops", "plans", "--store", store, "--json").stdout)["proposals"]
    alarms = json.loads(invoke("ops", "alarms", "--store", store, "--json").stdout)["alarms"]
    assert alarms, "a 60 % load step on case14 raises alarms"
    ack = invoke("ops", "ack", alarms[0]["id"], "--operator", "alice", "--store", store)
    assert ack.exit_code == 0 and json.loads(ack.stdout)["seq"] == 3
    again = invoke("ops", "ack", alarms[0]["id"], "--operator", "alice", "--store", store)
    assert again.exit_code == 2 and "already acknowledged" in again.stderr
    bad = invoke("ops", "approve", "P999-grid", "--operator", "alice", "--store", store)
    assert bad.exit_code == 2 and "no such proposal" in bad.stderr
    pending = [p for p in plans if p["status"] == "pending"]
    if pending:
        ok = invoke("ops", "approve", pending[0]["id"], "--operator", "bob", "--store", store)
        assert ok.exit_code == 0
        after = json.loads(invoke("ops", "plans", "--store", store, "--json").stdout)
        assert any(p["status"] == "approved" for p in after["proposals"])


def test_replay_refuses_a_used_store_and_bad_scenarios(tmp_path: Path) -> None:
    store = str(tmp_path / "ops.db")
    invoke("ops", "ingest", "-", "--store", store, "--no-respond", input=lines(case14_genesis()))
    res = invoke("ops", "replay", "crisis", "--store", store)
    assert res.exit_code == 2 and "fresh store" in res.stderr
    res = invoke("ops", "replay", str(tmp_path / "nope.yaml"))
    assert res.exit_code == 2 and "no such file" in res.stderr
    res = invoke("ops", "replay", "nothing")
    assert res.exit_code == 2 and "bundled" in res.stderr


@pytest.mark.slow
def test_replay_json_contract(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "name: small\nstart: 2026-01-15T05:00:00+01:00\nworld: {grid: {case: case118}}\n"
        "policy: {auto_apply: [grid_corrective], operator_delay: 1m}\n"
        "timeline:\n  - {at: 10m, type: branch_trip, branch: 'branch:32'}\n"
        "  - {at: 1h, type: branch_restore, branch: 'branch:32'}\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "aiguilleur.cli",
            "ops",
            "replay",
            str(scenario),
            "--json",
            "--store",
            f"sqlite:///{tmp_path / 'r.db'}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    out = json.loads(proc.stdout)
    for key in (
        "events",
        "proposals",
        "reaction_s",
        "ac_violations_after",
        "shed_mw",
        "undelivered_orders",
        "state_hash",
    ):
        assert key in out
    assert set(out["reaction_s"]) >= {"p50", "p95", "max"}
    assert proc.returncode == (0 if out["ok"] else 1)
