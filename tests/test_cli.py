"""The ``aiguilleur`` command line: its JSON contract, its errors and the demo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aiguilleur.cli import app
from aiguilleur.data import bundled_case_path

runner = CliRunner()

CASE14 = bundled_case_path("case14")


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


def run_json(*args: str, code: int = 0) -> dict[str, Any]:
    res = invoke(*args)
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


# -- grid info ----------------------------------------------------------------------------


def test_info_by_bundled_name() -> None:
    res = invoke("grid", "info", "case14")
    assert res.exit_code == 0, res.output
    assert "pglib_opf_case14_ieee" in res.stdout
    assert "259.0" in res.stdout  # total load, MW


def test_info_json_by_path() -> None:
    out = run_json("grid", "info", str(CASE14), "--json")
    assert out["buses"] == 14
    assert out["branches"] == 20
    assert out["generators"] == 5
    assert out["load_mw"] == pytest.approx(259.0)


# -- grid powerflow -----------------------------------------------------------------------

POWERFLOW_KEYS = {"converged", "iterations", "max_mismatch_pu", "vm_pu", "va_deg", "time_s"}


def test_powerflow_json_contract() -> None:
    out = run_json("grid", "powerflow", "case14", "--json")
    assert POWERFLOW_KEYS | {"pg_mw", "islands"} <= set(out)
    assert out["converged"] is True
    assert out["iterations"] >= 1
    assert out["max_mismatch_pu"] < 1e-6
    assert len(out["vm_pu"]) == 14
    assert len(out["va_deg"]) == 14
    assert len(out["pg_mw"]) == 5
    assert out["bus_id"] == list(range(1, 15))
    # bus 1 is the slack of case14: 1.06 pu in IEEE's data, 1.0 in PGLib's
    assert out["va_deg"][0] == 0.0
    assert all(0.9 < v < 1.1 for v in out["vm_pu"])
    assert len(out["islands"]) == 1
    assert out["operating_point"] == "stored set-points as in the case file"


def test_powerflow_dc_json() -> None:
    out = run_json("grid", "powerflow", "case14", "--dc", "--json")
    assert set(out) >= POWERFLOW_KEYS
    assert out["method"] == "dc"
    assert out["converged"] is True
    assert out["vm_pu"] == [1.0] * 14
    assert len(out["va_deg"]) == 14


def test_powerflow_options() -> None:
    out = run_json(
        "grid",
        "powerflow",
        "case14",
        "--enforce-q-limits",
        "--distributed-slack",
        "--scaled",
        "--json",
    )
    assert out["converged"] is True
    assert out["operating_point"] == "stored set-points scaled to the load"


def test_powerflow_human_output() -> None:
    res = invoke("grid", "powerflow", "case14")
    assert res.exit_code == 0, res.output
    assert "converged" in res.stdout
    assert "losses" in res.stdout


def test_powerflow_not_converged_exits_1(tmp_path: Path) -> None:
    # 30 times the load: no solution exists
    text = CASE14.read_text(encoding="utf-8")
    lines = text.split("\n")
    start = next(i for i, ln in enumerate(lines) if ln.startswith("mpc.bus ="))
    for i in range(start + 1, start + 15):
        cols = lines[i].split()
        cols[2] = str(float(cols[2]) * 30)
        lines[i] = "\t" + "\t".join(cols)
    bad = tmp_path / "heavy.m"
    bad.write_text("\n".join(lines), encoding="utf-8")
    out = run_json("grid", "powerflow", str(bad), "--json", code=1)
    assert out["converged"] is False
    assert len(out["vm_pu"]) == 14


# -- grid contingencies -------------------------------------------------------------------

N1_KEYS = {"contingencies", "secure", "overload", "islanding", "diverged", "time_s", "worst"}


def check_n1(out: dict[str, Any], n_branch: int = 20) -> None:
    assert N1_KEYS | {"rating", "operating_point"} <= set(out)
    counts = out["secure"] + out["overload"] + out["islanding"] + out["diverged"]
    assert counts == out["contingencies"]
    assert out["operating_point"] == "stored set-points scaled to the load"
    assert out["worst"], "no worst contingencies listed"
    for w in out["worst"]:
        assert {"branch", "max_loading_pct", "status", "overloaded"} <= set(w)
        assert w["status"] in ("secure", "overload", "islanding", "diverged")
        if w["kind"] == "branch":
            assert 1 <= w["branch"] <= n_branch
        else:
            assert w["branch"] is None
            assert w["generator"] >= 1
        assert all(1 <= j <= n_branch for j in w["overloaded"])
    loads = [w["max_loading_pct"] for w in out["worst"] if w["max_loading_pct"] is not None]
    assert loads == sorted(loads, reverse=True)


def test_contingencies_json_contract() -> None:
    out = run_json("grid", "contingencies", "case14", "--json")
    check_n1(out)
    assert out["contingencies"] == 20
    assert out["rating"] == "a"
    # case14 at the scaled dispatch: losing branch 1 (bus 1 - bus 2) overloads branch 2
    top = out["worst"][0]
    assert top["branch"] == 1
    assert top["status"] == "overload"
    assert top["overloaded"] == [2]


def test_contingencies_dc_only_generators_top() -> None:
    out = run_json(
        "grid",
        "contingencies",
        "case14",
        "--dc-only",
        "--generators",
        "--rating",
        "c",
        "--margin",
        "5",
        "--top",
        "0",
        "--json",
    )
    check_n1(out)
    assert out["contingencies"] == 25  # 20 branches, 5 generators
    assert out["rating"] == "c"
    assert out["method"] == "dc"
    assert len(out["worst"]) == 25
    assert sum(w["kind"] == "generator" for w in out["worst"]) == 5


def test_contingencies_human_output() -> None:
    res = invoke("grid", "contingencies", "case14", "--top", "3")
    assert res.exit_code == 0, res.output
    assert "operating point: stored set-points scaled to the load" in res.stdout
    assert "branch 1 (1-2)" in res.stdout


# -- bad input ----------------------------------------------------------------------------


def test_missing_file() -> None:
    res = invoke("grid", "info", "no/such/case.m")
    assert_one_line_error(res, "case.m", "no such file")


def test_missing_file_json_mode_prints_nothing_on_stdout() -> None:
    res = invoke("grid", "powerflow", "missing_case.m", "--json")
    assert_one_line_error(res, "missing_case.m")
    assert res.stdout == ""


def test_malformed_file_names_the_line(tmp_path: Path) -> None:
    lines = CASE14.read_text(encoding="utf-8").split("\n")
    start = next(i for i, ln in enumerate(lines) if ln.startswith("mpc.bus ="))
    lines[start + 2] = "\t2\t2\t21.7"  # a bus row with 3 of 13 columns
    bad = tmp_path / "bad.m"
    bad.write_text("\n".join(lines), encoding="utf-8")
    for cmd in (["grid", "info"], ["grid", "powerflow"], ["grid", "contingencies"]):
        res = invoke(*cmd, str(bad))
        assert_one_line_error(res, "bad.m", f":{start + 3}:")


def test_unknown_bundled_name() -> None:
    res = invoke("grid", "info", "case99999")
    assert_one_line_error(res, "case99999", "case14_ieee")


def test_bad_rating_is_a_usage_error() -> None:
    res = invoke("grid", "contingencies", "case14", "--rating", "z")
    assert res.exit_code != 0
    assert "Traceback" not in res.output
    assert_one_line_error(res, "rating")


def test_no_arguments_shows_help() -> None:
    res = invoke()
    assert "grid" in res.output
    assert "demo" in res.output


def test_interrupt_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    import aiguilleur.grid

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(aiguilleur.grid, "read_matpower", interrupted)
    res = invoke("grid", "info", "case14")
    assert res.exit_code == 130
    assert "Traceback" not in res.output


# -- demo ---------------------------------------------------------------------------------


SMALL_SCENARIO = """
name: small
start: 2026-01-15T05:00:00+01:00
world: {grid: {case: case118}}
policy: {auto_apply: [grid_corrective], operator_delay: 2m}
timeline:
  - {at: 10m, type: branch_trip, branch: "branch:32"}
  - {at: 1h, type: load_scale, factor: 1.02}
  - {at: 2h, type: branch_restore, branch: "branch:32"}
