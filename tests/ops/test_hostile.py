"""Hostile and edge inputs to the operations centre's readers, stores and commands.

Each case must end as one line ``error: ...`` naming what is wrong and where, with
exit code 2 (never a traceback, never exit 3, never a changed file that was only
read). The inputs come from a hostile round through the command line.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aiguilleur.cli import app
from aiguilleur.errors import AiguilleurError, CaseFormatError, ValidationError
from tests.ops.conftest import case14_genesis

runner = CliRunner()


def invoke(*args: str, input: str | bytes | None = None) -> Any:
    return runner.invoke(app, list(args), input=input, catch_exceptions=False)


def one_line_error(res: Any, *needles: str, code: int = 2) -> str:
    """The result failed with ``code`` and one line naming each of ``needles``."""
    err = res.stderr.strip()
    assert res.exit_code == code, (res.exit_code, err, res.stdout[-500:])
    assert "Traceback" not in err and "internal error" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def world_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store holding the case14 grid (no solver run)."""
    from aiguilleur.ops.centre import OpsCentre
    from aiguilleur.ops.store import open_store

    p = tmp_path_factory.mktemp("hostile") / "world.db"
    with OpsCentre(open_store(f"sqlite:///{p}", create=True)) as c:
        assert all(r.ok for r in c.ingest([case14_genesis()]))
    return p


# -- store URLs -----------------------------------------------------------------------------


def _foreign(tmp: Path) -> str:
    p = tmp / "other-app.db"
    with sqlite3.connect(p) as c:
        c.execute("create table moz_places (url text)")
    return str(p)


def _text(tmp: Path) -> str:
    p = tmp / "notes.db"
    p.write_text("hello\n")
    return str(p)


def _header_only(tmp: Path) -> str:
    p = tmp / "broken.db"
    p.write_bytes(b"SQLite format 3\x00garbage")
    return str(p)


def _newer(tmp: Path) -> str:
    from aiguilleur.ops.store import open_store

    p = tmp / "newer.db"
    open_store(f"sqlite:///{p}", create=True).close()
    with sqlite3.connect(p) as c:
        c.execute("update ops_meta set value = '999' where key = 'schema_version'")
    return str(p)


def _junk_version(tmp: Path) -> str:
    from aiguilleur.ops.store import open_store

    p = tmp / "junk.db"
    open_store(f"sqlite:///{p}", create=True).close()
    with sqlite3.connect(p) as c:
        c.execute("update ops_meta set value = 'x' where key = 'schema_version'")
    return str(p)


STORES = [
    ("ftp://host/x", "unknown store scheme 'ftp'"),
    ("mysql://u@h/db", "unknown store scheme 'mysql'"),
    ("", "store: expected a path"),
    ("/no/such/folder/ops.db", "no such store"),
    ("sqlite:////no/such/folder/ops.db", "no such store"),
    ("postgresql+psycopg://u@127.0.0.1:1/db", "cannot open the store"),
    (_foreign, "not an aiguilleur store"),
    (_text, "file is not a database"),
    (_header_only, "cannot open the store"),
    (_newer, "newer than this aiguilleur"),
    (_junk_version, "unreadable schema version"),
    ("{tmp}", "is a folder"),
]


@pytest.mark.parametrize(("url", "needle"), STORES)
def test_every_bad_store_is_one_line(url: Any, needle: str, tmp_path: Path) -> None:
    u = url(tmp_path) if callable(url) else url.format(tmp=tmp_path)
    foreign = url in (_foreign, _text, _header_only)
    before = Path(u).read_bytes() if foreign else None
    one_line_error(invoke("ops", "state", "--store", u), needle)
    if before is not None:  # reading never changes a file named by mistake (not even WAL mode)
        assert Path(u).read_bytes() == before


def test_ingest_never_writes_into_another_applications_database(tmp_path: Path) -> None:
    u = _foreign(tmp_path)
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(case14_genesis()) + "\n")
    one_line_error(invoke("ops", "ingest", str(src), "--store", u), "holds tables of something")
    with sqlite3.connect(u) as c:
        names = [r[0] for r in c.execute("select name from sqlite_master")]
    assert names == ["moz_places"]


