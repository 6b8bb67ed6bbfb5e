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
from aiguilleur.errors import AiguilleurError, ValidationError
from aiguilleur.grid import (
    Network,
    ac_power_flow,
    apply_outage,
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


# -- 2. Python API input checks ------------------------------------------------------------

API_CALLS: list[tuple[str, Any, str]] = [
    (
        "apply_outage-float",
        lambda n: apply_outage(n, "branch", 1.5),
        "must be an integer",
    ),
    (
        "apply_outage-bool",
        lambda n: apply_outage(n, "branch", True),
        "must be an integer",
    ),
    (
        "apply_outage-range",
        lambda n: apply_outage(n, "gen", 99),
        "out of range",
    ),
    ("with_branch_status-no", lambda n: n.with_branch_status([1], "no"), "True/False or 1/0"),
    ("with_branch_status-2", lambda n: n.with_branch_status([1], 2), "True/False or 1/0"),
    ("with_branch_status-float", lambda n: n.with_branch_status([1.5], 0), "integers"),
    ("with_gen_status-str", lambda n: n.with_gen_status("a", 0), "integers"),
    ("with_dispatch-str", lambda n: n.with_dispatch("abc"), "numbers"),
    ("with_dispatch-nan", lambda n: n.with_dispatch([float("nan")] * 5), "finite"),
]


@pytest.mark.parametrize(("name", "call", "needle"), API_CALLS, ids=[c[0] for c in API_CALLS])
def test_network_level_calls_are_checked(
    case14: Network, name: str, call: Any, needle: str
) -> None:
    with pytest.raises(ValidationError, match=needle):
        call(case14)


def test_with_branch_status_accepts_what_it_always_did(case14: Network) -> None:
    for flag in (0, False, np.int64(0)):
        assert case14.with_branch_status([1], flag).branch.in_service[1] == 0
    assert case14.with_branch_status(range(3), True).branch.in_service[:3].tolist() == [1, 1, 1]
    assert case14.with_branch_status(np.array([2]), 0).branch.in_service[2] == 0


def _grid_api() -> list[tuple[str, Any]]:
    import aiguilleur.grid as g

    return [
        ("ac_power_flow", lambda: g.ac_power_flow("x")),  # type: ignore[arg-type]
        ("dc_power_flow", lambda: g.dc_power_flow(None)),  # type: ignore[arg-type]
        ("dc_opf", lambda: g.dc_opf("x")),  # type: ignore[arg-type]
        ("ac_opf", lambda: g.ac_opf("x")),  # type: ignore[arg-type]
        ("ptdf", lambda: g.ptdf("x")),  # type: ignore[arg-type]
        ("lodf", lambda: g.lodf(3)),  # type: ignore[arg-type]
        ("bridges", lambda: g.bridges([])),  # type: ignore[arg-type]
        ("DCModel.build", lambda: g.DCModel.build("x")),  # type: ignore[arg-type]
        ("read_matpower", lambda: g.read_matpower(123)),  # type: ignore[arg-type]
        ("read_matpower_string", lambda: g.read_matpower_string(b"x")),  # type: ignore[arg-type]
        ("write_matpower", lambda: g.write_matpower("x", "y.m")),  # type: ignore[arg-type]
        ("write_matpower_string", lambda: g.write_matpower_string(1)),  # type: ignore[arg-type]
        ("Redispatcher", lambda: g.Redispatcher("net")),  # type: ignore[arg-type]
        ("redispatch", lambda: g.redispatch("net", [])),  # type: ignore[arg-type]
        ("screen_n1", lambda: g.screen_n1("x")),  # type: ignore[arg-type]
        ("sced", lambda: g.sced("x")),  # type: ignore[arg-type]
        ("commit", lambda: g.commit("n", "p")),  # type: ignore[arg-type]
        ("estimate_state", lambda: g.estimate_state("n", "m")),  # type: ignore[arg-type]
        ("read_measurements", lambda: g.read_measurements(1)),  # type: ignore[arg-type]
        ("write_measurements", lambda: g.write_measurements("m", "x.csv")),  # type: ignore[arg-type]
        ("simulate_measurements", lambda: g.simulate_measurements("n", "pf")),  # type: ignore[arg-type]
        ("scaled_dispatch", lambda: g.scaled_dispatch("x")),  # type: ignore[arg-type]
        ("apply_outage", lambda: g.apply_outage("x", "branch", 1)),  # type: ignore[arg-type]
    ]


@pytest.mark.parametrize("k", range(23))
def test_public_functions_refuse_wrong_types(k: int) -> None:
    name, call = _grid_api()[k]
    with pytest.raises(ValidationError, match=name.split(".")[0]):
        call()


@pytest.mark.parametrize(
    "call",
    [
        lambda g, n: g.ac_power_flow(n, "x"),
        lambda g, n: g.dc_opf(n, {"rating": "a"}),
        lambda g, n: g.screen_n1(n, 3),
        lambda g, n: g.Redispatcher(n, "x"),
        lambda g, n: g.redispatch(n, 5),
        lambda g, n: g.redispatch(n, "branch:3"),
        lambda g, n: g.commit(n, "p"),
        lambda g, n: g.estimate_state(n, "m"),
        lambda g, n: g.scaled_dispatch(n, -5),
        lambda g, n: g.lodf(n, "m"),
    ],
)
def test_second_arguments_are_checked(case14: Network, call: Any) -> None:
    import aiguilleur.grid as g

    with pytest.raises(ValidationError):
        call(g, case14)


def test_every_public_function_is_covered() -> None:
    import inspect

    import aiguilleur.grid as g

    funcs = {n for n in g.__all__ if inspect.isfunction(getattr(g, n))}
    covered = {name for name, _ in _grid_api()}
    assert funcs <= covered | {"write_matpower_string"}, funcs - covered


# -- 3. case data checks and bounded readers -----------------------------------------------


def _case_with(tmp_path: Path, section: str, row: int, col: int, value: str) -> Path:
    """case14 with one field of one matrix row replaced."""
    lines = bundled_case_path("case14").read_text().split("\n")
    out, inside, k = [], False, -1
    for ln in lines:
        s = ln.strip()
        if s.startswith(f"mpc.{section} ="):
            inside, k = True, -1
        elif inside and s.startswith("];"):
            inside = False
        elif inside and s and not s.startswith("%"):
            k += 1
            if k == row:
                toks = s.rstrip(";").split()
                toks[col] = value
                ln = "\t" + "\t".join(toks) + ";"
        out.append(ln)
    p = tmp_path / f"{section}{row}_{col}.m"
    p.write_text("\n".join(out))
    return p


@pytest.mark.parametrize(
    ("section", "row", "col", "value", "needle"),
    [
        ("branch", 2, 5, "-10", "branch row 3 (2-3): rate_a_mva is negative"),
        ("branch", 2, 7, "-1", "rate_c_mva is negative"),
        ("gen", 1, 9, "500", "gen row 2 (bus 2): pmin 500 MW is above pmax"),
        ("bus", 3, 2, "1e308", "pd_mw = 1e+308 is out of range"),
        ("bus", 3, 2, "NaN", "pd_mw is NaN"),
        ("bus", 3, 1, "7", "bus type 7"),
        ("branch", 3, 0, "999", "from_bus_id 999"),
    ],
)
def test_bad_case_data_is_one_line(
    tmp_path: Path, section: str, row: int, col: int, value: str, needle: str
) -> None:
    p = _case_with(tmp_path, section, row, col, value)
    with pytest.raises(AiguilleurError) as e:
        # values a solver cannot use are read (and written back), refused when solved
        ac_power_flow(read_matpower(p))
    assert needle in str(e.value)
    for cmd in ("powerflow", "opf", "contingencies", "dispatch"):
        assert_one_line_error(invoke("grid", cmd, str(p)), needle, str(p))


def test_two_reference_buses_are_reported(tmp_path: Path) -> None:
    p = _case_with(tmp_path, "bus", 1, 1, "3")
    res = ac_power_flow(read_matpower(p))
    assert res.ok and res.islands[0].ref_bus_id == 1 and res.islands[0].other_ref_bus_ids == (2,)
    cli = invoke("grid", "powerflow", str(p))
    assert cli.exit_code == 0 and "bus 1 is the angle reference" in cli.stdout
    out = json.loads(invoke("grid", "powerflow", str(p), "--json").stdout)
    assert out["islands"][0]["other_ref_bus_ids"] == [2]


ONE_BUS = """function mpc = one
mpc.version = '2';
mpc.baseMVA = 100;
mpc.bus = [
1 3 50 0 0 0 1 1 0 135 1 1.1 0.9;
];
mpc.gen = [
1 50 0 100 -100 1 100 1 100 0 0 0 0 0 0 0 0 0 0 0 0;
];
mpc.branch = [
];
mpc.gencost = [
2 0 0 3 0 10 0;
];
"""


@pytest.mark.parametrize("extra", [[], ["--generators"], ["--dc-only"]])
def test_one_bus_case_in_contingencies(tmp_path: Path, extra: list[str]) -> None:
    p = tmp_path / "one.m"
    p.write_text(ONE_BUS)
    assert_one_line_error(
        invoke("grid", "contingencies", str(p), *extra), "needs at least two energised buses"
    )
    assert invoke("grid", "powerflow", str(p)).exit_code == 0


def _hostile_inputs(tmp_path: Path) -> dict[str, str]:
    binary = tmp_path / "bin.m"
    binary.write_bytes(b"\x00\xff\xfe" * 100)
    return {"dev": "/dev/zero", "folder": str(tmp_path), "binary": str(binary)}


@pytest.mark.parametrize("which", ["dev", "folder", "binary"])
def test_readers_refuse_devices_folders_binaries(tmp_path: Path, which: str) -> None:
    from aiguilleur.grid import read_measurements
    from aiguilleur.grid.acopf import ACOPFStart
    from aiguilleur.grid.commitment import read_profile, read_storage

    case14 = read_matpower(bundled_case_path("case14"))
    path = _hostile_inputs(tmp_path)[which]
    for call in (
        lambda: read_matpower(path),
        lambda: read_measurements(path),
        lambda: read_profile(path, case14),
        lambda: read_storage(path, case14),
        lambda: ACOPFStart.from_json(path),
    ):
        with pytest.raises(AiguilleurError) as e:
            call()
        assert "\n" not in str(e.value) and path in str(e.value)


def test_deeply_nested_start_file_is_one_line(tmp_path: Path) -> None:
    p = tmp_path / "deep.json"
    p.write_text("[" * 100_000 + "]" * 100_000)
    res = invoke("grid", "opf", "case14", "--ac", "--start", str(p))
    assert_one_line_error(res, str(p))


def test_error_never_echoes_a_whole_line(tmp_path: Path) -> None:
    p = tmp_path / "m.csv"
    p.write_text("id,kind,element,value,sigma\n" + "x" * 5000 + ",vm,bus:1,1.0,0.01,extra\n")
    m = tmp_path / "n.csv"
    m.write_text("id,kind,element,value,sigma\nm1,vm,bus:1," + "9" * 5000 + "x,0.01\n")
    for f in (p, m):
        res = invoke("grid", "estimate", "case14", "--measurements", str(f))
        assert_one_line_error(res, str(f))
        assert len(res.stderr) < 400
    prof = tmp_path / "prof.csv"
    prof.write_text("period,bus_id,load_mw\n0,1," + "7" * 3000 + "q\n")
    res = invoke("grid", "commit", "case14", "--profile", str(prof))
    assert_one_line_error(res, "load_mw")
    assert len(res.stderr) < 400


def test_huge_period_is_a_gap_not_a_huge_table(tmp_path: Path) -> None:
    prof = tmp_path / "prof.csv"
    prof.write_text("period,bus_id,load_mw\n0,1,10\n999999999999,1,10\n")
    assert_one_line_error(invoke("grid", "commit", "case14", "--profile", str(prof)), "period 1")


# -- 4. output paths -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["grid", "export", "case14", "{d}/a.xiidm"], "already exists; pass --force"),
        (["grid", "export", "case14", "{d}/a"], "already exists; pass --force"),
        (["grid", "export", "case14", "{d}/nodir/x.xiidm"], "does not exist"),
        (["grid", "export", "case14", "{d}"], "is a folder; give a file name"),
        (["grid", "export", "case14", "{d}", "--format", "CGMES"], "folder is not empty"),
        (["grid", "export", "case14", "{d}/a.xiidm", "--format", "CGMES"], "is a file"),
        (["grid", "import", "{d}/a.xiidm", "--out", "{d}/a.xiidm"], "already exists"),
        (["grid", "import", "{d}/a.xiidm", "--out", "{d}/nodir/m.m"], "does not exist"),
        (["grid", "import", "{d}/a.xiidm", "--out", "{d}"], "is a folder"),
        (["grid", "import", "/dev/zero"], "not a regular file"),
        (["grid", "import", "{d}/nothing.uct"], "no such file"),
    ],
)
def test_outputs_are_checked_before_the_work(tmp_path: Path, args: list[str], needle: str) -> None:
    existing = tmp_path / "a.xiidm"
    existing.write_text("keep me")
    res = invoke(*(a.format(d=tmp_path) for a in args))
    assert_one_line_error(res, needle)
    assert existing.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.xiidm"]  # no temporary left


