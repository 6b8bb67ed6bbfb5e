"""Fuzzing the grid readers: any input gives a value or an AiguilleurError, never another
exception; and power balance on every converged AC power flow."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiguilleur.data import bundled_case_path
from aiguilleur.errors import AiguilleurError
from aiguilleur.grid import (
    Network,
    ac_power_flow,
    dc_power_flow,
    read_matpower,
    read_matpower_string,
)
from aiguilleur.grid.commitment import read_profile, read_storage, read_units
from aiguilleur.grid.measurements import read_measurements, read_measurements_string

FUZZ = settings(
    max_examples=60,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

CASE14_TEXT = bundled_case_path("case14").read_text()
CASE14 = read_matpower_string(CASE14_TEXT)
# tokens and the separators between them, so that a mutation keeps the rest intact
PIECES = re.findall(r"\s+|[^\s]+", CASE14_TEXT)
TOKEN_AT = [i for i, p in enumerate(PIECES) if not p.isspace()]

SPECIAL = [
    "NaN", "nan", "Inf", "-Inf", "inf", "1e400", "-1e400", "1e308", "-1e308", "1e-320",
    "99999999999999999999999999", "0", "-0", "-1", "4", "7", "3", "0x10", "1_000", "1e",
    "", "]", "[", ";", "];", "%", "'", '"', "...", "=", "mpc.bus", "mpc.gen = [", "function",
    "\x00", "\ufeff", "é", "1,2", "[1 2 3]", "true",
]  # fmt: skip

mutation = st.one_of(
    st.tuples(st.just("delete"), st.integers(0, len(TOKEN_AT) - 1), st.just("")),
    st.tuples(st.just("duplicate"), st.integers(0, len(TOKEN_AT) - 1), st.just("")),
    st.tuples(st.just("replace"), st.integers(0, len(TOKEN_AT) - 1), st.sampled_from(SPECIAL)),
    st.tuples(st.just("replace"), st.integers(0, len(TOKEN_AT) - 1), st.text(max_size=8)),
    st.tuples(st.just("truncate"), st.integers(0, len(CASE14_TEXT)), st.just("")),
    st.tuples(st.just("insert"), st.integers(0, len(CASE14_TEXT)), st.text(max_size=20)),
)


def _mutate(muts: list[tuple[str, int, str]]) -> str:
    pieces = list(PIECES)
    text = None
    for op, k, payload in muts:
        if op in ("truncate", "insert"):
            base = "".join(pieces) if text is None else text
            text = base[:k] if op == "truncate" else base[:k] + payload + base[k:]
            pieces = re.findall(r"\s+|[^\s]+", text) or [""]
            continue
        toks = [i for i, p in enumerate(pieces) if not p.isspace()]
        if not toks:
            continue
        i = toks[k % len(toks)]
        if op == "delete":
            pieces[i] = ""
        elif op == "duplicate":
            pieces[i] = pieces[i] + " " + pieces[i]
        else:
            pieces[i] = payload
        text = None
    return "".join(pieces) if text is None else text


def _parse_or_error(text: str) -> Network | None:
    try:
        return read_matpower_string(text, source="fuzz.m")
    except AiguilleurError as e:
        assert "\n" not in str(e).strip(), str(e)
        return None


@FUZZ
@given(st.lists(mutation, min_size=1, max_size=4))
def test_matpower_mutations_give_a_network_or_an_error(muts: list[tuple[str, int, str]]) -> None:
    net = _parse_or_error(_mutate(muts))
    if net is None:
        return
    # a network that was read solves or is refused: never another exception
    try:
        res = ac_power_flow(net)
    except AiguilleurError:
        return
    assert res.status in ("feasible", "partial", "infeasible", "not_converged")
    assert res.ok == (res.status == "feasible")


@FUZZ
@given(st.binary(max_size=2000))
def test_matpower_random_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.m"
        p.write_bytes(data)
        try:
            read_matpower(p)
        except AiguilleurError as e:
            assert "\n" not in str(e).strip()


@FUZZ
@given(st.integers(0, len(CASE14_TEXT)), st.binary(min_size=1, max_size=64))
def test_matpower_case_with_bytes_spliced_in(k: int, junk: bytes) -> None:
    data = CASE14_TEXT.encode()
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.m"
        p.write_bytes(data[:k] + junk + data[k:])
        try:
            read_matpower(p)
        except AiguilleurError as e:
            assert "\n" not in str(e).strip()


# -- measurements and commitment CSV ---------------------------------------------------------

FIELD = st.one_of(
    st.sampled_from(
        ["m1", "m2", "vm", "va", "p_inj", "q_inj", "p_from", "q_to", "i_from", "bus:1", "bus:99",
         "branch:3", "branch:0", "branch:-1", "bus:1.5", "1.0", "0.01", "-0.01", "0", "nan", "inf",
         "1e400", "1_0", "", " ", '"', "'", "#", "bus:", ":", "99999999999999999999999"]
    ),
    st.text(max_size=6),
)  # fmt: skip
CSV_LINE = st.lists(FIELD, min_size=0, max_size=7).map(",".join)


@FUZZ
@given(st.lists(CSV_LINE, max_size=8), st.booleans())
def test_measurement_csv(lines: list[str], header: bool) -> None:
    text = "\n".join((["id,kind,element,value,sigma"] if header else []) + lines)
    for net in (None, CASE14):
        try:
            m = read_measurements_string(text, net, source="m.csv")
        except AiguilleurError as e:
            assert "\n" not in str(e).strip()
            assert len(str(e)) < 400
            continue
        assert len(m.id) >= 1 and np.all(np.isfinite(m.value)) and np.all(m.sigma > 0)


PROFILE_FIELD = st.one_of(
    st.sampled_from(
        ["0", "1", "2", "23", "-1", "14", "99", "1.5", "10", "0.0", "-5", "nan", "inf", "1e400",
         "999999999999999999999", "", " ", '"', "a", "bus", "1e3"]
    ),
    st.text(max_size=5),
)  # fmt: skip
HEADERS = [
    "period,bus_id,load_mw",
    "period,bus_id,load_mw,renewable_mw",
    "name,bus_id,power_mw,energy_mwh,eta_charge,eta_discharge",
    "gen,min_up_h,min_down_h,startup_cost,ramp_mw_per_h",
    "period,load_mw",
    "",
]


@FUZZ
@given(
    st.sampled_from(HEADERS),
    st.lists(st.lists(PROFILE_FIELD, min_size=0, max_size=7).map(",".join), max_size=8),
    st.sampled_from(["\n", "\r\n"]),
)
def test_commitment_csv(header: str, lines: list[str], eol: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "p.csv"
        p.write_text(eol.join([header, *lines]), newline="")
        for reader in (read_profile, read_storage, read_units):
            try:
                reader(p, CASE14)
            except AiguilleurError as e:
                assert "\n" not in str(e).strip()
                assert len(str(e)) < 600


@FUZZ
@given(st.binary(max_size=500))
def test_csv_readers_random_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "p.csv"
        p.write_bytes(data)
        for call in (
            lambda: read_measurements(p, CASE14),
            lambda: read_profile(p, CASE14),
            lambda: read_storage(p, CASE14),
        ):
            try:
                call()
            except AiguilleurError as e:
                assert "\n" not in str(e).strip()


# -- power balance ---------------------------------------------------------------------------


@FUZZ
@given(
    st.lists(st.integers(0, CASE14.n_branch - 1), max_size=6),
    st.lists(st.integers(0, CASE14.n_gen - 1), max_size=4),
    st.floats(0.0, 1.6),
)
def test_power_balance_or_unserved(branches: list[int], gens: list[int], scale: float) -> None:
    bus = CASE14.bus
    net = CASE14.replace(
        bus=type(bus)(**{**vars(bus), "pd_mw": bus.pd_mw * scale, "qd_mvar": bus.qd_mvar * scale})
    )
    net = net.with_branch_status(branches, 0).with_gen_status(gens, 0)
    res = ac_power_flow(net)
    dead_load = sum(i.load_mw for i in res.islands if not i.energised)
    assert abs(res.unserved_mw - dead_load) < 1e-9  # case14 has no isolated bus
    if not res.converged:
        assert not res.ok and res.status in ("not_converged", "infeasible")
        return
    energised = res.vm_pu > 0
    unserved = float(np.sum(np.maximum(net.bus.pd_mw[~energised], 0.0)))
    assert abs(res.unserved_mw - unserved) < 1e-9
    # sum of injections = losses, over the energised buses
    gen = float(np.sum(res.pg_mw))
    load = float(np.sum(net.bus.pd_mw[energised]))
    shunt = float(np.sum(net.bus.gs_mw[energised] * res.vm_pu[energised] ** 2))
    assert abs(gen - load - shunt - res.losses_mw) < 1e-4
    if unserved > 1e-9:
        assert res.status == "partial" and not res.ok and "unserved" in res.message
    else:
        assert res.status == "feasible" and res.ok
    dc = dc_power_flow(net)
    assert dc.unserved_mw == res.unserved_mw and dc.status == (
        "partial" if unserved > 1e-9 else "feasible"
    )
