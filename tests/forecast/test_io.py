"""Reading hourly series: time axis, gaps, and every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aiguilleur.errors import CaseFormatError, ValidationError
from aiguilleur.forecast import HourlySeries, read_series, sample_series, sample_series_path


def write(tmp_path: Path, text: str, name: str = "s.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def hourly_csv(n: int = 48, start: str = "2014-01-01 00:00") -> str:
    t = pd.date_range(start, periods=n, freq="h")
    rows = [f"{x:%Y-%m-%d %H:%M},{1000 + i},{30 + i % 5}" for i, x in enumerate(t)]
    return "timestamp,load,T\n" + "\n".join(rows) + "\n"


def test_sample_reads_as_gefcom_hour_ending() -> None:
    s = sample_series()
    raw = pd.read_csv(sample_series_path())
    assert len(s) == len(raw) == 6552
    # Hour = 1 is 00:00-01:00: the first stamp is midnight, the last 23:00.
    assert s.time[0] == np.datetime64("2013-06-01T00")
    assert s.time[-1] == np.datetime64("2014-02-28T23")
    assert s.gaps == ()
    np.testing.assert_array_equal(s.target, raw["load"].to_numpy())
    assert s.temperature is not None
    np.testing.assert_array_equal(s.temperature, raw["T"].to_numpy())


def test_timestamps_with_utc_offsets_become_one_fixed_offset_clock(tmp_path: Path) -> None:
    # US Eastern autumn change: 01:00 happens twice, once at -04:00 and once at -05:00.
    stamps = [
        "2014-11-02T00:00-04:00",
        "2014-11-02T01:00-04:00",
        "2014-11-02T01:00-05:00",
        "2014-11-02T02:00-05:00",
    ]
    text = "timestamp,load\n" + "\n".join(f"{t},{i}" for i, t in enumerate(stamps)) + "\n"
    s = read_series(write(tmp_path, text), "load")
    assert len(s) == 4 and s.gaps == ()
    # Fixed offset of the first row (-04:00): no repeat, no shift.
    assert list(s.time.astype(str)) == [
        "2014-11-02T00",
        "2014-11-02T01",
        "2014-11-02T02",
        "2014-11-02T03",
    ]
    np.testing.assert_array_equal(s.target, [0, 1, 2, 3])


def test_naive_dst_repeat_is_an_error_that_says_so(tmp_path: Path) -> None:
    text = "timestamp,load\n2014-11-02 00:00,1\n2014-11-02 01:00,2\n2014-11-02 01:00,3\n"
    with pytest.raises(CaseFormatError, match="daylight-saving") as e:
        read_series(write(tmp_path, text), "load")
    assert e.value.line == 4


def test_naive_dst_hole_is_an_error_that_says_so(tmp_path: Path) -> None:
    text = "timestamp,load\n2014-03-09 00:00,1\n2014-03-09 01:00,2\n2014-03-09 03:00,3\n"
    with pytest.raises(CaseFormatError, match="daylight-saving"):
        read_series(write(tmp_path, text), "load")


def test_duplicated_timestamp_names_the_line(tmp_path: Path) -> None:
    lines = hourly_csv(10).splitlines()
    lines.insert(6, lines[5])  # line 6 of the file repeated as line 7
    with pytest.raises(CaseFormatError, match="duplicated timestamp") as e:
        read_series(write(tmp_path, "\n".join(lines) + "\n"), "load", "T")
    assert e.value.line == 7
    assert "s.csv:7:" in str(e.value)


def test_unsorted_timestamps_name_the_line(tmp_path: Path) -> None:
    lines = hourly_csv(10).splitlines()
    lines[4], lines[5] = lines[5], lines[4]
    with pytest.raises(CaseFormatError, match="out of order") as e:
        read_series(write(tmp_path, "\n".join(lines) + "\n"), "load", "T")
    assert e.value.line == 6  # 02:00 then 04:00 then 03:00: line 6 goes back


def test_missing_column_is_named(tmp_path: Path) -> None:
    with pytest.raises(CaseFormatError, match="no column 'temp'"):
        read_series(write(tmp_path, hourly_csv()), "load", "temp")
    with pytest.raises(CaseFormatError, match="no column 'demand'"):
        read_series(write(tmp_path, hourly_csv()), "demand")


def test_unreadable_number_and_off_hour_stamp_name_the_line(tmp_path: Path) -> None:
    lines = hourly_csv(6).splitlines()
    lines[3] = lines[3].replace(",1002,", ",12x,")
    with pytest.raises(CaseFormatError, match="'12x'") as e:
        read_series(write(tmp_path, "\n".join(lines) + "\n"), "load", "T")
    assert e.value.line == 4
    lines = hourly_csv(6).splitlines()
    lines[2] = lines[2].replace(":00,", ":30,", 1)
    with pytest.raises(CaseFormatError, match="not on the hour") as e:
        read_series(write(tmp_path, "\n".join(lines) + "\n", "b.csv"), "load", "T")
    assert e.value.line == 3


def test_gaps_are_reported_and_kept_missing_unless_imputed(tmp_path: Path) -> None:
    lines = hourly_csv(48).splitlines()
    del lines[11:14]  # hours 10, 11, 12 missing (rows 11..13 of data)
    lines[30] = lines[30].rsplit(",", 1)[0] + ","  # one empty temperature cell
    p = write(tmp_path, "\n".join(lines) + "\n")
    s = read_series(p, "load", "T")
    assert len(s) == 48  # the axis keeps every hour: nothing after the gap moves
    assert s.time[12] == np.datetime64("2014-01-01T12")
    assert s.target[13] == 1013  # the value of 13:00 stays at 13:00
    assert np.isnan(s.target[10:13]).all()
    gaps = {(g.column, str(g.start), g.hours) for g in s.gaps}
    assert ("load", "2014-01-01T10", 3) in gaps
    assert ("T", "2014-01-01T10", 3) in gaps
    assert any(g.column == "T" and g.hours == 1 for g in s.gaps)
    filled = read_series(p, "load", "T", impute=True)
    assert filled.gaps == () and filled.imputed_hours == 3 + 3 + 1
    np.testing.assert_allclose(filled.target[10:13], [1010, 1011, 1012])


def test_hourly_series_refuses_an_irregular_axis() -> None:
    t = np.array(["2014-01-01T00", "2014-01-01T01", "2014-01-01T03"], dtype="datetime64[h]")
    with pytest.raises(ValidationError, match="row 2"):
        HourlySeries(time=t, target=np.zeros(3))


def test_not_a_file_and_no_time_column(tmp_path: Path) -> None:
    with pytest.raises(CaseFormatError, match="no such file"):
        read_series(tmp_path / "absent.csv")
    with pytest.raises(CaseFormatError, match="no time column"):
        read_series(write(tmp_path, "a,load\n1,2\n"), "load")
