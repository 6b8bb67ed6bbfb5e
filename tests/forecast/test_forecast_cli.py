"""``aiguilleur forecast ...``: the JSON contract and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aiguilleur.cli import app
from aiguilleur.forecast import sample_series_path

from ._util import GEFCOM_E, requires_gefcom

runner = CliRunner()
SAMPLE = str(sample_series_path())


def run(*args: str) -> Any:
    return runner.invoke(app, ["forecast", *args])


def one_line_error(res: Any, *fragments: str) -> None:
    assert res.exit_code == 2, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for f in fragments:
        assert f in lines[0]
    assert "Traceback" not in res.output


def test_backtest_json_contract(tmp_path: Path) -> None:
    res = run(
        "backtest", SAMPLE, "--target", "load", "--temperature", "T",
        "--start", "2014-02-15", "--end", "2014-02-28", "--refit", "once",
        "--calibration-days", "30", "--trees", "100", "--plots", str(tmp_path), "--json",
    )  # fmt: skip
    assert res.exit_code == 0, (res.stdout, res.stderr)
    out = json.loads(res.stdout)
    for key in ("mape", "baseline_mape", "rmse", "pinball", "coverage_80", "coverage_90"):
        assert isinstance(out[key], float), key
    assert 0 < out["mape"] < out["baseline_mape"] < 20  # percent
    assert 0 <= out["coverage_80"] <= out["coverage_90"] <= 1  # fractions
    assert out["temperature"] == "ex-ante" and out["days"] == 14
    assert (tmp_path / "fan_chart.svg").is_file() and (tmp_path / "error_by_hour.svg").is_file()


def test_backtest_table() -> None:
    res = run(
        "backtest", SAMPLE, "--temperature", "T", "--start", "2014-02-22",
        "--end", "2014-02-28", "--refit", "once", "--calibration-days", "14", "--trees", "100",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert "seasonal naive" in res.stdout and "MAPE" in res.stdout


def test_fit_then_predict(tmp_path: Path) -> None:
    m = tmp_path / "model.json"
    res = run(
        "fit",
        SAMPLE,
        "--temperature",
        "T",
        "--out",
        str(m),
        "--calibration-days",
        "20",
        "--trees",
        "100",
    )
    assert res.exit_code == 0, res.stderr
    res = run("predict", str(m), SAMPLE, "--issue-time", "2014-02-27T12", "--json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["timestamp"][0].startswith("2014-02-28 00:00")
    assert len(out["values"]) == 24 and len(out["values"][0]) == 5


def test_errors_are_one_line(tmp_path: Path) -> None:
    one_line_error(run("backtest", SAMPLE, "--temperature", "temp"), "no column 'temp'")
    one_line_error(run("backtest", str(tmp_path / "absent.csv")), "no such file")
    bad = tmp_path / "dup.csv"
    bad.write_text("timestamp,load\n2014-01-01 00:00,1\n2014-01-01 01:00,2\n2014-01-01 01:00,3\n")
    one_line_error(run("backtest", str(bad)), "dup.csv:4", "duplicated")
    one_line_error(run("backtest", SAMPLE, "--temperature", "T"), "no full calendar year")
    one_line_error(run("backtest", SAMPLE, "--refit", "hourly"), "refit")
    (tmp_path / "m.json").write_text("{}")
    one_line_error(run("predict", str(tmp_path / "m.json"), SAMPLE), "not a saved")


def test_gaps_are_reported_on_stderr(tmp_path: Path) -> None:
    lines = Path(SAMPLE).read_text().splitlines()
    del lines[5000:5003]
    p = tmp_path / "gappy.csv"
    p.write_text("\n".join(lines) + "\n")
    res = run(
        "backtest", str(p), "--temperature", "T", "--start", "2014-02-22",
        "--end", "2014-02-28", "--refit", "once", "--calibration-days", "14", "--trees", "100",
        "--json",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert "gap" in res.stderr and "--impute" in res.stderr
    json.loads(res.stdout)


@pytest.mark.slow
@requires_gefcom
def test_backtest_default_protocol_on_gefcom_runs_a_month() -> None:
    res = run(
        "backtest", str(GEFCOM_E), "--target", "load", "--temperature", "T",
        "--start", "2014-03-01", "--end", "2014-03-31", "--refit", "once", "--trees", "300",
        "--json",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["mape"] < 4.0 < out["baseline_mape"]
