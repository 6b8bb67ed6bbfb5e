"""The C-MAPSS reader and the Telemetry value: shapes, round trips, bad input named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiguilleur.errors import CaseFormatError, ValidationError
from aiguilleur.health import Telemetry, read_cmapss, read_rul
from tests.health.conftest import sample_path


def test_sample_shapes(sample_train: Telemetry, sample_test: Telemetry) -> None:
    assert sample_train.n_readings == 2136
    assert sample_train.sensors.shape == (2136, 21)
    assert sample_train.settings.shape == (2136, 3)
    assert sample_train.units.tolist() == list(range(1, 11))
    assert sample_test.units.tolist() == list(range(1, 11))
    # Cross-check with pandas' own whitespace parser.
    ref = pd.read_csv(sample_path("train"), sep=r"\s+", header=None)
    np.testing.assert_array_equal(sample_train.unit, ref[0].to_numpy())
    np.testing.assert_array_equal(sample_train.cycle, ref[1].to_numpy())
    np.testing.assert_allclose(sample_train.sensors, ref.iloc[:, 5:].to_numpy())
    assert sample_train.gaps() == []


def test_rul_file(sample_rul: np.ndarray) -> None:
    assert sample_rul.tolist() == [112, 98, 69, 82, 91, 93, 91, 95, 111, 96]


def _write(tmp_path: Path, lines: list[str]) -> Path:
    p = tmp_path / "t.txt"
    p.write_text("\n".join(lines) + "\n")
    return p


def _sample_lines(n: int = 6) -> list[str]:
    return sample_path("train").read_text().splitlines()[:n]


def test_wrong_column_count_names_the_line(tmp_path: Path) -> None:
    lines = _sample_lines()
    lines[3] = " ".join(lines[3].split()[:-1])
    with pytest.raises(CaseFormatError, match=r"t\.txt:4: expected 26 columns .* got 25"):
        read_cmapss(_write(tmp_path, lines))


def test_not_a_number_names_the_line(tmp_path: Path) -> None:
    lines = _sample_lines()
    fields = lines[2].split()
    fields[7] = "abc"
    lines[2] = " ".join(fields)
    with pytest.raises(CaseFormatError, match=r"t\.txt:3: not a number: 'abc'"):
        read_cmapss(_write(tmp_path, lines))


def test_cycles_out_of_order_name_the_line(tmp_path: Path) -> None:
    lines = _sample_lines()
    lines[2], lines[3] = lines[3], lines[2]
    with pytest.raises(CaseFormatError, match=r"t\.txt:4: unit 1: cycle 3 goes back from cycle 4"):
        read_cmapss(_write(tmp_path, lines))


def test_duplicated_cycle_names_the_line(tmp_path: Path) -> None:
    lines = _sample_lines()
    lines.insert(3, lines[2])
    with pytest.raises(CaseFormatError, match=r"t\.txt:4: unit 1: cycle 3 repeats"):
        read_cmapss(_write(tmp_path, lines))


def test_unit_resuming_later_is_an_error(tmp_path: Path) -> None:
    text = sample_path("train").read_text().splitlines()
    u1 = [ln for ln in text if ln.split()[0] == "1"]
    u2 = [ln for ln in text if ln.split()[0] == "2"]
    lines = u1[:5] + u2[:3] + u1[5:7]
    with pytest.raises(CaseFormatError, match=r"t\.txt:9: unit 1: readings resume"):
        read_cmapss(_write(tmp_path, lines))


def test_fractional_cycle_and_missing_file(tmp_path: Path) -> None:
    lines = _sample_lines()
    fields = lines[1].split()
    fields[1] = "2.5"
    lines[1] = " ".join(fields)
    with pytest.raises(CaseFormatError, match=r"t\.txt:2: cycle: expected an integer"):
        read_cmapss(_write(tmp_path, lines))
    with pytest.raises(CaseFormatError, match="no such file"):
        read_cmapss(tmp_path / "absent.txt")
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(CaseFormatError, match="no readings"):
        read_cmapss(tmp_path / "empty.txt")


def test_rul_file_errors(tmp_path: Path) -> None:
    p = tmp_path / "RUL.txt"
    p.write_text("12\n-3\n")
    with pytest.raises(CaseFormatError, match=r"RUL\.txt:2: expected one non-negative integer"):
        read_rul(p)
    p.write_text("12\n30\n")
    with pytest.raises(CaseFormatError, match="expected 3 values"):
        read_rul(p, 3)


def test_gaps_reported_not_filled() -> None:
    tel = Telemetry(
        unit=np.array([1, 1, 1, 2, 2]),
        cycle=np.array([1, 2, 5, 1, 3]),
        settings=np.zeros((5, 0)),
        sensors=np.arange(5.0)[:, None],
        setting_names=(),
        sensor_names=("x",),
    )
    gaps = tel.gaps()
    assert [(g.unit, g.after_cycle, g.missing_cycles) for g in gaps] == [(1, 2, 2), (2, 1, 1)]
    assert tel.n_readings == 5  # nothing imputed


def test_from_frame_missing_column_and_sort() -> None:
    df = pd.DataFrame({"unit": [1, 1, 2], "cycle": [2, 1, 1], "a": [0.0, 1.0, 2.0]})
    with pytest.raises(ValidationError, match=r"missing column.*: b"):
        Telemetry.from_frame(df, sensors=["a", "b"])
    with pytest.raises(ValidationError, match="unit 1: cycle 1 at row 1 goes back"):
        Telemetry.from_frame(df, sensors=["a"])
    tel = Telemetry.from_frame(df, sensors=["a"], sort=True)
    assert tel.cycle.tolist() == [1, 2, 1]
    assert tel.sensors[:, 0].tolist() == [1.0, 0.0, 2.0]


def test_value_is_frozen_and_copies_input() -> None:
    x = np.zeros((2, 1))
    tel = Telemetry(np.array([1, 1]), np.array([1, 2]), np.zeros((2, 0)), x, (), ("x",))
    x[0, 0] = 5.0
    assert tel.sensors[0, 0] == 0.0
    with pytest.raises(ValueError):
        tel.sensors[0, 0] = 1.0


@st.composite
def _fleets(draw: st.DrawFn) -> pd.DataFrame:
    n_units = draw(st.integers(1, 4))
    rows = []
    for u in range(n_units):
        cycles = draw(st.lists(st.integers(1, 50), min_size=1, max_size=8, unique=True))
        for c in sorted(cycles):
            rows.append((u + 1, c, draw(st.floats(-1e3, 1e3)), draw(st.floats(-1e3, 1e3))))
    return pd.DataFrame(rows, columns=["unit", "cycle", "op", "s"])


@settings(max_examples=40, deadline=None)
@given(_fleets())
def test_frame_round_trip(df: pd.DataFrame) -> None:
    tel = Telemetry.from_frame(df, sensors=["s"], settings=["op"])
    back = tel.to_frame()
    pd.testing.assert_frame_equal(back, df.reset_index(drop=True), check_dtype=False)
    # Shuffling rows is noticed unless sorting is asked for, and sorting restores the order.
    shuffled = df.sample(frac=1.0, random_state=1)
    again = Telemetry.from_frame(shuffled, sensors=["s"], settings=["op"], sort=True)
    np.testing.assert_array_equal(again.unit, tel.unit)
    np.testing.assert_array_equal(again.cycle, tel.cycle)
