"""MATPOWER v2 reader and writer: round trips, bad files and random corruptions."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiguilleur.data import bundled_case_path, bundled_cases
from aiguilleur.errors import CaseFormatError, ValidationError
from aiguilleur.grid.matpower import (
    read_matpower,
    read_matpower_string,
    write_matpower,
    write_matpower_string,
)
from aiguilleur.grid.network import BranchTable, BusTable, GenCostTable, GenTable, Network
from tests.conftest import shared_case_params

CASE14 = bundled_case_path("case14")
CASE14_TEXT = CASE14.read_text(encoding="utf-8")
CASE14_LINES = CASE14_TEXT.split("\n")

# Line numbers (1-based) in pglib_opf_case14_ieee.m.
VERSION_LINE = 25
BUS_OPEN, BUS_ROWS = 30, range(31, 45)
GEN_ROWS = range(50, 55)
GENCOST_ROWS = range(60, 65)
BRANCH_OPEN, BRANCH_ROWS, BRANCH_CLOSE = 69, range(70, 90), 90


def test_case14_layout() -> None:
    # The line numbers above are what the bad-file tests rely on.
    assert CASE14_LINES[VERSION_LINE - 1] == "mpc.version = '2';"
    assert CASE14_LINES[BUS_OPEN - 1] == "mpc.bus = ["
    assert CASE14_LINES[BRANCH_OPEN - 1] == "mpc.branch = ["
    assert CASE14_LINES[BRANCH_CLOSE - 1] == "];"
    net = read_matpower(CASE14)
    assert (net.n_bus, net.n_gen, net.n_branch) == (len(BUS_ROWS), len(GEN_ROWS), 20)
    assert net.name == "pglib_opf_case14_ieee"
    assert net.base_mva == 100.0
    assert net.gencost is not None and len(net.gencost) == len(GENCOST_ROWS)
    assert net.header.startswith("%%%%") and "Christie" in net.header


# -- round trips ----------------------------------------------------------------------


def assert_identical(a: Network, b: Network) -> None:
    """Equal, and bit for bit (``==`` on floats does not tell -0.0 from 0.0)."""
    assert a == b
    for tbl in ("bus", "gen", "branch"):
        assert getattr(a, tbl).matrix().tobytes() == getattr(b, tbl).matrix().tobytes(), tbl
    if a.gencost is not None and b.gencost is not None:
        for c in ("startup", "shutdown", "params"):
            assert getattr(a.gencost, c).tobytes() == getattr(b.gencost, c).tobytes(), c
    for (na, ma), (nb, mb) in zip(a.extras, b.extras, strict=True):
        assert na == nb and ma.tobytes() == mb.tobytes()


def check_round_trip(path: Path) -> Network:
    net = read_matpower(path)
    text = write_matpower_string(net)
    again = read_matpower_string(text, source="written.m")
    assert_identical(net, again)
    # Writing is a fixed point after one pass.
    assert write_matpower_string(again) == text
    return net


@pytest.mark.parametrize("name", ["case14_ieee", "case118_ieee", "case1888_rte"])
def test_round_trip_bundled(name: str, tmp_path: Path) -> None:
    net = check_round_trip(bundled_case_path(name))
    out = tmp_path / "out.m"
    write_matpower(net, out)
    assert_identical(net, read_matpower(out))
    assert [p.name for p in tmp_path.iterdir()] == ["out.m"]  # no temporary left behind


@pytest.mark.parametrize("path", shared_case_params())
def test_round_trip_shared(path: Path) -> None:
    check_round_trip(path)


def test_bundled_cases_are_the_pglib_files() -> None:
    assert bundled_cases() == ("case14_ieee", "case118_ieee", "case1888_rte")
    sizes = {"case14_ieee": 14, "case118_ieee": 118, "case1888_rte": 1888}
    for name, n in sizes.items():
        path = bundled_case_path(name)
        assert path.name == f"pglib_opf_{name}.m"
        assert read_matpower(path).n_bus == n
    license_file = bundled_case_path("case14").parent / "LICENSE-pglib-opf"
    assert "Creative Commons Attribution 4.0" in license_file.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", shared_case_params("pglib_opf_case1[48]*_*.m"))
def test_bundled_cases_match_shared_copies(path: Path) -> None:
    short = path.stem.removeprefix("pglib_opf_")
    if short in bundled_cases():
        assert bundled_case_path(short).read_bytes() == path.read_bytes()


@pytest.mark.parametrize(
    "alias", ["case14", "case14_ieee", "pglib_opf_case14_ieee", "pglib_opf_case14_ieee.m"]
)
def test_bundled_case_aliases(alias: str) -> None:
    assert bundled_case_path(alias) == CASE14


def test_unknown_bundled_case_lists_the_available_ones() -> None:
    with pytest.raises(ValidationError, match="case9") as info:
        bundled_case_path("case9")
    for name in bundled_cases():
        assert name in str(info.value)


# -- random networks round-trip losslessly ------------------------------------------

SPECIAL = [0.0, -0.0, 1e-17, -1e-17, 1e300, -1e300, 5e-324, 2.2250738585072014e-308,
           1.7976931348623157e308, 0.1, 1 / 3, 100.0, 1.06]  # fmt: skip
FINITE = st.one_of(st.sampled_from(SPECIAL), st.floats(allow_nan=False, allow_infinity=False))
LIMIT = st.one_of(FINITE, st.sampled_from([math.inf, -math.inf]))
INT = st.one_of(st.integers(-5, 5), st.integers(-(2**53), 2**53))
BUS_ID = st.one_of(st.integers(1, 50), st.integers(1, 2**53))
NAME = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,15}", fullmatch=True)
COMMENT = st.tuples(
    st.sampled_from(["", " ", "\t"]),
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=30),
).map(lambda p: f"{p[0]}%{p[1]}")
RESERVED = {"bus", "gen", "branch", "gencost", "version", "baseMVA"}


@st.composite
def networks(draw: st.DrawFn) -> Network:
    nb = draw(st.integers(1, 6))
    ng = draw(st.integers(0, 4))
    nl = draw(st.integers(0, 6))
    ids = draw(st.lists(BUS_ID, min_size=nb, max_size=nb, unique=True))

    def floats(n: int, el: st.SearchStrategy[float] = FINITE) -> npt.NDArray[np.float64]:
        return np.array(draw(st.lists(el, min_size=n, max_size=n)), dtype=np.float64)

    def ints(n: int, el: st.SearchStrategy[int]) -> npt.NDArray[np.int64]:
        return np.array(draw(st.lists(el, min_size=n, max_size=n)), dtype=np.int64)

    def matrix(rows: int, cols: int, el: st.SearchStrategy[float]) -> npt.NDArray[np.float64]:
        return floats(rows * cols, el).reshape(rows, cols)

    def extra(n: int) -> npt.NDArray[np.float64]:
        return matrix(n, draw(st.integers(0, 2)) if n else 0, LIMIT)

    bus = BusTable(
        bus_id=np.array(ids, dtype=np.int64),
        bus_type=ints(nb, st.integers(1, 4)),
        pd_mw=floats(nb),
        qd_mvar=floats(nb),
        gs_mw=floats(nb),
        bs_mvar=floats(nb),
        area=ints(nb, INT),
        vm_pu=floats(nb),
        va_deg=floats(nb),
        base_kv=floats(nb),
        zone=ints(nb, INT),
        vmax_pu=floats(nb, LIMIT),
        vmin_pu=floats(nb, LIMIT),
        extra=extra(nb),
    )
    gen = GenTable(
        bus_id=ints(ng, st.sampled_from(ids)),
        pg_mw=floats(ng),
        qg_mvar=floats(ng),
        qmax_mvar=floats(ng, LIMIT),
        qmin_mvar=floats(ng, LIMIT),
        vg_pu=floats(ng),
        mbase_mva=floats(ng),
        in_service=ints(ng, st.integers(0, 1)),
        pmax_mw=floats(ng, LIMIT),
        pmin_mw=floats(ng, LIMIT),
        extra=extra(ng),
    )
    r, x = floats(nl), floats(nl)
    x = np.where((r == 0) & (x == 0), 1e-17, x)  # r = x = 0 is not a valid branch
    branch = BranchTable(
        from_bus_id=ints(nl, st.sampled_from(ids)),
        to_bus_id=ints(nl, st.sampled_from(ids)),
        r_pu=r,
        x_pu=x,
        b_pu=floats(nl),
        rate_a_mva=floats(nl, LIMIT),
        rate_b_mva=floats(nl, LIMIT),
        rate_c_mva=floats(nl, LIMIT),
        tap_ratio=floats(nl),
        shift_deg=floats(nl),
        in_service=ints(nl, st.integers(0, 1)),
        angmin_deg=floats(nl, LIMIT),
        angmax_deg=floats(nl, LIMIT),
        extra=extra(nl),
    )
    gencost = None
    if draw(st.booleans()):
        nc = ng * draw(st.sampled_from([1, 2]))
        model = ints(nc, st.sampled_from([1, 2]))
        ncost = ints(nc, st.integers(0, 3))
        need = int(np.max(np.where(model == 1, 2 * ncost, ncost), initial=0))
        width = need + draw(st.integers(0, 1)) if nc else 0
        gencost = GenCostTable(
            model=model,
            startup=floats(nc),
            shutdown=floats(nc),
            ncost=ncost,
            params=matrix(nc, width, FINITE),
        )
    extra_names = draw(st.lists(NAME.filter(lambda s: s not in RESERVED), max_size=2, unique=True))
    extras = tuple(
        (nm, matrix(draw(st.integers(1, 3)), draw(st.integers(1, 4)), LIMIT)) for nm in extra_names
    )
    header_lines = draw(st.lists(COMMENT, max_size=4))
    if len(header_lines) >= 2 and draw(st.booleans()):
        header_lines.insert(1, draw(st.sampled_from(["", " ", "\t"])))
    return Network(
        name=draw(NAME),
        base_mva=draw(st.one_of(st.just(100.0), st.floats(min_value=5e-324, allow_infinity=False))),
        bus=bus,
        gen=gen,
        branch=branch,
        gencost=gencost,
        extras=extras,
        header="\n".join(header_lines),
    )


# Drawing a whole network is slow-ish; on a loaded CI machine that is not a defect.
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks())
def test_random_networks_round_trip(net: Network) -> None:
    text = write_matpower_string(net)
    assert_identical(net, read_matpower_string(text, source="random.m"))


def with_bus_ids(net: Network, new_ids: npt.NDArray[np.int64]) -> Network:
    """``net`` with its buses renumbered (generators and branches follow)."""
    ids = dict(zip(net.bus.bus_id.tolist(), new_ids.tolist(), strict=True))
    remap = np.vectorize(lambda i: ids[i], otypes=[np.int64])
    return net.replace(
        bus=dataclasses.replace(net.bus, bus_id=new_ids),
        gen=dataclasses.replace(net.gen, bus_id=remap(net.gen.bus_id)),
        branch=dataclasses.replace(
            net.branch,
            from_bus_id=remap(net.branch.from_bus_id),
            to_bus_id=remap(net.branch.to_bus_id),
        ),
    )


def test_writer_refuses_what_a_file_cannot_carry() -> None:
    net = read_matpower(CASE14)
    with pytest.raises(ValidationError, match="extra matrix name"):
        write_matpower_string(net.replace(extras=(("bus", np.ones((1, 1))),)))
    with pytest.raises(ValidationError, match="extra matrix name"):
        write_matpower_string(net.replace(extras=(("not a name", np.ones((1, 1))),)))
    with pytest.raises(ValidationError, match="NaN") as info:
        write_matpower_string(net.replace(extras=(("areas", np.array([[1.0, math.nan]])),)))
    assert info.value.row == 0
    ids = np.array(net.bus.bus_id)
    ids[3] = 2**60 + 1  # a double cannot hold it
    with pytest.raises(ValidationError, match="exceeds") as info:
        write_matpower_string(with_bus_ids(net, ids))
    assert (info.value.component, info.value.row) == ("bus", 3)


def test_large_bus_ids_round_trip() -> None:
    net = read_matpower(CASE14)
    ids = np.array(net.bus.bus_id) + (2**53 - 20)
    big = with_bus_ids(net, ids)
    assert_identical(big, read_matpower_string(write_matpower_string(big)))


def test_writer_keeps_the_file_readable() -> None:
    net = read_matpower(CASE14).replace(name="my case-1", header="% source\nnot a comment")
    back = read_matpower_string(write_matpower_string(net))
    assert back.header == "% source\n% not a comment"
    assert back.name == "my_case_1"
    assert read_matpower_string(write_matpower_string(net.replace(name="14"))).name == "case_14"


# -- bad files ------------------------------------------------------------------------


def replace_line(line_no: int, new: str) -> str:
    """case14 with line ``line_no`` replaced by ``new``."""
    lines = list(CASE14_LINES)
    lines[line_no - 1] = new
    return "\n".join(lines)


def edit_row(line_no: int, col: int, new: str, **more: str) -> str:
    """case14 with value ``col`` (0-based) of the matrix row on ``line_no`` replaced.

    ``new`` may be empty (the value is deleted) or hold several values; ``more``
    replaces further values, keyed ``c<column>``.
    """
    code, _, comment = CASE14_LINES[line_no - 1].partition("%")
    values = code.strip().rstrip(";").split()
    for c, v in {col: new, **{int(k[1:]): v for k, v in more.items()}}.items():
        assert c < len(values), f"line {line_no} has {len(values)} values"
        values[c] = v
    row = "\t" + "\t".join(v for v in values if v) + ";"
    return replace_line(line_no, f"{row} %{comment}" if comment else row)


def read_bad(tmp_path: Path, text: str, name: str = "bad_case.m") -> CaseFormatError:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CaseFormatError) as info:
        read_matpower(path)
    err = info.value
    assert str(path) in str(err), "the message names the file"
    assert err.path == str(path)
    assert "\n" not in str(err), "one line, as the CLI prints it"
    return err


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "no_such_case.m"
    with pytest.raises(CaseFormatError, match="no such file") as info:
        read_matpower(path)
    assert str(path) in str(info.value)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(CaseFormatError, match="directory"):
        read_matpower(tmp_path)


def test_not_a_text_file(tmp_path: Path) -> None:
    path = tmp_path / "binary.m"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    with pytest.raises(CaseFormatError, match="binary or compressed file"):
        read_matpower(path)


def test_missing_matrix(tmp_path: Path) -> None:
    lines = CASE14_LINES[: BRANCH_OPEN - 1] + CASE14_LINES[BRANCH_CLOSE:]
    err = read_bad(tmp_path, "\n".join(lines))
    assert "missing matrix mpc.branch" in str(err)


def test_missing_version(tmp_path: Path) -> None:
    lines = list(CASE14_LINES)
    del lines[VERSION_LINE - 1]
    err = read_bad(tmp_path, "\n".join(lines))
    assert "mpc.version = '2'" in str(err)


def test_version_1(tmp_path: Path) -> None:
    err = read_bad(tmp_path, replace_line(VERSION_LINE, "mpc.version = '1';"))
    assert err.line == VERSION_LINE
    assert "'1'" in str(err) and "version '2'" in str(err)


@pytest.mark.parametrize("cut_after", [BUS_ROWS[3], GEN_ROWS[0], BRANCH_ROWS[7]])
def test_truncated_inside_a_matrix(tmp_path: Path, cut_after: int) -> None:
    # Cut in the middle of the next row, as an interrupted copy would.
    text = "\n".join(CASE14_LINES[:cut_after]) + "\n" + CASE14_LINES[cut_after][:9]
    err = read_bad(tmp_path, text)
    assert "not closed by '];'" in str(err) and "truncated" in str(err)
    assert err.line == cut_after + 1


# The last required matrix (branch) closes at this offset; any cut before it is an error.
LAST_CLOSE = CASE14_TEXT.index("];", CASE14_TEXT.index("mpc.branch = ["))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, LAST_CLOSE))
def test_truncated_anywhere(cut: int) -> None:
    text = CASE14_TEXT[:cut]
    with pytest.raises(CaseFormatError) as info:
        read_matpower_string(text, source="cut.m")
    err = info.value
    assert str(err).startswith("cut.m")
    n_lines = len(text.split("\n"))
    assert err.line is None or 1 <= err.line <= n_lines


@pytest.mark.parametrize(
    ("line", "col", "new", "expected"),
    [
        (BUS_ROWS[4], 9, "", "mpc.bus row 5 has 12 values, expected 13"),
        (BUS_ROWS[0], 12, "0.94 7", "mpc.bus row 1 has 14 values, expected 13"),
        (GEN_ROWS[2], 6, "", "mpc.gen row 3 has 9 values, expected 10"),
        (BRANCH_ROWS[-1], 0, "13 1", "mpc.branch row 20 has 14 values, expected 13"),
    ],
)
def test_wrong_column_count(tmp_path: Path, line: int, col: int, new: str, expected: str) -> None:
    err = read_bad(tmp_path, edit_row(line, col, new))
    assert expected in str(err)
    assert err.line == line


def test_too_few_columns_everywhere(tmp_path: Path) -> None:
    lines = list(CASE14_LINES)
    for ln in GEN_ROWS:
        lines[ln - 1] = lines[ln - 1].split("\t")[1] + "\t 1.0\t 2.0;"
    err = read_bad(tmp_path, "\n".join(lines))
    assert "mpc.gen has 3 columns, expected at least 10" in str(err)
    assert err.line == GEN_ROWS[0]


@pytest.mark.parametrize(
    ("line", "col", "new", "expected"),
    [
        (BRANCH_ROWS[2], 1, "99", "branch row 3: to_bus_id 99 is not a bus"),
        (BRANCH_ROWS[5], 0, "12345", "branch row 6: from_bus_id 12345 is not a bus"),
        (GEN_ROWS[1], 0, "77", "gen row 2: bus id 77 is not a bus"),
    ],
)
def test_unknown_bus_id(tmp_path: Path, line: int, col: int, new: str, expected: str) -> None:
    err = read_bad(tmp_path, edit_row(line, col, new))
    assert expected in str(err)
    assert err.line == line


def test_duplicate_bus_id(tmp_path: Path) -> None:
    err = read_bad(tmp_path, edit_row(BUS_ROWS[6], 0, "3"))
    assert "bus id 3 appears more than once" in str(err)
    assert err.line == BUS_ROWS[6]


@pytest.mark.parametrize(
    ("line", "col", "expected"),
    [
        (BUS_ROWS[2], 2, "mpc.bus row 3: pd_mw is NaN, expected a number"),
        (BUS_ROWS[13], 12, "mpc.bus row 14: vmin_pu is NaN, expected a number"),
        (GEN_ROWS[0], 8, "mpc.gen row 1: pmax_mw is NaN, expected a number"),
        (BRANCH_ROWS[9], 10, "mpc.branch row 10: in_service is NaN, expected a number"),
        (GENCOST_ROWS[3], 4, "mpc.gencost row 4: a value is not a finite number"),
    ],
)
def test_nan(tmp_path: Path, line: int, col: int, expected: str) -> None:
    err = read_bad(tmp_path, edit_row(line, col, "NaN"))
    assert expected in str(err)
    assert err.line == line


@pytest.mark.parametrize(
    ("line", "col", "new", "expected"),
    [
        (BUS_ROWS[1], 2, "Inf", "bus row 2: pd_mw is not a finite number"),
        (BUS_ROWS[1], 1, "1.5", "mpc.bus row 2: bus_type = 1.5, expected an integer"),
        (BUS_ROWS[1], 1, "7", "bus type 7, expected 1, 2, 3 or 4"),
        (GEN_ROWS[1], 7, "2", "gen row 2: status 2, expected 0 or 1"),
        (BRANCH_ROWS[0], 0, "1e300", "from_bus_id = 1e+300, expected an integer of at most"),
        (BRANCH_ROWS[0], 3, "0", "branch row 1: zero impedance (r = x = 0)"),
        (GENCOST_ROWS[0], 3, "1e300", "mpc.gencost row 1: n = 1e+300, expected an integer"),
    ],
)
def test_bad_values(tmp_path: Path, line: int, col: int, new: str, expected: str) -> None:
    # For the zero-impedance case, r (column 2) is zeroed as well as x.
    text = edit_row(line, col, new, **({"c2": "0"} if col == 3 else {}))
    err = read_bad(tmp_path, text)
    assert expected in str(err)
    assert err.line == line


@pytest.mark.parametrize("token", ["abc", "1_000", "0x10", "1.2.3", "\u0663", "1e", "--1"])
def test_non_numeric_token(tmp_path: Path, token: str) -> None:
    line = BRANCH_ROWS[4]
    err = read_bad(tmp_path, edit_row(line, 1, token))
    assert "is not a number, expected a real number" in str(err)
    assert err.line == line


def test_junk_after_a_matrix(tmp_path: Path) -> None:
    err = read_bad(tmp_path, replace_line(BRANCH_CLOSE, "]; x"))
    assert "unexpected '; x' after the end of mpc.branch, expected '];'" in str(err)
    assert err.line == BRANCH_CLOSE


def test_matrix_defined_twice(tmp_path: Path) -> None:
    lines = CASE14_LINES[:BRANCH_CLOSE] + CASE14_LINES[BRANCH_OPEN - 1 : BRANCH_CLOSE]
    err = read_bad(tmp_path, "\n".join(lines))
    assert f"mpc.branch is defined twice (first at line {BRANCH_OPEN})" in str(err)
    assert err.line == BRANCH_CLOSE + 1


def test_bad_base_mva(tmp_path: Path) -> None:
    err = read_bad(tmp_path, replace_line(VERSION_LINE + 1, "mpc.baseMVA = -5;"))
    assert "mpc.baseMVA: expected a positive number" in str(err)
    assert err.line == VERSION_LINE + 1


@pytest.mark.parametrize(
    "line", ["function 0 = case14", "function mpc = case 14", "function mpc = ", "functionx"]
)
def test_malformed_function_line(tmp_path: Path, line: str) -> None:
    err = read_bad(tmp_path, replace_line(VERSION_LINE - 1, line))
    assert err.line == VERSION_LINE - 1
    if line != "functionx":
        assert "expected 'function mpc = NAME'" in str(err)


def test_function_line_variants() -> None:
    for line, name in [
        ("function mpc = case14 % comment", "case14"),
        ("function case14", "case14"),
        ("function mpc = case14();", "case14"),
    ]:
        assert read_matpower_string(replace_line(VERSION_LINE - 1, line)).name == name
    lines = list(CASE14_LINES)
    del lines[VERSION_LINE - 2]
    assert read_matpower_string("\n".join(lines), default_name="fallback").name == "fallback"


@pytest.mark.parametrize("statement", ["mpc.1x = [1];", "mpc.\u00e9 = [1];", "x = 1;"])
def test_bad_statement(tmp_path: Path, statement: str) -> None:
    err = read_bad(tmp_path, replace_line(VERSION_LINE + 2, statement))
    assert "expected 'mpc.NAME = ...'" in str(err)
    assert err.line == VERSION_LINE + 2


def test_extra_matrices_are_kept() -> None:
    text = replace_line(VERSION_LINE + 2, "mpc.areas = [1 1; 2 3.5];")
    net = read_matpower_string(text)
    assert [nm for nm, _ in net.extras] == ["areas"]
    np.testing.assert_array_equal(net.extras[0][1], [[1.0, 1.0], [2.0, 3.5]])
    assert_identical(net, read_matpower_string(write_matpower_string(net)))
    err = read_bad_string(replace_line(VERSION_LINE + 2, "mpc.areas = [1 1; 2 NaN];"))
    assert "mpc.areas row 2: NaN, expected a number" in str(err)
    assert err.line == VERSION_LINE + 2


def read_bad_string(text: str) -> CaseFormatError:
    with pytest.raises(CaseFormatError) as info:
        read_matpower_string(text, source="text.m")
    return info.value


def test_crlf_and_bom_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "windows.m"
    path.write_bytes(b"\xef\xbb\xbf" + CASE14_TEXT.replace("\n", "\r\n").encode("utf-8"))
    assert_identical(read_matpower(path), read_matpower(CASE14))
    crlf = read_matpower_string(CASE14_TEXT.replace("\n", "\r\n"))
    assert_identical(crlf, read_matpower(CASE14))


def test_only_newline_ends_a_line() -> None:
    # A form feed or U+2028 inside a comment is part of the comment.
    text = replace_line(BUS_ROWS[0], CASE14_LINES[BUS_ROWS[0] - 1] + " % a\x0cb\u2028c 1 2 3")
    assert_identical(read_matpower_string(text), read_matpower(CASE14))


# -- random corruptions ----------------------------------------------------------------

TOKENS = [m.span() for m in re.finditer(r"[^\s;]+", CASE14_TEXT)]
FIRST_CODE = CASE14_TEXT.index("function mpc")
CODE_TOKENS = [span for span in TOKENS if span[0] >= FIRST_CODE]
ODD_TOKENS = ["NaN", "nan", "Inf", "-Inf", "-1", "0", "-0", "1e400", "1e308", "-1e308", "1.5",
              "9007199254740993", "1e16", "", "]", "[", ";", "];", "%", "'", "{", "}", "=",
              "mpc.bus = [", "function mpc = x", "1 2", "1;2"]  # fmt: skip
REPLACEMENTS = st.one_of(
    st.sampled_from(ODD_TOKENS),
    st.text(max_size=8),
    st.floats().map(repr),
    st.integers().map(str),
)


@st.composite
def corrupted_case14(draw: st.DrawFn) -> str:
    text = CASE14_TEXT
    kind = draw(st.sampled_from(["delete_char", "replace_token", "duplicate_line", "delete_line"]))
    if kind == "delete_char":
        i = draw(st.integers(FIRST_CODE, len(text) - 1))
        return text[:i] + text[i + 1 :]
    if kind == "replace_token":
        start, end = draw(st.sampled_from(CODE_TOKENS))
        return text[:start] + draw(REPLACEMENTS) + text[end:]
    lines = list(CASE14_LINES)
    i = draw(st.integers(VERSION_LINE - 2, len(lines) - 1))
    if kind == "duplicate_line":
        lines.insert(i, lines[i])
    else:
        del lines[i]
    return "\n".join(lines)


@settings(max_examples=200, deadline=None)
@given(corrupted_case14())
def test_corruptions_give_an_error_or_a_valid_network(text: str) -> None:
    try:
        net = read_matpower_string(text, source="corrupt.m")
    except CaseFormatError as e:
        assert str(e).startswith("corrupt.m")
        assert "\n" not in str(e)
        assert e.line is None or 1 <= e.line <= len(text.split("\n"))
    else:
        net.validate()
        assert_identical(net, read_matpower_string(write_matpower_string(net)))