# -- ops ingest FILE|- ----------------------------------------------------------------------


def test_ingest_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    store = str(tmp_path / "s.db")
    one_line_error(invoke("ops", "ingest", str(tmp_path), "--store", store), "not a regular")
    one_line_error(invoke("ops", "ingest", "/dev/zero", "--store", store), "not a regular")
    one_line_error(invoke("ops", "ingest", str(tmp_path / "no"), "--store", store), "no such file")


def test_ingest_reports_bad_lines_one_each_and_goes_on(
    world_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from aiguilleur.ops import stream

    monkeypatch.setattr(stream, "MAX_LINE_BYTES", 4096)
    store = tmp_path / "s.db"
    shutil.copy(world_store, store)
    good = {
        "id": "ok-1",
        "type": "branch_trip",
        "occurred_at": "2026-01-15T06:00:00+00:00",
        "source": "t",
        "branch": "branch:3",
    }
    body = (
        b"\x00\xff\xfe binary\n"  # 1: not UTF-8
        + b'{"a": "' + b"x" * 10_000 + b'"}\n'  # 2: longer than the bound
        + b"[" * 2_000 + b"\n"  # 3: nested too deep
        + json.dumps({**good, "branch": "branch:999"}).encode() + b"\n"  # 4: unknown element
        + json.dumps({**good, "occurred_at": "2026-01-15T06:00:00"}).encode() + b"\n"  # 5: naive
        + json.dumps({**good, "rating": 1}).encode() + b"\n"  # 6: unknown field
        + json.dumps(good).encode() + b"\n"  # 7: stored
        + json.dumps({**good, "branch": "branch:4"}).encode() + b"\n"  # 8: same id, other body
        + b"NaN\n"  # 9
    )  # fmt: skip
    src = tmp_path / "in.jsonl"
    src.write_bytes(body)
    res = invoke("ops", "ingest", str(src), "--store", str(store), "--no-respond")
    assert res.exit_code == 2
    errs = res.stderr.strip().splitlines()
    assert "Traceback" not in res.stderr
    want = [
        ("line 1:", "not UTF-8"),
        ("line 2:", "longer than 4,096 bytes"),
        ("line 3:", "nested deeper"),
        ("line 4:", "branch:999"),
        ("line 5:", "timezone"),
        ("line 6:", "rating: unknown field"),
        ("line 8:", "already stored with a different body"),
        ("line 9:", "not a number JSON allows"),
    ]
    assert len(errs) == len(want), res.stderr
    for e, (line, why) in zip(errs, want, strict=True):
        assert e.startswith(f"error: {line}") and why in e, e
    assert [json.loads(x)["id"] for x in res.stdout.splitlines()] == ["ok-1"]


def test_plans_status_must_be_one_of_the_vocabulary(world_store: Path) -> None:
    one_line_error(
        invoke("ops", "plans", "--store", str(world_store), "--status", "junk"), "--status"
    )


@pytest.mark.parametrize(
    ("verb", "extra", "needle"),
    [
        ("approve", [], "no such proposal"),
        ("reject", ["--reason", "x"], "no such proposal"),
        ("ack", [], "no such alarm"),
    ],
)
def test_decisions_on_unknown_ids(
    world_store: Path, verb: str, extra: list[str], needle: str
) -> None:
    args = ["ops", verb, "nope", "--operator", "alice", "--store", str(world_store), *extra]
    one_line_error(invoke(*args), needle)


# -- scenario files -------------------------------------------------------------------------

HEAD = "name: x\nstart: 2026-01-15T05:00:00Z\nworld: {grid: {case: case14}}\n"
STEP = "timeline:\n  - at: 30m\n    type: load_scale\n    factor: 1.02\n"
LAUGHS = "".join(
    f"  - &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefg", "bcdefgh", strict=True)
)

