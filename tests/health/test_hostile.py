"""Hostile and edge inputs to ``aiguilleur health backtest``: one line, exit 2, before fitting.

And the status: test units with too few readings make the backtest ``partial`` (exit 1).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from aiguilleur import health
from aiguilleur.errors import ValidationError
from aiguilleur.health import RULOptions, Telemetry, read_cmapss
from tests.health.conftest import sample_path

runner = CliRunner()
TRAIN, TEST, RUL = (str(sample_path(n)) for n in ("train", "test", "RUL"))
TINY = RULOptions(n_rounds=5, seeds=(0,), n_folds=2, min_data_in_leaf=20, n_bins=2)


def run(train: str, test: str, rul: str, *extra: str) -> Any:
    from aiguilleur.cli import app

    args = ["health", "backtest", "--train", train, "--test", test, "--rul", rul, *extra]
    return runner.invoke(app, args)


def one_line_error(res: Any, *fragments: str) -> None:
    assert res.exit_code == 2, (res.exit_code, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    assert "Traceback" not in res.output and "internal error" not in res.output


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("hostile")
    good = Path(TRAIN).read_text().splitlines()
    (d / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (d / "folder.txt").mkdir()
    (d / "empty.txt").write_text("")
    (d / "25cols.txt").write_text("\n".join(" ".join(x.split()[:25]) for x in good[:5]))
    (d / "text.txt").write_text("\n".join([*good[:3], " ".join(["x"] * 26)]))
    (d / "nan.txt").write_text("\n".join([*good[:3], " ".join(["1", "4", *["nan"] * 24])]))
    (d / "huge.txt").write_text("\n".join([*good[:3], " ".join(["1", "4", *["1e400"] * 24])]))
    (d / "unit15.txt").write_text("\n".join([*good[:3], " ".join(["1.5", *good[3].split()[1:]])]))
    (d / "order.txt").write_text("\n".join([*good[:3], good[1]]))
    (d / "long.txt").write_text("1 " * 100_000)
    (d / "rul_neg.txt").write_text("-5\n" * 10)
    (d / "rul_9.txt").write_text("10\n" * 9)
    (d / "rul_big.txt").write_text("9" * 30 + "\n" * 10)
    (d / "rul_float.txt").write_text("10.5\n" * 10)
    return d


CASES: list[tuple[str, tuple[str, str, str], tuple[str, ...]]] = [
    ("missing", ("{d}/nope.txt", TEST, RUL), ("no such file",)),
    ("folder", ("{d}/folder.txt", TEST, RUL), ("is a folder",)),
    ("device", ("/dev/zero", TEST, RUL), ("not a regular file",)),
    ("binary", ("{d}/binary.bin", TEST, RUL), ("binary.bin:", "binary")),
    ("empty", ("{d}/empty.txt", TEST, RUL), ("no readings",)),
    ("25 columns", ("{d}/25cols.txt", TEST, RUL), ("25cols.txt:1", "got 25")),
    ("text", ("{d}/text.txt", TEST, RUL), ("text.txt:4", "not a number")),
    ("nan", ("{d}/nan.txt", TEST, RUL), ("nan.txt:4", "not a finite number")),
    ("1e400", ("{d}/huge.txt", TEST, RUL), ("huge.txt:4",)),
    ("unit 1.5", ("{d}/unit15.txt", TEST, RUL), ("unit15.txt:4", "unit")),
    ("out of order", ("{d}/order.txt", TEST, RUL), ("order.txt:4",)),
    ("long line", ("{d}/long.txt", TEST, RUL), ("got 100000",)),
    ("test device", (TRAIN, "/dev/zero", RUL), ("not a regular file",)),
    ("rul negative", (TRAIN, TEST, "{d}/rul_neg.txt"), ("rul_neg.txt:1", "'-5'")),
    ("rul count", (TRAIN, TEST, "{d}/rul_9.txt"), ("expected 10 values",)),
    ("rul huge", (TRAIN, TEST, "{d}/rul_big.txt"), ("too large",)),
    ("rul float", (TRAIN, TEST, "{d}/rul_float.txt"), ("'10.5'",)),
    ("rul device", (TRAIN, TEST, "/dev/zero"), ("not a regular file",)),
]


@pytest.mark.parametrize(("files", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_input_is_one_line(
    fx: Path, files: tuple[str, str, str], fragments: tuple[str, ...]
) -> None:
    res = run(*(f.replace("{d}", str(fx)) for f in files))
    one_line_error(res, *fragments)


def _short_test(tmp: Path) -> Path:
    """The bundled test file with unit 3 cut to its first 5 readings."""
    lines = Path(TEST).read_text().splitlines()
    keep = [x for x in lines if x.split()[0] != "3"]
    keep += [x for x in lines if x.split()[0] == "3"][:5]
    keep.sort(key=lambda x: (int(x.split()[0]), int(x.split()[1])))
    p = tmp / "short.txt"
    p.write_text("\n".join(keep) + "\n")
    return p


def test_units_with_too_few_readings_make_the_backtest_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = health.backtest

    def tiny(train: Telemetry, test: Telemetry, truth: Any, options: Any = None) -> Any:
        return real(train, test, truth, TINY)

    monkeypatch.setattr(health, "backtest", tiny)  # the CLI's model, fitted in a second
    short = str(_short_test(tmp_path))
    res = run(TRAIN, short, RUL, "--json")
    assert res.exit_code == 1, (res.stdout, res.stderr)
    out = json.loads(res.stdout)
    assert out["status"] == "partial" and out["ok"] is False
    assert out["short_units"] == [3]
    text = run(TRAIN, short, RUL)
    assert text.exit_code == 1
    assert "status: partial" in text.stdout and "3" in text.stderr
    full = run(TRAIN, TEST, RUL, "--json")
    assert full.exit_code == 0, full.output
    assert json.loads(full.stdout)["status"] == "feasible"


def _bad_telemetry() -> Telemetry:
    return Telemetry(
        unit=np.array(["a"]),
        cycle=np.array([1]),
        settings=np.ones((1, 1)),
        sensors=np.ones((1, 1)),
        setting_names=("a",),
        sensor_names=("b",),
    )


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: health.fit("train_FD001.txt"), "telemetry: expected Telemetry, got str"),
        (lambda: health.predict("m", "t"), "model: expected RULModel"),
        (lambda: health.read_cmapss(123), "path: expected a file name"),
        (lambda: health.failure_probability([], 24.0), "prediction: expected RULPrediction"),
        (lambda: health.fit_detector(None), "fleet: expected Telemetry"),
        (lambda: health.phm08_score("a", "b"), "expected arrays of numbers"),
        (lambda: health.save_model("m", "x.json"), "model: expected RULModel"),
        (_bad_telemetry, "unit: expected integers"),
    ],
)
def test_python_api_wrong_types(call: Any, fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment.replace("(", r"\(")):
        call()


def test_short_units_are_named_by_predict(tmp_path: Path) -> None:
    tel = read_cmapss(TRAIN)
    model = health.fit(tel, TINY)
    keep = (tel.unit != 2) | (tel.cycle <= 3)
    cut = Telemetry(
        unit=tel.unit[keep], cycle=tel.cycle[keep], settings=tel.settings[keep],
        sensors=tel.sensors[keep], setting_names=tel.setting_names, sensor_names=tel.sensor_names,
    )  # fmt: skip
    pred = health.predict(model, cut)
    assert pred.status == "partial" and not pred.ok
    assert pred.short_units == (2,)
    assert "fewer than 15 readings" in pred.missing()[0]
    assert health.predict(model, tel).ok
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with pytest.raises(ValidationError, match="not a regular file"):
        health.save_model(model, pipe)  # a rename over a device or pipe would replace it
    assert pipe.is_fifo()
