"""The shipped operating point of case1888: what the AC-OPF gives, used only where it applies."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from aiguilleur.ops.world import grid_world, load_case_source, shipped_operating_point

AT = datetime(2026, 1, 15, tzinfo=UTC)


def test_shipped_point_is_the_ac_opf_and_holds_in_pandapower() -> None:
    shipped = grid_world("case1888", at=AT, screen=False)
    assert shipped.operating_point["shipped"] is True
    assert "shipped" in shipped.operating_point["method"]
    assert shipped.operating_point["base_case"]["ok"]
    # the file is what the AC-OPF gives today (a stale file would differ)
    solved = grid_world("case1888", at=AT, screen=False, shipped=False)
    assert "shipped" not in solved.operating_point
    for key in ("pg_mw", "vg_pu", "qg_mvar"):
        np.testing.assert_allclose(getattr(shipped, key), getattr(solved, key), atol=1e-3)
    # and it keeps the margin it was solved for (the AC power flow of aiguilleur.grid;
    # pandapower's Newton-Raphson does not converge on case1888 through to_pandapower)
    assert shipped.operating_point["base_case"]["max_loading_pct"] <= 95.5
    assert shipped.operating_point["base_case"]["voltage_violations"] == 0


def test_shipped_point_only_for_its_case_file_and_margin() -> None:
    name, sha = load_case_source("case1888")[:2]
    assert shipped_operating_point(name, sha, 5.0) is not None
    assert shipped_operating_point(name, "0" * 64, 5.0) is None  # another version of the file
    assert shipped_operating_point(name, sha, 7.0) is None
    assert shipped_operating_point("case118_ieee", sha, 5.0) is None
