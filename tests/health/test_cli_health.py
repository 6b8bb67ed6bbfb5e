"""``aiguilleur health backtest``: the JSON contract and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from aiguilleur.cli import app
from tests.health.conftest import sample_path

runner = CliRunner()


def _args(train: Path, test: Path, rul: Path) -> list[str]:
    return ["health", "backtest", "--train", str(train), "--test", str(test), "--rul", str(rul)]


def test_backtest_json_contract() -> None:
    res = runner.invoke(
        app, [*_args(sample_path("train"), sample_path("test"), sample_path("RUL")), "--json"]
    )
    assert res.exit_code == 0, (res.stdout, res.stderr)
    out = json.loads(res.stdout)
    assert {"rmse", "score", "units"} <= set(out)
    assert out["units"] == 10
    # 10 training engines only: far from the full-data figures. For scale, an oracle
    # predicting the mean of these units' true RULs gets 11.9; measured here 10.7.
    assert 0.0 < out["rmse"] < 16.0
    assert out["score"] > 0.0
    assert 0.0 <= out["coverage"] <= 1.0


def _one_line_error(res: Result, *fragments: str) -> None:
    assert res.exit_code == 2
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    for f in fragments:
        assert f in err[0]
    assert "Traceback" not in res.output


def test_backtest_bad_inputs(tmp_path: Path) -> None:
    train, test, rul = sample_path("train"), sample_path("test"), sample_path("RUL")
    _one_line_error(
        runner.invoke(app, _args(train, test, train)),
        "train_FD001_units1-10.txt:1:",
        "one non-negative integer",
    )
    short = tmp_path / "RUL.txt"
    short.write_text("10\n20\n")
    _one_line_error(runner.invoke(app, _args(train, test, short)), "expected 10 values")
    lines = test.read_text().splitlines()
    lines[4] = " ".join(lines[4].split()[:20])
    broken = tmp_path / "test.txt"
    broken.write_text("\n".join(lines) + "\n")
    _one_line_error(runner.invoke(app, _args(train, broken, rul)), "test.txt:5:", "26 columns")
    _one_line_error(runner.invoke(app, _args(tmp_path / "nope.txt", test, rul)), "no such file")


def test_backtest_fd002_sample() -> None:
    """Six operating conditions through the same command and defaults."""
    args = _args(
        sample_path("train", "FD002"), sample_path("test", "FD002"), sample_path("RUL", "FD002")
    )
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, (res.stdout, res.stderr)
    out = json.loads(res.stdout)
    assert out["units"] == 10
    # Predicting the mean of these ten true RULs gives 48.9 cycles.
    assert 0.0 < out["rmse"] < 35.0