SCENARIOS = [
    ("binary", b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8 text"),
    ("python tag", b'!!python/object/apply:os.system ["echo hi"]\n', "could not determine"),
    (
        "billion laughs",
        ("name: x\ndescription:\n  - &a [x, x, x, x, x, x, x, x, x]\n" + LAUGHS).encode()
        + b"start: 2026-01-15T05:00:00Z\nworld: {grid: {case: case14}}\n"
        + b"timeline:\n  - {at: 5m, type: load_scale, factor: 1.1, id: *h}\n",
        "expands to more than",
    ),
    ("alias cycle", b"name: &x [*x]\n", "refers to a value that contains it"),
    ("deep", ("a: " + "[" * 50_000).encode(), "nested too deeply"),
    ("not a mapping", b"- 1\n- 2\n", "expected a mapping"),
    ("unknown key", (HEAD + STEP + "rules: 1\n").encode(), "unknown key 'rules'"),
    ("naive start", (HEAD.replace("Z\n", "\n") + STEP).encode(), "start: needs a time zone"),
    ("world list", b"name: x\nstart: 2026-01-15T05:00:00Z\nworld: [1]\n" + STEP.encode(), "world:"),
    ("timeline 5", (HEAD + "timeline: 5\n").encode(), "timeline: expected a list"),
    ("negative at", (HEAD + STEP.replace("30m", "-5m")).encode(), "timeline[0].at"),
    ("nan factor", (HEAD + STEP.replace("1.02", ".nan")).encode(), "finite number"),
    ("unknown type", (HEAD + STEP.replace("load_scale", "meteor")).encode(), "unknown event"),
    (
        "same id twice",
        (HEAD + STEP + "  - {at: 40m, type: load_scale, factor: 1.1, id: x:0}\n").encode(),
        "timeline[1].id: 'x:0' is already the id of timeline[0]",
    ),
    ("auto_apply junk", (HEAD + "policy: {auto_apply: [shed]}\n" + STEP).encode(), "auto_apply"),
]


@pytest.mark.parametrize(("label", "body", "needle"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_bad_scenarios_are_one_line(label: str, body: bytes, needle: str, tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_bytes(body)
    line = one_line_error(invoke("ops", "replay", str(f)), needle)
    assert str(f) in line


def test_scenario_reader_refuses_folders_and_devices(tmp_path: Path) -> None:
    from aiguilleur.ops.scenario import load_scenario

    for bad in (tmp_path, Path("/dev/zero")):
        with pytest.raises(CaseFormatError, match=r"folder|regular file"):
            load_scenario(bad)


@pytest.mark.parametrize(
    ("world", "needle"),
    [
        ("{grid: {case: case14, margin_pct: abc}}", "world.grid.margin_pct: expected a number"),
        ("{grid: {case: case14, assets: [1]}}", "world.grid.assets: expected a mapping"),
        ("{fleet: {seed: x}}", "world.fleet.seed: expected an integer"),
        ("{fleet: {tankers: 2.5}}", "world.fleet.tankers: expected an integer"),
        ("{grid: {case: nosuch}}", "unknown bundled case"),
        ("{grid: {case: case14, assets: {GT-1: 'gen:99'}}}", "world: assets.GT-1: gen:99"),
    ],
)
def test_bad_worlds_are_one_line_naming_the_file(world: str, needle: str, tmp_path: Path) -> None:
    f = tmp_path / "w.yaml"
    f.write_text(f"name: x\nstart: 2026-01-15T05:00:00Z\nworld: {world}\n{STEP}")
    one_line_error(invoke("ops", "replay", str(f)), needle, str(f))


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ("{at: 5m, type: health_stream, asset: GT-1, file: /dev/zero}", "not a regular file"),
        ("{at: 5m, type: health_stream, asset: GT-1, unit: 99}", "no unit 99"),
    ],
)
def test_health_streams_read_regular_files_only(entry: str, needle: str, tmp_path: Path) -> None:
    f = tmp_path / "h.yaml"
    f.write_text(HEAD + f"timeline:\n  - {entry}\n")
    one_line_error(invoke("ops", "replay", str(f)), str(f), needle)  # /dev/zero: a hang


@pytest.mark.parametrize("speed", ["1e-12", "0", "-1", "nan", "inf", "1e9"])
def test_replay_speed_is_bounded(speed: str, tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(HEAD + STEP)
    one_line_error(invoke("ops", "replay", str(f), "--speed", speed), "speed")  # 1e-12: exit 3


def test_timeline_elements_are_checked_before_the_replay(tmp_path: Path) -> None:
    f = tmp_path / "e.yaml"
    f.write_text(HEAD + STEP + "  - {at: 23h, type: branch_trip, branch: 'branch:999'}\n")
    one_line_error(invoke("ops", "replay", str(f), "--json"), str(f), "branch:999")


# -- other readers --------------------------------------------------------------------------


def test_token_files_are_read_bounded_and_as_text(tmp_path: Path) -> None:
    from aiguilleur.api import load_tokens

    binary = tmp_path / "bin"
    binary.write_bytes(b"operator:\xff\xfe" + b"x" * 30)
    for bad, needle in (
        (tmp_path / "missing", "no such token file"),
        (tmp_path, "folder"),
        (Path("/dev/zero"), "regular file"),
        (binary, "not utf-8"),
    ):
        with pytest.raises(ValidationError, match=needle) as e:
            load_tokens(bad)
        assert "token file" in str(e.value)


def test_day_ahead_tables_are_read_bounded(tmp_path: Path) -> None:
    from aiguilleur.data import bundled_case_path
    from aiguilleur.grid import read_matpower
    from aiguilleur.ops.dayahead import read_failure_rates, read_renewables

    net = read_matpower(bundled_case_path("case14"))
    binary = tmp_path / "rates.csv"
    binary.write_bytes(b"element,probability\n\x00\xff")
    for reader in (read_failure_rates, read_renewables):
        for bad in (tmp_path, Path("/dev/zero"), binary, tmp_path / "missing.csv"):
            with pytest.raises(AiguilleurError) as e:
                reader(bad, net)
            assert str(bad) in str(e.value)


def test_case_files_of_the_world_are_read_bounded(tmp_path: Path) -> None:
    from aiguilleur.ops.world import load_case_source

    d = tmp_path / "dir.m"
    d.mkdir()
    b = tmp_path / "bin.m"
    b.write_bytes(b"function mpc\n\xff\xfe")
    with pytest.raises(CaseFormatError, match="folder"):
        load_case_source(str(d))
    with pytest.raises(CaseFormatError, match="not utf-8") as e:
        load_case_source(str(b))
    assert e.value.line == 2


# -- operator decisions sent as events ------------------------------------------------------


def test_a_second_decision_is_refused_a_resend_is_a_duplicate(world_store: Path) -> None:
    """A decision on a decided proposal (or a second acknowledgement) used to be stored and
    then ignored by the fold: acknowledged in silence. It is refused, naming the field."""
    from aiguilleur.ops.centre import OpsCentre
    from aiguilleur.ops.store import open_store

    def decision(i: str, t: str, **kw: Any) -> dict[str, Any]:
        return {"id": i, "type": t, "occurred_at": "2026-01-15T06:00:00+00:00", "source": "t", **kw}

    rej = decision("d1", "proposal_rejected", proposal="P9-grid", operator="bob")
    app_ = decision("d2", "proposal_approved", proposal="P9-grid", operator="al", actions=[])
    ack = decision("a1", "alarm_acknowledged", alarm="A9-1", operator="bob")
    ack2 = decision("a2", "alarm_acknowledged", alarm="A9-1", operator="al")
    with OpsCentre(open_store("memory://")) as c:
        assert all(r.ok for r in c.ingest([case14_genesis()]))
        first = c.ingest([rej, ack])
        assert all(r.ok and not r.duplicate for r in first)
        h = c.state().state_hash
        again = c.ingest([rej, ack, app_, ack2, {**rej, "operator": "eve"}])
        assert [(r.ok, r.duplicate) for r in again[:2]] == [(True, True), (True, True)]
        assert again[2].error == "proposal: 'P9-grid' is rejected already"
        assert again[3].error == "alarm: 'A9-1' is acknowledged already"
        assert again[4].error is not None and "different body" in again[4].error
        assert c.state().state_hash == h
        # two decisions of one proposal in one batch: the second is refused
        two = c.ingest(
            [
                decision("d3", "proposal_rejected", proposal="P8-grid", operator="bob"),
                decision("d4", "proposal_rejected", proposal="P8-grid", operator="al"),
            ]
        )
        assert two[0].ok and two[1].error == "proposal: 'P8-grid' is decided already"


# -- output locations, checked before the work ----------------------------------------------


def test_events_export_is_checked_first_and_replaced_only_with_force(
    world_store: Path, tmp_path: Path
) -> None:
    out = tmp_path / "log.jsonl"
    base = ["ops", "events", "--store", str(world_store), "--out"]
    assert invoke(*base, str(out)).exit_code == 0
    first = out.read_text()
    assert json.loads(first.splitlines()[0])["id"] == "world:grid"
    one_line_error(invoke(*base, str(out)), "already exists", "--force")
    assert invoke(*base, str(out), "--force").exit_code == 0 and out.read_text() == first
    one_line_error(invoke(*base, str(tmp_path)), "is a folder")
    one_line_error(invoke(*base, str(tmp_path / "no" / "x.jsonl")), "does not exist")
    # a bad store after a good place: nothing written
    missing = tmp_path / "fresh.jsonl"
    res = invoke("ops", "events", "--store", str(tmp_path / "none.db"), "--out", str(missing))
    one_line_error(res, "no such store")
    assert not missing.exists() and not list(tmp_path.glob(".fresh.jsonl.*"))


def test_report_folders_are_checked_before_the_replay(tmp_path: Path) -> None:
    from aiguilleur.ops.replay_report import check_report_dir

    f = tmp_path / "s.yaml"
    f.write_text(HEAD + STEP)
    one_line_error(invoke("ops", "replay", str(f), "--out", str(tmp_path / "a" / "b")), "not exist")
    assert not (tmp_path / "a").exists()  # no folder made on the way
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "summary.json").write_text("{}")
    one_line_error(invoke("ops", "replay", str(f), "--out", str(tmp_path / "r")), "--force")
    one_line_error(invoke("demo", "--out", str(f)), "is a file, not a folder")
    (tmp_path / "d" / "index.html").mkdir(parents=True)
    with pytest.raises(ValidationError, match="not a regular file"):
        check_report_dir(tmp_path / "d", force=True)


def test_day_ahead_report_place_is_checked_before_the_assessment(tmp_path: Path) -> None:
    from aiguilleur.ops._dayahead_report import check_report_path

    old = tmp_path / "old.html"
    old.write_text("x")
    with pytest.raises(ValidationError, match="--force"):
        check_report_path(old)
    assert check_report_path(old, force=True) == old
    assert check_report_path(tmp_path) == tmp_path / "day_ahead.html"
    assert check_report_path(tmp_path / "new") == tmp_path / "new" / "day_ahead.html"
    with pytest.raises(ValidationError, match="does not exist"):
        check_report_path(tmp_path / "no" / "new")
    (tmp_path / "plain").write_text("x")
    with pytest.raises(ValidationError, match="is a file"):
        check_report_path(tmp_path / "plain")
    hist = tmp_path / "h.csv"  # never read: the place is refused first
    res = invoke(
        "ops", "day-ahead", "case14", "--history", str(hist), "--day", "2014-01-01",
        "--report", str(old),
    )  # fmt: skip
    one_line_error(res, "already exists")


# -- start times, brokers, listening addresses -----------------------------------------------


@pytest.mark.parametrize("when", ["9999-12-31T00:00:00+00:00", "1900-01-01T00:00:00+00:00"])
def test_init_refuses_times_outside_the_vocabulary_before_making_a_store(
    when: str, tmp_path: Path
) -> None:
    store = tmp_path / "s.db"
    one_line_error(invoke("ops", "init", "--store", str(store), "--case", "case14", "--at", when))
    assert not store.exists()  # it was an internal error (exit 3) after an empty store was made


def test_world_times_are_checked_before_the_world_is_built() -> None:
    from datetime import datetime

    from aiguilleur.ops.fleet import fleet_world
    from aiguilleur.ops.world import grid_world

    with pytest.raises(ValidationError, match="between 1970 and 9998"):
        grid_world("case14", at=datetime.fromisoformat("9999-06-01T00:00:00+00:00"))
    with pytest.raises(ValidationError, match="time zone"):
        fleet_world(shift_start=datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("url", "transport", "needle"),
    [
        ("zz://", "mqtt", "not a 'zz' URL"),
        ("nats://127.0.0.1:4222", "mqtt", "not a 'nats' URL"),
        ("mqtt://", "mqtt", "no host"),
        ("mqtt://h:99999", "mqtt", "out of range"),
        ("http://h", "nats", "not a 'http' URL"),
    ],
)
def test_broker_urls_never_fall_back_to_the_local_broker(
    url: str, transport: Any, needle: str
) -> None:
    from aiguilleur.ops.telemetry import broker_address

    with pytest.raises(ValidationError, match=needle):
        broker_address(url, transport)
    assert broker_address("tcp://10.0.0.2:1999", transport) == ("10.0.0.2", 1999)


def test_serve_checks_where_it_listens_and_the_store_folder_first(tmp_path: Path) -> None:
    import socket

    pytest.importorskip("fastapi")
    from aiguilleur.api.server import check_listen

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ValidationError, match="cannot listen"):
            check_listen("127.0.0.1", port)
    with pytest.raises(ValidationError, match="--host"):
        check_listen("no such host!!", 8000)
    res = invoke("serve", "--store", str(tmp_path / "no" / "ops.db"))
    one_line_error(res, "does not exist")
    assert not (tmp_path / "no").exists()


# -- a damaged store ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ("update events set body = '{junk' where seq = 1", "the event at seq 1 ('world:grid')"),
        (
            'update events set body = \'{"id": "x", "type": "meteor"}\' where seq = 1',
            "cannot be read back: type: unknown event type",
        ),
        ("drop table events", "a damaged store (table 'events' is missing)"),
    ],
)
def test_a_damaged_store_is_one_line(
    world_store: Path, tmp_path: Path, sql: str, needle: str
) -> None:
    import shutil

    p = tmp_path / "damaged.db"
    shutil.copy(world_store, p)
    with sqlite3.connect(p) as c:
        c.execute(sql)
    one_line_error(invoke("ops", "state", "--store", str(p)), needle)