def test_export_writes_once_and_replaces_with_force(tmp_path: Path) -> None:
    pytest.importorskip("pypowsybl")
    res = invoke("grid", "export", "case14", str(tmp_path / "g"))
    assert res.exit_code == 0, res.output
    target = tmp_path / "g.xiidm"
    assert f"written: {target}" in res.stdout and target.stat().st_size > 0
    assert invoke("grid", "export", "case14", str(target)).exit_code == 2
    assert invoke("grid", "export", "case14", str(target), "--force").exit_code == 0
    out = tmp_path / "back.m"
    assert invoke("grid", "import", str(target), "--out", str(out)).exit_code == 0
    assert read_matpower(out).n_bus == 14
    assert invoke("grid", "import", str(target), "--out", str(out)).exit_code == 2
    assert invoke("grid", "import", str(target), "--out", str(out), "--force").exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["back.m", "g.xiidm"]


# -- 6. hostile round through the commands -----------------------------------------------------


@pytest.fixture(scope="module")
def nogen_case(tmp_path_factory: pytest.TempPathFactory) -> str:
    net = read_matpower(bundled_case_path("case14"))
    p = tmp_path_factory.mktemp("nogen") / "nogen.m"
    write_matpower(net.with_gen_status(range(net.n_gen), 0), p)
    return str(p)


