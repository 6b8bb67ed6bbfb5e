"""The HTML report: escaped, self-contained, written atomically."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from aiguilleur.ops.report import Bar, Table, write_html_report

NASTY = "<script>alert(\"x\")</script> & 'quoted'"
EXTERNAL = re.compile(r"""(?:src|href|xlink:href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


def write(path: Path, **kwargs: object) -> str:
    args: dict[str, object] = {
        "title": f"Report {NASTY}",
        "subtitle": NASTY,
        "headline": [(NASTY, NASTY), ("load", "59,110 MW")],
        "facts": [(NASTY, [NASTY, "plain line"])],
        "loading": {NASTY: np.array([10.0, 55.0, 99.0, 101.0, 250.0, np.nan])},
        "overloads": [Bar(NASTY, 150.0, 90.0), Bar("branch 2 (1-5)", 120.0, None)],
        "overloads_title": NASTY,
        "tables": [Table(NASTY, (NASTY, "x"), ((NASTY, 1.25), ("b", None)), note=NASTY)],
        "notes": [NASTY],
        "attribution": "Grid: PGLib-OPF v23.07 pglib_opf_case1888_rte, CC BY 4.0 "
        "(https://github.com/power-grid-lib/pglib-opf)",
    }
    args.update(kwargs)
    out = write_html_report(path, **args)  # type: ignore[arg-type]
    assert out == path
    return path.read_text(encoding="utf-8")


def test_text_is_escaped(tmp_path: Path) -> None:
    text = write(tmp_path / "r.html")
    assert "<script" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;quoted&#x27;" in text


def test_self_contained(tmp_path: Path) -> None:
    text = write(tmp_path / "r.html")
    assert not EXTERNAL.search(text)
    assert "<link" not in text
    assert "@import" not in text
    assert "<script" not in text
    # the only web address is the attribution's, as text
    for m in re.finditer(r"https?://", text):
        assert "power-grid-lib/pglib-opf" in text[m.start() : m.start() + 60]
    assert "Grid: PGLib-OPF v23.07 pglib_opf_case1888_rte, CC BY 4.0" in text
    assert text.count("<svg") == 2
    assert "<style>" in text


def test_charts_and_tables(tmp_path: Path) -> None:
    text = write(tmp_path / "r.html")
    assert "overloaded (&#8805; 100 %)" in text
    assert "log scale" in text
    assert "150 %" in text  # bar value
    assert '<td class="num">1.2</td>' in text or '<td class="num">1.3</td>' in text
    assert "&ndash;" in text  # None cell


def test_empty_inputs(tmp_path: Path) -> None:
    text = write(tmp_path / "r.html", overloads=[], tables=[Table("Nothing", ("a", "b"), ())])
    assert "No branch is overloaded." in text
    assert 'class="empty">none</td>' in text
    text = write(tmp_path / "r.html", overloads=[], loading={}, tables=[], headline=[], facts=[])
    assert "<svg" not in text


def test_atomic_write_creates_folder_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "index.html"
    write(path)
    assert path.is_file()
    assert sorted(p.name for p in path.parent.iterdir()) == ["index.html"]


def test_failed_write_keeps_previous_report(tmp_path: Path) -> None:
    path = tmp_path / "index.html"
    path.write_text("previous", encoding="utf-8")

    class Boom:
        def __str__(self) -> str:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write(path, title=Boom())
    assert path.read_text(encoding="utf-8") == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.html"]
