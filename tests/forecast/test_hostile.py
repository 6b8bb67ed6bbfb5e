"""Hostile and edge inputs to ``aiguilleur forecast ...``: one line, exit 2, before any fitting.

And the statuses: a backtest that leaves hours without a forecast or an outcome
says ``partial`` and exits 1.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aiguilleur.cli import app
from aiguilleur.forecast import sample_series_path

runner = CliRunner()
SAMPLE = str(sample_series_path())
FAST = ["--trees", "10", "--calibration-days", "0"]


def run(*args: str) -> Any:
    return runner.invoke(app, ["forecast", *args])


def one_line_error(res: Any, *fragments: str) -> None:
    assert res.exit_code == 2, (res.exit_code, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    assert "Traceback" not in res.output
    assert "internal error" not in res.output


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("hostile")
    (d / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (d / "folder.csv").mkdir()
    (d / "empty.csv").write_text("")
    (d / "header.csv").write_text("Date,Hour,load,T\n")
    (d / "nested.json").write_text("[" * 50_000 + "]" * 50_000)
    (d / "list.json").write_text("[1, 2]")
    base = {"format": "aiguilleur.forecast.model", "format_version": 1}
    (d / "settings5.json").write_text(json.dumps({**base, "settings": 5}))
    (d / "extra.json").write_text(json.dumps({**base, "settings": {"bogus": 1}}))
    (d / "existing.json").write_text("{}")
    from aiguilleur.forecast import FEATURES

    naive = {
        **base,
        "settings": {"model": "seasonal_naive", "temperature": "none", "calibration_days": 0},
        "features": list(FEATURES["none"]),
        "target": "load",
        "temperature": None,
        "shifts": [0.0] * 5,
        "trained_until": "2014-03-01T00",
        "boosters": [],
    }
    (d / "naive.json").write_text(json.dumps(naive))
    (d / "a_file").write_text("x")
    os.mkfifo(d / "pipe")  # never a real device: a rename over it would replace it
    (d / "full").mkdir()
    (d / "full" / "x").write_text("x")
    lines = Path(SAMPLE).read_text().splitlines()
    (d / "big_token.csv").write_text("\n".join([*lines[:5], "2013-06-01,5," + "9" * 400 + ",1"]))
    wind = d / "wind"
    wind.mkdir()
    (wind / "windpowermeasurements.csv").write_text("date,wp1\n2009070100,0.1\n2009070101,0.2\n")
    (wind / "windforecasts_wf1.csv.gz").write_bytes(b"\x1f\x8b\x08\x00garbage" * 8)
    cut = d / "wind_cut"
    cut.mkdir()
    (cut / "windpowermeasurements.csv").write_text("date,wp1\n2009070100,0.1\n")
    z = gzip.compress(b"date,hors,u,v,ws,wd\n" + b"2009070100,1,1,1,1,1\n" * 1000)
    (cut / "windforecasts_wf1.csv.gz").write_bytes(z[: len(z) // 2])
    return d


CASES: list[tuple[str, list[str], tuple[str, ...]]] = [
    ("folder", ["backtest", "{d}/folder.csv"], ("is a folder",)),
    ("device", ["backtest", "/dev/zero"], ("not a regular file",)),
    ("binary", ["backtest", "{d}/binary.bin"], ("binary.bin:", "binary")),
    ("empty", ["backtest", "{d}/empty.csv"], ("empty file",)),
    ("header only", ["backtest", "{d}/header.csv"], ("no data rows",)),
    ("long token cut", ["backtest", "{d}/big_token.csv"], ("big_token.csv:6", "...")),
    ("bad start", ["backtest", SAMPLE, "--start", "yesterday"], ("start",)),
    ("bad refit", ["backtest", SAMPLE, "--refit", "hourly"], ("refit",)),
    ("bad model", ["backtest", SAMPLE, "--model", "xgb"], ("model",)),
    ("bad setting", ["backtest", SAMPLE, "--setting", "foo"], ("temperature mode",)),
    ("holidays", ["backtest", SAMPLE, "--holidays", "XX"], ("holidays",)),
    ("plots is a file", ["backtest", SAMPLE, "--plots", "{d}/a_file"], ("is a file",)),
    ("plots no parent", ["backtest", SAMPLE, "--plots", "{d}/nope/sub"], ("does not exist",)),
    ("plots not empty", ["backtest", SAMPLE, "--plots", "{d}/full"], ("--force",)),
    ("out no folder", ["fit", SAMPLE, "-o", "{d}/nope/m.json", *FAST], ("does not exist",)),
    ("out is a folder", ["fit", SAMPLE, "-o", "{d}/full", *FAST], ("is a folder",)),
    ("out exists", ["fit", SAMPLE, "-o", "{d}/existing.json", *FAST], ("--force",)),
    ("out pipe", ["fit", SAMPLE, "-o", "{d}/pipe", "--force", *FAST], ("not a regular file",)),
    ("model folder", ["predict", "{d}/folder.csv", SAMPLE], ("is a folder",)),
    ("model device", ["predict", "/dev/zero", SAMPLE], ("not a regular file",)),
    ("model binary", ["predict", "{d}/binary.bin", SAMPLE], ("binary",)),
    ("model nested", ["predict", "{d}/nested.json", SAMPLE], ("nested too deeply",)),
    ("model list", ["predict", "{d}/list.json", SAMPLE], ("not a saved aiguilleur forecaster",)),
    ("model field", ["predict", "{d}/settings5.json", SAMPLE], ("field 'settings'",)),
    ("model key", ["predict", "{d}/extra.json", SAMPLE], ("unknown key(s) bogus",)),
    (
        "issue year 99999",
        ["predict", "{d}/naive.json", SAMPLE, "--issue-time", "99999-01-01T12"],
        ("more than a week after the history ends",),
    ),
    (
        "issue not 12:00",
        ["predict", "{d}/naive.json", SAMPLE, "--issue-time", "2014-02-20T05"],
        ("issued at 12:00",),
    ),
    (
        "issue unreadable",
        ["predict", "{d}/naive.json", SAMPLE, "--issue-time", "tomorrow"],
        ("cannot read 'tomorrow'",),
    ),
    ("farms abc", ["wind", "{d}/wind", "--farms", "abc"], ("--farms", "'abc'")),
    ("farms empty", ["wind", "{d}/wind", "--farms", ","], ("--farms",)),
    ("farms twice", ["wind", "{d}/wind", "--farms", "1,1"], ("--farms", "twice")),
    ("farms zero", ["wind", "{d}/wind", "--farms", "0"], ("--farms",)),
    ("wind corrupt gzip", ["wind", "{d}/wind"], ("windforecasts_wf1.csv.gz", "gzip")),
    ("wind cut gzip", ["wind", "{d}/wind_cut"], ("truncated",)),
    ("wind not a folder", ["wind", SAMPLE], ("not a folder",)),
    ("wind no folder", ["wind", "{d}/nowhere"], ("no such folder",)),
    ("wind bad start", ["wind", "{d}/wind", "--test-start", "soon"], ("test_start",)),
]


@pytest.mark.parametrize(("args", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_input_is_one_line(fx: Path, args: list[str], fragments: tuple[str, ...]) -> None:
    res = run(*(a.replace("{d}", str(fx)) for a in args))
    one_line_error(res, *fragments)


def test_existing_file_is_not_replaced_without_force(fx: Path) -> None:
    run("fit", SAMPLE, "-o", str(fx / "existing.json"), *FAST)
    assert (fx / "existing.json").read_text() == "{}"


def test_gzip_bomb_is_refused(fx: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import aiguilleur.forecast.wind as wind

    monkeypatch.setattr(wind, "MAX_UNZIPPED_BYTES", 50_000)
    d = fx / "bomb"
    d.mkdir(exist_ok=True)
    (d / "windpowermeasurements.csv").write_text("date,wp1\n2009070100,0.1\n")
    (d / "windforecasts_wf1.csv.gz").write_bytes(gzip.compress(b"0" * 1_000_000))
    one_line_error(run("wind", str(d)), "decompresses to more than the 50,000 bytes")


def test_out_of_range_counts_are_refused() -> None:
    for args in (["--threads", "257"], ["--trees", "1000000"], ["--calibration-days", "-1"]):
        res = run("backtest", SAMPLE, *args)
        assert res.exit_code == 2, res.output
        assert "Traceback" not in res.output


def _gappy(tmp: Path) -> Path:
    lines = Path(SAMPLE).read_text().splitlines()
    out = [lines[0]]
    for i, line in enumerate(lines[1:]):
        cells = line.split(",")
        if 6000 < i < 6100:  # four days of February 2014 without load
            cells[2] = ""
        out.append(",".join(cells))
    p = tmp / "gappy.csv"
    p.write_text("\n".join(out) + "\n")
    return p


def test_backtest_with_missing_hours_is_partial_and_exits_1(tmp_path: Path) -> None:
    args = ["--model", "seasonal_naive", "--start", "2014-02-01", "--calibration-days", "0"]
    res = run("backtest", str(_gappy(tmp_path)), *args, "--json")
    assert res.exit_code == 1, (res.stdout, res.stderr)
    out = json.loads(res.stdout)
    assert out["status"] == "partial" and out["ok"] is False
    assert out["missing_outcome_hours"] > 0 and out["missing_forecast_hours"] > 0
    assert any("no forecast" in m for m in out["missing"])
    text = run("backtest", str(_gappy(tmp_path)), *args)
    assert text.exit_code == 1
    assert "status: partial" in text.stdout
    assert "no outcome" in text.stderr
    assert "nan" not in text.stdout.lower().replace("seasonal naive", "").replace("naive", "")


def test_complete_backtest_is_feasible_and_exits_0() -> None:
    args = ["--model", "seasonal_naive", "--start", "2014-02-01", "--calibration-days", "0"]
    res = run("backtest", SAMPLE, *args, "--json")
    assert res.exit_code == 0, (res.stdout, res.stderr)
    out = json.loads(res.stdout)
    assert out["status"] == "feasible" and out["ok"] is True and out["missing"] == []


def test_seasonal_naive_model_predicts_with_status(fx: Path) -> None:
    res = run("predict", str(fx / "naive.json"), SAMPLE, "--json")
    assert res.exit_code == 0, (res.stdout, res.stderr)
    out = json.loads(res.stdout)
    assert out["status"] == "feasible" and out["ok"] is True
    assert len(out["timestamp"]) == 24


def test_save_model_never_replaces_a_pipe_or_writes_into_a_missing_folder(fx: Path) -> None:
    from aiguilleur.errors import ValidationError
    from aiguilleur.forecast import load_model, save_model

    m = load_model(fx / "naive.json")
    with pytest.raises(ValidationError, match="not a regular file"):
        save_model(m, fx / "pipe")
    with pytest.raises(ValidationError, match="does not exist"):
        save_model(m, fx / "nope" / "m.json")
    assert (fx / "pipe").is_fifo()