@pytest.mark.parametrize(
    "args",
    [
        ["grid", "redispatch", "{nogen}", "--outage", "branch:1"],
        ["grid", "commit", "{nogen}", "--profile", "synthetic", "--horizon", "2"],
        ["grid", "opf", "{nogen}", "--voll", "1000"],
        ["grid", "dispatch", "{nogen}", "--voll", "1000"],
    ],
)
def test_shedding_is_not_success(nogen_case: str, args: list[str]) -> None:
    args = [a.format(nogen=nogen_case) for a in args]
    res = invoke(*args)
    assert res.exit_code == 1, res.output
    assert "shed" in res.stdout
    out = json.loads(invoke(*args, "--json").stdout)
    assert out["ok"] is False


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["grid", "info", "/dev/zero"], "not a regular file"),
        (["grid", "info", "{d}"], "is a folder"),
        (["grid", "info", "{d}/nothing.m"], "no such file"),
        (["grid", "opf", "case14", "--ac", "--start", "/dev/zero"], "not a regular file"),
        (["grid", "opf", "case14", "--ac", "--start", "{d}"], "is a folder"),
        (["grid", "estimate", "case14", "--measurements", "/dev/zero"], "not a regular file"),
        (["grid", "estimate", "case14", "--measurements", "{d}"], "is a folder"),
        (["grid", "commit", "case14", "--profile", "/dev/zero"], "not a regular file"),
        (["grid", "commit", "case14", "--profile", "{d}"], "is a folder"),
        (["grid", "export", "/dev/zero", "{d}/new.xiidm"], "not a regular file"),
        (["grid", "opf", "case14", "--voll", "nan"], "voll"),
        (["grid", "redispatch", "case14", "--outage", "branch:3", "--minutes", "inf"], "minutes"),
        (["grid", "commit", "case14", "--profile", "synthetic", "--time-limit", "inf"], "time"),
        (["grid", "contingencies", "case14", "--margin", "nan"], "margin"),
        (["grid", "dispatch", "case14", "--security", "n-1", "--emergency-factor", "-1"], "emerg"),
    ],
)
def test_hostile_cli_inputs_are_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    res = invoke(*(a.format(d=tmp_path) for a in args))
    assert_one_line_error(res, needle)
    assert list(tmp_path.iterdir()) == []


