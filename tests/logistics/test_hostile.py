"""Hostile and edge inputs to ``aiguilleur routes``: one line, the truth, no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

EXAMPLES = REPO_ROOT / "aiguilleur" / "data" / "routing"


# -- no orphans ------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (a /proc scan: no psutil)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ")".
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            out.append(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")  # a zombie is dead


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "Ctrl-C"])
def test_killed_solve_leaves_no_search_worker_behind(sig: signal.Signals) -> None:
    if not sys.platform.startswith("linux"):  # pragma: no cover
        pytest.skip("reads /proc")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiguilleur.cli",
            "routes",
            "solve",
            str(EXAMPLES / "monaco_fuel.json"),
            "--workers",
            "2",
            "--time-limit",
            "60",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        workers: list[int] = []
        t_end = time.monotonic() + 20
        while time.monotonic() < t_end and len(workers) < 2:
            time.sleep(0.1)
            assert proc.poll() is None, "routes solve ended before its workers started"
            workers = _children(proc.pid)
        assert len(workers) >= 2, workers
        time.sleep(0.3)  # the workers are searching
        workers = _children(proc.pid)
        proc.send_signal(sig)
        # generous: on a loaded machine (CI's two cores under the test run) stopping the
        # searches and writing nothing half-done can take seconds; a hang still fails
        code = proc.wait(timeout=30)
        if sig == signal.SIGINT:
            assert code == 130
        t_end = time.monotonic() + 3.0
        while time.monotonic() < t_end and any(_alive(w) for w in workers):
            time.sleep(0.05)
        survivors = [w for w in workers if _alive(w)]
        assert not survivors, f"search workers outlived their parent: {survivors}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- hostile inputs through the command line ----------------------------------------------

import copy  # noqa: E402
import json  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

from typer.testing import CliRunner  # noqa: E402

from aiguilleur.cli import app  # noqa: E402

runner = CliRunner()
BASE: dict[str, Any] = json.loads((EXAMPLES / "monaco_fuel.json").read_text())
FAST = ("--time-limit", "0.1", "--workers", "1")
TINY_VRP = (
    "NAME : tiny\nTYPE : CVRP\nDIMENSION : 6\nEDGE_WEIGHT_TYPE : EUC_2D\nCAPACITY : 10\n"
    "NODE_COORD_SECTION\n1 0 0\n2 0 10\n3 10 0\n4 10 10\n5 5 5\n6 -5 -5\n"
    "DEMAND_SECTION\n1 0\n2 3\n3 4\n4 5\n5 7\n6 2\nDEPOT_SECTION\n1\n-1\nEOF\n"
)
SOLOMON = (
    "C101\n\nVEHICLE\nNUMBER     CAPACITY\n  25         200\n\nCUSTOMER\n"
    "CUST NO.  XCOORD.   YCOORD.    DEMAND   READY TIME  DUE DATE   SERVICE TIME\n\n"
    "    0      40         50          0          0       1236          0\n"
    "    1      45         68         10        912        967         90\n"
    "    2      45         70         30        825        870         90\n"
)


def one_line_error(res: Any, *fragments: str) -> str:
    assert res.exit_code == 2, (res.exit_code, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ")
    for f in fragments:
        assert f in lines[0], lines[0]
    for leak in ("Traceback", "internal error", "setting an array element", "positional argument"):
        assert leak not in res.output
    return str(lines[0])


def _doc(fn: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    d = copy.deepcopy(BASE)
    fn(d)
    return d


def _o(i: int, **kw: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda d: d["orders"][i].update(kw)


def _v(i: int, **kw: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda d: d["vehicle_types"][i].update(kw)


BAD_PROBLEMS: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("lat 500", _o(0, lat=500), "latitude 500"),
    ("lon -200", _o(1, lon=-200), "longitude -200"),
    ("depot lat 91", lambda d: d["depots"][0].update(lat=91), "depots[0] 'fontvieille': latitude"),
    ("count 2.5", _v(0, count=2.5), "'count' must be a whole number, got 2.5"),
    ("count 1e30", _v(0, count=1e30), "'count' = 1e+30 outside 0..100,000"),
    ("capacity -5", _v(0, capacity=-5), "'capacity' = -5"),
    ("capacity 1.5", _v(0, capacity=1.5), "'capacity' must be a whole number"),
    ("demand -3", _o(0, demand=-3), "'demand' = -3"),
    ("demand 2.7", _o(0, demand=2.7), "'demand' must be a whole number"),
    ("service -1", _o(0, service_s=-1), "'service_s' = -1"),
    ("window reversed", _o(0, window_s=[5000, 100]), "closes (100) before it opens (5000)"),
    ("window negative", _o(0, window_s=[-100, 5000]), "'window_s[0]' = -100"),
    ("window text", _o(0, window_s="9-17"), "window_s must be [open, close]"),
    ("shift negative", _v(0, shift_start_s=-5), "'shift_start_s' = -5"),
    ("shift reversed", _v(0, shift_start_s=50000, shift_end_s=100), "shift ends before"),
    ("priority 1.5", _o(0, priority=1.5), "'priority' must be a whole number"),
    ("penalty 1e300", _o(0, penalty=1e300), "penalty must be null (required) or a number"),
    ("cost_per_km 1e300", _v(0, cost_per_km=1e300), "'cost_per_km'"),
    ("duplicate order id", _o(1, id="hospital-pasteur"), "duplicate id 'hospital-pasteur'"),
    ("order id a list", _o(0, id=[1, 2]), "'id' must be a non-empty string or a number"),
    ("speed 0", lambda d: d["travel"].update(speed_kmh=0), "'speed_kmh' = 0"),
    ("speed text", lambda d: d["travel"].update(speed_kmh="fast"), "'speed_kmh' must be a number"),
    ("orders a number", lambda d: d.update(orders=5), "'orders' must be a list of objects"),
    (
        "ragged matrices",
        lambda d: d.update(matrices={"duration_s": [[0, 1], [1]], "distance_m": [[0]]}),
        "matrices: need 'duration_s' and 'distance_m'",
    ),
    (
        "matrix value 1e30",
        lambda d: d.update(
            matrices={"duration_s": [[0, 1e30], [1, 0]], "distance_m": [[0, 1], [1, 0]]},
            depots=[{"id": "d", "location": 0}],
            vehicle_types=[{"id": "v", "capacity": 5}],
            orders=[{"id": "o", "location": 1}],
        ),
        "matrices.duration_s[0][1] = 1e+30",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "fragment"), [c[1:] for c in BAD_PROBLEMS], ids=[c[0] for c in BAD_PROBLEMS]
)
def test_bad_problem_json_is_one_line(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], Any], fragment: str
) -> None:
    f = tmp_path / "p.json"
    f.write_text(json.dumps(_doc(mutate)))
    one_line_error(runner.invoke(app, ["routes", "solve", str(f), *FAST]), fragment)


BAD_FILES: list[tuple[str, str | bytes, str]] = [
    ("deep.json", "[" * 50_000 + "]" * 50_000, "nested too deeply"),
    ("bin.json", b"\x89PNG\r\n\x1a\n\xff\xfe\x00", "not utf-8 text"),
    ("empty.json", "", "not valid JSON"),
    ("list.json", "[1, 2]", "expected a JSON object"),
    ("dim.vrp", TINY_VRP.replace("DIMENSION : 6", "DIMENSION : 9"), "DIMENSION is 9 but"),
    ("dimtxt.vrp", TINY_VRP.replace("DIMENSION : 6", "DIMENSION : abc"), "DIMENSION must be"),
    ("cap.vrp", TINY_VRP.replace("CAPACITY : 10", "CAPACITY : 10.5"), "CAPACITY must be a whole"),
    ("veh.vrp", TINY_VRP.replace("CAPACITY : 10\n", "CAPACITY : 10\nVEHICLES : 2.5\n"), "VEHICLES"),
    ("nan.vrp", TINY_VRP.replace("5 5 5", "5 nan 5"), "finite number"),
    ("dem.vrp", TINY_VRP.replace("6 2\nDEPOT", "6 -2\nDEPOT"), "node 6: demand -2"),
    ("dep.vrp", TINY_VRP.replace("DEPOT_SECTION\n1\n", "DEPOT_SECTION\n99\n"), "depots must be"),
    ("bin.vrp", b"NAME : x\n\xff\xfe\x00\x01", "not utf-8 text"),
    ("sol_xx.txt", SOLOMON.replace("45         68", "45         xx"), "got 'xx'"),
    ("sol_neg.txt", SOLOMON.replace("912        967", "-912        967"), "customer 1: time"),
    ("sol_short.txt", SOLOMON + "    3      42\n", "needs 7 numbers"),
    ("sol_rev.txt", SOLOMON.replace("912        967", "967        912"), "closes before"),
]


@pytest.mark.parametrize(("name", "content", "fragment"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_instance_file_is_one_line(
    tmp_path: Path, name: str, content: str | bytes, fragment: str
) -> None:
    f = tmp_path / name
    if isinstance(content, bytes):
        f.write_bytes(content)
    else:
        f.write_text(content)
    one_line_error(runner.invoke(app, ["routes", "solve", str(f), *FAST]), fragment)


@pytest.mark.parametrize(
    ("option", "value", "fragment"),
    [
        ("--time-limit", "inf", "finite number of seconds"),
        ("--time-limit", "nan", "finite number of seconds"),
        ("--time-limit", "0", "(0, 86400]"),
        ("--time-limit", "-1", "(0, 86400]"),
        ("--time-limit", "1e12", "(0, 86400]"),
        ("--workers", "100000", "workers must be an integer in 0..64"),
        ("--workers", "-1", "workers must be an integer in 0..64"),
        ("--seed", "-1", "seed must be an integer in 0..2147483647"),
        ("--seed", str(2**70), "seed must be an integer"),
    ],
)
def test_solve_limits_are_finite_and_stated(
    tmp_path: Path, option: str, value: str, fragment: str
) -> None:
    f = tmp_path / "t.vrp"
    f.write_text(TINY_VRP)
    args = ["routes", "solve", str(f), "--time-limit", "0.3", "--workers", "1", option, value]
    t0 = time.monotonic()
    one_line_error(runner.invoke(app, args), fragment)
    assert time.monotonic() - t0 < 5  # refused before any search


# -- silent wrong plans: never reported as success ---------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "status", "dropped", "reason"),
    [
        (
            lambda d: [v.update(count=0) for v in d["vehicle_types"]],
            "infeasible",
            None,
            "no vehicle",
        ),
        (_o(0, demand=10**6), "partial", ["hospital-pasteur"], "exceeds every vehicle's capacity"),
        (_o(0, window_s=[0, 10]), "partial", ["hospital-pasteur"], "no vehicle can reach it"),
    ],
    ids=["zero vehicles", "demand above every capacity", "window no vehicle can meet"],
)
def test_dropped_required_orders_are_named_and_exit_1(
    tmp_path: Path,
    mutate: Callable[[dict[str, Any]], Any],
    status: str,
    dropped: list[str] | None,
    reason: str,
) -> None:
    doc = _doc(mutate)
    f = tmp_path / "p.json"
    f.write_text(json.dumps(doc))
    res = runner.invoke(app, ["routes", "solve", str(f), *FAST, "--json"])
    assert res.exit_code == 1, (res.stdout, res.stderr)
    out = json.loads(res.stdout)
    assert out["status"] == status and out["ok"] is False and out["feasible"] is False
    required = [o["id"] for o in doc["orders"] if o.get("penalty") is None]
    want = dropped if dropped is not None else required
    assert sorted(out["dropped_required"]) == sorted(want)
    assert all(reason in why for why in out["dropped_required"].values())
    text = runner.invoke(app, ["routes", "solve", str(f), *FAST])
    assert text.exit_code == 1
    assert f"status {status}" in text.stdout and "feasible: True" not in text.stdout
    for o in want[:20]:
        assert f"required order {o} not served" in text.stdout


def test_dropped_optional_order_is_still_ok(tmp_path: Path) -> None:
    f = tmp_path / "p.json"
    f.write_text(json.dumps(_doc(_o(0, demand=10**6, penalty=5))))
    res = runner.invoke(app, ["routes", "solve", str(f), *FAST, "--json"])
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["status"] == "feasible" and out["dropped_required"] == {}
    assert "hospital-pasteur" in out["dropped"]


# -- output paths: checked before the solve, never replaced without --force ---------------------


def test_write_plan_checked_before_solving(tmp_path: Path) -> None:
    inst = EXAMPLES / "monaco_fuel.json"
    missing = tmp_path / "nope" / "plan.json"
    t0 = time.monotonic()
    args = ["routes", "solve", str(inst), "--time-limit", "30", "--workers", "1"]
    one_line_error(runner.invoke(app, [*args, "--write-plan", str(missing)]), "does not exist")
    one_line_error(runner.invoke(app, [*args, "--write-plan", str(tmp_path)]), "is a folder")
    old = tmp_path / "plan.json"
    old.write_text("{}")
    one_line_error(runner.invoke(app, [*args, "--write-plan", str(old)]), "--force")
    assert time.monotonic() - t0 < 10  # none of them ran the 30 s search
    assert old.read_text() == "{}"
    res = runner.invoke(
        app, ["routes", "solve", str(inst), *FAST, "--write-plan", str(old), "--force"]
    )
    assert res.exit_code == 0, res.stderr
    assert json.loads(old.read_text())["routes"]


# -- re-planning ---------------------------------------------------------------------------------


@pytest.fixture
def plan_dir(tmp_path: Path) -> Path:
    import shutil

    for name in ("monaco_fuel.json", "monaco_fuel_plan.json", "event_mixed.json"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    return tmp_path


def _plan(d: Path, fn: Callable[[dict[str, Any]], Any]) -> Path:
    doc = json.loads((d / "monaco_fuel_plan.json").read_text())
    fn(doc)
    f = d / "p.json"
    f.write_text(json.dumps(doc))
    return f


def _r(i: int, **kw: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda d: d["routes"][i].update(kw)


BAD_PLANS: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("vehicle not in fleet", _r(0, vehicle="tanker#9"), "no vehicle 'tanker#9' in the fleet"),
    ("unknown vehicle type", _r(0, vehicle_type="truck"), "unknown vehicle type 'truck'"),
    ("unknown order", lambda d: d["routes"][0]["orders"].append("ghost"), "unknown order 'ghost'"),
    (
        "order served twice",
        lambda d: d["routes"][1]["orders"].append(d["routes"][0]["orders"][0]),
        "is also served by 'tanker#0'",
    ),
    ("orders a string", _r(0, orders="clinic"), "'orders' must be a list of order ids"),
    ("start_s negative", _r(0, start_s=-5), "start_s must be a number in 0.."),
    ("instance is the plan", lambda d: d.update(instance="p.json"), "names the plan itself"),
    ("instance missing", lambda d: d.update(instance="ghost.json"), "no such file"),
    ("dropped a number", lambda d: d.update(dropped=5), "'dropped' must map order ids"),
]


@pytest.mark.parametrize(
    ("mutate", "fragment"), [c[1:] for c in BAD_PLANS], ids=[c[0] for c in BAD_PLANS]
)
def test_bad_plan_is_one_line(
    plan_dir: Path, mutate: Callable[[dict[str, Any]], Any], fragment: str
) -> None:
    plan = _plan(plan_dir, mutate)
    ev = plan_dir / "event_mixed.json"
    args = ["routes", "replan", str(plan), "--at", "36000", "--event", str(ev), "--workers", "1"]
    one_line_error(runner.invoke(app, [*args, "--deadline", "0.5"]), fragment)


BAD_EVENTS: list[tuple[str, Any, str]] = [
    ("factor inf", '{"type": "slowdown", "factor": Infinity, "locations": [3]}', "'factor'"),
    ("factor nan", '{"type": "slowdown", "factor": NaN, "locations": [3]}', "'factor'"),
    ("arcs bad shape", {"type": "closure", "arcs": [[1, 2, 3]]}, "[from, to] pairs"),
    ("arcs out of range", {"type": "closure", "arcs": [[1, 999]]}, "not a location index"),
    (
        "urgent demand 2.5",
        {"type": "urgent_orders", "orders": [{"id": "u", "location": 3, "demand": 2.5}]},
        "'demand' must be a whole number",
    ),
    (
        "urgent negative time",
        {"type": "urgent_orders", "orders": [{"id": "u", "location": 3, "window_s": [-100, 50]}]},
        "'window_s[0]' = -100",
    ),
    (
        "urgent location 2.5",
        {"type": "urgent_orders", "orders": [{"id": "u", "location": 2.5}]},
        "'location' must be a whole number",
    ),
    ("unknown type", {"type": "meteor"}, "unknown type 'meteor'"),
    ("unknown vehicle", {"type": "breakdown", "vehicle": "ghost#1"}, "no vehicle named 'ghost#1'"),
    ("deep", "[" * 50_000 + "]" * 50_000, "nested too deeply"),
]


@pytest.mark.parametrize(
    ("event", "fragment"), [c[1:] for c in BAD_EVENTS], ids=[c[0] for c in BAD_EVENTS]
)
def test_bad_event_is_one_line(plan_dir: Path, event: Any, fragment: str) -> None:
    ev = plan_dir / "e.json"
    ev.write_text(event if isinstance(event, str) else json.dumps(event))
    plan = plan_dir / "monaco_fuel_plan.json"
    args = ["routes", "replan", str(plan), "--at", "36000", "--event", str(ev), "--workers", "1"]
    one_line_error(runner.invoke(app, [*args, "--deadline", "0.5"]), fragment)


@pytest.mark.parametrize(
    ("option", "value", "fragment"),
    [
        ("--at", "-5", "the time now must be a whole number in 0.."),
        ("--deadline", "inf", "deadline_s must be a finite number"),
        ("--deadline", "nan", "deadline_s must be a finite number"),
        ("--deadline", "0", "deadline_s must be in (0, 86400]"),
    ],
)
def test_replan_limits(plan_dir: Path, option: str, value: str, fragment: str) -> None:
    plan = plan_dir / "monaco_fuel_plan.json"
    ev = plan_dir / "event_mixed.json"
    args = ["routes", "replan", str(plan), "--at", "36000", "--event", str(ev), "--workers", "1"]
    one_line_error(runner.invoke(app, [*args, "--deadline", "0.5", option, value]), fragment)


def test_replan_that_drops_a_required_order_exits_1(plan_dir: Path) -> None:
    ev = plan_dir / "e.json"
    ev.write_text(
        json.dumps(
            {"type": "urgent_orders", "orders": [{"id": "u1", "location": 3, "demand": 10**7}]}
        )
    )
    plan = plan_dir / "monaco_fuel_plan.json"
    args = ["routes", "replan", str(plan), "--at", "36000", "--event", str(ev), "--workers", "1"]
    res = runner.invoke(app, [*args, "--deadline", "0.5", "--json"])
    assert res.exit_code == 1, (res.stdout, res.stderr)
    out = json.loads(res.stdout)
    assert out["status"] == "partial" and out["ok"] is False and out["feasible"] is False
    assert list(out["dropped_required"]) == ["u1"]
    text = runner.invoke(app, [*args, "--deadline", "0.5"])
    assert text.exit_code == 1 and "required order u1 not served" in text.stdout


# -- the Python API checks its arguments ---------------------------------------------------------


def test_public_functions_check_argument_types() -> None:
    from aiguilleur.errors import ValidationError
    from aiguilleur.logistics.routing import (
        SolveSettings,
        read_event,
        read_instance,
        read_plan,
        read_vrplib,
        replan,
        solve,
    )

    for call in (
        lambda: read_instance(123),  # type: ignore[arg-type]
        lambda: read_vrplib(None),  # type: ignore[arg-type]
        lambda: read_plan(1.5),  # type: ignore[arg-type]
        lambda: read_event(EXAMPLES / "event_mixed.json", "x"),  # type: ignore[arg-type]
        lambda: solve("x"),  # type: ignore[arg-type]
        lambda: replan("x", [], 0),  # type: ignore[arg-type]
        lambda: SolveSettings(time_limit_s=float("inf")),
        lambda: SolveSettings(workers=True),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValidationError):
            call()


def test_allocation_says_partial_when_a_point_is_short() -> None:
    from aiguilleur.logistics import AllocationOptions, allocate

    full = allocate([10.0], [4.0, 5.0], [[1.0, 2.0]], point_ids=["a", "b"])
    assert full.status == "optimal" and full.ok and full.short_points == {}
    short = allocate([6.0], [4.0, 5.0], [[1.0, 2.0]], point_ids=["a", "b"], priority=[1, 2])
    assert short.status == "partial" and not short.ok
    assert short.short_points == {"b": 3.0}
    with pytest.raises(Exception, match="time_limit_s"):
        AllocationOptions(time_limit_s=float("inf"))