def test_events_since_out_of_range_is_a_usage_error(world_store: Path) -> None:
    res = invoke("ops", "events", "--store", str(world_store), "--since", str(10**24))
    assert res.exit_code == 2 and "Traceback" not in res.stderr and "--since" in res.stderr


@pytest.mark.parametrize("name", ["", "a\x01b", "x" * 300, "tab\there"])
def test_operator_names_are_checked_naming_the_operator(name: str) -> None:
    from aiguilleur.ops.centre import _check_operator

    with pytest.raises(ValidationError, match=r"^operator: expected a name"):
        _check_operator(name)  # was "source: String should match pattern '^[^\x00-...'"
    _check_operator("alice@control-room")


# -- counts with a stated ceiling -----------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("samples", 10**9, "samples: expected at most 100,000"),
        ("scenarios", 10**8, "scenarios: expected at most 1,000"),
        ("seed", 10**14, "seed: expected at most"),
        ("samples", -1, "samples: expected an integer >= 0"),
        ("scenarios", 2.5, "scenarios: expected an integer"),
    ],
)
def test_day_ahead_counts_have_a_ceiling(field: str, value: Any, needle: str) -> None:
    from aiguilleur.ops.dayahead import DayAheadOptions

    with pytest.raises(ValidationError, match=needle):  # 10**9 samples ran for hours
        DayAheadOptions(**{field: value})


@pytest.mark.parametrize("workers", [0, 10**6, True])
def test_local_pools_have_a_ceiling(workers: Any) -> None:
    from aiguilleur.ops.cluster import LocalExecutor

    with pytest.raises(ValidationError, match="workers: expected an integer from 1 to 256"):
        LocalExecutor(workers)