"""


def test_demo_command_on_a_small_scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import aiguilleur.ops.demo

    sc = tmp_path / "small.yaml"
    sc.write_text(SMALL_SCENARIO)
    real = aiguilleur.ops.demo.run_demo

    def small(out_dir: Path | None = None, progress: Any = None, force: bool = False) -> Any:
        return real(out_dir, progress, force=force, scenario=str(sc))

    monkeypatch.setattr(aiguilleur.ops.demo, "run_demo", small)
    out = tmp_path / "rep"
    res = invoke("demo", "--out", str(out))
    assert res.exit_code == 0, (res.stdout, res.stderr)
    assert "Replay of small" in res.stdout
    assert "branches above rating" in res.stdout
    assert (out / "index.html").is_file() and (out / "events.jsonl").is_file()
    # a second run into the same folder is refused, not silently replaced
    res = invoke("demo", "--out", str(out))
    assert res.exit_code == 2
    assert_one_line_error(res, "--force")
    res = invoke("demo", "--out", str(out), "--force", "--json")
    assert res.exit_code == 0
    assert json.loads(res.stdout)["scenario"] == "small"


def test_entry_point_error_in_a_real_process(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "aiguilleur.cli", "grid", "info", str(tmp_path / "none.m")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {tmp_path / 'none.m'}: no such file"]
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["grid", "contingencies", "case14", "--top", "abc"], "Invalid value for '--top'"),
        (["grid", "nope"], "No such command 'nope'"),
        (["grid", "info", "case14", "--no-such-option"], "No such option"),
    ],
)
def test_usage_errors_are_one_line_in_a_real_process(argv: list[str], says: str) -> None:
    # typer's framed usage box becomes one line naming the option, with where to look
    proc = subprocess.run(
        [sys.executable, "-m", "aiguilleur.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], proc.stderr
    assert "--help" in lines[0]
    assert proc.stdout == ""


@pytest.mark.slow
def test_demo_writes_the_report(tmp_path: Path) -> None:
    # A real process through the entry point, as `make demo` runs it.
    out = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "aiguilleur.cli", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    page = out / "index.html"
    assert page.is_file()
    text = page.read_text(encoding="utf-8")
    assert "<svg" in text and "case1888_rte" in text
    assert "PGLib-OPF v23.07, CC BY 4.0" in text
    assert "Replay of crisis" in proc.stdout
    assert str(page) in proc.stdout.replace("\n", "")
    for f in ("events.jsonl", "routes.geojson", "summary.json"):
        assert (out / f).is_file()
    assert not list(out.glob(".*.tmp"))


def test_opf_json_contract() -> None:
    out = run_json("grid", "opf", "case14", "--json")
    assert out["status"] == "optimal"
    # PGLib-OPF v23.07 reference DC objective for case14: 2.0515e+03 $/h
    assert out["objective"] == pytest.approx(2051.5, rel=1e-4)
    assert len(out["lmp"]) == 14 and len(out["pg_mw"]) == 5


def test_opf_bad_model_is_one_line() -> None:
    res = invoke("grid", "opf", "case14", "--model", "foo")
    assert res.exit_code == 2
    assert_one_line_error(res, "model")
