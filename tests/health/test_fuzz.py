"""Fuzzing the health readers: any input gives a value or an AiguilleurError, quickly.

C-MAPSS readings, RUL files and saved RUL models.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiguilleur import health
from aiguilleur.errors import AiguilleurError
from aiguilleur.health import RULOptions, Telemetry, read_cmapss, read_rul
from tests.health.conftest import sample_path

FUZZ = settings(
    max_examples=60,
    deadline=2000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_TOKENS = st.sampled_from(
    [
        "1",
        "2",
        "0",
        "-1",
        "1.5",
        "1e400",
        "nan",
        "inf",
        "abc",
        "0.0023",
        "518.67",
        "9" * 40,
        "\u0661",
    ]
)
_GOOD = sample_path("train").read_text().splitlines()[:40]


@st.composite
def _cmapss_text(draw: Any) -> str:
    lines = list(_GOOD[: draw(st.integers(0, len(_GOOD)))])
    for _ in range(draw(st.integers(0, 3))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        cells = lines[i].split()
        how = draw(st.sampled_from(["cell", "drop", "add", "swap"]))
        if how == "cell":
            cells[draw(st.integers(0, len(cells) - 1))] = draw(_TOKENS)
        elif how == "drop":
            cells = cells[:-1]
        elif how == "add":
            cells.append(draw(_TOKENS))
        else:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            continue
        lines[i] = " ".join(cells)
    return "\n".join(lines) + "\n"


@FUZZ
@given(text=st.one_of(_cmapss_text(), st.text(max_size=300)))
def test_cmapss_text(tmp_path: Path, text: str) -> None:
    p = tmp_path / "train.txt"
    p.write_text(text, encoding="utf-8")
    try:
        tel = read_cmapss(p)
    except AiguilleurError as e:
        assert "\n" not in str(e)
        return
    assert isinstance(tel, Telemetry)
    assert tel.n_readings >= 1


@FUZZ
@given(data=st.binary(max_size=400))
def test_cmapss_bytes(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "train.txt"
    p.write_bytes(data)
    with contextlib.suppress(AiguilleurError):
        read_cmapss(p)


@FUZZ
@given(
    lines=st.lists(st.one_of(_TOKENS, st.text(max_size=12)), max_size=12),
    n=st.one_of(st.none(), st.integers(0, 12)),
)
def test_rul_file(tmp_path: Path, lines: list[str], n: int | None) -> None:
    p = tmp_path / "RUL.txt"
    p.write_text("\n".join(lines), encoding="utf-8")
    try:
        out = read_rul(p, n)
    except AiguilleurError as e:
        assert "\n" not in str(e)
        return
    assert (out >= 0).all()
    assert n is None or out.size == n


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def saved_doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real saved model (two units, a tiny booster): the fuzz starts from a loadable file."""
    tel = read_cmapss(sample_path("train"))
    keep = tel.unit <= 3
    small = Telemetry(
        unit=tel.unit[keep],
        cycle=tel.cycle[keep],
        settings=tel.settings[keep],
        sensors=tel.sensors[keep],
        setting_names=tel.setting_names,
        sensor_names=tel.sensor_names,
    )
    opts = RULOptions(n_rounds=3, seeds=(0,), n_folds=2, min_data_in_leaf=20, n_bins=2)
    p = tmp_path_factory.mktemp("rul") / "m.json"
    health.save_model(health.fit(small, opts), p)
    health.load_model(p)  # it loads as it is
    doc: dict[str, Any] = json.loads(p.read_text())
    return doc


_KEYS = [
    "format", "version", "options", "setting_names", "sensor_names", "feature_names", "regimes",
    "index_weights", "shift_cycles", "calibration", "n_units", "boosters", "options.windows",
    "options.level", "options.x", "regimes.mean", "regimes.centroids", "calibration.levels",
    "calibration.residual_quantiles",
]  # fmt: skip


@FUZZ
@given(key=st.sampled_from(_KEYS), value=_JSON)
def test_saved_model_fields(
    tmp_path: Path, saved_doc: dict[str, Any], key: str, value: Any
) -> None:
    doc = json.loads(json.dumps(saved_doc))
    if "." in key:
        outer, inner = key.split(".", 1)
        doc[outer][inner] = value
    else:
        doc[key] = value
    p = tmp_path / "m.json"
    p.write_text(json.dumps(doc))
    try:
        health.load_model(p)
    except AiguilleurError as e:
        assert "\n" not in str(e)


@FUZZ
@given(data=st.one_of(st.binary(max_size=300), _JSON.map(lambda v: json.dumps(v).encode())))
def test_saved_model_bytes(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "m.json"
    p.write_bytes(data)
    with pytest.raises(AiguilleurError):
        health.load_model(p)
