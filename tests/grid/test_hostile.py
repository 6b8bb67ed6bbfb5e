"""Hostile and edge inputs to the grid package and its commands: no silent wrong answer."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from aiguilleur.cli import app
from aiguilleur.data import bundled_case_path
from aiguilleur.grid import (
    Network,
    ac_power_flow,
    dc_power_flow,
    read_matpower,
    write_matpower,
)

runner = CliRunner()


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


def assert_one_line_error(res: Any, *fragments: str, code: int = 2) -> None:
    assert res.exit_code == code, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ")
    for f in fragments:
        assert f in lines[0], lines[0]
    assert "Traceback" not in res.output


@pytest.fixture(scope="module")
def case14() -> Network:
    return read_matpower(bundled_case_path("case14"))


def _append_row(tbl: Any, row: int, **changes: Any) -> Any:
    kw = {}
    for f in dataclasses.fields(tbl):
        a = getattr(tbl, f.name)
        if isinstance(a, np.ndarray) and a.ndim == 1:
            kw[f.name] = np.append(a, changes.get(f.name, a[row]))
    return dataclasses.replace(tbl, **kw)


def with_isolated_bus(net: Network, load_mw: float = 0.0) -> Network:
    """case14 plus bus 99 of type 4, tied to bus 5 by a branch in service."""
    bus = _append_row(net.bus, 4, bus_id=99, bus_type=4, pd_mw=load_mw, qd_mvar=0.0)
    br = _append_row(net.branch, 0, from_bus_id=5, to_bus_id=99)
    return net.replace(bus=bus, branch=br)


# -- 1. silent wrong power flows -----------------------------------------------------------


def test_isolated_bus_is_out_of_the_ac_power_flow(case14: Network) -> None:
    base = ac_power_flow(case14)
    res = ac_power_flow(with_isolated_bus(case14))
    assert base.ok and res.ok and res.status == "feasible"
    assert res.losses_mw == pytest.approx(base.losses_mw, abs=1e-6)
    np.testing.assert_allclose(res.vm_pu[:-1], base.vm_pu, atol=1e-9)
    np.testing.assert_allclose(res.p_from_mw[:-1], base.p_from_mw, atol=1e-6)
    assert res.p_from_mw[-1] == 0.0 and res.p_to_mw[-1] == 0.0 and res.vm_pu[-1] == 0.0


def test_isolated_bus_is_out_of_the_dc_power_flow(case14: Network) -> None:
    base = dc_power_flow(case14)
    res = dc_power_flow(with_isolated_bus(case14))
    np.testing.assert_allclose(res.p_mw[:-1], base.p_mw, atol=1e-9)
    assert res.p_mw[-1] == 0.0 and res.ok


def test_load_at_an_isolated_bus_is_unserved(case14: Network) -> None:
    res = ac_power_flow(with_isolated_bus(case14, load_mw=12.5))
    assert res.status == "partial" and not res.ok
    assert res.unserved_mw == pytest.approx(12.5)
    assert "12.5 MW" in res.message


@pytest.mark.parametrize("solver", [ac_power_flow, dc_power_flow])
def test_no_generator_in_service_is_not_success(case14: Network, solver: Any) -> None:
    res = solver(case14.with_gen_status(range(case14.n_gen), 0))
    assert not res.converged and not res.ok and res.status == "infeasible"
    assert res.unserved_mw == pytest.approx(float(np.sum(case14.bus.pd_mw)))
    assert "no island has a generator" in res.message


@pytest.mark.parametrize("solver", [ac_power_flow, dc_power_flow])
def test_every_branch_out_is_partial(case14: Network, solver: Any) -> None:
    res = solver(case14.with_branch_status(range(case14.n_branch), 0))
    dead = [i for i in res.islands if not i.energised]
    assert dead and res.status == "partial" and not res.ok
    assert res.unserved_mw == pytest.approx(sum(i.load_mw for i in dead))
    assert "unserved" in res.message


def test_cli_powerflow_without_generator_exits_1(case14: Network, tmp_path: Path) -> None:
    p = tmp_path / "nogen.m"
    write_matpower(case14.with_gen_status(range(case14.n_gen), 0), p)
    for extra in ([], ["--dc"]):
        res = invoke("grid", "powerflow", str(p), "--json", *extra)
        assert res.exit_code == 1, res.output
        out = json.loads(res.stdout)
        assert out["status"] == "infeasible" and out["ok"] is False
        assert out["converged"] is False and out["unserved_mw"] == pytest.approx(259.0)
    res = invoke("grid", "powerflow", str(p))
    assert res.exit_code == 1 and "infeasible" in res.stdout and "259.0 MW" in res.stdout


def test_cli_powerflow_isolated_bus_same_as_without(case14: Network, tmp_path: Path) -> None:
    p = tmp_path / "iso.m"
    write_matpower(with_isolated_bus(case14), p)
    a = json.loads(invoke("grid", "powerflow", "case14", "--json").stdout)
    res = invoke("grid", "powerflow", str(p), "--json")
    assert res.exit_code == 0, res.output
    b = json.loads(res.stdout)
    assert b["status"] == "feasible" and b["ok"] is True
    assert b["losses_mw"] == pytest.approx(a["losses_mw"], abs=1e-6)


INFEASIBLE_CASE = """function mpc = inf1
mpc.version = '2';
mpc.baseMVA = 100;
mpc.bus = [
1 3 0 0 0 0 1 1 0 135 1 1.1 0.9;
2 1 500 0 0 0 1 1 0 135 1 1.1 0.9;
];
mpc.gen = [
1 0 0 100 -100 1 100 1 100 0 0 0 0 0 0 0 0 0 0 0 0;
];
mpc.branch = [
1 2 0.01 0.1 0 0 0 0 0 0 1 -360 360;
];
mpc.gencost = [
2 0 0 3 0 10 0;
];
"""


@pytest.fixture
def infeasible_case(tmp_path: Path) -> str:
    p = tmp_path / "inf1.m"
    p.write_text(INFEASIBLE_CASE)
    return str(p)


@pytest.mark.parametrize(
    "args",
    [["grid", "opf"], ["grid", "opf", "--ac"], ["grid", "dispatch"]],
    ids=["dc-opf", "ac-opf", "dispatch"],
)
def test_infeasible_opf_exits_1_without_nan(infeasible_case: str, args: list[str]) -> None:
    res = invoke(*args, infeasible_case)
    assert res.exit_code == 1, res.output
    assert "nan" not in res.stdout.lower()
    assert "infeasible" in res.stdout
    js = invoke(*args, infeasible_case, "--json")
    assert js.exit_code == 1 and "infeasible" in json.loads(js.stdout)["status"]
