"""Fuzzing the forecast readers: any input gives a value or an AiguilleurError, quickly.

CSV series, GEFCom2012 wind folders (plain and gzip) and saved forecaster files.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiguilleur.errors import AiguilleurError
from aiguilleur.forecast import HourlySeries, load_model, read_series
from aiguilleur.forecast.wind import WindData, read_gefcom2012_wind

FUZZ = settings(
    max_examples=60,
    deadline=2000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Tokens a CSV cell may hold: good values, junk, edge numbers, odd timestamps.
_CELLS = st.sampled_from(
    [
        "", "1", "-1", "0", "1e308", "1e400", "nan", "inf", "-inf", "abc", "NA", " ", '"',
        "2014-01-01", "2014-01-01T00:00", "2014-01-01T01:30", "2014-11-02T01:00-04:00",
        "2014-01-01T00:00Z", "1", "24", "25", "0", "99999-01-01", "2014-02-30", "\x00",
        "é", "9" * 60, "2014-01-01T02", "2013-12-31T23",
    ]
)  # fmt: skip
_HEADERS = st.lists(
    st.sampled_from(["timestamp", "load", "T", "Date", "Hour", "time", "x", "load", ""]),
    min_size=1,
    max_size=5,
)


@st.composite
def _csv_text(draw: Any) -> str:
    head = draw(_HEADERS)
    rows = draw(st.lists(st.lists(_CELLS, min_size=0, max_size=len(head) + 1), max_size=30))
    return "\n".join([",".join(head), *(",".join(r) for r in rows)]) + "\n"


@st.composite
def _hourly_csv(draw: Any) -> str:
    """A mostly valid hourly file with a few cells spoiled."""
    n = draw(st.integers(1, 60))
    rows = [f"2014-01-{1 + h // 24:02d}T{h % 24:02d}:00,{1000 + h},{20 + h % 7}" for h in range(n)]
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, n - 1))
        cells = rows[i].split(",")
        cells[draw(st.integers(0, 2))] = draw(_CELLS)
        rows[i] = ",".join(cells)
    if draw(st.booleans()):
        i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        rows[i], rows[j] = rows[j], rows[i]
    return "timestamp,load,T\n" + "\n".join(rows) + "\n"


def _read(path: Path, temperature: str | None) -> None:
    try:
        s = read_series(path, "load", temperature)
    except AiguilleurError as e:
        assert "\n" not in str(e)
        return
    assert isinstance(s, HourlySeries)
    assert len(s) >= 1


@FUZZ
@given(text=st.one_of(_csv_text(), _hourly_csv(), st.text(max_size=300)))
def test_series_csv_text(tmp_path: Path, text: str) -> None:
    p = tmp_path / "s.csv"
    p.write_text(text, encoding="utf-8")
    _read(p, "T")
    _read(p, None)


@FUZZ
@given(data=st.binary(max_size=400))
def test_series_csv_bytes(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "s.csv"
    p.write_bytes(data)
    _read(p, None)


_MEASURE = "date,wp1\n" + "\n".join(
    f"2009070{1 + h // 24}{h % 24:02d},0.{h % 10}" for h in range(48)
)
_NWP = "date,hors,u,v,ws,wd\n" + "\n".join(
    f"2009070100,{k},1.0,-0.5,1.1,{10 * k}" for k in range(1, 49)
)


@st.composite
def _spoiled(draw: Any, text: str) -> str:
    lines = text.splitlines()
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        cells = lines[i].split(",")
        cells[draw(st.integers(0, len(cells) - 1))] = draw(_CELLS)
        lines[i] = ",".join(cells)
    if draw(st.booleans()):
        lines = lines[: draw(st.integers(0, len(lines)))]
    return "\n".join(lines) + "\n"


@FUZZ
@given(
    measure=st.one_of(_spoiled(_MEASURE), st.text(max_size=200)),
    nwp=st.one_of(_spoiled(_NWP), st.text(max_size=200)),
    how=st.sampled_from(["csv", "gz", "gz-cut", "gz-junk"]),
)
def test_wind_folder(tmp_path: Path, measure: str, nwp: str, how: str) -> None:
    d = tmp_path / "wind"
    d.mkdir(exist_ok=True)
    for f in d.iterdir():
        f.unlink()
    (d / "windpowermeasurements.csv").write_text(measure, encoding="utf-8")
    if how == "csv":
        (d / "windforecasts_wf1.csv").write_text(nwp, encoding="utf-8")
    else:
        z = gzip.compress(nwp.encode())
        if how == "gz-cut":
            z = z[: len(z) // 2]
        elif how == "gz-junk":
            z = z[:10] + b"\x00junk" + z[15:]
        (d / "windforecasts_wf1.csv.gz").write_bytes(z)
    try:
        w = read_gefcom2012_wind(d)
    except AiguilleurError as e:
        assert "\n" not in str(e)
        return
    assert isinstance(w, WindData)


def test_gzip_bomb_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import aiguilleur.forecast.wind as wind

    monkeypatch.setattr(wind, "MAX_UNZIPPED_BYTES", 100_000)
    d = tmp_path / "bomb"
    d.mkdir()
    (d / "windpowermeasurements.csv").write_text(_MEASURE)
    (d / "windforecasts_wf1.csv.gz").write_bytes(gzip.compress(b"0" * 2_000_000))
    with pytest.raises(AiguilleurError, match="decompresses to more than the 100,000 bytes"):
        read_gefcom2012_wind(d)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)

_MODEL_DOC: dict[str, Any] = {
    "format": "aiguilleur.forecast.model",
    "format_version": 1,
    "settings": {"model": "seasonal_naive", "temperature": "none", "calibration_days": 0},
    "features": [],
    "target": "load",
    "temperature": None,
    "shifts": [0.0, 0.0, 0.0, 0.0, 0.0],
    "trained_until": "2014-01-01T00",
    "boosters": [],
}


@FUZZ
@given(
    key=st.sampled_from([*_MODEL_DOC, "settings.quantiles", "settings.issue_hour", "settings.x"]),
    value=_JSON,
)
def test_saved_forecaster_fields(tmp_path: Path, key: str, value: Any) -> None:
    from aiguilleur.forecast import FEATURES

    doc = json.loads(json.dumps(_MODEL_DOC))
    doc["features"] = list(FEATURES["none"])
    if key.startswith("settings."):
        doc["settings"][key.split(".", 1)[1]] = value
    else:
        doc[key] = value
    p = tmp_path / "m.json"
    p.write_text(json.dumps(doc))
    try:
        load_model(p)
    except AiguilleurError as e:
        assert "\n" not in str(e)


@FUZZ
@given(data=st.one_of(st.binary(max_size=300), _JSON.map(lambda v: json.dumps(v).encode())))
def test_saved_forecaster_bytes(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "m.json"
    p.write_bytes(data)
    with pytest.raises(AiguilleurError):
        load_model(p)


def test_the_valid_seasonal_naive_document_loads(tmp_path: Path) -> None:
    # The fuzzed fields start from a document that loads: the fuzz does reach past the header.
    from aiguilleur.forecast import FEATURES

    doc = dict(_MODEL_DOC, features=list(FEATURES["none"]))
    p = tmp_path / "m.json"
    p.write_text(json.dumps(doc))
    m = load_model(p)
    assert m.settings.model == "seasonal_naive"