def test_isolated_bus_agrees_with_pypower(case14: Network) -> None:
    """PYPOWER (its own ext2int drops type-4 buses and their branches) on the same case."""
    from pypower.api import ppoption, runpf

    net = with_isolated_bus(case14, load_mw=0.0)
    ppc = {
        "version": "2",
        "baseMVA": net.base_mva,
        "bus": np.array(net.bus.matrix()[:, :13], dtype=float),
        "gen": np.array(net.gen.matrix()[:, :21], dtype=float),
        "branch": np.array(net.branch.matrix()[:, :13], dtype=float),
    }
    res_pp, ok = runpf(ppc, ppoption(VERBOSE=0, OUT_ALL=0, PF_TOL=1e-10))
    assert ok
    ours = ac_power_flow(net)
    assert ours.ok
    live = np.asarray(net.bus.bus_type) != 4
    np.testing.assert_allclose(ours.vm_pu[live], res_pp["bus"][live, 7], atol=1e-6)
    va_ref = res_pp["bus"][live, 8]
    va = ours.va_deg[live]
    np.testing.assert_allclose(va - va[0], va_ref - va_ref[0], atol=1e-5)
    np.testing.assert_allclose(ours.p_from_mw[:-1], res_pp["branch"][:-1, 13], atol=1e-4)
    # PYPOWER takes the branch to the isolated bus out of service: no flow, as ours
    assert res_pp["branch"][-1, 13] == pytest.approx(0.0) and ours.p_from_mw[-1] == 0.0
