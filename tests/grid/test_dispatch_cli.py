"""The CLI contract of grid dispatch, redispatch and commit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aiguilleur.cli import app

runner = CliRunner()


def _json(args: list[str], code: int = 0) -> dict:  # type: ignore[type-arg]
    res = runner.invoke(app, args)
    assert res.exit_code == code, res.output
    return json.loads(res.stdout)  # type: ignore[no-any-return]


def test_dispatch_json() -> None:
    out = _json(["grid", "dispatch", "case14", "--json"])
    assert out["status"] == "optimal"
    assert len(out["lmp"]) == 14 and len(out["pg_mw"]) == 5
    assert {"objective", "time_s"} <= set(out)


def test_dispatch_n1_json() -> None:
    res = runner.invoke(app, ["grid", "dispatch", "case118", "--security", "n-1", "--json"])
    out = json.loads(res.stdout)
    assert out["status"] in ("optimal", "insecure")
    assert res.exit_code == (0 if out["status"] == "optimal" else 1)
    assert len(out["lmp"]) == 118 and len(out["pg_mw"]) == 54
    assert out["security_cost"] >= 0
    assert isinstance(out["binding_contingencies"], list) and out["binding_contingencies"]
    c = out["binding_contingencies"][0]
    assert {"outage_branch", "monitored_branch", "dual"} <= set(c)
    if out["status"] == "insecure":
        assert out["unsecured"] and "cannot be secured" in out["message"]


def test_redispatch_json() -> None:
    # the plan sheds load (ramp limits over 15 min): optimal, but not all was served -> exit 1
    out = _json(
        ["grid", "redispatch", "case118", "--outage", "branch:8", "--outage", "gen:3", "--json"],
        code=1,
    )
    assert out["status"] == "optimal" and out["ok"] is False and out["shed_mw"] > 0
    assert out["remaining_overloads"] == []
    assert out["shed_mw"] >= 0 and isinstance(out["actions"], list) and out["actions"]
    assert out["actions"][0]["explanation"]
    assert out["outages"] == ["branch:8", "gen:3"]


def test_commit_json_with_bundled_profile() -> None:
    out = _json(
        ["grid", "commit", "case118", "--profile", "case118_24h", "--storage", "case118_storage",
         "--horizon", "24", "--json"]
    )  # fmt: skip
    assert out["status"] == "optimal"
    assert out["periods"] == 24 and 0 <= out["mip_gap"] <= 1e-3
    assert len(out["price"]) == 24


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["grid", "redispatch", "case14", "--outage", "line:3"], "expected branch:K or gen:J"),
        (["grid", "redispatch", "case14", "--outage", "branch:99"], "the case has 20 branches"),
        (["grid", "dispatch", "case14", "--security", "n-2"], "expected n-1"),
        (["grid", "commit", "case14", "--profile", "nope"], "neither a file nor a bundled profile"),
        (["grid", "commit", "case14", "--profile", "synthetic", "--step-minutes", "0"], "minutes"),
    ],
)
def test_bad_input_is_one_line(args: list[str], needle: str) -> None:
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]


def test_commit_bad_profile_names_the_line(tmp_path: Path) -> None:
    p = tmp_path / "p.csv"
    p.write_text("period,bus_id,load_mw\n0,1,5\n0,2,-1\n")
    res = runner.invoke(app, ["grid", "commit", "case14", "--profile", str(p)])
    assert res.exit_code == 2
    assert "line 3, field load_mw" in res.stderr
